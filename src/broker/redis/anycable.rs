//! AnyCable's broadcast format (docs: rails-apps.md §3.4), so an app that publishes for
//! AnyCable switches without Ruby changes:
//!
//! - on the Redis channel `__anycable__` (`redis_channel`): a publication
//!   `{"stream":"s","data":"<json>"}` (with an optional `meta`, ignored), a batch (a JSON array
//!   of them), or a command `{"command":"disconnect","payload":{"identifier":"<identifiers
//!   JSON>","reconnect":true}}`, which becomes Rails' remote disconnect;
//! - over HTTP, the same bodies on `POST /_broadcast` with `Authorization: Bearer <key>`, the
//!   key given as is or derived from the AnyCable secret as AnyCable does
//!   (`hex(HMAC-SHA256(secret, "broadcast-cable"))`).
//!
//! With `[anycable]` on, ferrocable's own broadcasts (`/_broadcast`, channel actions) are
//! published in this format on the same channel, so every node sees them.

use bytes::Bytes;
use ferrocable_protocol::INTERNAL_STREAM_PREFIX;
use ferrocable_protocol::json::{self, Value};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::error::ConfigError;

/// `[anycable]`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AnyCableSection {
    /// Read (and publish) AnyCable publications on `redis_channel` (needs `redis.url`).
    pub enabled: bool,
    /// AnyCable's `redis_channel`.
    pub redis_channel: String,
    /// AnyCable's `broadcast_key`: the bearer `POST /_broadcast` requires. Wins over `secret`.
    pub broadcast_key: String,
    /// AnyCable's application `secret`; the broadcast key is derived from it when
    /// `broadcast_key` is empty.
    pub secret: String,
}

impl Default for AnyCableSection {
    fn default() -> Self {
        AnyCableSection {
            enabled: false,
            redis_channel: "__anycable__".into(),
            broadcast_key: String::new(),
            secret: String::new(),
        }
    }
}

/// The `[anycable]` section, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnyCableSettings {
    /// The Redis channel publications arrive on and are published to.
    pub redis_channel: String,
    /// The bearer key for `POST /_broadcast`, when one is configured or derived.
    pub broadcast_key: Option<String>,
}

impl AnyCableSettings {
    /// `None` when the section is off. `has_redis`: whether `redis.url` is set.
    pub fn compile(
        raw: &AnyCableSection,
        has_redis: bool,
    ) -> Result<Option<AnyCableSettings>, ConfigError> {
        if !raw.enabled {
            return Ok(None);
        }
        if !has_redis {
            return Err(ConfigError::new(
                "anycable.enabled",
                "AnyCable publications arrive over Redis: set redis.url (REDIS_URL)",
            ));
        }
        if raw.redis_channel.is_empty() {
            return Err(ConfigError::new(
                "anycable.redis_channel",
                "must not be empty (AnyCable's default is \"__anycable__\")",
            ));
        }
        let broadcast_key = if !raw.broadcast_key.is_empty() {
            Some(raw.broadcast_key.clone())
        } else if !raw.secret.is_empty() {
            Some(derive_broadcast_key(&raw.secret))
        } else {
            None
        };
        Ok(Some(AnyCableSettings {
            redis_channel: raw.redis_channel.clone(),
            broadcast_key,
        }))
    }
}

/// AnyCable's broadcast key for an application secret.
pub fn derive_broadcast_key(secret: &str) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(b"broadcast-cable");
    hex::encode(mac.finalize().into_bytes())
}

/// What one message on the AnyCable channel asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Publication {
    /// Deliver `data` (JSON text) on `stream`.
    Broadcast {
        /// The stream.
        stream: String,
        /// The payload as published.
        data: Bytes,
    },
    /// Rails' remote disconnect, already in Rails' internal-stream form.
    Disconnect {
        /// `action_cable/<connection identifier>`.
        stream: String,
        /// `{"type":"disconnect","reconnect":<bool>}`.
        payload: Bytes,
    },
}

/// Why a message on the AnyCable channel was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// Not JSON, or not one of the three shapes.
    #[error("not an AnyCable publication: {0}")]
    Malformed(String),
    /// A command other than `disconnect`.
    #[error("AnyCable command {0:?} is not supported")]
    Unsupported(String),
}

/// Reads one message published on the AnyCable channel, in the order AnyCable's server
/// tries the shapes: a publication, a batch, a command.
pub fn parse(message: &[u8], max_depth: usize) -> Result<Vec<Publication>, Refused> {
    let value = json::parse(message, max_depth).map_err(|e| Refused::Malformed(e.to_string()))?;
    match &value {
        Value::Object(_) if value.get("stream").is_some() => {
            Ok(vec![publication(&value).map_err(Refused::Malformed)?])
        }
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                publication(item).map_err(|e| Refused::Malformed(format!("item {i}: {e}")))
            })
            .collect(),
        Value::Object(_) => match value.get("command").and_then(Value::as_str) {
            Some("disconnect") => Ok(vec![disconnect(value.get("payload"))?]),
            Some(other) => Err(Refused::Unsupported(other.to_string())),
            None => Err(Refused::Malformed(
                "neither \"stream\" nor \"command\"".into(),
            )),
        },
        _ => Err(Refused::Malformed("not an object or an array".into())),
    }
}

