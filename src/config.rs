//! Configuration: read once at the edge, validated into typed settings.
//!
//! Sources, lowest precedence first: built-in defaults, the TOML file (`--config`), the
//! environment (`PORT`, `REDIS_URL`, `SECRET_KEY_BASE`, then `FERROCABLE_<SECTION>__<KEY>`),
//! command-line flags. [`RawConfig`] mirrors the file one to one (and is what `config print`
//! shows); [`Settings::from_raw`] turns it into the objects the server runs on, or into a
//! [`ConfigError`] that names the offending key. Nothing deeper in the crate reads the
//! environment.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

use crate::auth::{Algorithm, AuthSettings, IdentifierRule, IdentifierSource, Verifier};
use crate::channels::{ChannelRegistry, ChannelSpec};
use crate::origin::OriginPolicy;

/// A configuration problem, named by its key (`server.port`, `channels.Chat.streams[0]`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {problem}")]
pub struct ConfigError {
    /// Dotted path of the offending key.
    pub key: String,
    /// What is wrong with it, in words.
    pub problem: String,
}

impl ConfigError {
    pub(crate) fn new(key: impl Into<String>, problem: impl Into<String>) -> Self {
        ConfigError {
            key: key.into(),
            problem: problem.into(),
        }
    }
}

/// The configuration as written: every section with its defaults.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RawConfig {
    /// Listener and endpoint.
    pub server: ServerSection,
    /// Log format and filter.
    pub logging: LoggingSection,
    /// Wire-level behaviour.
    pub protocol: ProtocolSection,
    /// Origin check.
    pub origins: OriginsSection,
    /// Connection authentication.
    pub auth: AuthSection,
    /// Broadcast source.
    pub redis: RedisSection,
    /// `POST /_broadcast`.
    pub broadcast_api: BroadcastApiSection,
    /// Bounds on clients.
    pub limits: LimitsSection,
    /// Declarative channels, by class name.
    pub channels: BTreeMap<String, ChannelSection>,
}

/// `[server]`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSection {
    /// Listen address.
    pub host: String,
    /// Listen port.
    pub port: u16,
    /// Endpoint path.
    pub mount_path: String,
    /// Drain deadline after SIGTERM.
    pub shutdown_timeout_secs: u64,
}

impl Default for ServerSection {
    fn default() -> Self {
        ServerSection {
            host: "127.0.0.1".into(),
            port: 8080,
            mount_path: "/cable".into(),
            shutdown_timeout_secs: 10,
        }
    }
}

/// `[logging]`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LoggingSection {
    /// `text` or `json`.
    pub format: LogFormat,
    /// tracing filter directive.
    pub level: String,
}

impl Default for LoggingSection {
    fn default() -> Self {
        LoggingSection {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

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

/// `[origins]`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct OriginsSection {
    /// false disables the check.
    pub check: bool,
    /// Accept `<scheme>://<Host>`.
    pub allow_same_origin_as_host: bool,
    /// Exact strings, or `/regex/`.
    pub allowed: Vec<String>,
}

impl Default for OriginsSection {
    fn default() -> Self {
        OriginsSection {
            check: true,
            allow_same_origin_as_host: true,
            allowed: Vec::new(),
        }
    }
}

/// `[auth]`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSection {
    /// `jwt` or `none`.
    pub mode: AuthMode,
    /// Allow `none` on a non-loopback address.
    pub allow_unauthenticated_public: bool,
    /// Query parameter carrying the token.
    pub token_param: String,
    /// Fall back to `Authorization: Bearer`.
    pub accept_bearer_header: bool,
    /// Pinned JWT algorithm.
    pub algorithm: String,
    /// HMAC secret (raw bytes).
    pub secret: String,
    /// PEM public key, inline.
    pub public_key: String,
    /// PEM public key, from a file.
    pub public_key_file: String,
    /// Clock skew allowed for exp/nbf.
    pub leeway_secs: u64,
    /// Connection identifiers, in declaration order.
    pub identifiers: Vec<IdentifierSection>,
}

impl Default for AuthSection {
    fn default() -> Self {
        AuthSection {
            mode: AuthMode::None,
            allow_unauthenticated_public: false,
            token_param: "token".into(),
            accept_bearer_header: true,
            algorithm: "HS256".into(),
            secret: String::new(),
            public_key: String::new(),
            public_key_file: String::new(),
            leeway_secs: 0,
            identifiers: Vec::new(),
        }
    }
}

/// Whether connections must authenticate.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// A valid JWT is required.
    Jwt,
    /// Everyone is accepted (development only).
    None,
}

