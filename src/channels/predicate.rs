//! Authorization predicates (kind B): "subscribe only if this query returns a row", as a
//! Rails channel does with `current_user.rooms.find_by(id: params[:room_id])` before
//! `stream_for` (or `reject`).
//!
//! A [`Predicate`] is self-contained: a query, where each `$n` comes from, the database, and
//! an optional re-check interval. [`Predicate::check`] binds the values (never splices them),
//! runs the query and answers the row or a [`Rejection`]; any channel kind calls it after its
//! own checks (declarative streams, and signed streams: a custom Turbo channel such as
//! Campfire's `RoomMessagesChannel` checks membership of the room its verified name is
//! about). The row is what stream templates read as `{row.<column>}`.
//!
//! Sources: `params.<name>`, `claims.<name>`, an identifier name, and `signed_stream.<Model>`:
//! the id of the record whose GlobalID param is a `:`-separated part of the channel's verified
//! signed name (`turbo_stream_from @room, :messages` signs `<Room's gid param>:messages`, so
//! `signed_stream.Room` is the room's id, as `GlobalID::Locator.locate(part, only: Room)`
//! finds it). `<Model>` may list STI classes: `signed_stream.Rooms::Open|Rooms::Closed`.
//!
//! Casting: `params.room_id:integer` casts like Active Record does for an integer column
//! (`"1 OR 1=1"` is 1, `"abc"` finds nothing, see [`crate::database::active_record_integer`]);
//! `:text` binds Ruby's `to_s`; without a cast the JSON value is bound as it is (an integer
//! as an integer, a string as text; a GlobalID's id is text).

use std::sync::Arc;
use std::time::Duration;

use ferrocable_protocol::json::Value;
use serde::{Deserialize, Serialize};

use super::spec::{CompileContext, Rejection};
use crate::auth::Identity;
use crate::database::{Bound, Database, Query, Row, active_record_integer};
use crate::error::ConfigError;

