//! Server frames (docs/PROTOCOL.md §2), each encoded once as a `String` that the caller turns into
//! a shared, cheaply cloned frame.
//!
//! Key order and spelling are Rails': `identifier` before `type`/`message`, `type` before
//! `reason` before `reconnect`. The identifier is echoed exactly as the client sent it,
//! escaped the way ActiveSupport escapes strings.

use std::sync::Arc;

use bytes::Bytes;

use super::json;

/// An identifier as a ready-to-splice JSON string literal (quotes included).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EscapedIdentifier(Arc<str>);

impl EscapedIdentifier {
    /// Escapes the identifier string once.
    pub fn new(identifier: &str) -> EscapedIdentifier {
        EscapedIdentifier::with_escaping(identifier, json::Escaping::default())
    }

    /// Escapes the identifier string once, as a given Rails version and setting would.
    pub fn with_escaping(identifier: &str, escaping: json::Escaping) -> EscapedIdentifier {
        let mut out = Vec::with_capacity(identifier.len() + 16);
        json::write_str_with(&mut out, identifier, escaping);
        // write_str escapes a &str and emits only ASCII escapes or the input's own UTF-8.
        let text = String::from_utf8(out)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        EscapedIdentifier(Arc::from(text))
    }

    /// The literal, quotes included.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why the server ends a connection (Action Cable's `disconnect_reasons`, plus AnyCable's
/// `too_slow`, which `@anycable/web` understands and `@rails/actioncable` merely logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisconnectReason {
    /// Authentication failed.
    Unauthorized,
    /// The server is shutting down or restarting.
    ServerRestart,
    /// `remote_connections.where(...).disconnect` (Rails 7.1+ frame).
    Remote,
    /// The client could not keep up with its outbound queue.
    TooSlow,
    /// The client sent commands faster than `limits.max_commands_per_second`.
    TooManyRequests,
    /// `close` without a reason: `"reason":null`.
    Unspecified,
}

impl DisconnectReason {
    fn as_json(self) -> &'static str {
        match self {
            DisconnectReason::Unauthorized => "\"unauthorized\"",
            DisconnectReason::ServerRestart => "\"server_restart\"",
            DisconnectReason::Remote => "\"remote\"",
            DisconnectReason::TooSlow => "\"too_slow\"",
            DisconnectReason::TooManyRequests => "\"too_many_requests\"",
            DisconnectReason::Unspecified => "null",
        }
    }
}

/// `{"type":"welcome"}`
pub const WELCOME: &str = r#"{"type":"welcome"}"#;