/// One `[[auth.identifiers]]` entry.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct IdentifierSection {
    /// Name used in templates and in remote disconnect.
    pub name: String,
    /// Claim to read the value from.
    pub claim: Option<String>,
    /// Query parameter to read the value from.
    pub query: Option<String>,
    /// Query parameter that must equal the value.
    pub match_query: Option<String>,
    /// GlobalID URI template, `{}` replaced by the value.
    pub gid: Option<String>,
    /// Refuse the connection when the value is missing (default true).
    pub required: Option<bool>,
}

/// `[redis]`
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RedisSection {
    /// Empty for the in-process broker.
    pub url: String,
    /// Rails' channel_prefix.
    pub channel_prefix: String,
}

/// `[broadcast_api]`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct BroadcastApiSection {
    /// Serve `POST /_broadcast`.
    pub enabled: bool,
    /// Bearer key; empty = loopback only.
    pub key: String,
}

impl Default for BroadcastApiSection {
    fn default() -> Self {
        BroadcastApiSection {
            enabled: true,
            key: String::new(),
        }
    }
}

/// `[limits]`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsSection {
    /// Largest inbound message.
    pub max_message_bytes: usize,
    /// Outbound queue bound per client.
    pub max_outbound_bytes: usize,
    /// Blocked-write deadline.
    pub write_timeout_secs: u64,
    /// Simultaneous WebSocket connections.
    pub max_connections: usize,
    /// Subscriptions one connection may hold.
    pub max_subscriptions_per_connection: usize,
    /// Sustained commands per second per connection (bursts up to twice that).
    pub max_commands_per_second: u32,
    /// Deepest JSON nesting accepted in commands and broadcasts.
    pub max_json_depth: usize,
    /// Longest token accepted.
    pub max_token_bytes: usize,
    /// Seconds a client has to send its upgrade request headers.
    pub handshake_timeout_secs: u64,
}

impl Default for LimitsSection {
    fn default() -> Self {
        LimitsSection {
            max_message_bytes: 64 * 1024,
            max_outbound_bytes: 1024 * 1024,
            write_timeout_secs: 10,
            max_connections: 19_000,
            max_subscriptions_per_connection: 256,
            max_commands_per_second: 100,
            max_json_depth: crate::protocol::MAX_JSON_DEPTH,
            max_token_bytes: 4096,
            handshake_timeout_secs: 10,
        }
    }
}

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
}

/// `[channels.<Name>.actions.<action>]`
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ActionSection {
    /// Stream template to broadcast the data to.
    pub broadcast_to: Option<String>,
    /// Send the data back to the caller.
    pub transmit: bool,
}

/// Flags given on the command line; `None` leaves the lower layers alone.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CliOverrides {
    /// `--host`
    pub host: Option<String>,
    /// `--port`
    pub port: Option<u16>,
    /// `--redis-url`
    pub redis_url: Option<String>,
    /// `--log-format`
    pub log_format: Option<LogFormat>,
    /// `--log-level`
    pub log_level: Option<String>,
}

impl CliOverrides {
    fn to_figment_dict(&self) -> Figment {
        let mut f = Figment::new();
        if let Some(h) = &self.host {
            f = f.merge(Serialized::default("server.host", h));
        }
        if let Some(p) = self.port {
            f = f.merge(Serialized::default("server.port", p));
        }
        if let Some(u) = &self.redis_url {
            f = f.merge(Serialized::default("redis.url", u));
        }
        if let Some(fmt) = self.log_format {
            f = f.merge(Serialized::default("logging.format", fmt));
        }
        if let Some(l) = &self.log_level {
            f = f.merge(Serialized::default("logging.level", l));
        }
        f
    }
}