/// `[channels.<Name>.authorize]`
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AuthorizeSection {
    /// One SELECT; a row means "allowed".
    pub query: String,
    /// Where `$1`, `$2`, ... come from: `params.<name>`, `claims.<name>`, an identifier name
    /// or `signed_stream.<Model>`, each optionally followed by `:integer` or `:text`.
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
    /// The id of the first part of the verified signed name that is the GlobalID param of
    /// one of these models (class names).
    SignedStreamRecord(Vec<String>),
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
    /// Checks `[<base>.authorize]` against the declared identifiers and the database;
    /// `signed_stream` says whether the channel verifies a signed name (which
    /// `signed_stream.<Model>` reads). Records the claims it reads in `claims_used`.
    pub fn compile(
        section: &AuthorizeSection,
        base: &str,
        context: &CompileContext<'_>,
        signed_stream: bool,
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
            // A `::` belongs to a class name (`signed_stream.Rooms::Open`), not to a cast.
            let (name, cast) = match text.rsplit_once(':') {
                Some((name, _)) if name.ends_with(':') => (text.as_str(), Cast::AsIs),
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
            } else if let Some(models) = name.strip_prefix("signed_stream.") {
                if !signed_stream {
                    return Err(err(format!(
                        "{name:?} reads the channel's verified signed name, and {base} has no \
                         signed_stream (e.g. signed_stream.verifier = \"turbo\")"
                    )));
                }
                let models: Vec<String> = models.split('|').map(str::to_string).collect();
                if let Some(bad) = models.iter().find(|m| !is_class_name(m)) {
                    return Err(err(format!(
                        "{bad:?} is not a model class name; write signed_stream.Room \
                         (or signed_stream.Rooms::Open|Rooms::Closed)"
                    )));
                }
                Source::SignedStreamRecord(models)
            } else if let Some(index) = context.identifiers.iter().position(|n| n == name) {
                Source::Identifier(index)
            } else {
                return Err(err(format!(
                    "{name:?} is not params.<name>, claims.<name>, signed_stream.<Model> or a \
                     declared identifier"
                )));
            };
            binds.push((source, cast));
        }
        let database = context.database.cloned().ok_or_else(|| {
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
    /// Active Record casts to nothing finds no row: `find_by(id: nil)`).
    fn bind_values(
        &self,
        identity: &Identity,
        params: &Value,
        verified: Option<&str>,
    ) -> Result<Vec<Bound>, Rejection> {
        let mut out = Vec::with_capacity(self.binds.len());
        for (source, cast) in &self.binds {
            let value = match source {
                Source::SignedStreamRecord(models) => verified
                    .and_then(|name| record_id(name, models))
                    .map_or(Value::Null, Value::String),
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

    /// Runs the query for this identity, these subscription params and the channel's
    /// verified signed name (if it has one): the row, or [`Rejection::NotAuthorized`] (no
    /// row, or a value that cannot match) or [`Rejection::Database`] (failed or timed out;
    /// the subscription is rejected, never left waiting). `fresh` bypasses the cache
    /// (re-checks).
    pub async fn check(
        &self,
        identity: &Identity,
        params: &Value,
        verified: Option<&str>,
        fresh: bool,
    ) -> Result<Arc<Row>, Rejection> {
        let binds = self.bind_values(identity, params, verified)?;
        self.database
            .first_row(&self.query, binds, fresh)
            .await
            .map_err(|e| Rejection::Database(e.to_string()))?
            .ok_or(Rejection::NotAuthorized)
    }
}

/// The id of the first `:`-separated part of a verified stream name that is the GlobalID
/// param of one of `models` (Turbo names a record by `to_gid_param`, which has no `:`). A
/// composite key is not one id: `None`, as is a name with no such part.
fn record_id(name: &str, models: &[String]) -> Option<String> {
    name.split(':').find_map(|part| {
        let gid = ferrocable_rails::parse_global_id_param(part)?;
        if !models.contains(&gid.model_name) {
            return None;
        }
        let [id] = <[String; 1]>::try_from(gid.model_id).ok()?;
        Some(id)
    })
}

/// A Ruby constant path: `Room`, `Rooms::Open`.
fn is_class_name(text: &str) -> bool {
    text.split("::").all(|segment| {
        segment.starts_with(|c: char| c.is_ascii_uppercase())
            && segment
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

/// A row as the JSON object stream templates read (`{row.id}`).
pub fn row_value(row: &Row) -> Value {
    Value::Object(row.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::KeptClaim;
    use crate::channels::{SignedStreamsSection, SignedStreamsSettings, TurboSection};
    use crate::database::DatabaseSection;

    /// Compiles `section` for a channel with one identifier, a database unless `database` is
    /// false, and a signed stream when `signed` is true.
    fn compile(
        section: &AuthorizeSection,
        database: bool,
        signed: bool,
    ) -> Result<Predicate, ConfigError> {
        let db = Database::compile(&DatabaseSection {
            url: "sqlite::memory:".into(),
            ..DatabaseSection::default()
        })
        .unwrap();
        let keys = SignedStreamsSettings::compile(
            &SignedStreamsSection::default(),
            &TurboSection::default(),
            ferrocable_rails::RailsVersion::V7_2,
        )
        .unwrap();
        let identifiers = ["current_user".to_string()];
        let context = CompileContext {
            identifiers: &identifiers,
            global_id_app: Some("chat"),
            database: db.as_ref().filter(|_| database),
            signed_streams: &keys,
        };
        Predicate::compile(section, "channels.C", &context, signed, &mut Vec::new())
    }

    fn section(bind: &[&str]) -> AuthorizeSection {
        AuthorizeSection {
            query: format!(
                "SELECT 1 FROM t WHERE {}",
                (1..=bind.len())
                    .map(|i| format!("c{i} = ${i}"))
                    .collect::<Vec<_>>()
                    .join(" AND ")
            ),
            bind: bind.iter().map(|b| b.to_string()).collect(),
            recheck_secs: 0,
        }
    }

    fn predicate(bind: &[&str]) -> Result<Predicate, ConfigError> {
        compile(&section(bind), true, true)
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

    /// `to_gid_param` of a record.
    fn gid(model: &str, id: &[&str]) -> String {
        ferrocable_rails::global_id_param(&ferrocable_rails::global_id("chat", model, id))
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
                None,
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
                p.bind_values(&identity(), &params(bad), None).unwrap_err(),
                Rejection::NotAuthorized,
                "{bad}"
            );
        }
    }

    #[test]
    fn signed_stream_binds_the_id_of_the_record_the_verified_name_is_about() {
        let bind = |bind: &str, verified: Option<&str>| {
            predicate(&[bind])
                .unwrap()
                .bind_values(&identity(), &params("{}"), verified)
        };
        let room_1 = format!("{}:messages", gid("Room", &["1"]));
        // turbo_stream_from @room, :messages: the room's id, cast or as text.
        assert_eq!(
            bind("signed_stream.Room:integer", Some(&room_1)),
            Ok(vec![Bound::Int(1)])
        );
        assert_eq!(
            bind("signed_stream.Room", Some(&room_1)),
            Ok(vec![Bound::Text("1".into())])
        );
        // The first part that is a Room, wherever it is ([account, room, :messages]).
        let nested = format!("{}:{}:messages", gid("User", &["5"]), gid("Room", &["7"]));
        assert_eq!(
            bind("signed_stream.Room:integer", Some(&nested)),
            Ok(vec![Bound::Int(7)])
        );
        // STI classes are listed; namespaced names need no cast to parse.
        let closed = format!("{}:messages", gid("Rooms::Closed", &["3"]));
        let sti = "signed_stream.Rooms::Open|Rooms::Closed";
        assert_eq!(
            bind(&format!("{sti}:integer"), Some(&closed)),
            Ok(vec![Bound::Int(3)])
        );
        assert_eq!(bind(sti, Some(&closed)), Ok(vec![Bound::Text("3".into())]));
        // No such record in the name: Rails' locate gives nil and find_by(id: nil) no row.
        let rejected = [
            (
                "signed_stream.Room:integer",
                Some(format!("{}:messages", gid("User", &["1"]))),
            ),
            ("signed_stream.Room:integer", Some("rooms".to_string())),
            ("signed_stream.Room:integer", Some(String::new())),
            ("signed_stream.Room:integer", None),
            (sti, Some(room_1)),
            (
                "signed_stream.Room:integer",
                Some(format!("{}:messages", gid("Room", &["abc"]))),
            ),
            (
                "signed_stream.Room",
                Some(format!("{}:messages", gid("Room", &["1", "2"]))),
            ),
            // The gid text itself is not a param: its ':' splits it.
            (
                "signed_stream.Room",
                Some("gid://chat/Room/1:messages".to_string()),
            ),
        ];
        for (b, verified) in rejected {
            assert_eq!(
                bind(b, verified.as_deref()),
                Err(Rejection::NotAuthorized),
                "{b} {verified:?}"
            );
        }
    }

    #[test]
    fn config_errors_name_the_key() {
        for (bind, needle) in [
            (vec!["params.x:float"], "unknown cast"),
            (vec!["nobody"], "signed_stream.<Model>"),
            (vec!["signed_stream.room"], "not a model class name"),
            (vec!["signed_stream."], "not a model class name"),
            (vec!["signed_stream.Room|"], "not a model class name"),
            (vec!["signed_stream.Rooms:Open"], "unknown cast"),
        ] {
            let err = predicate(&bind).unwrap_err();
            assert_eq!(err.key, "channels.C.authorize.bind[0]", "{bind:?}");
            assert!(err.problem.contains(needle), "{bind:?}: {err}");
        }
        let unsigned = compile(&section(&["signed_stream.Room:integer"]), true, false).unwrap_err();
        assert_eq!(unsigned.key, "channels.C.authorize.bind[0]");
        assert!(unsigned.problem.contains("no signed_stream"), "{unsigned}");
        let section = AuthorizeSection {
            query: "SELECT 1 WHERE $1 = $2".into(),
            bind: vec!["params.a".into()],
            recheck_secs: 0,
        };
        assert_eq!(
            compile(&section, true, false).unwrap_err().key,
            "channels.C.authorize.bind"
        );
        let one = AuthorizeSection {
            query: "SELECT 1 WHERE $1 = 1".into(),
            bind: vec!["params.a".into()],
            recheck_secs: 0,
        };
        assert_eq!(
            compile(&one, false, false).unwrap_err().key,
            "channels.C.authorize.query",
            "no database configured"
        );
    }
}
