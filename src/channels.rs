//! Declarative channels: the only place that knows which streams a subscription gets.
//!
//! A channel is a class name from the config with stream templates
//! (`order_channel_{restaurant_id}`, `chat_{params.room}`), rules that reject the subscription,
//! and optional actions. Deciding is pure: identity + identifier params in, stream names or a
//! rejection out.

use std::collections::HashMap;
use std::sync::Arc;

use crate::auth::Identity;
use crate::config::{ChannelSection, ConfigError};
use ferrocable_protocol::json::Value;

/// Prefix of the per-connection internal streams (remote disconnect); user streams may not
/// use it.
pub const INTERNAL_STREAM_PREFIX: &str = "action_cable/";

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
    fn parse(
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

/// Ruby's `blank?` for a JSON value.
fn is_blank(value: &Value) -> bool {
    match value {
        Value::Null | Value::Bool(false) => true,
        Value::String(s) => s.chars().all(char::is_whitespace),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// What a channel action does with the message data.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// `ActionCable.server.broadcast(stream, data)`.
    BroadcastTo(Template),
    /// `transmit(data)` back to the caller.
    Transmit,
}

/// Why a subscription was rejected (for logs; the client only sees reject_subscription).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// A required param is absent.
    #[error("param {0:?} is missing")]
    MissingParam(String),
    /// A param differs from the identifier it must equal.
    #[error("param {param:?} does not match identifier {identifier:?}")]
    ParamMismatch {
        /// Param name.
        param: String,
        /// Identifier name.
        identifier: String,
    },
    /// A claim is not in its allowed list.
    #[error("claim {0:?} is not allowed")]
    ClaimNotAllowed(String),
    /// A stream template could not be filled.
    #[error("stream template {0} has no value for a placeholder")]
    UnfilledTemplate(usize),
}

/// One configured channel class.
#[derive(Debug)]
pub struct ChannelSpec {
    /// Class name as clients send it.
    pub name: String,
    streams: Vec<Template>,
    require_params: Vec<String>,
    params_match: Vec<(String, usize, String)>,
    claims_in: Vec<(String, Vec<String>)>,
    actions: HashMap<String, Action>,
    claims_used: Vec<String>,
}

impl ChannelSpec {
    /// Checks and compiles `[channels.<name>]` against the declared identifiers.
    pub fn compile(
        name: &str,
        raw: &ChannelSection,
        identifiers: &[String],
    ) -> Result<ChannelSpec, ConfigError> {
        let base = format!("channels.{name}");
        if name.is_empty() {
            return Err(ConfigError::new(base, "channel name must not be empty"));
        }
        let mut claims_used = Vec::new();
        let mut streams = Vec::new();
        for (i, text) in raw.streams.iter().enumerate() {
            streams.push(Template::parse(
                text,
                identifiers,
                &format!("{base}.streams[{i}]"),
                &mut claims_used,
            )?);
        }
        let mut params_match = Vec::new();
        for (param, ident) in &raw.params_match {
            let index = identifiers.iter().position(|n| n == ident).ok_or_else(|| {
                ConfigError::new(
                    format!("{base}.params_match.{param}"),
                    format!("{ident:?} is not a declared identifier"),
                )
            })?;
            params_match.push((param.clone(), index, ident.clone()));
        }
        let mut claims_in = Vec::new();
        for (claim, allowed) in &raw.claims_in {
            if allowed.is_empty() {
                return Err(ConfigError::new(
                    format!("{base}.claims_in.{claim}"),
                    "an empty list would reject everyone",
                ));
            }
            if !claims_used.contains(claim) {
                claims_used.push(claim.clone());
            }
            claims_in.push((claim.clone(), allowed.clone()));
        }
        let mut actions = HashMap::new();
        for (action, section) in &raw.actions {
            let key = format!("{base}.actions.{action}");
            let compiled = match (&section.broadcast_to, section.transmit) {
                (Some(t), false) => Action::BroadcastTo(Template::parse(
                    t,
                    identifiers,
                    &format!("{key}.broadcast_to"),
                    &mut claims_used,
                )?),
                (None, true) => Action::Transmit,
                _ => {
                    return Err(ConfigError::new(
                        key,
                        "give exactly one of broadcast_to = \"<stream>\" or transmit = true",
                    ));
                }
            };
            actions.insert(action.clone(), compiled);
        }
        Ok(ChannelSpec {
            name: name.to_string(),
            streams,
            require_params: raw.require_params.clone(),
            params_match,
            claims_in,
            actions,
            claims_used,
        })
    }

    /// The streams a subscription gets, or why it is rejected.
    pub fn decide(&self, identity: &Identity, params: &Value) -> Result<Vec<String>, Rejection> {
        for p in &self.require_params {
            if params.get(p).is_none_or(is_blank) {
                return Err(Rejection::MissingParam(p.clone()));
            }
        }
        for (param, index, ident) in &self.params_match {
            let param_value = params.get(param).and_then(Value::to_ruby_string);
            let ident_value = identity.values.get(*index).and_then(|v| v.as_deref());
            if param_value.is_none() || param_value.as_deref() != ident_value {
                return Err(Rejection::ParamMismatch {
                    param: param.clone(),
                    identifier: ident.clone(),
                });
            }
        }
        for (claim, allowed) in &self.claims_in {
            match identity.claim(claim) {
                Some(v) if allowed.iter().any(|a| a == v) => {}
                _ => return Err(Rejection::ClaimNotAllowed(claim.clone())),
            }
        }
        let mut streams = Vec::with_capacity(self.streams.len());
        for (i, template) in self.streams.iter().enumerate() {
            let name = template
                .render(identity, params)
                .ok_or(Rejection::UnfilledTemplate(i))?;
            // Rails' stream_from twice with one name is one stream.
            if !streams.contains(&name) {
                streams.push(name);
            }
        }
        Ok(streams)
    }

    /// The action by name, if declared.
    pub fn action(&self, name: &str) -> Option<&Action> {
        self.actions.get(name)
    }

    /// Whether any action is declared.
    pub fn has_actions(&self) -> bool {
        !self.actions.is_empty()
    }
}

/// All configured channels.
#[derive(Debug, Default)]
pub struct ChannelRegistry {
    by_name: HashMap<String, Arc<ChannelSpec>>,
    wanted_claims: Vec<String>,
}

impl ChannelRegistry {
    /// Indexes the compiled channels.
    pub fn new(specs: Vec<ChannelSpec>) -> ChannelRegistry {
        let mut wanted_claims: Vec<String> = Vec::new();
        let mut by_name = HashMap::new();
        for spec in specs {
            for c in &spec.claims_used {
                if !wanted_claims.contains(c) {
                    wanted_claims.push(c.clone());
                }
            }
            by_name.insert(spec.name.clone(), Arc::new(spec));
        }
        ChannelRegistry {
            by_name,
            wanted_claims,
        }
    }

    /// The channel for a class name.
    pub fn get(&self, name: &str) -> Option<&Arc<ChannelSpec>> {
        self.by_name.get(name)
    }

    /// Claims any rule refers to: the only ones a connection keeps.
    pub fn wanted_claims(&self) -> &[String] {
        &self.wanted_claims
    }

    /// Number of channels.
    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    /// Whether no channel is configured.
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ActionSection;
    use ferrocable_protocol::json;
    use std::collections::BTreeMap;

    fn identity(restaurant: &str, role: &str) -> Identity {
        Identity {
            values: vec![Some("42".into()), Some(restaurant.into())].into_boxed_slice(),
            claims: vec![crate::auth::KeptClaim {
                name: "role".into(),
                value: Some(role.into()),
            }]
            .into_boxed_slice(),
            connection_identifier: "".into(),
        }
    }

    fn idents() -> Vec<String> {
        vec!["current_user".into(), "restaurant_id".into()]
    }

    fn params(text: &str) -> Value {
        json::parse(text.as_bytes(), 100).unwrap()
    }

    fn spec(section: ChannelSection) -> ChannelSpec {
        ChannelSpec::compile("TestChannel", &section, &idents()).unwrap()
    }

    #[test]
    fn hafaloha_channels_ignore_params() {
        let s = spec(ChannelSection {
            streams: vec!["order_channel_{restaurant_id}".into()],
            ..Default::default()
        });
        let streams = s
            .decide(
                &identity("1", "staff"),
                &params(r#"{"channel":"OrderChannel","restaurant_id":"999"}"#),
            )
            .unwrap();
        assert_eq!(streams, vec!["order_channel_1"]);
    }

    #[test]
    fn params_and_claims_fill_templates() {
        let s = spec(ChannelSection {
            streams: vec![
                "chat_{params.room}".into(),
                "role_{claims.role}_{restaurant_id}".into(),
            ],
            ..Default::default()
        });
        assert_eq!(
            s.decide(&identity("1", "admin"), &params(r#"{"room":7}"#))
                .unwrap(),
            vec!["chat_7", "role_admin_1"]
        );
        assert_eq!(
            s.decide(&identity("1", "admin"), &params(r#"{"room":[7]}"#)),
            Err(Rejection::UnfilledTemplate(0))
        );
        assert_eq!(
            s.decide(&identity("1", "admin"), &params(r#"{}"#)),
            Err(Rejection::UnfilledTemplate(0))
        );
        for blank in [
            r#"{"room":""}"#,
            r#"{"room":"  "}"#,
            r#"{"room":false}"#,
            r#"{"room":null}"#,
        ] {
            assert_eq!(
                s.decide(&identity("1", "admin"), &params(blank)),
                Err(Rejection::UnfilledTemplate(0)),
                "{blank}"
            );
        }
        assert_eq!(
            s.decide(&identity("", "admin"), &params(r#"{"room":1}"#)),
            Err(Rejection::UnfilledTemplate(1)),
            "a blank identifier is no value"
        );
        assert_eq!(
            s.decide(
                &identity("1", "admin"),
                &params(r#"{"room":"action_cable/1:x"}"#)
            )
            .unwrap()[0],
            "chat_action_cable/1:x"
        );
    }

    #[test]
    fn a_param_cannot_name_an_internal_stream() {
        let s = spec(ChannelSection {
            streams: vec!["{params.room}".into()],
            ..Default::default()
        });
        assert_eq!(
            s.decide(
                &identity("1", "admin"),
                &params(r#"{"room":"action_cable/1:Z2lk"}"#)
            ),
            Err(Rejection::UnfilledTemplate(0))
        );
    }

    #[test]
    fn rules_reject() {
        let s = spec(ChannelSection {
            streams: vec!["s".into()],
            require_params: vec!["room".into()],
            params_match: BTreeMap::from([("restaurant_id".into(), "restaurant_id".into())]),
            claims_in: BTreeMap::from([("role".into(), vec!["admin".into()])]),
            ..Default::default()
        });
        let ok = params(r#"{"room":"a","restaurant_id":1}"#);
        assert!(s.decide(&identity("1", "admin"), &ok).is_ok());
        assert_eq!(
            s.decide(&identity("1", "admin"), &params(r#"{"restaurant_id":1}"#)),
            Err(Rejection::MissingParam("room".into()))
        );
        assert!(matches!(
            s.decide(&identity("2", "admin"), &ok),
            Err(Rejection::ParamMismatch { .. })
        ));
        assert_eq!(
            s.decide(&identity("1", "staff"), &ok),
            Err(Rejection::ClaimNotAllowed("role".into()))
        );
    }

    #[test]
    fn template_errors_name_the_key() {
        for (t, needle) in [
            ("chat_{room}", "not a declared identifier"),
            ("chat_{params.room", "never closed"),
            ("chat_}", "without"),
            ("action_cable/x", "reserved"),
            ("{params.}", "empty"),
        ] {
            let err = ChannelSpec::compile(
                "C",
                &ChannelSection {
                    streams: vec![t.into()],
                    ..Default::default()
                },
                &idents(),
            )
            .unwrap_err();
            assert_eq!(err.key, "channels.C.streams[0]");
            assert!(err.problem.contains(needle), "{t}: {err}");
        }
    }

    #[test]
    fn actions_need_exactly_one_effect() {
        let both = ChannelSection {
            actions: BTreeMap::from([(
                "x".into(),
                ActionSection {
                    broadcast_to: Some("s".into()),
                    transmit: true,
                },
            )]),
            ..Default::default()
        };
        assert_eq!(
            ChannelSpec::compile("C", &both, &idents()).unwrap_err().key,
            "channels.C.actions.x"
        );
    }

    #[test]
    fn registry_collects_wanted_claims() {
        let s = spec(ChannelSection {
            streams: vec!["a_{claims.team}".into()],
            claims_in: BTreeMap::from([("role".into(), vec!["admin".into()])]),
            ..Default::default()
        });
        let r = ChannelRegistry::new(vec![s]);
        assert_eq!(r.wanted_claims(), ["team".to_string(), "role".to_string()]);
    }
}