/// Layers defaults, the file, the environment and the flags, and deserializes the result.
pub fn load(path: Option<&Path>, cli: &CliOverrides) -> Result<RawConfig, ConfigError> {
    let mut figment = Figment::from(Serialized::defaults(RawConfig::default()));
    if let Some(path) = path {
        if !path.exists() {
            return Err(ConfigError::new(
                "--config",
                format!("file {} does not exist", path.display()),
            ));
        }
        figment = figment.merge(Toml::file_exact(path));
    }
    figment = figment
        .merge(Env::raw().only(&["PORT"]).map(|_| "server.port".into()))
        .merge(Env::raw().only(&["REDIS_URL"]).map(|_| "redis.url".into()))
        .merge(
            Env::raw()
                .only(&["SECRET_KEY_BASE"])
                .map(|_| "auth.secret".into()),
        )
        .merge(Env::prefixed("FERROCABLE_").split("__"))
        .merge(cli.to_figment_dict());
    figment.extract().map_err(figment_error)
}

fn figment_error(err: figment::Error) -> ConfigError {
    let key = if err.path.is_empty() {
        "config".to_string()
    } else {
        err.path.join(".")
    };
    let source = err
        .metadata
        .as_ref()
        .map(|m| match &m.source {
            Some(src) => format!(" (from {} {src})", m.name),
            None => format!(" (from {})", m.name),
        })
        .unwrap_or_default();
    ConfigError::new(key, format!("{}{source}", err.kind))
}

/// Rails' own channel base class (see [`RailsCompat::base_class_is_channel`]).
const BASE_CHANNEL: &str = "ActionCable::Channel::Base";

/// Which Rails release's wire differences to follow (protocol.md §7).
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
}

impl RailsCompat {
    fn parse(version: &str) -> Option<RailsCompat> {
        let modern = RailsCompat {
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

/// Wire-level behaviour.
#[derive(Debug, Clone)]
pub struct ProtocolSettings {
    /// Ping period.
    pub ping_interval: Duration,
    /// Version differences.
    pub compat: RailsCompat,
    /// Reject instead of ignoring unknown channels.
    pub reject_unknown_channels: bool,
}

/// Where broadcasts come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrokerSettings {
    /// In-process: single node, fed by `POST /_broadcast` and channel actions.
    Memory,
    /// Rails' Redis adapter format.
    Redis {
        /// Connection URL.
        url: String,
        /// Rails' channel_prefix, without the colon.
        channel_prefix: String,
    },
}

/// `POST /_broadcast`.
#[derive(Debug, Clone)]
pub struct BroadcastApiSettings {
    /// Whether the route exists.
    pub enabled: bool,
    /// Required bearer key, if any.
    pub key: Option<String>,
}

/// Bounds.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest inbound message.
    pub max_message_bytes: usize,
    /// Outbound queue bound.
    pub max_outbound_bytes: usize,
    /// Blocked-write deadline.
    pub write_timeout: Duration,
    /// Most WebSocket connections.
    pub max_connections: usize,
    /// Most subscriptions per connection.
    pub max_subscriptions_per_connection: usize,
    /// Sustained command rate per connection.
    pub max_commands_per_second: u32,
    /// JSON nesting limit.
    pub max_json_depth: usize,
    /// Token length limit.
    pub max_token_bytes: usize,
    /// Deadline for the upgrade request's headers.
    pub handshake_timeout: Duration,
}

/// The validated configuration the server runs on.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Listen address.
    pub listen: SocketAddr,
    /// Endpoint path.
    pub mount_path: String,
    /// Drain deadline.
    pub shutdown_timeout: Duration,
    /// Logging.
    pub logging: LoggingSection,
    /// Protocol.
    pub protocol: ProtocolSettings,
    /// Origin policy.
    pub origins: Arc<OriginPolicy>,
    /// Authentication.
    pub auth: Arc<AuthSettings>,
    /// Broker.
    pub broker: BrokerSettings,
    /// Broadcast API.
    pub broadcast_api: BroadcastApiSettings,
    /// Limits.
    pub limits: Limits,
    /// Channels.
    pub channels: Arc<ChannelRegistry>,
}

