//! One channel class: where its streams come from (templates, a verified signed name), the
//! rules that reject a subscription, an optional database predicate, and its actions.
//! Deciding is pure apart from the clock a signed name is checked against and the predicate's
//! query: identity + identifier params in, stream names or a rejection out.

use std::collections::HashMap;
use std::sync::Arc;

use ferrocable_protocol::json::Value;

use super::ChannelSection;
use super::payload::Payload;
use super::predicate::Predicate;
use super::signed::{SignedStream, SignedStreamsSettings};
use super::template::{Fill, Scope, Template};
use crate::auth::Identity;
use crate::database::Database;
use crate::error::ConfigError;

/// What a channel is compiled against: the declared identifiers, the GlobalID app name, the
/// app's database and the keys signed stream names are verified with.
#[derive(Debug, Clone, Copy)]
pub struct CompileContext<'a> {
    /// Declared identifier names, in order.
    pub identifiers: &'a [String],
    /// The GlobalID app name, if configured.
    pub global_id_app: Option<&'a str>,
    /// The app's database, if configured.
    pub database: Option<&'a Arc<Database>>,
    /// Keys for signed stream names (Turbo, CableReady, …).
    pub signed_streams: &'a SignedStreamsSettings,
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
    /// The identifier has no signed name (the key is absent or `null`).
    #[error("no signed stream name in param {0:?}")]
    NoSignedName(String),
    /// The signed-name key holds a number, an array or an object: Rails' verifier raises
    /// (`NoMethodError`), so Rails sends neither confirm nor reject.
    #[error("param {0:?} is not a string (Rails raises: no reply)")]
    SignedNameNotAString(String),
    /// The signed name does not verify (its `ferrocable_rails::Error` kind).
    #[error("signed stream name is invalid ({0})")]
    InvalidSignedName(&'static str),
    /// The name verifies but this channel refuses it (`refuse`, or not in `accept`).
    #[error("verified stream {0:?} is refused on this channel")]
    RefusedSignedName(String),
}

impl Rejection {
    /// Whether Rails answers this one with no frame at all (its channel code raised).
    pub fn is_silent(&self) -> bool {
        matches!(self, Rejection::SignedNameNotAString(_))
    }
}

/// One configured channel class.
#[derive(Debug)]
pub struct ChannelSpec {
    /// Class name as clients send it.
    pub name: String,
    signed_stream: Option<SignedStream>,
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
    /// Checks and compiles `[channels.<name>]` against the declared identifiers, the database
    /// and the signed-stream keys.
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
        let signed_stream = raw
            .signed_stream
            .as_ref()
            .map(|s| {
                SignedStream::compile(s, context.signed_streams, &format!("{base}.signed_stream"))
            })
            .transpose()?;
        let mut claims_used = Vec::new();
        let predicate = raw
            .authorize
            .as_ref()
            .map(|section| {
                Predicate::compile(
                    section,
                    &base,
                    context,
                    signed_stream.is_some(),
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
            signed_stream,
            streams,
            require_params: raw.require_params.clone(),
            params_match,
            claims_in,
            actions,
            predicate,
            claims_used,
        })
    }

    /// The channel's `authorize` predicate, if any: run it after [`ChannelSpec::check_rules`]
    /// and pass its row to [`ChannelSpec::streams`].
    pub fn predicate(&self) -> Option<&Arc<Predicate>> {
        self.predicate.as_ref()
    }

    /// The streams a subscription gets, or why it is rejected, for a channel without a
    /// predicate (with one, the session runs the three steps itself, awaiting the query).
    pub fn decide(&self, identity: &Identity, params: &Value) -> Result<Vec<String>, Rejection> {
        let verified = self.check_rules(identity, params)?;
        self.streams(
            &Fill {
                identity,
                params,
                row: None,
            },
            verified,
        )
    }

    /// The rules that need no database: the signed stream name, when the channel has one (its
    /// verified name is returned), required params, params that must equal an identifier,
    /// allowed claims.
    pub fn check_rules(
        &self,
        identity: &Identity,
        params: &Value,
    ) -> Result<Option<String>, Rejection> {
        let verified = self
            .signed_stream
            .as_ref()
            .map(|signed| signed.stream(params))
            .transpose()?;
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
        Ok(verified)
    }

    /// The stream names: the verified signed name first (from [`ChannelSpec::check_rules`]),
    /// then the templates filled from the identity, the params and the predicate's row.
    pub fn streams(
        &self,
        fill: &Fill<'_>,
        verified: Option<String>,
    ) -> Result<Vec<String>, Rejection> {
        let mut streams = Vec::with_capacity(self.streams.len() + 1);
        streams.extend(verified);
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

    /// Whether the channel's streams all come from a verified signed name (no templates, no
    /// predicate), and it has no action that broadcasts.
    pub fn streams_only_signed_names(&self) -> bool {
        self.streams.is_empty()
            && self.predicate.is_none()
            && !self
                .actions
                .values()
                .any(|a| matches!(a, Action::BroadcastTo { .. }))
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
