//! Channels that stream from a name the app signed: Turbo's `signed_stream_name`,
//! CableReady's `identifier`, and any library of the same shape (`[channels.<Name>.signed_stream]`).
//!
//! The app renders a signed name into the page (`turbo_stream_from @room, :messages`); the
//! client subscribes with it in its identifier; the channel verifies it with the app's own
//! `ActiveSupport::MessageVerifier` key and streams from the name it stands for. The
//! signature *is* the authorization, so no identity is needed. A custom channel
//! (`turbo_stream_from @room, :messages, channel: RoomMessagesChannel`) verifies the same way
//! and then applies its rules; `refuse` keeps chosen verified names off a channel (Campfire
//! refuses `…:messages` on the stock `Turbo::StreamsChannel`, so only its checked channel
//! can stream them) and `accept` keeps a channel to the names it exists for (Campfire's
//! `RoomMessagesChannel` streams only `<room>:messages`).
//!
//! The keys (salt, explicit key, digests) are compiled once ([`SignedStreamsSettings`]); the
//! per-subscription work is one or two HMACs over a name of at most 16 KiB.

use std::sync::Arc;
use std::time::SystemTime;

use ferrocable_protocol::INTERNAL_STREAM_PREFIX;
use ferrocable_protocol::json::Value;
use ferrocable_rails::{
    Base64Decoding, CABLE_READY_SALT, DigestPolicy, HmacDigest, KeyDigest, KeyGenerator,
    RailsVersion, SecretKeyBase, SignedStreamVerifier, TURBO_SALT,
};
use regex::Regex;
use serde::{Deserialize, Serialize};

use super::spec::Rejection;
use crate::error::ConfigError;

/// `[signed_streams]`: what every signed-stream verifier shares.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SignedStreamsSection {
    /// The app's `secret_key_base` (`SECRET_KEY_BASE` fills it); keys are derived from it.
    pub secret_key_base: String,
    /// PBKDF2 digests tried: `both` (the one `load_defaults` implies first), `SHA256`, `SHA1`.
    pub key_digest: String,
    /// `lenient` (standard or URL-safe alphabet, as Rails 8.0.2+) or `strict` (standard only).
    pub base64: String,
}

impl Default for SignedStreamsSection {
    fn default() -> Self {
        SignedStreamsSection {
            secret_key_base: String::new(),
            key_digest: "both".into(),
            base64: "lenient".into(),
        }
    }
}

/// `[turbo]`: the built-in `Turbo::StreamsChannel`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TurboSection {
    /// `true`: required (a missing key is an error); `false`: off; absent: on when a key is
    /// available, else off with a warning.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub streams_channel: Option<bool>,
    /// `config.turbo.signed_stream_verifier_key`, when the app sets one: its bytes are the key.
    pub signed_stream_verifier_key: String,
    /// Verified names `Turbo::StreamsChannel` rejects (exact, or `/regex/`).
    pub refuse: Vec<String>,
}

/// `[channels.<Name>.signed_stream]`: the channel streams from a verified signed name.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SignedStreamSection {
    /// `turbo` or `cable_ready` (that library's salt, param and key); empty: give `salt` or
    /// `key`, and `param`.
    pub verifier: String,
    /// Identifier key carrying the signed name.
    pub param: String,
    /// Key-generator salt (a 64-byte key derived from `secret_key_base`).
    pub salt: String,
    /// An explicit key (its bytes), instead of a derived one.
    pub key: String,
    /// HMAC digest of the `MessageVerifier` (default `SHA256`).
    pub digest: String,
    /// Verified names this channel rejects (exact, or `/regex/`).
    pub refuse: Vec<String>,
    /// When given, the only verified names this channel streams (exact, or `/regex/`); any
    /// other is rejected.
    pub accept: Vec<String>,
    /// Reject a verified name that is blank (Ruby's `present?` is false): CableReady does,
    /// Turbo streams even `""`. Absent: what the verifier's library does (false for custom).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reject_blank_names: Option<bool>,
}

/// One library's defaults.
struct Preset {
    salt: &'static str,
    param: &'static str,
    reject_blank_names: bool,
}

/// `Turbo::StreamsChannel#subscribed`: `if stream_name = verified_stream_name(...)`.
const TURBO: Preset = Preset {
    salt: TURBO_SALT,
    param: "signed_stream_name",
    reject_blank_names: false,
};
/// `CableReady::Stream#subscribed`: `if stream_name.present?`.
const CABLE_READY: Preset = Preset {
    salt: CABLE_READY_SALT,
    param: "identifier",
    reject_blank_names: true,
};

/// The stock Turbo channel's class name.
pub const TURBO_STREAMS_CHANNEL: &str = "Turbo::StreamsChannel";

/// `[signed_streams]` and `[turbo]`, checked: the key material every signed-stream channel
/// is compiled with. `Debug` shows no key.
pub struct SignedStreamsSettings {
    generator: Option<KeyGenerator>,
    key_digests: DigestPolicy,
    base64: Base64Decoding,
    turbo_key: Option<Arc<[u8]>>,
    turbo_streams_channel: Option<bool>,
    turbo_refuse: Vec<String>,
}