impl Settings {
    /// Validates everything, failing on the first problem found.
    pub fn from_raw(raw: &RawConfig) -> Result<Settings, ConfigError> {
        let host: IpAddr = match raw.server.host.as_str() {
            "localhost" => IpAddr::V4(Ipv4Addr::LOCALHOST),
            h => h.parse().map_err(|_| {
                ConfigError::new(
                    "server.host",
                    format!("{h:?} is not an IP address (use e.g. 127.0.0.1 or 0.0.0.0)"),
                )
            })?,
        };
        let listen = SocketAddr::new(host, raw.server.port);
        let mount_path = raw.server.mount_path.clone();
        if !mount_path.starts_with('/') || mount_path.contains('?') {
            return Err(ConfigError::new(
                "server.mount_path",
                "must start with '/' and contain no query",
            ));
        }
        if ["/health", "/stats", "/_broadcast"].contains(&mount_path.as_str()) {
            return Err(ConfigError::new(
                "server.mount_path",
                format!("{mount_path} is reserved for ferrocable's own endpoints"),
            ));
        }
        if !(1..=3600).contains(&raw.protocol.ping_interval_secs) {
            return Err(ConfigError::new(
                "protocol.ping_interval_secs",
                "must be between 1 and 3600",
            ));
        }
        let compat = RailsCompat::parse(&raw.protocol.rails_version).ok_or_else(|| {
            ConfigError::new(
                "protocol.rails_version",
                format!(
                    "{:?} is not supported; use one of \"6.1\", \"7.0\", \"7.1\", \"7.2\", \"8.0\"",
                    raw.protocol.rails_version
                ),
            )
        })?;
        let origins = OriginPolicy::from_config(&raw.origins)?;
        let auth = build_auth(raw, host)?;
        let broker = build_broker(&raw.redis)?;
        let limits = build_limits(&raw.limits)?;
        let identifier_names: Vec<String> =
            auth.identifiers.iter().map(|i| i.name.clone()).collect();
        let mut specs = Vec::new();
        for (name, section) in &raw.channels {
            specs.push(ChannelSpec::compile(name, section, &identifier_names)?);
        }
        // Rails 6.1 finds ActionCable::Channel::Base itself in every app; an explicit entry
        // (say, with streams) wins.
        if compat.base_class_is_channel && !raw.channels.contains_key(BASE_CHANNEL) {
            specs.push(ChannelSpec::compile(
                BASE_CHANNEL,
                &ChannelSection::default(),
                &identifier_names,
            )?);
        }
        let channels = ChannelRegistry::new(specs);
        let broadcast_api = BroadcastApiSettings {
            enabled: raw.broadcast_api.enabled,
            key: (!raw.broadcast_api.key.is_empty()).then(|| raw.broadcast_api.key.clone()),
        };
        Ok(Settings {
            listen,
            mount_path,
            shutdown_timeout: Duration::from_secs(raw.server.shutdown_timeout_secs),
            logging: raw.logging.clone(),
            protocol: ProtocolSettings {
                ping_interval: Duration::from_secs(raw.protocol.ping_interval_secs),
                compat,
                reject_unknown_channels: raw.protocol.reject_unknown_channels,
            },
            origins: Arc::new(origins),
            auth: Arc::new(auth),
            broker,
            broadcast_api,
            limits,
            channels: Arc::new(channels),
        })
    }
}

