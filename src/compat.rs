//! Which Rails release ferrocable mimics where releases differ on the wire
//! (docs/PROTOCOL.md §7), and the other wire-level knobs: the `[protocol]` section.

use std::time::Duration;

use ferrocable_protocol::json::Escaping;
use ferrocable_rails::RailsVersion;
use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

/// `[protocol]`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ProtocolSection {
    /// Seconds between pings.
    pub ping_interval_secs: u64,
    /// Rails release whose wire differences to follow.
    #[serde(deserialize_with = "version_string")]
    pub rails_version: String,
    /// Answer unknown channels with reject_subscription instead of silence.
    pub reject_unknown_channels: bool,
    /// The app's `config.load_defaults`; empty means the same as `rails_version`.
    #[serde(deserialize_with = "version_string")]
    pub load_defaults: String,
    /// `config.active_support.escape_js_separators_in_json`; absent means what
    /// `load_defaults` implies (false from 8.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub escape_js_separators_in_json: Option<bool>,
}

impl Default for ProtocolSection {
    fn default() -> Self {
        ProtocolSection {
            ping_interval_secs: 3,
            rails_version: "7.2".into(),
            reject_unknown_channels: false,
            load_defaults: String::new(),
            escape_js_separators_in_json: None,
        }
    }
}

/// Releases `rails_version` accepts, as the error message lists them.
const SUPPORTED: &str = "\"6.1\", \"7.0\", \"7.1\", \"7.2\", \"8.0\", \"8.1\"";

/// Accepts `"7.2"` and also `7.2`, which is what an environment variable like
/// `FERROCABLE_PROTOCOL__RAILS_VERSION=7.2` parses as.
fn version_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Version {
        Text(String),
        Number(f64),
    }
    Ok(match Version::deserialize(d)? {
        Version::Text(s) => s,
        Version::Number(n) => format!("{n:.1}"),
    })
}

/// The wire differences between Rails releases that ferrocable follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RailsCompat {
    /// 7.1+: remote disconnect sends a `remote` disconnect frame before the close.
    pub remote_disconnect_frame: bool,
    /// 7.1+: 404 answers say `text/plain; charset=utf-8`.
    pub charset_in_404: bool,
    /// 7.0.4+: only the exact mount path is the endpoint.
    pub anchored_mount: bool,
    /// 7.0+: identifiers equal to `false` are dropped from the connection identifier.
    pub drop_false_identifiers: bool,
    /// 6.1 only: `ActionCable::Channel::Base` itself is a channel (confirms, streams nothing);
    /// 7.0+ ignores a subscribe to it. Subclasses such as `ApplicationCable::Channel` are
    /// channels on every version, so configs declare them (conformance
    /// `subscribe_framework_classes`).
    pub base_class_is_channel: bool,
    /// The release itself (signed ids are URL-safe from 7.2).
    pub rails_version: ferrocable_rails::RailsVersion,
}

impl RailsCompat {
    fn parse(version: &str) -> Option<RailsCompat> {
        let rails_version = ferrocable_rails::RailsVersion::parse(version)?;
        let modern = RailsCompat {
            rails_version,
            remote_disconnect_frame: true,
            charset_in_404: true,
            anchored_mount: true,
            drop_false_identifiers: true,
            base_class_is_channel: false,
        };
        match version {
            "6.1" => Some(RailsCompat {
                remote_disconnect_frame: false,
                charset_in_404: false,
                anchored_mount: false,
                drop_false_identifiers: false,
                base_class_is_channel: true,
                rails_version,
            }),
            "7.0" => Some(RailsCompat {
                remote_disconnect_frame: false,
                charset_in_404: false,
                ..modern
            }),
            "7.1" | "7.2" | "8.0" | "8.1" => Some(modern),
            _ => None,
        }
    }
}

/// The `[protocol]` section, checked.
#[derive(Debug, Clone)]
pub struct ProtocolSettings {
    /// Period of the ping every connection gets.
    pub ping_interval: Duration,
    /// The differences of the configured Rails release.
    pub compat: RailsCompat,
    /// Reject instead of ignoring unknown channels.
    pub reject_unknown_channels: bool,
    /// The app's `config.load_defaults` (what key digest and cookie formats it writes).
    pub load_defaults: RailsVersion,
    /// How strings are escaped in every frame: broadcasts, identifier echoes, transmits.
    pub escaping: Escaping,
}