impl std::fmt::Debug for SignedStreamsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedStreamsSettings")
            .field("generator", &self.generator)
            .field("key_digests", &self.key_digests)
            .field("base64", &self.base64)
            .field("turbo_key", &self.turbo_key.as_ref().map(|_| "<redacted>"))
            .field("turbo_streams_channel", &self.turbo_streams_channel)
            .field("turbo_refuse", &self.turbo_refuse)
            .finish()
    }
}

impl SignedStreamsSettings {
    /// Checks both sections; `load_defaults` orders the key digests tried.
    pub fn compile(
        shared: &SignedStreamsSection,
        turbo: &TurboSection,
        load_defaults: RailsVersion,
    ) -> Result<SignedStreamsSettings, ConfigError> {
        let key_digests = match shared.key_digest.to_ascii_uppercase().as_str() {
            "BOTH" => DigestPolicy::for_load_defaults(load_defaults),
            "SHA256" => DigestPolicy::Pinned(KeyDigest::Sha256),
            "SHA1" => DigestPolicy::Pinned(KeyDigest::Sha1),
            _ => {
                return Err(ConfigError::new(
                    "signed_streams.key_digest",
                    format!(
                        "{:?}: use \"both\", \"SHA256\" or \"SHA1\"",
                        shared.key_digest
                    ),
                ));
            }
        };
        let base64 = match shared.base64.as_str() {
            "lenient" => Base64Decoding::UrlSafe,
            "strict" => Base64Decoding::Strict,
            other => {
                return Err(ConfigError::new(
                    "signed_streams.base64",
                    format!("{other:?}: use \"lenient\" or \"strict\""),
                ));
            }
        };
        Ok(SignedStreamsSettings {
            generator: (!shared.secret_key_base.is_empty())
                .then(|| KeyGenerator::new(SecretKeyBase::new(shared.secret_key_base.as_str()))),
            key_digests,
            base64,
            turbo_key: (!turbo.signed_stream_verifier_key.is_empty())
                .then(|| Arc::from(turbo.signed_stream_verifier_key.as_bytes())),
            turbo_streams_channel: turbo.streams_channel,
            turbo_refuse: turbo.refuse.clone(),
        })
    }

    /// The built-in `Turbo::StreamsChannel`'s section, if it is on. A warning when it is
    /// off only for want of a key.
    pub(super) fn builtin_turbo(
        &self,
        warnings: &mut Vec<String>,
    ) -> Result<Option<SignedStreamSection>, ConfigError> {
        let has_key = self.turbo_key.is_some() || self.generator.is_some();
        match self.turbo_streams_channel {
            Some(false) => return Ok(None),
            Some(true) if !has_key => {
                return Err(ConfigError::new(
                    "turbo.streams_channel",
                    "Turbo's key comes from SECRET_KEY_BASE (signed_streams.secret_key_base) \
                     or turbo.signed_stream_verifier_key; neither is set",
                ));
            }
            None if !has_key => {
                warnings.push(format!(
                    "{TURBO_STREAMS_CHANNEL} is off: set SECRET_KEY_BASE (or \
                     turbo.signed_stream_verifier_key) to verify Turbo's signed stream names, \
                     or turbo.streams_channel = false to silence this"
                ));
                return Ok(None);
            }
            _ => {}
        }
        Ok(Some(SignedStreamSection {
            verifier: "turbo".into(),
            refuse: self.turbo_refuse.clone(),
            ..SignedStreamSection::default()
        }))
    }
}

/// A verified name a channel refuses: exact, or a regular expression matched anywhere.
#[derive(Debug)]
enum NamePattern {
    Exact(String),
    Pattern(Regex),
}

impl NamePattern {
    fn compile(text: &str, key: &str) -> Result<NamePattern, ConfigError> {
        match text.strip_prefix('/').and_then(|t| t.strip_suffix('/')) {
            Some(source) => Regex::new(source).map(NamePattern::Pattern).map_err(|e| {
                ConfigError::new(
                    key,
                    format!("{text:?} is not a valid regular expression: {e}"),
                )
            }),
            None if text.is_empty() => Err(ConfigError::new(key, "empty name")),
            None => Ok(NamePattern::Exact(text.to_string())),
        }
    }

    fn matches(&self, name: &str) -> bool {
        match self {
            NamePattern::Exact(exact) => exact == name,
            NamePattern::Pattern(regex) => regex.is_match(name),
        }
    }
}

/// A channel's signed-stream rule, compiled.
#[derive(Debug)]
pub struct SignedStream {
    param: String,
    verifier: SignedStreamVerifier,
    refuse: Vec<NamePattern>,
    accept: Vec<NamePattern>,
    reject_blank_names: bool,
}