fn build_limits(raw: &LimitsSection) -> Result<Limits, ConfigError> {
    if raw.max_message_bytes < 256 {
        return Err(ConfigError::new(
            "limits.max_message_bytes",
            "must be at least 256 (a subscribe command alone is ~100 bytes)",
        ));
    }
    if raw.max_outbound_bytes < 1024 {
        return Err(ConfigError::new(
            "limits.max_outbound_bytes",
            "must be at least 1024",
        ));
    }
    if raw.write_timeout_secs == 0 {
        return Err(ConfigError::new(
            "limits.write_timeout_secs",
            "must be at least 1",
        ));
    }
    let at_least_one = [
        ("limits.max_connections", raw.max_connections as u64),
        (
            "limits.max_subscriptions_per_connection",
            raw.max_subscriptions_per_connection as u64,
        ),
        (
            "limits.max_commands_per_second",
            u64::from(raw.max_commands_per_second),
        ),
        ("limits.handshake_timeout_secs", raw.handshake_timeout_secs),
    ];
    for (key, value) in at_least_one {
        if value == 0 {
            return Err(ConfigError::new(key, "must be at least 1"));
        }
    }
    if !(2..=1000).contains(&raw.max_json_depth) {
        return Err(ConfigError::new(
            "limits.max_json_depth",
            "must be between 2 (a command holds an object) and 1000",
        ));
    }
    if raw.max_token_bytes < 64 {
        return Err(ConfigError::new(
            "limits.max_token_bytes",
            "must be at least 64 (a JWT is rarely under 100 bytes)",
        ));
    }
    Ok(Limits {
        max_message_bytes: raw.max_message_bytes,
        max_outbound_bytes: raw.max_outbound_bytes,
        write_timeout: Duration::from_secs(raw.write_timeout_secs),
        max_connections: raw.max_connections,
        max_subscriptions_per_connection: raw.max_subscriptions_per_connection,
        max_commands_per_second: raw.max_commands_per_second,
        max_json_depth: raw.max_json_depth,
        max_token_bytes: raw.max_token_bytes,
        handshake_timeout: Duration::from_secs(raw.handshake_timeout_secs),
    })
}

fn build_broker(raw: &RedisSection) -> Result<BrokerSettings, ConfigError> {
    if raw.url.is_empty() {
        if !raw.channel_prefix.is_empty() {
            // A prefix without Redis is harmless but almost always a forgotten REDIS_URL.
            tracing::warn!(
                "redis.channel_prefix is set but redis.url is empty: using the in-process broker"
            );
        }
        return Ok(BrokerSettings::Memory);
    }
    if raw.url.starts_with("rediss://") {
        return Err(ConfigError::new(
            "redis.url",
            "rediss:// (TLS) is not supported yet; use redis:// on a private network or a TLS tunnel",
        ));
    }
    if !raw.url.starts_with("redis://") && !raw.url.starts_with("unix://") {
        return Err(ConfigError::new(
            "redis.url",
            format!("{:?} is not a redis:// URL", mask_url(&raw.url)),
        ));
    }
    redis::Client::open(raw.url.as_str())
        .map_err(|e| ConfigError::new("redis.url", format!("invalid: {e}")))?;
    if raw.channel_prefix.ends_with(':') {
        return Err(ConfigError::new(
            "redis.channel_prefix",
            "write the prefix without the trailing ':' (Rails adds it)",
        ));
    }
    Ok(BrokerSettings::Redis {
        url: raw.url.clone(),
        channel_prefix: raw.channel_prefix.clone(),
    })
}