/// `{"type":"ping","message":<unix seconds>}`
pub fn ping(unix_seconds: u64) -> String {
    format!(r#"{{"type":"ping","message":{unix_seconds}}}"#)
}

fn with_identifier(id: &EscapedIdentifier, middle: &str, tail: &str) -> String {
    let mut out = String::with_capacity(14 + id.0.len() + middle.len() + tail.len() + 1);
    out.push_str(r#"{"identifier":"#);
    out.push_str(&id.0);
    out.push_str(middle);
    out.push_str(tail);
    out.push('}');
    out
}

/// `{"identifier":<id>,"type":"confirm_subscription"}`
pub fn confirm(id: &EscapedIdentifier) -> String {
    with_identifier(id, r#","type":"confirm_subscription""#, "")
}

/// `{"identifier":<id>,"type":"reject_subscription"}`
pub fn reject(id: &EscapedIdentifier) -> String {
    with_identifier(id, r#","type":"reject_subscription""#, "")
}

/// `{"identifier":<id>,"message":<message>}`; `message` must already be ActiveSupport JSON.
pub fn message(id: &EscapedIdentifier, message: &str) -> String {
    with_identifier(id, r#","message":"#, message)
}

/// `{"type":"disconnect","reason":<reason>,"reconnect":<reconnect>}`; `reconnect` is JSON
/// (Rails passes the remote payload's value through, so it is not always a boolean).
pub fn disconnect(reason: DisconnectReason, reconnect: &str) -> String {
    format!(
        r#"{{"type":"disconnect","reason":{},"reconnect":{reconnect}}}"#,
        reason.as_json()
    )
}

/// One final, unmasked text frame carrying `payload`, as a server sends it (RFC 6455 §5.2):
/// `0x81`, the length (7 bits, or 126 + u16, or 127 + u64), the bytes.
pub fn text_frame(payload: &str) -> Bytes {
    let len = payload.len();
    let mut out = Vec::with_capacity(len + 10);
    out.push(0x81);
    match len {
        0..=125 => out.push(len as u8),
        126..=0xffff => {
            out.push(126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload.as_bytes());
    Bytes::from(out)
}

/// The text carried by a frame [`text_frame`] made; `None` for anything else.
pub fn text_payload(frame: &[u8]) -> Option<&str> {
    let (&first, rest) = frame.split_first()?;
    let (&len7, rest) = rest.split_first()?;
    if first != 0x81 || len7 & 0x80 != 0 {
        return None;
    }
    let (len, body) = match len7 {
        126 => (
            usize::from(u16::from_be_bytes(rest.get(..2)?.try_into().ok()?)),
            &rest[2..],
        ),
        127 => (
            usize::try_from(u64::from_be_bytes(rest.get(..8)?.try_into().ok()?)).ok()?,
            &rest[8..],
        ),
        n => (usize::from(n), rest),
    };
    std::str::from_utf8(body.get(..len)?)
        .ok()
        .filter(|_| body.len() == len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_match_rails_bytes() {
        let id = EscapedIdentifier::new(r#"{"channel":"ChatChannel","room":"1"}"#);
        assert_eq!(
            confirm(&id),
            r#"{"identifier":"{\"channel\":\"ChatChannel\",\"room\":\"1\"}","type":"confirm_subscription"}"#
        );
        assert_eq!(
            reject(&id),
            r#"{"identifier":"{\"channel\":\"ChatChannel\",\"room\":\"1\"}","type":"reject_subscription"}"#
        );
        assert_eq!(
            message(&id, r#"{"a":1}"#),
            r#"{"identifier":"{\"channel\":\"ChatChannel\",\"room\":\"1\"}","message":{"a":1}}"#
        );
        assert_eq!(ping(1712345678), r#"{"type":"ping","message":1712345678}"#);
        assert_eq!(WELCOME, r#"{"type":"welcome"}"#);
        assert_eq!(
            disconnect(DisconnectReason::Unauthorized, "false"),
            r#"{"type":"disconnect","reason":"unauthorized","reconnect":false}"#
        );
        assert_eq!(
            disconnect(DisconnectReason::ServerRestart, "true"),
            r#"{"type":"disconnect","reason":"server_restart","reconnect":true}"#
        );
        assert_eq!(
            disconnect(DisconnectReason::Unspecified, "true"),
            r#"{"type":"disconnect","reason":null,"reconnect":true}"#
        );
    }

    #[test]
    fn text_frames_use_rails_length_encodings() {
        assert_eq!(&text_frame(WELCOME)[..2], &[0x81, 18]);
        for len in [0, 125, 126, 65535, 65536] {
            let payload = "x".repeat(len);
            let frame = text_frame(&payload);
            assert_eq!(text_payload(&frame), Some(payload.as_str()), "{len}");
            let header = frame.len() - len;
            assert_eq!(
                header,
                if len < 126 {
                    2
                } else if len < 65536 {
                    4
                } else {
                    10
                }
            );
        }
        assert_eq!(text_payload(&[0x82, 0]), None);
    }

    #[test]
    fn identifier_echo_escapes_like_activesupport() {
        let id = EscapedIdentifier::new(r#"{"room":"<1>","channel":"ChatChannel"}"#);
        assert_eq!(
            confirm(&id),
            r#"{"identifier":"{\"room\":\"\u003c1\u003e\",\"channel\":\"ChatChannel\"}","type":"confirm_subscription"}"#
        );
    }

    #[test]
    fn identifier_echo_vectors_from_rails() {
        let text = include_str!("../../../fixtures/json/identifier-echo.jsonl");
        let mut count = 0;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let v = json::parse(line.as_bytes(), 10).unwrap();
            let id =
                EscapedIdentifier::new(v.get("identifier").and_then(json::Value::as_str).unwrap());
            let want_confirm = v
                .get("confirm_frame")
                .and_then(json::Value::as_str)
                .unwrap();
            let want_message = v
                .get("message_frame")
                .and_then(json::Value::as_str)
                .unwrap();
            assert_eq!(confirm(&id), want_confirm);
            assert_eq!(message(&id, r#"{"a":1}"#), want_message);
            count += 1;
        }
        assert!(count >= 10);
    }
}
