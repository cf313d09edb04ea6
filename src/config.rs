//! Configuration: read once at the edge, validated into typed settings.
//!
//! Sources, lowest precedence first: built-in defaults, the TOML file (`--config`), the
//! environment (`PORT`, `REDIS_URL`, `SECRET_KEY_BASE`, `DATABASE_URL`, `APP_API_TOKEN`,
//! `ANYCABLE_SECRET`, `ANYCABLE_BROADCAST_KEY`, then `FERROCABLE_<SECTION>__<KEY>`),
//! command-line flags. [`RawConfig`] mirrors the file one to one (and is what `config print`
//! shows); [`Settings::from_raw`] turns it into the objects the server runs on, or into a
//! [`ConfigError`] that names the offending key. Nothing deeper in the crate reads the
//! environment.
//!
//! This module only loads and aggregates: each section's schema, defaults and checks live in
//! the module that uses it (`listener` for `[server]`, `auth` for `[auth]`, ...). Adding a
//! section is a section type and a `compile` in its module, plus one field in [`RawConfig`]
//! and one in [`Settings`].

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

use crate::activity::{ConsoleSection, ConsoleSettings};
use crate::auth::{AuthMode, AuthSection, AuthSettings};
use crate::broadcast_api::{BroadcastApiSection, BroadcastApiSettings};
use crate::broker::cloudevents::DaprSection;
use crate::broker::postgresql::PostgresSection;
use crate::broker::redis::anycable::AnyCableSection;
use crate::broker::redis::routed::RedisRouteSection;
use crate::broker::redis::{RedisSection, mask_url};
use crate::broker::solid_cable::SolidCableSection;
use crate::broker::{BrokerSections, BrokerSettings};
use crate::channels::{
    ChannelRegistry, ChannelSection, CompileContext, SignedStreamsSection, SignedStreamsSettings,
    TurboSection,
};
use crate::compat::{ProtocolSection, ProtocolSettings};
use crate::database::{Database, DatabaseSection};
pub use crate::error::ConfigError;
use crate::limits::{Limits, LimitsSection};
use crate::listener::{ServerSection, ServerSettings};
use crate::origin::{OriginPolicy, OriginsSection};
use crate::telemetry::{LogFormat, LoggingSection};