fn build_auth(raw: &RawConfig, host: IpAddr) -> Result<AuthSettings, ConfigError> {
    let a = &raw.auth;
    let mut identifiers = Vec::new();
    for (i, ident) in a.identifiers.iter().enumerate() {
        let key = |field: &str| format!("auth.identifiers[{i}].{field}");
        if ident.name.is_empty()
            || !ident
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(ConfigError::new(
                key("name"),
                "must be a non-empty name of letters, digits and '_'",
            ));
        }
        if identifiers
            .iter()
            .any(|r: &IdentifierRule| r.name == ident.name)
        {
            return Err(ConfigError::new(
                key("name"),
                format!("{:?} is declared twice", ident.name),
            ));
        }
        let source = match (&ident.claim, &ident.query) {
            (Some(c), None) if !c.is_empty() => IdentifierSource::Claim(c.clone()),
            (None, Some(q)) if !q.is_empty() => IdentifierSource::Query(q.clone()),
            _ => {
                return Err(ConfigError::new(
                    key("claim"),
                    "give exactly one of claim = \"...\" or query = \"...\"",
                ));
            }
        };
        if matches!(source, IdentifierSource::Claim(_)) && a.mode == AuthMode::None {
            return Err(ConfigError::new(
                key("claim"),
                "claims need auth.mode = \"jwt\"; in mode \"none\" use query = \"...\"",
            ));
        }
        if let Some(gid) = &ident.gid
            && (!gid.starts_with("gid://") || gid.matches("{}").count() != 1)
        {
            return Err(ConfigError::new(
                key("gid"),
                "must look like \"gid://app-name/Model/{}\" with exactly one {}",
            ));
        }
        identifiers.push(IdentifierRule {
            name: ident.name.clone(),
            source,
            match_query: ident.match_query.clone().filter(|q| !q.is_empty()),
            gid: ident.gid.clone(),
            required: ident.required.unwrap_or(true),
        });
    }
    let verifier = match a.mode {
        AuthMode::None => {
            if !host.is_loopback() && !a.allow_unauthenticated_public {
                return Err(ConfigError::new(
                    "auth.mode",
                    format!(
                        "\"none\" accepts every connection without a token and the server \
                         listens on {host}, which is not a loopback address; configure \
                         auth.mode = \"jwt\" (and SECRET_KEY_BASE), or set \
                         auth.allow_unauthenticated_public = true if you really mean it"
                    ),
                ));
            }
            None
        }
        AuthMode::Jwt => Some(build_verifier(a)?),
    };
    if a.token_param.is_empty() {
        return Err(ConfigError::new("auth.token_param", "must not be empty"));
    }
    Ok(AuthSettings {
        verifier,
        token_param: a.token_param.clone(),
        accept_bearer_header: a.accept_bearer_header,
        identifiers,
        max_token_bytes: raw.limits.max_token_bytes,
    })
}

fn build_verifier(a: &AuthSection) -> Result<Verifier, ConfigError> {
    let algorithm = Algorithm::parse(&a.algorithm).ok_or_else(|| {
        ConfigError::new(
            "auth.algorithm",
            format!(
                "{:?} is not supported; use HS256, HS384, HS512, RS256 or ES256",
                a.algorithm
            ),
        )
    })?;
    if algorithm.is_hmac() {
        if a.secret.is_empty() {
            return Err(ConfigError::new(
                "auth.secret",
                format!(
                    "{} needs a secret: set SECRET_KEY_BASE (or FERROCABLE_AUTH__SECRET), or use \
                     auth.mode = \"none\" for development",
                    a.algorithm
                ),
            ));
        }
        if !a.public_key.is_empty() || !a.public_key_file.is_empty() {
            return Err(ConfigError::new(
                "auth.public_key",
                format!("{} uses auth.secret, not a public key", a.algorithm),
            ));
        }
        return Verifier::hmac(algorithm, a.secret.as_bytes(), a.leeway_secs)
            .map_err(|e| ConfigError::new("auth.secret", e));
    }
    let pem = match (a.public_key.is_empty(), a.public_key_file.is_empty()) {
        (false, true) => a.public_key.clone(),
        (true, false) => {
            std::fs::read_to_string(PathBuf::from(&a.public_key_file)).map_err(|e| {
                ConfigError::new(
                    "auth.public_key_file",
                    format!("cannot read {}: {e}", a.public_key_file),
                )
            })?
        }
        _ => {
            return Err(ConfigError::new(
                "auth.public_key",
                format!(
                    "{} needs exactly one of auth.public_key or auth.public_key_file",
                    a.algorithm
                ),
            ));
        }
    };
    Verifier::public_key(algorithm, pem.as_bytes(), a.leeway_secs)
        .map_err(|e| ConfigError::new("auth.public_key", e))
}

