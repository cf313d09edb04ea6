//! Picking Action Cable streams out of a domain event, for inputs that carry events that are
//! not Action Cable broadcasts (routed Redis channels, CloudEvents):
//!
//! - a [`StreamTemplate`] such as `sales_{payload.location_id}` names the stream: literal text
//!   with placeholders that are dotted paths into the event (`payload.location_id`,
//!   `data.items.0.id`); each must lead to a scalar that is not blank, as a channel's
//!   `{params.x}` must, or the event does not route;
//! - a [`WrapTemplate`] such as `{"type":"sale","sale":{payload}}` optionally turns the event
//!   into the broadcast payload: JSON text whose placeholders stand for whole JSON values.
//!
//! The first segment of a path names a root the input provides (`payload` for a Redis
//! message, any top-level attribute of a CloudEvent: `data`, `type`, `subject`, ...). Both
//! templates are checked once, when the configuration is loaded.

use ferrocable_protocol::INTERNAL_STREAM_PREFIX;
use ferrocable_protocol::json::{self, Value};

use crate::error::ConfigError;

/// A dotted path into an event: its root name and the keys (or array indices) below it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Path {
    root: String,
    keys: Vec<String>,
}

impl Path {
    fn parse(text: &str) -> Option<Path> {
        let mut segments = text.split('.');
        let root = segments.next()?.to_string();
        let keys: Vec<String> = segments.map(str::to_string).collect();
        let word = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        };
        (word(&root) && keys.iter().all(|k| word(k))).then_some(Path { root, keys })
    }

    fn resolve<'v>(&self, roots: &impl Fn(&str) -> Option<&'v Value>) -> Option<&'v Value> {
        let mut value = roots(&self.root)?;
        for key in &self.keys {
            value = match value {
                Value::Object(_) => value.get(key)?,
                Value::Array(items) => items.get(key.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        Some(value)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Value(Path),
}

/// Splits `text` at `{path}` placeholders. `Err` names the problem.
fn split(text: &str, roots: &[&str]) -> Result<Vec<Part>, String> {
    let mut parts = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            return Err(format!("{text:?}: '{{' is never closed"));
        };
        let inner = &rest[open + 1..open + close];
        let Some(path) = Path::parse(inner) else {
            return Err(format!(
                "{text:?}: {{{inner}}} is not a dotted path such as {{{}.id}}",
                roots.first().copied().unwrap_or("payload")
            ));
        };
        if !roots.is_empty() && !roots.contains(&path.root.as_str()) {
            return Err(format!(
                "{text:?}: {{{inner}}} must start with {}",
                roots.join(" or ")
            ));
        }
        if open > 0 {
            parts.push(Part::Literal(rest[..open].to_string()));
        }
        parts.push(Part::Value(path));
        rest = &rest[open + close + 1..];
    }
    if !rest.is_empty() {
        parts.push(Part::Literal(rest.to_string()));
    }
    Ok(parts)
}

/// A stream name with placeholders filled from an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamTemplate {
    parts: Vec<Part>,
}

impl StreamTemplate {
    /// Checks `text` (for the config key `key`); placeholders must start with one of `roots`
    /// (any root when empty).
    pub fn parse(text: &str, key: &str, roots: &[&str]) -> Result<StreamTemplate, ConfigError> {
        if text.contains('}') && text.matches('}').count() != text.matches('{').count() {
            return Err(ConfigError::new(
                key,
                format!("{text:?}: unbalanced braces"),
            ));
        }
        let parts = split(text, roots).map_err(|e| ConfigError::new(key, e))?;
        if parts.is_empty() {
            return Err(ConfigError::new(key, "empty stream name"));
        }
        if let Some(Part::Literal(first)) = parts.first()
            && first.starts_with(INTERNAL_STREAM_PREFIX)
        {
            return Err(ConfigError::new(
                key,
                format!(
                    "{text:?}: streams starting with {INTERNAL_STREAM_PREFIX:?} are reserved for remote disconnect"
                ),
            ));
        }
        Ok(StreamTemplate { parts })
    }

    /// The stream for an event whose roots `roots` looks up; `None` when a placeholder has no
    /// usable value (absent, not a scalar, blank) or the result would be a connection's
    /// remote-disconnect stream.
    pub fn render<'v>(&self, roots: &impl Fn(&str) -> Option<&'v Value>) -> Option<String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(s) => out.push_str(s),
                Part::Value(path) => {
                    let value = path.resolve(roots)?;
                    if matches!(value, Value::Bool(false)) {
                        return None;
                    }
                    let text = value.to_ruby_string()?;
                    if text.chars().all(char::is_whitespace) {
                        return None;
                    }
                    out.push_str(&text);
                }
            }
        }
        (!out.starts_with(INTERNAL_STREAM_PREFIX)).then_some(out)
    }
}

/// A broadcast payload built from an event: JSON with `{path}` placeholders as whole values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrapTemplate {
    parts: Vec<Part>,
}