/// The configuration as written: every section with its defaults.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RawConfig {
    /// `[server]`: listener and endpoint.
    pub server: ServerSection,
    /// `[logging]`: log format and filter.
    pub logging: LoggingSection,
    /// `[protocol]`: wire-level behaviour.
    pub protocol: ProtocolSection,
    /// `[origins]`: the Origin check.
    pub origins: OriginsSection,
    /// `[auth]`: connection authentication.
    pub auth: AuthSection,
    /// `[redis]`: Rails' Redis adapter (and the connection AnyCable's and routed channels use).
    pub redis: RedisSection,
    /// `[anycable]`: AnyCable's broadcast format on Redis and `/_broadcast`.
    pub anycable: AnyCableSection,
    /// `[redis_routes.<name>]`: Redis channels of other services, routed to streams.
    pub redis_routes: BTreeMap<String, RedisRouteSection>,
    /// `[postgresql]`: Rails' PostgreSQL adapter (LISTEN/NOTIFY).
    pub postgresql: PostgresSection,
    /// `[solid_cable]`: Solid Cable's table, polled.
    pub solid_cable: SolidCableSection,
    /// `[dapr]`: CloudEvents over HTTP with Dapr's pub/sub contract.
    pub dapr: DaprSection,
    /// `[broadcast_api]`: `POST /_broadcast`.
    pub broadcast_api: BroadcastApiSection,
    /// `[limits]`: bounds on clients.
    pub limits: LimitsSection,
    /// `[console]`: the live console (and development's public streams).
    pub console: ConsoleSection,
    /// `[signed_streams]`: the keys signed stream names are verified with.
    pub signed_streams: SignedStreamsSection,
    /// `[turbo]`: the built-in `Turbo::StreamsChannel`.
    pub turbo: TurboSection,
    /// `[database]`: the Rails app's database (auth lookups, channel predicates).
    pub database: DatabaseSection,
    /// `[channels.<Name>]`: declarative channels, by class name.
    pub channels: BTreeMap<String, ChannelSection>,
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
    /// The flags that were given, as a figment layer.
    fn to_figment(&self) -> Figment {
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

/// The environment variables Rails apps and their platforms already set, and the keys they
/// fill (below `FERROCABLE_*`, which wins). `DATABASE_URL` fills both database inputs'
/// URLs: whichever is enabled reads it.
const CONVENTIONAL_VARIABLES: [(&str, &str); 10] = [
    ("PORT", "server.port"),
    ("REDIS_URL", "redis.url"),
    ("SECRET_KEY_BASE", "auth.secret"),
    ("SECRET_KEY_BASE", "signed_streams.secret_key_base"),
    ("DATABASE_URL", "database.url"),
    ("DATABASE_URL", "solid_cable.database_url"),
    ("DATABASE_URL", "postgresql.url"),
    ("APP_API_TOKEN", "dapr.app_api_token"),
    ("ANYCABLE_SECRET", "anycable.secret"),
    ("ANYCABLE_BROADCAST_KEY", "anycable.broadcast_key"),
];

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
    for (variable, key) in CONVENTIONAL_VARIABLES {
        figment = figment.merge(Env::raw().only(&[variable]).map(move |_| key.into()));
    }
    figment = figment
        .merge(Env::prefixed("FERROCABLE_").split("__"))
        .merge(cli.to_figment());
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

/// The validated configuration the server runs on: one field per section.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `[server]`
    pub server: ServerSettings,
    /// `[logging]`
    pub logging: LoggingSection,
    /// `[protocol]`
    pub protocol: ProtocolSettings,
    /// `[origins]`
    pub origins: Arc<OriginPolicy>,
    /// `[auth]`
    pub auth: Arc<AuthSettings>,
    /// `[redis]`, `[anycable]`, `[redis_routes.*]`, `[postgresql]`, `[solid_cable]`, `[dapr]`
    pub broker: BrokerSettings,
    /// `[broadcast_api]`
    pub broadcast_api: BroadcastApiSettings,
    /// `[limits]`
    pub limits: Limits,
    /// `[console]`
    pub console: ConsoleSettings,
    /// `[database]`, when a URL is set (opened lazily by its first query).
    pub database: Option<Arc<Database>>,
    /// `[channels.<Name>]` (plus `$pubsub` when `console.public_streams` is on)
    pub channels: Arc<ChannelRegistry>,
    /// Problems that are not errors, for `main` to log once logging has started.
    pub warnings: Vec<String>,
}