/// Hides the password of a `redis://user:password@host` URL.
pub(crate) fn mask_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme_end + 3],
                    &userinfo[..colon],
                    &url[at..]
                ),
                None => format!("{}***{}", &url[..scheme_end + 3], &url[at..]),
            }
        }
        _ => url.to_string(),
    }
}

impl RawConfig {
    /// The configuration as TOML with secrets replaced by `***`.
    pub fn to_masked_toml(&self) -> String {
        let mut copy = self.clone();
        for secret in [&mut copy.auth.secret, &mut copy.broadcast_api.key] {
            if !secret.is_empty() {
                *secret = "***".into();
            }
        }
        copy.redis.url = mask_url(&copy.redis.url);
        toml::to_string_pretty(&copy).unwrap_or_else(|e| format!("# cannot print: {e}\n"))
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's closures return figment::Error
mod tests {
    use super::*;
    use figment::Jail;

    fn load_in_jail(jail: &Jail, file: Option<&str>, cli: &CliOverrides) -> RawConfig {
        let path = file.map(|text| {
            jail.create_file("ferrocable.toml", text).unwrap();
            jail.directory().join("ferrocable.toml")
        });
        load(path.as_deref(), cli).unwrap()
    }

    #[test]
    fn defaults_listen_on_loopback_8080_with_memory_broker() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            let raw = load_in_jail(jail, None, &CliOverrides::default());
            let s = Settings::from_raw(&raw).unwrap();
            assert_eq!(s.listen, "127.0.0.1:8080".parse().unwrap());
            assert_eq!(s.mount_path, "/cable");
            assert_eq!(s.broker, BrokerSettings::Memory);
            assert_eq!(s.protocol.ping_interval, Duration::from_secs(3));
            assert!(s.protocol.compat.remote_disconnect_frame);
            Ok(())
        });
    }

    #[test]
    fn precedence_is_defaults_file_env_cli() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            let file =
                "[server]\nport = 7000\nhost = \"127.0.0.2\"\n[redis]\nchannel_prefix = \"file\"\n";
            assert_eq!(
                load_in_jail(jail, Some(file), &CliOverrides::default())
                    .server
                    .port,
                7000
            );
            jail.set_env("PORT", "7100");
            assert_eq!(
                load_in_jail(jail, Some(file), &CliOverrides::default())
                    .server
                    .port,
                7100
            );
            jail.set_env("FERROCABLE_SERVER__PORT", "7200");
            jail.set_env("FERROCABLE_REDIS__CHANNEL_PREFIX", "env");
            let raw = load_in_jail(jail, Some(file), &CliOverrides::default());
            assert_eq!(raw.server.port, 7200);
            assert_eq!(raw.redis.channel_prefix, "env");
            assert_eq!(raw.server.host, "127.0.0.2");
            let cli = CliOverrides {
                port: Some(7300),
                ..CliOverrides::default()
            };
            assert_eq!(load_in_jail(jail, Some(file), &cli).server.port, 7300);
            Ok(())
        });
    }

    #[test]
    fn rails_version_may_be_a_number_in_the_environment() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            jail.set_env("FERROCABLE_PROTOCOL__RAILS_VERSION", "6.1");
            let raw = load_in_jail(jail, None, &CliOverrides::default());
            assert_eq!(raw.protocol.rails_version, "6.1");
            jail.set_env("FERROCABLE_PROTOCOL__RAILS_VERSION", "7.0");
            let raw = load_in_jail(jail, None, &CliOverrides::default());
            assert_eq!(raw.protocol.rails_version, "7.0");
            Ok(())
        });
    }

    #[test]
    fn conventional_variables_fill_redis_and_secret() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            jail.set_env("REDIS_URL", "redis://127.0.0.1:6390/1");
            jail.set_env("SECRET_KEY_BASE", "s3cret");
            let raw = load_in_jail(jail, None, &CliOverrides::default());
            assert_eq!(raw.redis.url, "redis://127.0.0.1:6390/1");
            assert_eq!(raw.auth.secret, "s3cret");
            assert!(!raw.to_masked_toml().contains("s3cret"));
            Ok(())
        });
    }

    #[test]
    fn a_wrong_type_names_the_key() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            jail.create_file("bad.toml", "[server]\nport = \"eighty\"\n")?;
            let err = load(
                Some(&jail.directory().join("bad.toml")),
                &CliOverrides::default(),
            )
            .unwrap_err();
            assert_eq!(err.key, "server.port");
            assert!(err.problem.contains("eighty"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn an_unknown_key_is_refused() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            jail.create_file("bad.toml", "[server]\nprot = 80\n")?;
            let err = load(
                Some(&jail.directory().join("bad.toml")),
                &CliOverrides::default(),
            )
            .unwrap_err();
            assert!(err.to_string().contains("prot"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn jwt_without_a_secret_is_refused_with_a_hint() {
        let mut raw = RawConfig::default();
        raw.auth.mode = AuthMode::Jwt;
        let err = Settings::from_raw(&raw).unwrap_err();
        assert_eq!(err.key, "auth.secret");
        assert!(err.problem.contains("SECRET_KEY_BASE"));
    }

    #[test]
    fn no_auth_on_a_public_address_is_refused() {
        let mut raw = RawConfig::default();
        raw.server.host = "0.0.0.0".into();
        let err = Settings::from_raw(&raw).unwrap_err();
        assert_eq!(err.key, "auth.mode");
        raw.auth.allow_unauthenticated_public = true;
        assert!(Settings::from_raw(&raw).is_ok());
    }

    #[test]
    fn bad_values_name_their_key() {
        type Mutation = Box<dyn Fn(&mut RawConfig)>;
        let cases: Vec<(Mutation, &str)> = vec![
            (Box::new(|r| r.server.host = "nope".into()), "server.host"),
            (
                Box::new(|r| r.server.mount_path = "cable".into()),
                "server.mount_path",
            ),
            (
                Box::new(|r| r.protocol.rails_version = "5.2".into()),
                "protocol.rails_version",
            ),
            (
                Box::new(|r| r.protocol.ping_interval_secs = 0),
                "protocol.ping_interval_secs",
            ),
            (Box::new(|r| r.redis.url = "http://x".into()), "redis.url"),
            (
                Box::new(|r| r.origins.allowed = vec!["/(unclosed/".into()]),
                "origins.allowed[0]",
            ),
            (
                Box::new(|r| {
                    r.auth.mode = AuthMode::Jwt;
                    r.auth.secret = "x".into();
                    r.auth.algorithm = "none".into();
                }),
                "auth.algorithm",
            ),
            (
                Box::new(|r| {
                    r.channels.insert(
                        "Chat".into(),
                        ChannelSection {
                            streams: vec!["chat_{nope}".into()],
                            ..ChannelSection::default()
                        },
                    );
                }),
                "channels.Chat.streams[0]",
            ),
        ];
        for (mutate, key) in cases {
            let mut raw = RawConfig::default();
            mutate(&mut raw);
            let err = Settings::from_raw(&raw).unwrap_err();
            assert_eq!(err.key, key, "{err}");
        }
    }

    #[test]
    fn example_and_hafaloha_configs_validate() {
        for file in [
            "config/example.toml",
            "config/hafaloha.toml",
            "config/development.toml",
            "fixtures/configs/hafaloha.toml",
            "fixtures/configs/generic.toml",
        ] {
            let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
            Jail::expect_with(|jail| {
                jail.clear_env();
                jail.set_env("SECRET_KEY_BASE", "test-secret");
                let raw = load(Some(&path), &CliOverrides::default())
                    .map_err(|e| format!("{file}: {e}"))?;
                Settings::from_raw(&raw).map_err(|e| format!("{file}: {e}"))?;
                Ok(())
            });
        }
    }

    #[test]
    fn masks_redis_passwords() {
        assert_eq!(mask_url("redis://:pw@h:1/0"), "redis://:***@h:1/0");
        assert_eq!(mask_url("redis://u:pw@h:1"), "redis://u:***@h:1");
        assert_eq!(mask_url("redis://h:1"), "redis://h:1");
    }
}
