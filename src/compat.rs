//! Which Rails release ferrocable mimics where releases differ on the wire
//! (docs/PROTOCOL.md §7), and the other wire-level knobs: the `[protocol]` section.

use std::time::Duration;

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
}

impl Default for ProtocolSection {
    fn default() -> Self {
        ProtocolSection {
            ping_interval_secs: 3,
            rails_version: "7.2".into(),
            reject_unknown_channels: false,
        }
    }
}

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
            "7.1" | "7.2" | "8.0" => Some(modern),
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
                    "{:?} is not supported; use one of \"6.1\", \"7.0\", \"7.1\", \"7.2\", \"8.0\"",
                    section.rails_version
                ),
            )
        })?;
        Ok(ProtocolSettings {
            ping_interval: Duration::from_secs(section.ping_interval_secs),
            compat,
            reject_unknown_channels: section.reject_unknown_channels,
        })
    }
}
