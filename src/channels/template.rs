//! Stream name templates: `order_channel_{restaurant_id}`, `chat_{params.room}`,
//! `role_{claims.role}`, compiled once and filled per subscription.

use ferrocable_protocol::INTERNAL_STREAM_PREFIX;
use ferrocable_protocol::json::Value;

use crate::auth::Identity;
use crate::error::ConfigError;

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Literal(String),
    Identifier(usize),
    Param(String),
    Claim(String),
}

/// A stream name with placeholders.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    parts: Vec<Part>,
}

impl Template {
    pub(super) fn parse(
        text: &str,
        identifiers: &[String],
        key: &str,
        claims: &mut Vec<String>,
    ) -> Result<Template, ConfigError> {
        let err = |problem: String| ConfigError::new(key, problem);
        let mut parts = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            match rest.find(['{', '}']) {
                None => {
                    parts.push(Part::Literal(rest.to_string()));
                    break;
                }
                Some(i) if rest.as_bytes()[i] == b'}' => {
                    return Err(err(format!("{text:?}: '}}' without '{{'")));
                }
                Some(i) => {
                    if i > 0 {
                        parts.push(Part::Literal(rest[..i].to_string()));
                    }
                    let close = rest[i..]
                        .find('}')
                        .ok_or_else(|| err(format!("{text:?}: '{{' is never closed")))?;
                    let name = &rest[i + 1..i + close];
                    parts.push(if let Some(param) = name.strip_prefix("params.") {
                        if param.is_empty() {
                            return Err(err(format!("{text:?}: empty {{params.}}")));
                        }
                        Part::Param(param.to_string())
                    } else if let Some(claim) = name.strip_prefix("claims.") {
                        if claim.is_empty() {
                            return Err(err(format!("{text:?}: empty {{claims.}}")));
                        }
                        if !claims.iter().any(|c| c == claim) {
                            claims.push(claim.to_string());
                        }
                        Part::Claim(claim.to_string())
                    } else {
                        let index = identifiers.iter().position(|n| n == name).ok_or_else(|| {
                            err(format!(
                                "{text:?}: {{{name}}} is not a declared identifier (declared: {}); \
                                 use {{params.{name}}} for a subscription param",
                                if identifiers.is_empty() {
                                    "none".to_string()
                                } else {
                                    identifiers.join(", ")
                                }
                            ))
                        })?;
                        Part::Identifier(index)
                    });
                    rest = &rest[i + close + 1..];
                }
            }
        }
        if parts.is_empty() {
            return Err(err("empty stream name".into()));
        }
        if let Some(Part::Literal(first)) = parts.first()
            && first.starts_with(INTERNAL_STREAM_PREFIX)
        {
            return Err(err(format!(
                "{text:?}: streams starting with {INTERNAL_STREAM_PREFIX:?} are reserved for remote disconnect"
            )));
        }
        Ok(Template { parts })
    }

    /// Fills the placeholders; `None` when one has no usable value: absent, not a scalar,
    /// or blank in Ruby's sense (`nil`, `false`, `""`, only whitespace), which is how Rails
    /// channels decide to `reject` (`present?`).
    pub fn render(&self, identity: &Identity, params: &Value) -> Option<String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(s) => out.push_str(s),
                Part::Identifier(i) => out.push_str(present(identity.values.get(*i)?.as_deref()?)?),
                Part::Param(p) => {
                    let value = params.get(p)?;
                    if matches!(value, Value::Bool(false)) {
                        return None;
                    }
                    out.push_str(present(&value.to_ruby_string()?)?)
                }
                Part::Claim(c) => out.push_str(present(identity.claim(c)?)?),
            }
        }
        if out.starts_with(INTERNAL_STREAM_PREFIX) {
            // A param must not smuggle a subscription to someone's remote-disconnect channel.
            return None;
        }
        Some(out)
    }
}

/// `Some(text)` unless Ruby's `blank?` would say true (empty or whitespace only).
fn present(text: &str) -> Option<&str> {
    (!text.chars().all(char::is_whitespace)).then_some(text)
}
