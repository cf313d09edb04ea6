//! One channel class: its stream templates, the rules that reject a subscription, and its
//! actions. Deciding is pure: identity + identifier params in, stream names or a rejection out.

use std::collections::HashMap;
use std::sync::Arc;

use ferrocable_protocol::json::Value;

use super::ChannelSection;
use super::payload::Payload;
use super::predicate::Predicate;
use super::template::{Fill, Scope, Template};
use crate::auth::Identity;
use crate::database::Database;
use crate::error::ConfigError;

/// What a channel is compiled against: the declared identifiers, the GlobalID app name and
/// the app's database.
#[derive(Debug, Clone, Copy, Default)]
pub struct CompileContext<'a> {
    /// Declared identifier names, in order.
    pub identifiers: &'a [String],
    /// The GlobalID app name, if configured.
    pub global_id_app: Option<&'a str>,
    /// The app's database, if configured.
    pub database: Option<&'a Arc<Database>>,
}

/// What a channel action does with the message data.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// `ActionCable.server.broadcast(stream, payload)`: the client's data, or a payload
    /// template stamped with the sender's identity.
    BroadcastTo {
        /// The stream.
        stream: Template,
        /// The payload template; `None`: the client's data as sent.
        payload: Option<Payload>,
    },
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
    /// The channel's `authorize` query returned no row (or a param cannot match any).
    #[error("authorize query returned no row")]
    NotAuthorized,
    /// The `authorize` query failed or timed out.
    #[error("authorize query failed: {0}")]
    Database(String),
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
    predicate: Option<Arc<Predicate>>,
    /// Claims its rules read (the registry keeps only those of each connection).
    pub(super) claims_used: Vec<String>,
}

impl ChannelSpec {
    /// Checks and compiles `[channels.<name>]` against the declared identifiers.
    pub fn compile(
        name: &str,
        raw: &ChannelSection,
        context: &CompileContext<'_>,
    ) -> Result<ChannelSpec, ConfigError> {
        let identifiers = context.identifiers;
        let base = format!("channels.{name}");
        if name.is_empty() {
            return Err(ConfigError::new(base, "channel name must not be empty"));
        }
        let mut claims_used = Vec::new();
        let predicate = raw
            .authorize
            .as_ref()
            .map(|section| {
                Predicate::compile(
                    section,
                    &base,
                    identifiers,
                    context.database,
                    &mut claims_used,
                )
                .map(Arc::new)
            })
            .transpose()?;
        let scope = Scope {
            identifiers,
            class_name: name,
            global_id_app: context.global_id_app,
            has_row: predicate.is_some(),
        };
        let mut streams = Vec::new();
        for (i, text) in raw.streams.iter().enumerate() {
            streams.push(Template::parse(
                text,
                &scope,
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
                (Some(t), false) => Action::BroadcastTo {
                    stream: Template::parse(
                        t,
                        &scope,
                        &format!("{key}.broadcast_to"),
                        &mut claims_used,
                    )?,
                    payload: section
                        .payload
                        .as_deref()
                        .map(|p| {
                            Payload::parse(p, &scope, &format!("{key}.payload"), &mut claims_used)
                        })
                        .transpose()?,
                },
                (None, true) if section.payload.is_none() => Action::Transmit,
                _ => {
                    return Err(ConfigError::new(
                        key,
                        "give exactly one of broadcast_to = \"<stream>\" or transmit = true (payload goes with broadcast_to)",
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
            predicate,
            claims_used,
        })
    }

    /// The channel's `authorize` predicate, if any: run it (after [`ChannelSpec::check_rules`])
    /// and pass its row to [`ChannelSpec::streams`].
    pub fn predicate(&self) -> Option<&Arc<Predicate>> {
        self.predicate.as_ref()
    }

    /// The streams a subscription gets, or why it is rejected, for a channel without a
    /// predicate (or with its row already in hand: [`ChannelSpec::streams`]).
    pub fn decide(&self, identity: &Identity, params: &Value) -> Result<Vec<String>, Rejection> {
        self.check_rules(identity, params)?;
        self.streams(&Fill {
            identity,
            params,
            row: None,
        })
    }

    /// The rules that need no database: required params, params that must equal an
    /// identifier, allowed claims.
    pub fn check_rules(&self, identity: &Identity, params: &Value) -> Result<(), Rejection> {
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
        Ok(())
    }

    /// The stream names, filled from the identity, the params and the predicate's row.
    pub fn streams(&self, fill: &Fill<'_>) -> Result<Vec<String>, Rejection> {
        let mut streams = Vec::with_capacity(self.streams.len());
        for (i, template) in self.streams.iter().enumerate() {
            let name = template
                .render(fill)
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