fn publication(item: &Value) -> Result<Publication, String> {
    let stream = item
        .get("stream")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or("\"stream\" must be a non-empty string")?;
    if stream.starts_with(INTERNAL_STREAM_PREFIX) {
        return Err(format!(
            "{stream:?}: remote disconnect goes through the disconnect command"
        ));
    }
    let data = match item.get("data") {
        Some(Value::String(s)) => Bytes::from(s.clone()),
        // AnyCable's format says string; a JSON value is taken as the payload itself.
        Some(other) => {
            let mut out = Vec::new();
            json::write_value(&mut out, other);
            Bytes::from(out)
        }
        None => return Err("\"data\" is missing".into()),
    };
    Ok(Publication::Broadcast {
        stream: stream.to_string(),
        data,
    })
}

/// `{"identifier":"{\"current_user\":\"Z2lk…\"}","reconnect":true}` → Rails' internal stream:
/// the identifier values (GlobalID params or plain values), sorted and joined with `:`, as
/// Rails' `connection_identifier` builds them.
fn disconnect(payload: Option<&Value>) -> Result<Publication, Refused> {
    let malformed = |why: &str| Refused::Malformed(format!("disconnect: {why}"));
    let payload = payload.ok_or_else(|| malformed("no payload"))?;
    let identifiers = payload
        .get("identifier")
        .and_then(Value::as_str)
        .ok_or_else(|| malformed("\"identifier\" must be a JSON string"))?;
    let identifiers = json::parse(identifiers.as_bytes(), ferrocable_protocol::MAX_JSON_DEPTH)
        .map_err(|_| malformed("\"identifier\" is not JSON"))?;
    let pairs = identifiers
        .as_object()
        .ok_or_else(|| malformed("\"identifier\" is not a JSON object"))?;
    let mut values: Vec<String> = pairs
        .iter()
        .filter_map(|(_, v)| v.to_ruby_string())
        .collect();
    if values.is_empty() {
        return Err(malformed("no identifiers"));
    }
    values.sort();
    let reconnect = !matches!(payload.get("reconnect"), Some(Value::Bool(false)));
    Ok(Publication::Disconnect {
        stream: format!("{INTERNAL_STREAM_PREFIX}{}", values.join(":")),
        payload: Bytes::from(format!(
            r#"{{"type":"disconnect","reconnect":{reconnect}}}"#
        )),
    })
}

/// The message AnyCable's Redis broadcaster publishes for one broadcast.
pub fn encode(stream: &str, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(stream.len() + data.len() + 32);
    out.extend_from_slice(b"{\"stream\":");
    json::write_str(&mut out, stream);
    out.extend_from_slice(b",\"data\":");
    match std::str::from_utf8(data) {
        Ok(text) => json::write_str(&mut out, text),
        Err(_) => json::write_str(&mut out, &String::from_utf8_lossy(data)),
    }
    out.push(b'}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrocable_protocol::MAX_JSON_DEPTH;

    fn broadcast(stream: &str, data: &str) -> Publication {
        Publication::Broadcast {
            stream: stream.into(),
            data: Bytes::from(data.to_string()),
        }
    }

    #[test]
    fn the_three_shapes() {
        assert_eq!(
            parse(
                br#"{"stream":"chat_1","data":"{\"a\":1}","meta":{"exclude_socket":"x"}}"#,
                MAX_JSON_DEPTH
            ),
            Ok(vec![broadcast("chat_1", r#"{"a":1}"#)])
        );
        assert_eq!(
            parse(
                br#"[{"stream":"a","data":"1"},{"stream":"b","data":"2"}]"#,
                MAX_JSON_DEPTH
            ),
            Ok(vec![broadcast("a", "1"), broadcast("b", "2")])
        );
        assert_eq!(
            parse(
                br#"{"command":"disconnect","payload":{"identifier":"{\"user\":\"Z2lkOi8vYS9Vc2VyLzE\",\"org\":7}","reconnect":false}}"#,
                MAX_JSON_DEPTH
            ),
            Ok(vec![Publication::Disconnect {
                stream: "action_cable/7:Z2lkOi8vYS9Vc2VyLzE".into(),
                payload: Bytes::from_static(br#"{"type":"disconnect","reconnect":false}"#),
            }])
        );
    }

    #[test]
    fn what_is_refused() {
        for bad in [
            &b"nope"[..],
            b"1",
            br#"{"data":"1"}"#,
            br#"{"stream":"","data":"1"}"#,
            br#"{"stream":"a"}"#,
            br#"[{"stream":"a","data":"1"},{"data":"2"}]"#,
            br#"{"stream":"action_cable/Z2lk","data":"{}"}"#,
            br#"{"command":"disconnect","payload":{"identifier":"nope"}}"#,
        ] {
            assert!(
                matches!(parse(bad, MAX_JSON_DEPTH), Err(Refused::Malformed(_))),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(
            parse(br#"{"command":"reload","payload":{}}"#, MAX_JSON_DEPTH),
            Err(Refused::Unsupported("reload".into()))
        );
    }

    #[test]
    fn publications_round_trip() {
        let message = encode("chat_1", br#"{"html":"<b>"}"#);
        assert_eq!(
            message,
            br#"{"stream":"chat_1","data":"{\"html\":\"\u003cb\u003e\"}"}"#
        );
        assert_eq!(
            parse(&message, MAX_JSON_DEPTH),
            Ok(vec![broadcast("chat_1", r#"{"html":"<b>"}"#)])
        );
    }

    #[test]
    fn the_broadcast_key_is_derived_as_anycable_does() {
        // echo -n 'broadcast-cable' | openssl dgst -sha256 -hmac 'secret' (AnyCable's docs' recipe)
        assert_eq!(
            derive_broadcast_key("secret"),
            "fc20575eaa046c555be789f7a9df5111d64eb17e4956597597c3220c1ad14739"
        );
    }
}