impl ProtocolSettings {
    /// Checks `[protocol]`: a ping interval of 1 s to 1 h, and a Rails release we know.
    pub fn compile(section: &ProtocolSection) -> Result<ProtocolSettings, ConfigError> {
        if !(1..=3600).contains(&section.ping_interval_secs) {
            return Err(ConfigError::new(
                "protocol.ping_interval_secs",
                "must be between 1 and 3600",
            ));
        }
        let compat = RailsCompat::parse(&section.rails_version).ok_or_else(|| {
            ConfigError::new(
                "protocol.rails_version",
                format!(
                    "{:?} is not supported; use one of {SUPPORTED}",
                    section.rails_version
                ),
            )
        })?;
        // rails_version parsed above, so it is a version.
        let rails = RailsVersion::parse(&section.rails_version).unwrap_or(RailsVersion::V7_2);
        let load_defaults = if section.load_defaults.is_empty() {
            rails
        } else {
            match RailsVersion::parse(&section.load_defaults) {
                Some(v) if v >= RailsVersion::new(5, 0) && v <= rails => v,
                _ => {
                    return Err(ConfigError::new(
                        "protocol.load_defaults",
                        format!(
                            "{:?} is not a load_defaults an app on Rails {} can have \
                             (\"5.0\" up to \"{}\"; leave it empty for the same as rails_version)",
                            section.load_defaults, section.rails_version, section.rails_version
                        ),
                    ));
                }
            }
        };
        let escaping = Escaping {
            js_separators: match section.escape_js_separators_in_json {
                Some(explicit) => explicit,
                None => load_defaults < RailsVersion::new(8, 1),
            },
        };
        if !escaping.js_separators && rails < RailsVersion::new(8, 1) {
            return Err(ConfigError::new(
                "protocol.escape_js_separators_in_json",
                format!(
                    "Rails {} always escapes U+2028/U+2029; the setting exists from 8.1",
                    section.rails_version
                ),
            ));
        }
        Ok(ProtocolSettings {
            ping_interval: Duration::from_secs(section.ping_interval_secs),
            compat,
            reject_unknown_channels: section.reject_unknown_channels,
            load_defaults,
            escaping,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compile(edit: impl FnOnce(&mut ProtocolSection)) -> Result<ProtocolSettings, ConfigError> {
        let mut section = ProtocolSection::default();
        edit(&mut section);
        ProtocolSettings::compile(&section)
    }

    #[test]
    fn js_separators_follow_load_defaults_unless_set() {
        let default = compile(|_| {}).unwrap();
        assert_eq!(default.load_defaults, RailsVersion::V7_2);
        assert!(default.escaping.js_separators);
        let rails_81 = compile(|s| s.rails_version = "8.1".into()).unwrap();
        // 8.1's wire is 7.2's; only the release number differs.
        assert_eq!(
            RailsCompat {
                rails_version: RailsVersion::V7_2,
                ..rails_81.compat
            },
            RailsCompat::parse("7.2").unwrap()
        );
        assert!(
            !rails_81.escaping.js_separators,
            "load_defaults 8.1 turns escape_js_separators_in_json off"
        );
        let upgraded = compat_81_with(|s| s.load_defaults = "7.2".into());
        assert!(
            upgraded.escaping.js_separators,
            "an app still on 7.2 defaults"
        );
        let explicit = compat_81_with(|s| s.escape_js_separators_in_json = Some(true));
        assert!(explicit.escaping.js_separators);
        let explicit = compat_81_with(|s| {
            s.load_defaults = "7.0".into();
            s.escape_js_separators_in_json = Some(false);
        });
        assert!(!explicit.escaping.js_separators);
    }

    fn compat_81_with(edit: impl FnOnce(&mut ProtocolSection)) -> ProtocolSettings {
        compile(|s| {
            s.rails_version = "8.1".into();
            edit(s);
        })
        .unwrap()
    }

    #[test]
    fn impossible_combinations_name_their_key() {
        for (edit, key) in [
            (
                Box::new(|s: &mut ProtocolSection| s.load_defaults = "8.0".into())
                    as Box<dyn Fn(&mut ProtocolSection)>,
                "protocol.load_defaults",
            ),
            (
                Box::new(|s: &mut ProtocolSection| s.load_defaults = "seven".into()),
                "protocol.load_defaults",
            ),
            (
                Box::new(|s: &mut ProtocolSection| s.escape_js_separators_in_json = Some(false)),
                "protocol.escape_js_separators_in_json",
            ),
            (
                Box::new(|s: &mut ProtocolSection| s.rails_version = "8.2".into()),
                "protocol.rails_version",
            ),
        ] {
            let err = compile(edit).expect_err("refused");
            assert_eq!(err.key, key, "{err}");
        }
    }
}
