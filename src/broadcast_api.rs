//! `POST /_broadcast`: who may call it and what its body means; the `[broadcast_api]`
//! section. The HTTP handler (in `http`) maps the outcomes to status codes and publishes.

use std::net::IpAddr;

use bytes::Bytes;
use ferrocable_protocol::json::{self, Value};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

/// Largest body accepted; a larger one is answered 413.
pub const BODY_MAX: usize = 1024 * 1024;

/// `[broadcast_api]`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct BroadcastApiSection {
    /// Serve `POST /_broadcast`.
    pub enabled: bool,
    /// Bearer key; empty = loopback only.
    pub key: String,
}

impl Default for BroadcastApiSection {
    fn default() -> Self {
        BroadcastApiSection {
            enabled: true,
            key: String::new(),
        }
    }
}

/// The `[broadcast_api]` section, checked.
#[derive(Debug, Clone)]
pub struct BroadcastApiSettings {
    /// Whether the route exists.
    pub enabled: bool,
    /// Required bearer key, if any.
    pub key: Option<String>,
}

/// Why a caller may not use an endpoint guarded by a shared key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// A key is configured and the request does not carry it.
    #[error("missing or wrong key")]
    WrongKey,
    /// No key is configured (the named setting) and the caller is not on loopback.
    #[error("{0} is not set, so only loopback peers are accepted")]
    NotLoopback(&'static str),
}

/// Whether a caller presenting `given` from `peer` may use an endpoint guarded by `key`
/// (configured as `setting`): the key when one is set, compared in constant time so it cannot
/// be guessed byte by byte from timings; else loopback peers only.
pub fn admit(
    key: Option<&str>,
    given: Option<&str>,
    peer: IpAddr,
    setting: &'static str,
) -> Result<(), Refusal> {
    match key {
        Some(key) => {
            if bool::from(given.unwrap_or("").as_bytes().ct_eq(key.as_bytes())) {
                Ok(())
            } else {
                Err(Refusal::WrongKey)
            }
        }
        None if !peer.is_loopback() => Err(Refusal::NotLoopback(setting)),
        None => Ok(()),
    }
}

impl BroadcastApiSettings {
    /// Nothing to check: an empty key means "loopback callers only", unless AnyCable's
    /// broadcast key (`anycable_key`, from `[anycable]`) stands in for it, so an app that
    /// broadcasts over HTTP for AnyCable keeps its key.
    pub fn compile(
        section: &BroadcastApiSection,
        anycable_key: Option<&str>,
    ) -> BroadcastApiSettings {
        let key = if section.key.is_empty() {
            anycable_key.map(str::to_string)
        } else {
            Some(section.key.clone())
        };
        BroadcastApiSettings {
            enabled: section.enabled,
            key,
        }
    }

    /// Whether a request with this `Authorization` header, from `peer`, may broadcast.
    pub fn admits(&self, authorization: Option<&str>, peer: IpAddr) -> Result<(), Refusal> {
        let given = authorization.and_then(|v| v.strip_prefix("Bearer "));
        admit(self.key.as_deref(), given, peer, "broadcast_api.key")
    }
}

/// `{"stream":"s","data":"<json>"}` or an array of them. `data` may also be any JSON value,
/// which is encoded as ActiveSupport would (as `ActionCable.server.broadcast` does).
pub fn parse_broadcasts(body: &[u8], max_depth: usize) -> Result<Vec<(String, Bytes)>, String> {
    let value = json::parse(body, max_depth).map_err(|e| format!("body is not JSON: {e}"))?;
    let items: Vec<&Value> = match &value {
        Value::Array(items) => items.iter().collect(),
        one => vec![one],
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let stream = item
            .get("stream")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| format!("item {i}: \"stream\" must be a non-empty string"))?;
        let data = match item.get("data") {
            Some(Value::String(s)) => {
                // Rails never publishes invalid JSON, and every subscriber would drop it:
                // tell the caller now instead.
                json::parse(s.as_bytes(), max_depth)
                    .map_err(|e| format!("item {i}: \"data\" is not valid JSON ({e})"))?;
                Bytes::from(s.clone())
            }
            Some(other) => {
                let mut encoded = Vec::new();
                json::write_value(&mut encoded, other);
                Bytes::from(encoded)
            }
            None => return Err(format!("item {i}: \"data\" is missing")),
        };
        out.push((stream.to_string(), data));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrocable_protocol::MAX_JSON_DEPTH;

    fn parse_broadcasts_default(body: &[u8]) -> Result<Vec<(String, Bytes)>, String> {
        parse_broadcasts(body, MAX_JSON_DEPTH)
    }

    #[test]
    fn broadcast_bodies() {
        let one = parse_broadcasts_default(br#"{"stream":"chat_1","data":"{\"a\":1}"}"#).unwrap();
        assert_eq!(
            one,
            vec![("chat_1".to_string(), Bytes::from_static(br#"{"a":1}"#))]
        );
        let many = parse_broadcasts_default(
            br#"[{"stream":"a","data":"1"},{"stream":"b","data":{"x":"<"}}]"#,
        )
        .unwrap();
        assert_eq!(many[1].1, Bytes::from_static(br#"{"x":"\u003c"}"#));
        assert!(parse_broadcasts_default(br#"{"data":"1"}"#).is_err());
        assert!(parse_broadcasts_default(br#"{"stream":"a"}"#).is_err());
        assert!(parse_broadcasts_default(b"nope").is_err());
        assert!(parse_broadcasts_default(br#"{"stream":"a","data":"not json"}"#).is_err());
    }

    #[test]
    fn secrets_compare_exactly() {
        let api = BroadcastApiSettings::compile(
            &BroadcastApiSection {
                enabled: true,
                key: "abc".into(),
            },
            None,
        );
        let lan: IpAddr = "10.0.0.1".parse().unwrap();
        assert!(api.admits(Some("Bearer abc"), lan).is_ok());
        assert_eq!(api.admits(Some("Bearer abd"), lan), Err(Refusal::WrongKey));
        assert_eq!(api.admits(Some("Bearer ab"), lan), Err(Refusal::WrongKey));
        assert_eq!(api.admits(None, lan), Err(Refusal::WrongKey));
        let open = BroadcastApiSettings::compile(&BroadcastApiSection::default(), None);
        let anycable = BroadcastApiSettings::compile(&BroadcastApiSection::default(), Some("k"));
        assert!(anycable.admits(Some("Bearer k"), lan).is_ok());
        assert_eq!(anycable.admits(None, lan), Err(Refusal::WrongKey));
        assert!(open.admits(None, "127.0.0.1".parse().unwrap()).is_ok());
        assert_eq!(
            open.admits(None, lan),
            Err(Refusal::NotLoopback("broadcast_api.key"))
        );
    }
}
