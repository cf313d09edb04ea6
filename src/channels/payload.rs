//! Payload templates for relay actions (kind C): the JSON a channel action broadcasts, built
//! from the client's data and the connection's identity, as Campfire's
//! `broadcast_to @room, action: :start, user: current_user.slice(:id, :name)` builds
//! `{"action":"start","user":{"id":1,"name":"Ann"}}`.
//!
//! The template is JSON, keys in the order written. A string value that is exactly one
//! placeholder is replaced by that value **typed** (an integer column stays a number):
//! `"{claims.id}"`, `"{claims.name}"`, `"{params.room_id}"`, `"{row.id}"`, `"{data}"` (the
//! client's whole data object), `"{data.<key>}"`, or an identifier's name. Every other value
//! is written as it is. A placeholder with no value becomes `null`, as Ruby's `nil`.

use ferrocable_protocol::json::{self, Value};

use super::template::{Fill, Scope};
use crate::error::ConfigError;

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Literal(Value),
    Data,
    DataKey(String),
    Claim(String),
    Param(String),
    Row(String),
    Identifier(usize),
    Array(Vec<Node>),
    Object(Vec<(String, Node)>),
}

/// A compiled payload template.
#[derive(Debug, Clone, PartialEq)]
pub struct Payload(Node);

impl Payload {
    /// Parses `text` (JSON) and resolves its placeholders against `scope`.
    pub(super) fn parse(
        text: &str,
        scope: &Scope<'_>,
        key: &str,
        claims: &mut Vec<String>,
    ) -> Result<Payload, ConfigError> {
        let value = json::parse(text.as_bytes(), 32)
            .map_err(|e| ConfigError::new(key, format!("not JSON: {}", e.reason())))?;
        Ok(Payload(node(value, scope, key, claims)?))
    }

    /// The payload for one action call.
    pub fn render(&self, fill: &Fill<'_>, data: &Value) -> Value {
        render(&self.0, fill, data)
    }
}

fn node(
    value: Value,
    scope: &Scope<'_>,
    key: &str,
    claims: &mut Vec<String>,
) -> Result<Node, ConfigError> {
    Ok(match value {
        Value::String(s) if s.starts_with('{') && s.ends_with('}') && s.len() > 2 => {
            let name = &s[1..s.len() - 1];
            let err = |p: &str| ConfigError::new(key, format!("\"{s}\": {p}"));
            if name == "data" {
                Node::Data
            } else if let Some(k) = name.strip_prefix("data.") {
                Node::DataKey(k.to_string())
            } else if let Some(c) = name.strip_prefix("claims.") {
                if !claims.iter().any(|u| u == c) {
                    claims.push(c.to_string());
                }
                Node::Claim(c.to_string())
            } else if let Some(p) = name.strip_prefix("params.") {
                Node::Param(p.to_string())
            } else if let Some(c) = name.strip_prefix("row.") {
                if !scope.has_row {
                    return Err(err("{row.*} needs an [authorize] query on the channel"));
                }
                Node::Row(c.to_string())
            } else if let Some(i) = scope.identifiers.iter().position(|n| n == name) {
                Node::Identifier(i)
            } else {
                return Err(err(
                    "not data, data.<key>, claims.<name>, params.<name>, row.<column> or an identifier",
                ));
            }
        }
        Value::Array(items) => Node::Array(
            items
                .into_iter()
                .map(|v| node(v, scope, key, claims))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(pairs) => Node::Object(
            pairs
                .into_iter()
                .map(|(k, v)| Ok((k, node(v, scope, key, claims)?)))
                .collect::<Result<_, ConfigError>>()?,
        ),
        other => Node::Literal(other),
    })
}

fn render(node: &Node, fill: &Fill<'_>, data: &Value) -> Value {
    let or_null = |v: Option<&Value>| v.cloned().unwrap_or(Value::Null);
    match node {
        Node::Literal(v) => v.clone(),
        Node::Data => data.clone(),
        Node::DataKey(k) => or_null(data.get(k)),
        Node::Claim(c) => or_null(fill.identity.typed_claim(c)),
        Node::Param(p) => or_null(fill.params.get(p)),
        Node::Row(c) => or_null(fill.row.and_then(|r| r.get(c))),
        Node::Identifier(i) => fill
            .identity
            .values
            .get(*i)
            .and_then(|v| v.as_deref())
            .map_or(Value::Null, Value::from),
        Node::Array(items) => Value::Array(items.iter().map(|n| render(n, fill, data)).collect()),
        Node::Object(pairs) => Value::Object(
            pairs
                .iter()
                .map(|(k, n)| (k.clone(), render(n, fill, data)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Identity, KeptClaim};

    #[test]
    fn placeholders_keep_their_types_and_keys_their_order() {
        let identifiers = vec!["current_user".to_string()];
        let scope = Scope {
            identifiers: &identifiers,
            class_name: "TypingNotificationsChannel",
            global_id_app: Some("chat"),
            has_row: true,
        };
        let mut claims = Vec::new();
        let payload = Payload::parse(
            r#"{"action":"start","user":{"id":"{claims.id}","name":"{claims.name}"},"room":"{row.id}","text":"{data.text}","who":"{current_user}","n":[1,"{params.n}"],"literal":"{not}x"}"#,
            &scope,
            "k",
            &mut claims,
        )
        .unwrap();
        assert_eq!(claims, ["id", "name"]);
        let claim = |name: &str, typed: Value| KeptClaim {
            name: name.into(),
            value: typed.to_ruby_string().map(String::into_boxed_str),
            typed: Some(typed),
        };
        let identity = Identity {
            values: vec![Some("1".into())].into_boxed_slice(),
            claims: vec![
                claim("id", Value::from(1)),
                claim("name", Value::from("Ann <a>")),
            ]
            .into_boxed_slice(),
            connection_identifier: "".into(),
        };
        let params = json::parse(br#"{"n":2.5}"#, 10).unwrap();
        let row = json::parse(br#"{"id":7}"#, 10).unwrap();
        let data = json::parse(br#"{"action":"start","text":"hi"}"#, 10).unwrap();
        let fill = Fill {
            identity: &identity,
            params: &params,
            row: Some(&row),
        };
        let mut out = Vec::new();
        json::write_value(&mut out, &payload.render(&fill, &data));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"action":"start","user":{"id":1,"name":"Ann \u003ca\u003e"},"room":7,"text":"hi","who":"1","n":[1,2.5],"literal":"{not}x"}"#
        );
    }

    #[test]
    fn unknown_placeholders_and_rows_without_a_query_are_config_errors() {
        let scope = Scope {
            identifiers: &[],
            class_name: "C",
            global_id_app: None,
            has_row: false,
        };
        for bad in [r#"{"a":"{nope}"}"#, r#"{"a":"{row.id}"}"#, "not json"] {
            assert_eq!(
                Payload::parse(bad, &scope, "k", &mut Vec::new())
                    .unwrap_err()
                    .key,
                "k",
                "{bad}"
            );
        }
    }
}
