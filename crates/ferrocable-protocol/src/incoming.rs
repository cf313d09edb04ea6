//! Client commands (docs/PROTOCOL.md §3) and subscription identifiers, decoded from text; and
//! the remote-disconnect payloads Rails publishes on a connection's internal stream (§5.2).
//!
//! Rails answers every malformed command with silence and a log line; [`CommandError`] and
//! [`IdentifierError`] carry what that log line needs.

use super::MAX_JSON_DEPTH;
use super::json::{self, ParseError, Value};
use super::outgoing::DisconnectReason;

/// A command the server acts on.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// `{"command":"subscribe","identifier":"..."}`
    Subscribe {
        /// The identifier exactly as sent: the subscription's key.
        identifier: String,
    },
    /// `{"command":"unsubscribe","identifier":"..."}`; a non-string identifier never matches.
    Unsubscribe {
        /// Subscription key, if it was a string.
        identifier: Option<String>,
    },
    /// `{"command":"message","identifier":"...","data":"..."}`
    Message {
        /// Subscription key, if it was a string.
        identifier: Option<String>,
        /// The `data` string, if it was one.
        data: Option<String>,
    },
}

/// Why a frame is not a command (each is logged and ignored, as Rails does).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CommandError {
    /// Not JSON at all (Rails: `JSON::ParserError`).
    #[error("not JSON: {0}")]
    NotJson(ParseError),
    /// JSON, but not an object (Rails: `NoMethodError`/`TypeError`).
    #[error("not a JSON object")]
    NotAnObject,
    /// No known `command` (Rails: "Received unrecognized command").
    #[error("unrecognized command")]
    Unrecognized,
    /// `subscribe` whose identifier is missing or not a string (Rails: `TypeError`).
    #[error("identifier is not a string")]
    IdentifierNotString,
}

/// Decodes one text frame with Ruby's default nesting limit.
pub fn parse_command(text: &[u8]) -> Result<Command, CommandError> {
    parse_command_at_depth(text, MAX_JSON_DEPTH)
}

/// Decodes one text frame, refusing JSON nested deeper than `max_depth`.
pub fn parse_command_at_depth(text: &[u8], max_depth: usize) -> Result<Command, CommandError> {
    let value = json::parse(text, max_depth).map_err(CommandError::NotJson)?;
    if !matches!(value, Value::Object(_)) {
        return Err(CommandError::NotAnObject);
    }
    let identifier = value
        .get("identifier")
        .and_then(Value::as_str)
        .map(str::to_owned);
    match value.get("command").and_then(Value::as_str) {
        Some("subscribe") => Ok(Command::Subscribe {
            identifier: identifier.ok_or(CommandError::IdentifierNotString)?,
        }),
        Some("unsubscribe") => Ok(Command::Unsubscribe { identifier }),
        Some("message") => Ok(Command::Message {
            identifier,
            data: value.get("data").and_then(Value::as_str).map(str::to_owned),
        }),
        _ => Err(CommandError::Unrecognized),
    }
}

/// A decoded subscription identifier: `{"channel":"ChatChannel","room":"1"}`.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelRef {
    /// The channel class name.
    pub channel: String,
    /// The whole identifier object (params are read from it by key).
    pub params: Value,
}

/// Why an identifier names no channel (logged, nothing sent).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum IdentifierError {
    /// Not JSON.
    #[error("identifier is not JSON: {0}")]
    NotJson(ParseError),
    /// JSON but not an object.
    #[error("identifier is not a JSON object")]
    NotAnObject,
    /// No string `channel` key.
    #[error("identifier has no channel")]
    NoChannel,
    /// A `message` whose `action` is neither blank nor a string (Rails: `NoMethodError`
    /// from `to_sym`, so nothing is performed).
    #[error("action is not a string")]
    ActionNotString,
}

/// Decodes an identifier the way Rails finds its channel class (Ruby's nesting limit).
pub fn parse_identifier(identifier: &str) -> Result<ChannelRef, IdentifierError> {
    parse_identifier_at_depth(identifier, MAX_JSON_DEPTH)
}

