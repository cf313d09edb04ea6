//! Declarative channels: the only place that knows which streams a subscription gets.
//!
//! A channel is a class name from the config with stream templates ([`template`]) and/or a
//! signed stream name it verifies ([`signed`]: Turbo, CableReady), rules that reject the
//! subscription, optionally a database predicate that must return a row ([`predicate`]), and
//! optional actions ([`spec`]) whose broadcasts may be stamped with the sender's identity
//! ([`payload`]); the [`ChannelRegistry`] indexes them by name and adds the built-in
//! `Turbo::StreamsChannel`. A new kind of channel is a module here, compiled from its section
//! by [`ChannelRegistry::compile`].

pub mod payload;
pub mod predicate;
pub mod signed;
pub mod spec;
pub mod template;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use payload::Payload;
pub use predicate::{AuthorizeSection, Predicate};
pub use signed::{
    SignedStreamSection, SignedStreamsSection, SignedStreamsSettings, TURBO_STREAMS_CHANNEL,
    TurboSection,
};
pub use spec::{Action, ChannelSpec, CompileContext, Rejection};
pub use template::{Fill, Template};

use crate::error::ConfigError;

/// `[channels.<Name>]`
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ChannelSection {
    /// Stream templates.
    pub streams: Vec<String>,
    /// Params that must be present.
    pub require_params: Vec<String>,
    /// param name -> identifier name that it must equal.
    pub params_match: BTreeMap<String, String>,
    /// claim name -> allowed values.
    pub claims_in: BTreeMap<String, Vec<String>>,
    /// Actions, by name.
    pub actions: BTreeMap<String, ActionSection>,
    /// Subscribe only if this query returns a row (kind B).
    pub authorize: Option<AuthorizeSection>,
    /// Stream from a verified signed name (Turbo, CableReady, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signed_stream: Option<SignedStreamSection>,
}

/// `[channels.<Name>.actions.<action>]`
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ActionSection {
    /// Stream template to broadcast the data to.
    pub broadcast_to: Option<String>,
    /// Send the data back to the caller.
    pub transmit: bool,
    /// JSON payload template for `broadcast_to` (placeholders: see `channels::payload`).
    pub payload: Option<String>,
}

/// Rails' own channel base class (see `RailsCompat::base_class_is_channel`).
const BASE_CHANNEL: &str = "ActionCable::Channel::Base";

/// All configured channels.
#[derive(Debug, Default)]
pub struct ChannelRegistry {
    by_name: HashMap<String, Arc<ChannelSpec>>,
    wanted_claims: Arc<[String]>,
}

impl ChannelRegistry {
    /// Compiles every `[channels.<Name>]` against the declared identifier names, the database
    /// and the signed-stream keys. Two channels are built in unless the config declares them
    /// (an explicit entry wins): `Turbo::StreamsChannel` (`[turbo]`), and, with
    /// `base_class_is_channel` (Rails 6.1), `ActionCable::Channel::Base` itself, which 6.1
    /// finds in every app.
    pub fn compile(
        sections: &BTreeMap<String, ChannelSection>,
        context: &CompileContext<'_>,
        base_class_is_channel: bool,
        warnings: &mut Vec<String>,
    ) -> Result<ChannelRegistry, ConfigError> {
        let mut specs = sections
            .iter()
            .map(|(name, section)| ChannelSpec::compile(name, section, context))
            .collect::<Result<Vec<_>, _>>()?;
        let mut builtin = |name: &str, section: ChannelSection| -> Result<(), ConfigError> {
            if !sections.contains_key(name) {
                specs.push(ChannelSpec::compile(name, &section, context)?);
            }
            Ok(())
        };
        if base_class_is_channel {
            builtin(BASE_CHANNEL, ChannelSection::default())?;
        }
        // A declared Turbo::StreamsChannel needs no built-in one, nor a warning about it.
        if !sections.contains_key(TURBO_STREAMS_CHANNEL)
            && let Some(turbo) = context.signed_streams.builtin_turbo(warnings)?
        {
            builtin(
                TURBO_STREAMS_CHANNEL,
                ChannelSection {
                    signed_stream: Some(turbo),
                    ..ChannelSection::default()
                },
            )?;
        }
        Ok(ChannelRegistry::new(specs))
    }

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
            wanted_claims: wanted_claims.into(),
        }
    }

    /// The channel for a class name.
    pub fn get(&self, name: &str) -> Option<&Arc<ChannelSpec>> {
        self.by_name.get(name)
    }

    /// Claims any rule refers to: the only ones a connection keeps.
    pub fn wanted_claims(&self) -> &Arc<[String]> {
        &self.wanted_claims
    }

    /// Whether every channel streams only verified signed names (or nothing at all): then
    /// the app's signatures authorize every stream and no connection identity is needed.
    pub fn streams_only_signed_names(&self) -> bool {
        !self.is_empty()
            && self
                .by_name
                .values()
                .all(|spec| spec.streams_only_signed_names())
    }

    /// Whether any channel asks the database (an `authorize` predicate).
    pub fn uses_database(&self) -> bool {
        self.by_name.values().any(|c| c.predicate().is_some())
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
    use crate::auth::Identity;
    use ferrocable_protocol::json::{self, Value};
    use std::collections::BTreeMap;

    fn identity(restaurant: &str, role: &str) -> Identity {
        Identity {
            values: vec![Some("42".into()), Some(restaurant.into())].into_boxed_slice(),
            claims: vec![crate::auth::KeptClaim {
                name: "role".into(),
                value: Some(role.into()),
                typed: Some(Value::from(role)),
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

    /// No SECRET_KEY_BASE: no signed-stream keys.
    fn no_keys() -> &'static SignedStreamsSettings {
        static NO_KEYS: std::sync::OnceLock<SignedStreamsSettings> = std::sync::OnceLock::new();
        NO_KEYS.get_or_init(|| {
            SignedStreamsSettings::compile(
                &SignedStreamsSection::default(),
                &TurboSection::default(),
                ferrocable_rails::RailsVersion::V7_2,
            )
            .unwrap()
        })
    }

    fn context(identifiers: &[String]) -> CompileContext<'_> {
        CompileContext {
            identifiers,
            global_id_app: Some("my-app"),
            database: None,
            signed_streams: no_keys(),
        }
    }

    fn spec(section: ChannelSection) -> ChannelSpec {
        ChannelSpec::compile("TestChannel", &section, &context(&idents())).unwrap()
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
                &context(&idents()),
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
                    payload: None,
                },
            )]),
            ..Default::default()
        };
        assert_eq!(
            ChannelSpec::compile("C", &both, &context(&idents()))
                .unwrap_err()
                .key,
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
        assert_eq!(
            &**r.wanted_claims(),
            ["team".to_string(), "role".to_string()]
        );
    }
}
