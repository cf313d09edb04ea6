//! `[auth.lookup]`: the credential (a session token, a user id) turned into a row of the
//! app's database, as the app's `connect` does (`Session.find_by(token:)&.user`). The row's
//! columns become what identifiers read (`claim = "id"`), typed: an integer column stays a
//! number, so a relay stamped with it renders as Rails' `{id: user.id}` does.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as JsonValue};

use super::AuthError;
use crate::database::{Bound, Database, Query};
use crate::error::ConfigError;
use ferrocable_protocol::json::Value;

/// `[auth.lookup]`
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LookupSection {
    /// One SELECT with `$1` = the cookie's credential, e.g.
    /// `SELECT users.id, users.name FROM sessions JOIN users ON users.id = sessions.user_id WHERE sessions.token = $1`.
    pub query: String,
}

/// `[auth.lookup]`, checked.
#[derive(Debug)]
pub struct Lookup {
    query: Query,
    database: Arc<Database>,
}

impl Lookup {
    /// `None` when no query is configured; an error when one is but there is no database.
    pub fn compile(
        section: &LookupSection,
        database: Option<&Arc<Database>>,
    ) -> Result<Option<Lookup>, ConfigError> {
        if section.query.trim().is_empty() {
            return Ok(None);
        }
        let query = Query::compile(&section.query, "auth.lookup.query")?;
        if query.params != 1 {
            return Err(ConfigError::new(
                "auth.lookup.query",
                "must use exactly one parameter, $1 (the cookie's value)",
            ));
        }
        let database = database.cloned().ok_or_else(|| {
            ConfigError::new(
                "auth.lookup.query",
                "needs a database: set DATABASE_URL or database.url",
            )
        })?;
        Ok(Some(Lookup { query, database }))
    }

    /// The row for `credential` as claims, or why the connection is refused (no row: Rails'
    /// `reject_unauthorized_connection`; a database error: refused too, never waited on
    /// longer than `database.query_timeout_ms`).
    pub async fn resolve(
        &self,
        credential: &JsonValue,
    ) -> Result<Map<String, JsonValue>, AuthError> {
        let bound = match credential {
            JsonValue::String(s) => Bound::Text(s.clone()),
            JsonValue::Number(n) => match n.as_i64() {
                Some(i) => Bound::Int(i),
                None => Bound::Text(n.to_string()),
            },
            _ => return Err(AuthError::UnusableCredential),
        };
        let row = self
            .database
            .first_row(&self.query, vec![bound], false)
            .await
            .map_err(|e| AuthError::Database(e.to_string()))?
            .ok_or(AuthError::NoRow)?;
        Ok(row
            .iter()
            .map(|(name, value)| (name.clone(), to_serde(value)))
            .collect())
    }
}

/// A database value as a claim.
fn to_serde(value: &Value) -> JsonValue {
    match value {
        Value::Null => JsonValue::Null,
        Value::Bool(b) => JsonValue::Bool(*b),
        Value::Integer(i) => match i.as_i64() {
            Some(n) => JsonValue::from(n),
            None => JsonValue::String(value.to_ruby_string().unwrap_or_default()),
        },
        Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(JsonValue::Number)
            .unwrap_or(JsonValue::Null),
        Value::String(s) => JsonValue::String(s.clone()),
        Value::Array(a) => JsonValue::Array(a.iter().map(to_serde).collect()),
        Value::Object(o) => {
            JsonValue::Object(o.iter().map(|(k, v)| (k.clone(), to_serde(v))).collect())
        }
    }
}