/// Decodes an identifier, refusing JSON nested deeper than `max_depth`.
pub fn parse_identifier_at_depth(
    identifier: &str,
    max_depth: usize,
) -> Result<ChannelRef, IdentifierError> {
    let value = json::parse(identifier.as_bytes(), max_depth).map_err(IdentifierError::NotJson)?;
    if !matches!(value, Value::Object(_)) {
        return Err(IdentifierError::NotAnObject);
    }
    let channel = value
        .get("channel")
        .and_then(Value::as_str)
        .ok_or(IdentifierError::NoChannel)?
        .to_owned();
    Ok(ChannelRef {
        channel,
        params: value,
    })
}

/// What a `message` command's `data` asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionCall {
    /// `data["action"]`, or `None` for Rails' `receive`.
    pub action: Option<String>,
    /// The decoded data, `action` included (Rails passes it on whole).
    pub data: Value,
}

/// Decodes a `message` command's `data` string (Ruby's nesting limit).
pub fn parse_action(data: &str) -> Result<ActionCall, IdentifierError> {
    parse_action_at_depth(data, MAX_JSON_DEPTH)
}

/// Decodes a `message` command's `data`, refusing JSON nested deeper than `max_depth`.
pub fn parse_action_at_depth(data: &str, max_depth: usize) -> Result<ActionCall, IdentifierError> {
    let value = json::parse(data.as_bytes(), max_depth).map_err(IdentifierError::NotJson)?;
    if !matches!(value, Value::Object(_)) {
        return Err(IdentifierError::NotAnObject);
    }
    // Rails: `(data["action"].presence || :receive).to_sym`. Blank values (null, false, "",
    // whitespace, [], {}) mean `receive`; a string names the action; anything else has no
    // `to_sym`, so Rails raises and performs nothing.
    let action = match value.get("action") {
        None | Some(Value::Null | Value::Bool(false)) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Array(items)) if items.is_empty() => None,
        Some(Value::Object(pairs)) if pairs.is_empty() => None,
        Some(_) => return Err(IdentifierError::ActionNotString),
    };
    Ok(ActionCall {
        action,
        data: value,
    })
}

/// What Rails does with a message on a connection's internal stream
/// (`action_cable/<connection identifier>`, docs/PROTOCOL.md §5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteDisconnect {
    /// Close every connection listening there, with this reason.
    Close {
        /// `remote` for Rails' disconnect message, none for a payload Rails cannot index.
        reason: DisconnectReason,
        /// The frame's `reconnect` value, as JSON text.
        reconnect: Box<str>,
    },
    /// Nothing happens: another `type`, or a JSON string.
    Ignore,
}