impl Settings {
    /// Validates every section, failing on the first problem found.
    pub fn from_raw(raw: &RawConfig) -> Result<Settings, ConfigError> {
        let mut warnings = Vec::new();
        let server = ServerSettings::compile(&raw.server)?;
        let protocol = ProtocolSettings::compile(&raw.protocol)?;
        let origins = OriginPolicy::compile(&raw.origins)?;
        let database = Database::compile(&raw.database)?;
        let auth = AuthSettings::compile(
            &raw.auth,
            server.listen.ip(),
            raw.limits.max_token_bytes,
            &protocol,
            database.as_ref(),
        )?;
        let broker = BrokerSettings::compile(
            BrokerSections {
                redis: &raw.redis,
                anycable: &raw.anycable,
                redis_routes: &raw.redis_routes,
                postgresql: &raw.postgresql,
                solid_cable: &raw.solid_cable,
                dapr: &raw.dapr,
            },
            &mut warnings,
        )?;
        let limits = Limits::compile(&raw.limits)?;
        // Development mode: no authentication, reachable from this machine only.
        let development = raw.auth.mode == AuthMode::None && server.listen.ip().is_loopback();
        let console = ConsoleSettings::compile(&raw.console, development)?;
        let broadcast_api = BroadcastApiSettings::compile(
            &raw.broadcast_api,
            broker
                .anycable
                .as_ref()
                .and_then(|a| a.broadcast_key.as_deref()),
        );
        let identifier_names: Vec<String> =
            auth.identifiers.iter().map(|i| i.name.clone()).collect();
        // One secret_key_base for the app: SECRET_KEY_BASE fills both sections; a secret kept
        // in auth.secret_file verifies signed stream names too.
        let mut signed_section = raw.signed_streams.clone();
        if signed_section.secret_key_base.is_empty() && !raw.auth.secret_file.is_empty() {
            signed_section.secret_key_base = crate::auth::secret_key_base(&raw.auth)?;
        }
        let signed_streams =
            SignedStreamsSettings::compile(&signed_section, &raw.turbo, protocol.load_defaults)?;
        let channels = ChannelRegistry::compile(
            &console.with_public_streams(&raw.channels),
            &CompileContext {
                identifiers: &identifier_names,
                global_id_app: auth.global_id_app.as_deref(),
                database: database.as_ref(),
                signed_streams: &signed_streams,
            },
            protocol.compat.base_class_is_channel,
            &mut warnings,
        )?;
        // A DATABASE_URL inherited from the app's environment but used by nothing must not
        // make /health report an outage of a database ferrocable never asks.
        let database = database.filter(|_| {
            let used = auth.lookup.is_some() || channels.uses_database();
            // The broadcast inputs read DATABASE_URL through their own sections.
            let read_by_an_input = broker.solid_cable.is_some() || broker.postgresql.is_some();
            if !used && !read_by_an_input {
                warnings.push(
                    "database.url (DATABASE_URL) is set but no auth.lookup or channel authorize \
                     query uses it: it is ignored"
                        .to_string(),
                );
            }
            used
        });
        Ok(Settings {
            server,
            logging: raw.logging.clone(),
            protocol,
            origins: Arc::new(origins),
            auth: Arc::new(auth),
            broker,
            broadcast_api,
            limits,
            console,
            database,
            channels: Arc::new(channels),
            warnings,
        })
    }

    /// One line for `config check`.
    pub fn summary(&self) -> String {
        let database = match &self.database {
            Some(db) => format!(
                ", database {}",
                serde_json::to_value(db.backend())
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default()
            ),
            None => String::new(),
        };
        format!(
            "listen {}, mount {}, broker {}, auth {}{database}, {} channel(s)",
            self.server.listen,
            self.server.mount_path,
            self.broker.describe(),
            self.auth.describe(),
            self.channels.len()
        )
    }
}

