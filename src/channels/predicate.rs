//! Authorization predicates (kind B): "subscribe only if this query returns a row", as a
//! Rails channel does with `current_user.rooms.find_by(id: params[:room_id])` before
//! `stream_for` (or `reject`).
//!
//! A [`Predicate`] is self-contained: a query, where each `$n` comes from, the database, and
//! an optional re-check interval. [`Predicate::check`] binds the values (never splices them),
//! runs the query and answers the row or a [`Rejection`]; any channel kind can call it after
//! its own checks (declarative streams today, Turbo signed streams next). The row is what
//! stream templates read as `{row.<column>}`.
//!
//! Casting: `params.room_id:integer` casts like Active Record does for an integer column
//! (`"1 OR 1=1"` is 1, `"abc"` finds nothing, see [`crate::database::active_record_integer`]);
//! `:text` binds Ruby's `to_s`; without a cast the JSON value is bound as it is (an integer
//! as an integer, a string as text).

use std::sync::Arc;
use std::time::Duration;

use ferrocable_protocol::json::Value;
use serde::{Deserialize, Serialize};

use super::spec::Rejection;
use crate::auth::Identity;
use crate::database::{Bound, Database, Query, Row, active_record_integer};
use crate::error::ConfigError;

/// `[channels.<Name>.authorize]`
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AuthorizeSection {
    /// One SELECT; a row means "allowed".
    pub query: String,
    /// Where `$1`, `$2`, ... come from: `params.<name>`, `claims.<name>` or an identifier
    /// name, each optionally followed by `:integer` or `:text`.
    pub bind: Vec<String>,
    /// Re-run the query this often for each live subscription and end the subscription when
    /// the row is gone (0: never).
    pub recheck_secs: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cast {
    AsIs,
    Integer,
    Text,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    Param(String),
    Claim(String),
    Identifier(usize),
}

/// A compiled `authorize` section.
#[derive(Debug)]
pub struct Predicate {
    query: Query,
    binds: Vec<(Source, Cast)>,
    database: Arc<Database>,
    /// How often a live subscription is re-checked, if at all.
    pub recheck: Option<Duration>,
}

impl Predicate {
    /// Checks `[<base>.authorize]` against the declared identifiers; records the claims it
    /// reads in `claims_used`.
    pub fn compile(
        section: &AuthorizeSection,
        base: &str,
        identifiers: &[String],
        database: Option<&Arc<Database>>,
        claims_used: &mut Vec<String>,
    ) -> Result<Predicate, ConfigError> {
        let key = |k: &str| format!("{base}.authorize.{k}");
        let query = Query::compile(&section.query, &key("query"))?;
        if query.params != section.bind.len() {
            return Err(ConfigError::new(
                key("bind"),
                format!(
                    "the query uses {} parameter(s) but bind lists {}",
                    query.params,
                    section.bind.len()
                ),
            ));
        }
        let mut binds = Vec::with_capacity(section.bind.len());
        for (i, text) in section.bind.iter().enumerate() {
            let err =
                |problem: String| ConfigError::new(format!("{base}.authorize.bind[{i}]"), problem);
            let (name, cast) = match text.rsplit_once(':') {
                Some((name, "integer")) => (name, Cast::Integer),
                Some((name, "text")) => (name, Cast::Text),
                Some((_, other)) => {
                    return Err(err(format!(
                        "unknown cast {other:?}; use :integer or :text"
                    )));
                }
                None => (text.as_str(), Cast::AsIs),
            };
            let source = if let Some(p) = name.strip_prefix("params.").filter(|p| !p.is_empty()) {
                Source::Param(p.to_string())
            } else if let Some(c) = name.strip_prefix("claims.").filter(|c| !c.is_empty()) {
                if !claims_used.iter().any(|u| u == c) {
                    claims_used.push(c.to_string());
                }
                Source::Claim(c.to_string())
            } else if let Some(index) = identifiers.iter().position(|n| n == name) {
                Source::Identifier(index)
            } else {
                return Err(err(format!(
                    "{name:?} is not params.<name>, claims.<name> or a declared identifier"
                )));
            };
            binds.push((source, cast));
        }
        let database = database.cloned().ok_or_else(|| {
            ConfigError::new(
                key("query"),
                "needs a database: set DATABASE_URL or database.url",
            )
        })?;
        Ok(Predicate {
            query,
            binds,
            database,
            recheck: (section.recheck_secs > 0).then(|| Duration::from_secs(section.recheck_secs)),
        })
    }

    /// The values to bind, or the rejection Rails would arrive at without a query (a value
    /// Active Record casts to nothing finds no row).
    fn bind_values(&self, identity: &Identity, params: &Value) -> Result<Vec<Bound>, Rejection> {
        let mut out = Vec::with_capacity(self.binds.len());
        for (source, cast) in &self.binds {
            let value = match source {
                Source::Param(p) => params.get(p).cloned().unwrap_or(Value::Null),
                Source::Claim(c) => identity.typed_claim(c).cloned().unwrap_or(Value::Null),
                Source::Identifier(i) => identity
                    .values
                    .get(*i)
                    .and_then(|v| v.as_deref())
                    .map_or(Value::Null, Value::from),
            };
            let bound = match cast {
                Cast::Integer => active_record_integer(&value).map(Bound::Int),
                Cast::Text => value.to_ruby_string().map(Bound::Text),
                Cast::AsIs => Bound::from_json(&value).filter(|b| *b != Bound::Null),
            };
            out.push(bound.ok_or(Rejection::NotAuthorized)?);
        }
        Ok(out)
    }

    /// Runs the query for this identity and these subscription params: the row, or
    /// [`Rejection::NotAuthorized`] (no row, or a value that cannot match) or
    /// [`Rejection::Database`] (failed or timed out; the subscription is rejected, never
    /// left waiting). `fresh` bypasses the cache (re-checks).
    pub async fn check(
        &self,
        identity: &Identity,
        params: &Value,
        fresh: bool,
    ) -> Result<Arc<Row>, Rejection> {
        let binds = self.bind_values(identity, params)?;
        self.database
            .first_row(&self.query, binds, fresh)
            .await
            .map_err(|e| Rejection::Database(e.to_string()))?
            .ok_or(Rejection::NotAuthorized)
    }
}

/// A row as the JSON object stream templates read (`{row.id}`).
pub fn row_value(row: &Row) -> Value {
    Value::Object(row.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::KeptClaim;
    use crate::database::DatabaseSection;

    fn predicate(bind: &[&str]) -> Result<Predicate, ConfigError> {
        let db = Database::compile(&DatabaseSection {
            url: "sqlite::memory:".into(),
            ..DatabaseSection::default()
        })
        .unwrap();
        let section = AuthorizeSection {
            query: format!(
                "SELECT 1 FROM t WHERE {}",
                (1..=bind.len())
                    .map(|i| format!("c{i} = ${i}"))
                    .collect::<Vec<_>>()
                    .join(" AND ")
            ),
            bind: bind.iter().map(|b| b.to_string()).collect(),
            recheck_secs: 0,
        };
        Predicate::compile(
            &section,
            "channels.C",
            &["current_user".into()],
            db.as_ref(),
            &mut Vec::new(),
        )
    }

    fn identity() -> Identity {
        Identity {
            values: vec![Some("1".into())].into_boxed_slice(),
            claims: vec![KeptClaim {
                name: "id".into(),
                value: Some("1".into()),
                typed: Some(Value::from(1)),
            }]
            .into_boxed_slice(),
            connection_identifier: "".into(),
        }
    }

    fn params(text: &str) -> Value {
        ferrocable_protocol::json::parse(text.as_bytes(), 10).unwrap()
    }

    #[test]
    fn binds_are_cast_like_active_record_or_passed_as_they_are() {
        let p = predicate(&[
            "claims.id",
            "params.room:integer",
            "current_user",
            "params.name:text",
            "params.raw",
        ])
        .unwrap();
        let binds = p
            .bind_values(
                &identity(),
                &params(r#"{"room":"1 OR 1=1","name":2.5,"raw":"x' --"}"#),
            )
            .unwrap();
        assert_eq!(
            binds,
            vec![
                Bound::Int(1),
                Bound::Int(1),
                Bound::Text("1".into()),
                Bound::Text("2.5".into()),
                Bound::Text("x' --".into()),
            ]
        );
        // What Active Record casts to nothing, or a missing value, finds no row: rejected
        // without asking.
        for bad in [
            r#"{"room":"abc","raw":1}"#,
            r#"{"room":1}"#,
            r#"{"room":[1],"raw":1}"#,
        ] {
            assert_eq!(
                p.bind_values(&identity(), &params(bad)).unwrap_err(),
                Rejection::NotAuthorized,
                "{bad}"
            );
        }
    }

    #[test]
    fn config_errors_name_the_key() {
        assert_eq!(
            predicate(&["params.x:float"]).unwrap_err().key,
            "channels.C.authorize.bind[0]"
        );
        assert_eq!(
            predicate(&["nobody"]).unwrap_err().key,
            "channels.C.authorize.bind[0]"
        );
        let section = AuthorizeSection {
            query: "SELECT 1 WHERE $1 = $2".into(),
            bind: vec!["params.a".into()],
            recheck_secs: 0,
        };
        assert_eq!(
            Predicate::compile(&section, "channels.C", &[], None, &mut Vec::new())
                .unwrap_err()
                .key,
            "channels.C.authorize.bind"
        );
        let one = AuthorizeSection {
            query: "SELECT 1 WHERE $1 = 1".into(),
            bind: vec!["params.a".into()],
            recheck_secs: 0,
        };
        assert_eq!(
            Predicate::compile(&one, "channels.C", &[], None, &mut Vec::new())
                .unwrap_err()
                .key,
            "channels.C.authorize.query",
            "no database configured"
        );
    }
}