/// Decodes a remote-disconnect payload as Rails' connection does: `{"type":"disconnect"}`
/// closes with reason `remote` and the payload's `reconnect` (default `true`); another object
/// or a string is ignored; any other JSON value makes Rails' lookup raise, which closes the
/// connection without a reason.
///
/// # Errors
///
/// When the payload is not JSON (Rails drops it).
pub fn parse_remote_disconnect(
    payload: &[u8],
    max_depth: usize,
) -> Result<RemoteDisconnect, ParseError> {
    let value = json::parse(payload, max_depth)?;
    Ok(match &value {
        Value::Object(_) => match value.get("type").and_then(Value::as_str) {
            Some("disconnect") => {
                let mut reconnect = Vec::new();
                json::write_value(
                    &mut reconnect,
                    value.get("reconnect").unwrap_or(&Value::Bool(true)),
                );
                let reconnect = String::from_utf8(reconnect).unwrap_or_else(|_| "true".into());
                RemoteDisconnect::Close {
                    reason: DisconnectReason::Remote,
                    reconnect: reconnect.into_boxed_str(),
                }
            }
            _ => RemoteDisconnect::Ignore,
        },
        // Rails indexes the payload with ["type"]: a String answers nil, anything else
        // raises and the connection is closed without a reason.
        Value::String(_) => RemoteDisconnect::Ignore,
        _ => RemoteDisconnect::Close {
            reason: DisconnectReason::Unspecified,
            reconnect: "true".into(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_disconnect_payloads_follow_rails() {
        let close = |reason, reconnect: &str| {
            Ok(RemoteDisconnect::Close {
                reason,
                reconnect: reconnect.into(),
            })
        };
        let parse = |p: &[u8]| parse_remote_disconnect(p, MAX_JSON_DEPTH);
        assert_eq!(
            parse(br#"{"type":"disconnect"}"#),
            close(DisconnectReason::Remote, "true")
        );
        assert_eq!(
            parse(br#"{"type":"disconnect","reconnect":false}"#),
            close(DisconnectReason::Remote, "false")
        );
        assert_eq!(parse(br#"{"type":"other"}"#), Ok(RemoteDisconnect::Ignore));
        assert_eq!(parse(br#""disconnect""#), Ok(RemoteDisconnect::Ignore));
        assert_eq!(parse(b"[1]"), close(DisconnectReason::Unspecified, "true"));
        assert_eq!(parse(b"null"), close(DisconnectReason::Unspecified, "true"));
        assert!(parse(b"not json").is_err());
    }

    #[test]
    fn stock_client_commands() {
        let id = r#"{"channel":"ChatChannel","room":"1"}"#;
        let sub = format!(r#"{{"command":"subscribe","identifier":{}}}"#, quote(id));
        assert_eq!(
            parse_command(sub.as_bytes()).unwrap(),
            Command::Subscribe {
                identifier: id.into()
            }
        );
        let msg = format!(
            r#"{{"command":"message","identifier":{},"data":"{{\"action\":\"speak\"}}"}}"#,
            quote(id)
        );
        assert_eq!(
            parse_command(msg.as_bytes()).unwrap(),
            Command::Message {
                identifier: Some(id.into()),
                data: Some(r#"{"action":"speak"}"#.into())
            }
        );
    }

    fn quote(s: &str) -> String {
        let mut out = Vec::new();
        json::write_str(&mut out, s);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn error_paths_are_values() {
        assert!(matches!(
            parse_command(b"{not json"),
            Err(CommandError::NotJson(_))
        ));
        assert_eq!(parse_command(b"null"), Err(CommandError::NotAnObject));
        assert_eq!(parse_command(b"[1]"), Err(CommandError::NotAnObject));
        assert_eq!(parse_command(b"\"x\""), Err(CommandError::NotAnObject));
        assert_eq!(
            parse_command(br#"{"type":"pong"}"#),
            Err(CommandError::Unrecognized)
        );
        assert_eq!(
            parse_command(br#"{"command":"frobnicate"}"#),
            Err(CommandError::Unrecognized)
        );
        assert_eq!(
            parse_command(br#"{"command":"subscribe","identifier":5}"#),
            Err(CommandError::IdentifierNotString)
        );
        assert_eq!(
            parse_command(br#"{"command":"unsubscribe","identifier":5}"#),
            Ok(Command::Unsubscribe { identifier: None })
        );
    }

    #[test]
    fn identifiers() {
        let r = parse_identifier(r#"{"room":"<1>","channel":"ChatChannel"}"#).unwrap();
        assert_eq!(r.channel, "ChatChannel");
        assert_eq!(r.params.get("room").and_then(Value::as_str), Some("<1>"));
        assert!(matches!(
            parse_identifier("nope"),
            Err(IdentifierError::NotJson(_))
        ));
        assert_eq!(parse_identifier("[1]"), Err(IdentifierError::NotAnObject));
        assert_eq!(
            parse_identifier(r#"{"room":1}"#),
            Err(IdentifierError::NoChannel)
        );
        assert_eq!(
            parse_identifier(r#"{"channel":5}"#),
            Err(IdentifierError::NoChannel)
        );
    }

    #[test]
    fn actions() {
        let a = parse_action(r#"{"text":"hi","action":"speak"}"#).unwrap();
        assert_eq!(a.action.as_deref(), Some("speak"));
        assert_eq!(parse_action(r#"{"text":"hi"}"#).unwrap().action, None);
        assert_eq!(parse_action(r#"{"action":""}"#).unwrap().action, None);
        assert_eq!(parse_action("[1]"), Err(IdentifierError::NotAnObject));
        // Ruby's `presence`: false, [] and {} are blank too; other non-strings raise.
        for blank in ["false", "null", "[]", "{}", "\" \u{3000}\""] {
            let data = format!(r#"{{"action":{blank}}}"#);
            assert_eq!(parse_action(&data).unwrap().action, None, "{data}");
        }
        for bad in ["true", "5", "0.0", "[\"speak\"]", r#"{"a":1}"#] {
            let data = format!(r#"{{"action":{bad}}}"#);
            assert_eq!(
                parse_action(&data),
                Err(IdentifierError::ActionNotString),
                "{data}"
            );
        }
    }
}