impl RawConfig {
    /// The configuration as TOML with secrets replaced by `***`.
    pub fn to_masked_toml(&self) -> String {
        let mut copy = self.clone();
        for secret in [
            &mut copy.auth.secret,
            &mut copy.broadcast_api.key,
            &mut copy.anycable.secret,
            &mut copy.anycable.broadcast_key,
            &mut copy.dapr.app_api_token,
            &mut copy.signed_streams.secret_key_base,
            &mut copy.turbo.signed_stream_verifier_key,
        ] {
            if !secret.is_empty() {
                *secret = "***".into();
            }
        }
        for channel in copy.channels.values_mut() {
            if let Some(signed) = &mut channel.signed_stream
                && !signed.key.is_empty()
            {
                signed.key = "***".into();
            }
        }
        for url in [
            &mut copy.redis.url,
            &mut copy.database.url,
            &mut copy.postgresql.url,
            &mut copy.solid_cable.database_url,
        ] {
            *url = mask_url(url);
        }
        toml::to_string_pretty(&copy).unwrap_or_else(|e| format!("# cannot print: {e}\n"))
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's closures return figment::Error
mod tests {
    use super::*;
    use figment::Jail;
    use std::time::Duration;

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
            assert_eq!(s.server.listen, "127.0.0.1:8080".parse().unwrap());
            assert_eq!(s.server.mount_path, "/cable");
            assert_eq!(s.broker, BrokerSettings::default());
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
    fn problems_that_are_not_errors_come_back_as_warnings() {
        let mut raw = RawConfig::default();
        raw.turbo.streams_channel = Some(false);
        assert!(Settings::from_raw(&raw).unwrap().warnings.is_empty());
        raw.redis.channel_prefix = "myapp".into();
        let s = Settings::from_raw(&raw).unwrap();
        assert_eq!(s.broker, BrokerSettings::default());
        assert_eq!(s.warnings.len(), 1);
        assert!(
            s.warnings[0].contains("redis.channel_prefix"),
            "{:?}",
            s.warnings
        );
    }

    #[test]
    fn the_check_summary_comes_from_the_settings() {
        let mut raw = RawConfig::default();
        raw.redis.url = "redis://127.0.0.1:6379".into();
        raw.redis.channel_prefix = "app".into();
        raw.auth.mode = AuthMode::Jwt;
        raw.auth.secret = "s".into();
        assert_eq!(
            Settings::from_raw(&raw).unwrap().summary(),
            "listen 127.0.0.1:8080, mount /cable, broker redis 127.0.0.1:6379 (prefix \"app\"), auth jwt HS256, 0 channel(s)"
        );
    }

    #[test]
    fn a_secret_key_base_file_also_verifies_signed_stream_names() {
        let dir = std::env::temp_dir().join(format!("ferrocable-skb-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("secret_key_base");
        std::fs::write(&file, "0123456789abcdef\n").unwrap();
        let mut raw = RawConfig::default();
        assert!(
            Settings::from_raw(&raw)
                .unwrap()
                .channels
                .get("Turbo::StreamsChannel")
                .is_none(),
            "no key, no built-in Turbo channel"
        );
        raw.auth.secret_file = file.display().to_string();
        let s = Settings::from_raw(&raw).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(s.channels.get("Turbo::StreamsChannel").is_some());
    }

    #[test]
    fn an_unused_database_is_ignored_with_a_warning() {
        let mut raw = RawConfig::default();
        raw.database.url = "postgres://db.internal/app".into();
        let s = Settings::from_raw(&raw).unwrap();
        assert!(s.database.is_none());
        assert!(
            s.warnings.iter().any(|w| w.contains("DATABASE_URL")),
            "{:?}",
            s.warnings
        );
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
            "config/examples/turbo.toml",
            "fixtures/configs/hafaloha.toml",
            "fixtures/configs/generic.toml",
            "fixtures/configs/turbo.toml",
            "config/examples/solid_cable.toml",
            "config/examples/postgresql.toml",
            "config/examples/anycable.toml",
            "config/examples/sales_bridge.toml",
            "config/examples/dapr.toml",
            "config/examples/chat.toml",
            "config/examples/shop.toml",
            "config/examples/shop-devise.toml",
        ] {
            let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
            Jail::expect_with(|jail| {
                jail.clear_env();
                jail.set_env("SECRET_KEY_BASE", "test-secret");
                // What the example profiles take from the environment.
                jail.set_env("REDIS_URL", "redis://127.0.0.1:6379/0");
                let database = if file.contains("solid_cable") {
                    "sqlite3:storage/production_cable.sqlite3"
                } else if file.contains("postgresql") {
                    "postgres://app@127.0.0.1:5432/app_production"
                } else {
                    "sqlite:db/production.sqlite3"
                };
                jail.set_env("DATABASE_URL", database);
                let raw = load(Some(&path), &CliOverrides::default())
                    .map_err(|e| format!("{file}: {e}"))?;
                Settings::from_raw(&raw).map_err(|e| format!("{file}: {e}"))?;
                Ok(())
            });
        }
    }
}