impl WrapTemplate {
    /// Checks `text`: placeholders only where a JSON value may stand (never inside a string),
    /// and the result JSON whatever the values are.
    pub fn parse(text: &str, key: &str, roots: &[&str]) -> Result<WrapTemplate, ConfigError> {
        let err = |problem: String| ConfigError::new(key, problem);
        // Find the placeholders outside JSON strings; braces inside strings are literal.
        let mut parts = Vec::new();
        let (mut in_string, mut escaped, mut literal_start) = (false, false, 0);
        let bytes = text.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            if in_string {
                match (escaped, b) {
                    (true, _) => escaped = false,
                    (false, b'\\') => escaped = true,
                    (false, b'"') => in_string = false,
                    _ => {}
                }
            } else if b == b'"' {
                in_string = true;
            } else if b == b'{'
                && let Some(close) = text[i..].find('}')
                && let Some(path) = Path::parse(&text[i + 1..i + close])
            {
                if !roots.is_empty() && !roots.contains(&path.root.as_str()) {
                    return Err(err(format!(
                        "{text:?}: {{{}}} must start with {}",
                        &text[i + 1..i + close],
                        roots.join(" or ")
                    )));
                }
                if literal_start < i {
                    parts.push(Part::Literal(text[literal_start..i].to_string()));
                }
                parts.push(Part::Value(path));
                i += close + 1;
                literal_start = i;
                continue;
            }
            i += 1;
        }
        if literal_start < text.len() {
            parts.push(Part::Literal(text[literal_start..].to_string()));
        }
        let template = WrapTemplate { parts };
        let sample = template.render(&|_: &str| None);
        json::parse(&sample, ferrocable_protocol::MAX_JSON_DEPTH).map_err(|e| {
            err(format!(
                "{text:?} is not JSON once its placeholders are values ({e}); placeholders stand for whole values, e.g. {{\"sale\":{{payload}}}}"
            ))
        })?;
        Ok(template)
    }

    /// The payload: the template with each placeholder replaced by its value encoded as
    /// ActiveSupport would (`null` when the event has none).
    pub fn render<'v>(&self, roots: &impl Fn(&str) -> Option<&'v Value>) -> Vec<u8> {
        let mut out = Vec::new();
        for part in &self.parts {
            match part {
                Part::Literal(s) => out.extend_from_slice(s.as_bytes()),
                Part::Value(path) => match path.resolve(roots) {
                    Some(value) => json::write_value(&mut out, value),
                    None => out.extend_from_slice(b"null"),
                },
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(text: &str) -> Value {
        json::parse(text.as_bytes(), 100).unwrap()
    }

    #[test]
    fn streams_come_from_scalars_in_the_event() {
        let t = StreamTemplate::parse("sales_{payload.location_id}", "k", &["payload"]).unwrap();
        let route = |text: &str| {
            let payload = event(text);
            t.render(&|root: &str| (root == "payload").then_some(&payload))
        };
        assert_eq!(route(r#"{"location_id":12}"#).as_deref(), Some("sales_12"));
        assert_eq!(
            route(r#"{"location_id":"a b"}"#).as_deref(),
            Some("sales_a b")
        );
        assert_eq!(
            route(r#"{"location_id":1.5}"#).as_deref(),
            Some("sales_1.5")
        );
        assert_eq!(
            route(r#"{"location_id":true}"#).as_deref(),
            Some("sales_true")
        );
        for unroutable in [
            r#"{}"#,
            r#"{"location_id":null}"#,
            r#"{"location_id":false}"#,
            r#"{"location_id":"  "}"#,
            r#"{"location_id":[1]}"#,
            r#"{"location_id":{"a":1}}"#,
            "[1]",
            "7",
        ] {
            assert_eq!(route(unroutable), None, "{unroutable}");
        }
        let nested = StreamTemplate::parse("o_{data.items.1.id}", "k", &[]).unwrap();
        let e = event(r#"{"data":{"items":[{"id":1},{"id":2}]}}"#);
        assert_eq!(nested.render(&|r: &str| e.get(r)).as_deref(), Some("o_2"));
    }

    #[test]
    fn a_payload_cannot_reach_a_remote_disconnect_stream() {
        let t = StreamTemplate::parse("{payload.s}", "k", &["payload"]).unwrap();
        let payload = event(r#"{"s":"action_cable/Z2lk"}"#);
        assert_eq!(t.render(&|_: &str| Some(&payload)), None);
        assert!(StreamTemplate::parse("action_cable/{payload.x}", "k", &[]).is_err());
    }

    #[test]
    fn stream_templates_are_checked_at_load() {
        for bad in ["", "a_{", "a_}", "a_{}", "a_{payload.}", "a_{x y}"] {
            assert!(
                StreamTemplate::parse(bad, "k", &["payload"]).is_err(),
                "{bad:?}"
            );
        }
        let err =
            StreamTemplate::parse("a_{data.x}", "routes.x.streams[0]", &["payload"]).unwrap_err();
        assert_eq!(err.key, "routes.x.streams[0]");
        assert!(err.problem.contains("payload"), "{err}");
    }

    #[test]
    fn wraps_insert_whole_values() {
        let t = WrapTemplate::parse(
            r#"{"type":"sale {x}","sale":{payload},"where":{payload.location_id}}"#,
            "k",
            &["payload"],
        )
        .unwrap();
        let payload = event(r#"{"location_id":3,"html":"<b>"}"#);
        let out = t.render(&|r: &str| (r == "payload").then_some(&payload));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"type":"sale {x}","sale":{"location_id":3,"html":"\u003cb\u003e"},"where":3}"#
        );
        let missing = event("{}");
        assert_eq!(
            t.render(&|_: &str| Some(&missing)),
            br#"{"type":"sale {x}","sale":{},"where":null}"#
        );
        for bad in [
            r#"{"a":"{payload}""#,
            r#"{"a":{payload}"#,
            r#"{"a":{data}}"#,
        ] {
            assert!(
                WrapTemplate::parse(bad, "k", &["payload"]).is_err(),
                "{bad}"
            );
        }
    }
}