impl SignedStream {
    /// Checks `raw` (found at config key `base`) against the shared key material.
    pub fn compile(
        raw: &SignedStreamSection,
        settings: &SignedStreamsSettings,
        base: &str,
    ) -> Result<SignedStream, ConfigError> {
        let preset = match raw.verifier.as_str() {
            "turbo" => Some(&TURBO),
            "cable_ready" => Some(&CABLE_READY),
            "" => None,
            other => {
                return Err(ConfigError::new(
                    format!("{base}.verifier"),
                    format!(
                        "{other:?}: use \"turbo\", \"cable_ready\", or leave it out and give salt or key"
                    ),
                ));
            }
        };
        if preset.is_some() && !raw.salt.is_empty() {
            return Err(ConfigError::new(
                format!("{base}.salt"),
                format!(
                    "verifier {:?} has its own salt; leave verifier out for a custom one",
                    raw.verifier
                ),
            ));
        }
        let param = match (raw.param.as_str(), preset) {
            ("", Some(p)) => p.param.to_string(),
            ("", None) => {
                return Err(ConfigError::new(
                    format!("{base}.param"),
                    "name the identifier key that carries the signed name",
                ));
            }
            (given, _) => given.to_string(),
        };
        let digest = if raw.digest.is_empty() {
            HmacDigest::Sha256
        } else {
            HmacDigest::parse(&raw.digest).ok_or_else(|| {
                ConfigError::new(
                    format!("{base}.digest"),
                    format!("{:?}: use SHA1, SHA256, SHA384 or SHA512", raw.digest),
                )
            })?
        };
        let explicit_key: Option<Arc<[u8]>> = if !raw.key.is_empty() {
            Some(Arc::from(raw.key.as_bytes()))
        } else if raw.verifier == "turbo" {
            settings.turbo_key.clone()
        } else {
            None
        };
        let salt = preset.map_or(raw.salt.as_str(), |p| p.salt);
        let verifier = match (explicit_key, salt, &settings.generator) {
            (Some(key), _, _) => SignedStreamVerifier::explicit(key, digest),
            (None, "", _) => {
                return Err(ConfigError::new(
                    base.to_string(),
                    "give verifier = \"turbo\" or \"cable_ready\", a salt, or a key",
                ));
            }
            (None, salt, Some(generator)) => {
                SignedStreamVerifier::derived(generator, salt, digest, settings.key_digests)
            }
            (None, _, None) => {
                return Err(ConfigError::new(
                    base.to_string(),
                    "the key is derived from SECRET_KEY_BASE (signed_streams.secret_key_base), \
                     which is not set; set it, or give an explicit key",
                ));
            }
        }
        .with_base64(settings.base64);
        let patterns = |list: &[String], key: &str| {
            list.iter()
                .enumerate()
                .map(|(i, text)| NamePattern::compile(text, &format!("{base}.{key}[{i}]")))
                .collect::<Result<Vec<_>, _>>()
        };
        let refuse = patterns(&raw.refuse, "refuse")?;
        let accept = patterns(&raw.accept, "accept")?;
        let reject_blank_names = raw
            .reject_blank_names
            .unwrap_or(preset.is_some_and(|p| p.reject_blank_names));
        Ok(SignedStream {
            param,
            verifier,
            refuse,
            accept,
            reject_blank_names,
        })
    }

    /// The stream a subscription's identifier params stand for, or why it is rejected (as
    /// Turbo rejects: a missing, malformed or forged name is `reject`; a value that is not
    /// a string makes Rails' verifier raise, so there is no reply at all).
    pub fn stream(&self, params: &Value) -> Result<String, Rejection> {
        let signed = match params.get(&self.param) {
            Some(Value::String(signed)) => signed,
            None | Some(Value::Null) => return Err(Rejection::NoSignedName(self.param.clone())),
            Some(_) => return Err(Rejection::SignedNameNotAString(self.param.clone())),
        };
        // Turbo and CableReady names carry no expiry; the clock only matters for a name
        // signed with `expires_in`, which the verifier honours like Rails.
        let verified = self
            .verifier
            .verify(signed, SystemTime::now())
            .map_err(|e| Rejection::InvalidSignedName(e.kind()))?;
        // Which key an app's names verify with is easy to get wrong from outside (SHA1 on a
        // 7.0+ app whose key generator was touched early): say it.
        tracing::debug!(key = ?verified.key, "signed stream name verified");
        let name = verified.value;
        if name.starts_with(INTERNAL_STREAM_PREFIX) {
            // Nothing the app signs looks like this; streaming it would hand out someone's
            // remote-disconnect channel.
            return Err(Rejection::InvalidSignedName("internal_stream"));
        }
        if self.reject_blank_names && name.chars().all(char::is_whitespace) {
            return Err(Rejection::InvalidSignedName("blank"));
        }
        if self.refuse.iter().any(|p| p.matches(&name))
            || (!self.accept.is_empty() && !self.accept.iter().any(|p| p.matches(&name)))
        {
            return Err(Rejection::RefusedSignedName(name));
        }
        Ok(name)
    }
}

#[cfg(test)]
#[path = "signed_tests.rs"]
mod tests;
