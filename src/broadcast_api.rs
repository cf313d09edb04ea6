//! `POST /_broadcast`: who may call it and what its body means; the `[broadcast_api]`
//! section. The HTTP handler (in `http`) maps the outcomes to status codes and publishes.
//!
//! The same rule guards every endpoint that is ferrocable's own and not Action Cable's
//! (`/_broadcast`, `/stats`, `/metrics`, the console): with `broadcast_api.key` set, the key
//! is required from everyone (`Authorization: Bearer <key>`, or HTTP Basic with the key as
//! the password, which browsers prompt for); without one, only loopback clients are admitted,
//! and only under a loopback or IP-literal `Host`, so that a web page cannot reach a local
//! server through a DNS name it controls (DNS rebinding). A reverse proxy on the same host
//! makes every request look local: set the key wherever a proxy forwards more than `/cable`.

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
    #[error("missing or wrong key (as a bearer token or a Basic password)")]
    WrongKey,
    /// No key is configured (the named setting) and the caller is not on loopback.
    #[error("{0} is not set, so only loopback clients are admitted")]
    NotLoopback(&'static str),
    /// No key is configured and the request names a host that is not loopback or an IP
    /// (a page's own name resolving to 127.0.0.1: DNS rebinding).
    #[error("no key is set, so only requests to localhost or an IP address are admitted")]
    ForeignHost,
}

/// Whether a caller presenting `given` from `peer`, naming `host`, may use an endpoint guarded
/// by `key` (configured as `setting`): the key when one is set, compared in constant time so
/// it cannot be guessed byte by byte from timings; else loopback peers only, asking for a
/// local host name when they name one.
pub fn admit(
    key: Option<&str>,
    given: Option<&str>,
    host: Option<&str>,
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
        // An IPv4 client of a dual-stack listener arrives as ::ffff:127.0.0.1.
        None if !peer.to_canonical().is_loopback() => Err(Refusal::NotLoopback(setting)),
        None if !host.is_none_or(is_local_host) => Err(Refusal::ForeignHost),
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

    /// Whether a request from `peer` with these `Authorization` and `Host` headers may use
    /// ferrocable's own endpoints (see the module docs).
    pub fn admits(
        &self,
        authorization: Option<&str>,
        host: Option<&str>,
        peer: IpAddr,
    ) -> Result<(), Refusal> {
        let given = authorization.and_then(presented_key);
        admit(
            self.key.as_deref(),
            given.as_deref(),
            host,
            peer,
            "broadcast_api.key",
        )
    }
}

/// The key in `Bearer <key>`, or the password in `Basic base64(user:password)`.
fn presented_key(authorization: &str) -> Option<String> {
    use base64::Engine as _;
    if let Some(key) = authorization.strip_prefix("Bearer ") {
        return Some(key.to_string());
    }
    let encoded = authorization.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    Some(text.split_once(':')?.1.to_string())
}

/// `localhost` or an IP address, with or without a port (`127.0.0.1:8080`, `[::1]:8080`).
fn is_local_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<IpAddr>().is_ok()
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
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        let host = Some("cable.example.com");
        assert!(api.admits(Some("Bearer abc"), host, lan).is_ok());
        assert_eq!(
            api.admits(Some("Bearer abd"), host, lan),
            Err(Refusal::WrongKey)
        );
        assert_eq!(
            api.admits(Some("Bearer ab"), host, lan),
            Err(Refusal::WrongKey)
        );
        assert_eq!(api.admits(None, host, lan), Err(Refusal::WrongKey));
        // With a key, loopback needs it too (a proxy on the same host looks local).
        assert_eq!(
            api.admits(None, Some("localhost"), local),
            Err(Refusal::WrongKey)
        );
        // A browser's Basic credentials: any user name, the key as the password.
        assert!(api.admits(Some("Basic b3BzOmFiYw=="), host, lan).is_ok()); // ops:abc
        assert_eq!(
            api.admits(Some("Basic b3BzOmFiZA=="), host, lan), // ops:abd
            Err(Refusal::WrongKey)
        );
        let open = BroadcastApiSettings::compile(&BroadcastApiSection::default(), None);
        for host in [
            None,
            Some("127.0.0.1:8080"),
            Some("localhost"),
            Some("[::1]:8080"),
        ] {
            assert!(open.admits(None, host, local).is_ok(), "{host:?}");
        }
        assert_eq!(
            open.admits(None, None, lan),
            Err(Refusal::NotLoopback("broadcast_api.key"))
        );
        // AnyCable's broadcast key guards the endpoint when broadcast_api.key is not set.
        let anycable = BroadcastApiSettings::compile(&BroadcastApiSection::default(), Some("k"));
        assert!(anycable.admits(Some("Bearer k"), None, lan).is_ok());
        assert_eq!(anycable.admits(None, None, lan), Err(Refusal::WrongKey));
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        assert!(open.admits(None, None, mapped).is_ok());
        // DNS rebinding: a page's own name resolving to 127.0.0.1.
        assert_eq!(
            open.admits(None, Some("evil.example:8080"), local),
            Err(Refusal::ForeignHost)
        );
    }
}
