//! Rails' PostgreSQL cable adapter (`ActionCable::SubscriptionAdapter::PostgreSQL`, 7.2;
//! docs/PROTOCOL.md §8.1), read and written in its own format:
//!
//! - a stream's channel is `<channel_prefix>:<stream>` (or the stream alone without a prefix),
//!   replaced by its SHA1 hex digest when longer than 63 characters, as 7.2 counts them;
//! - the publisher runs `NOTIFY "<channel>", '<payload>'` (payloads under 8000 bytes, as
//!   PostgreSQL requires);
//! - the input (`listener`) runs `LISTEN "<channel>"` on one dedicated connection for each
//!   live stream and confirms subscriptions only after the `LISTEN` returned, like the Redis
//!   input after `SUBSCRIBE`. It reconnects and LISTENs again after PostgreSQL restarts.
//!
//! PostgreSQL itself truncates identifiers to 63 bytes: a channel of at most 63 characters
//! but more bytes (multibyte names) is cut, on `LISTEN` and `NOTIFY` alike, so the input
//! maps notifications back through the same cut ([`as_postgres_names_it`]).

mod listener;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::health::{Health, InputCounters};
use super::{BroadcastInput, InputStatus, PublishError};
use crate::error::ConfigError;
use crate::hub::{AckSlot, Hub};

/// PostgreSQL refuses NOTIFY payloads of this many bytes or more.
pub const PAYLOAD_LIMIT: usize = 8000;
/// Longest channel name Rails 7.2 uses as is (in characters).
const IDENTIFIER_CHARS: usize = 63;
/// PostgreSQL's identifier limit in bytes (NAMEDATALEN - 1).
const IDENTIFIER_BYTES: usize = 63;
/// How long connecting, or any one statement, may take before the connection counts as lost.
const OP_TIMEOUT: Duration = Duration::from_secs(5);

/// `[postgresql]`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct PostgresSection {
    /// Read broadcasts from Rails' PostgreSQL adapter (and publish with NOTIFY).
    pub enabled: bool,
    /// `postgres://user:password@host:port/db`; `DATABASE_URL` fills it.
    pub url: String,
    /// cable.yml's `channel_prefix`.
    pub channel_prefix: String,
    /// `application_name` of ferrocable's connections (Rails uses `ActionCable-PID-<pid>`).
    pub application_name: String,
}

impl Default for PostgresSection {
    fn default() -> Self {
        PostgresSection {
            enabled: false,
            url: String::new(),
            channel_prefix: String::new(),
            application_name: "ferrocable".into(),
        }
    }
}

/// The `[postgresql]` section, checked.
#[derive(Debug, Clone)]
pub struct PostgresSettings {
    /// The URL as configured (its password is masked wherever it is shown).
    pub url: String,
    /// cable.yml's `channel_prefix`, without Rails' colon.
    pub channel_prefix: String,
    options: PgConnectOptions,
}

impl PartialEq for PostgresSettings {
    fn eq(&self, other: &Self) -> bool {
        self.url == other.url && self.channel_prefix == other.channel_prefix
    }
}

impl Eq for PostgresSettings {}

impl PostgresSettings {
    /// `None` when the section is off; else a URL sqlx accepts.
    pub fn compile(raw: &PostgresSection) -> Result<Option<PostgresSettings>, ConfigError> {
        if !raw.enabled {
            return Ok(None);
        }
        if raw.url.is_empty() {
            return Err(ConfigError::new(
                "postgresql.url",
                "set the database URL (DATABASE_URL), postgres://user:password@host:port/db",
            ));
        }
        if !raw.url.starts_with("postgres://") && !raw.url.starts_with("postgresql://") {
            return Err(ConfigError::new(
                "postgresql.url",
                format!(
                    "{:?} is not a postgres:// URL",
                    crate::broker::redis::mask_url(&raw.url)
                ),
            ));
        }
        let options = PgConnectOptions::from_str(&raw.url)
            .map_err(|e| ConfigError::new("postgresql.url", format!("invalid: {e}")))?
            .application_name(&raw.application_name);
        super::check_channel_prefix("postgresql.channel_prefix", &raw.channel_prefix)?;
        Ok(Some(PostgresSettings {
            url: raw.url.clone(),
            channel_prefix: raw.channel_prefix.clone(),
            options,
        }))
    }

    /// The channel Rails 7.2 uses for `stream`.
    pub fn channel(&self, stream: &str) -> String {
        channel_identifier(&self.channel_prefix, stream)
    }
}

/// Rails 7.2's `channel_identifier(channel_with_prefix(stream))`.
pub fn channel_identifier(prefix: &str, stream: &str) -> String {
    let channel = if prefix.is_empty() {
        stream.to_string()
    } else {
        format!("{prefix}:{stream}")
    };
    if channel.chars().count() > IDENTIFIER_CHARS {
        hex::encode(Sha1::digest(channel.as_bytes()))
    } else {
        channel
    }
}

/// The name PostgreSQL gives a quoted identifier: cut at a NUL (as the driver does), then
/// to at most 63 bytes without splitting a character.
pub fn as_postgres_names_it(identifier: &str) -> &str {
    let identifier = identifier.split('\0').next().unwrap_or("");
    if identifier.len() <= IDENTIFIER_BYTES {
        return identifier;
    }
    let mut end = IDENTIFIER_BYTES;
    while !identifier.is_char_boundary(end) {
        end -= 1;
    }
    &identifier[..end]
}

/// `"name"` with `"` doubled, as `PG::Connection#escape_identifier` writes it.
fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A dollar-quoted literal: immune to `standard_conforming_strings`, needs no escaping.
fn dollar_quote(text: &str) -> String {
    let mut tag = String::from("$fc$");
    let mut n = 0;
    while text.contains(&tag) {
        n += 1;
        tag = format!("$fc{n}$");
    }
    format!("{tag}{text}{tag}")
}

/// `NOTIFY "<channel of stream>", '<payload>'` on a small pool.
#[derive(Debug)]
pub struct PostgresPublisher {
    pool: PgPool,
    prefix: String,
}

impl PostgresPublisher {
    /// A publisher; it connects on the first publish.
    pub fn new(settings: &PostgresSettings) -> PostgresPublisher {
        PostgresPublisher {
            pool: PgPoolOptions::new()
                .max_connections(2)
                .acquire_timeout(OP_TIMEOUT)
                .connect_lazy_with(settings.options.clone()),
            prefix: settings.channel_prefix.clone(),
        }
    }

    /// Publishes `payload` on `stream`'s channel.
    pub async fn publish(&self, stream: &str, payload: Bytes) -> Result<(), PublishError> {
        let text = std::str::from_utf8(&payload)
            .map_err(|_| PublishError::Refused("the payload is not UTF-8".into()))?;
        if payload.len() >= PAYLOAD_LIMIT {
            return Err(PublishError::Refused(format!(
                "PostgreSQL NOTIFY payloads must be shorter than {PAYLOAD_LIMIT} bytes, this one has {}",
                payload.len()
            )));
        }
        if text.contains('\0') {
            return Err(PublishError::Refused("the payload holds a NUL byte".into()));
        }
        let sql = format!(
            "NOTIFY {}, {}",
            quote_identifier(&channel_identifier(&self.prefix, stream)),
            dollar_quote(text)
        );
        match tokio::time::timeout(OP_TIMEOUT, sqlx::raw_sql(&sql).execute(&self.pool)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(PublishError::Postgres(e.to_string())),
            Err(_) => Err(PublishError::TimedOut("NOTIFY")),
        }
    }
}

/// Rails' PostgreSQL adapter as an input: one LISTEN connection, its health.
#[derive(Debug)]
pub struct PostgresInput {
    settings: PostgresSettings,
    slot: Option<AckSlot>,
    health: Arc<Health>,
    counters: Arc<InputCounters>,
}

impl PostgresInput {
    /// An input for `settings` acknowledging in `slot`; nothing connects until it is spawned.
    pub fn new(settings: &PostgresSettings, slot: Option<AckSlot>) -> PostgresInput {
        PostgresInput {
            settings: settings.clone(),
            slot,
            health: Arc::new(Health::default()),
            counters: Arc::new(InputCounters::default()),
        }
    }
}

impl BroadcastInput for PostgresInput {
    fn name(&self) -> &'static str {
        "postgresql"
    }

    fn status(&self) -> InputStatus {
        let mut status = self.health.status(self.name());
        self.counters.fill(&mut status);
        status
    }

    fn spawn(&self, hub: Arc<Hub>, stop: CancellationToken) -> JoinHandle<()> {
        let Some(slot) = self.slot else {
            tracing::error!("the PostgreSQL input has no acknowledgement slot; it is not started");
            return tokio::spawn(async {});
        };
        let driver = listener::Driver {
            options: self.settings.options.clone(),
            prefix: self.settings.channel_prefix.clone(),
            slot,
            hub,
            health: self.health.clone(),
            counters: self.counters.clone(),
            stop,
        };
        tokio::spawn(driver.run())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_names_follow_rails_7_2() {
        assert_eq!(channel_identifier("", "chat_1"), "chat_1");
        assert_eq!(channel_identifier("app", "chat_1"), "app:chat_1");
        // docs/PROTOCOL.md §8.1's worked example (77 characters).
        assert_eq!(
            channel_identifier(
                "myapp_production",
                "order:Z2lkOi8vbXktYXBwL09yZGVyLzE:Z2lkOi8vbXktYXBwL1VzZXIvMQ"
            ),
            "e2f29750f85c371442f9dfc5897eeb4a03b0ad4e"
        );
        let exactly_63 = "s".repeat(63);
        assert_eq!(channel_identifier("", &exactly_63), exactly_63);
        assert_eq!(channel_identifier("", &"s".repeat(64)).len(), 40);
        // 63 characters, 126 bytes: kept by Rails (it counts characters), cut by PostgreSQL.
        let wide = "é".repeat(63);
        assert_eq!(channel_identifier("", &wide), wide);
        assert_eq!(as_postgres_names_it(&wide), "é".repeat(31));
        assert_eq!(as_postgres_names_it("a\0b"), "a");
    }

    #[test]
    fn sql_quoting() {
        assert_eq!(quote_identifier(r#"a"b"#), r#""a""b""#);
        assert_eq!(dollar_quote("it's"), "$fc$it's$fc$");
        assert_eq!(dollar_quote("x$fc$y"), "$fc1$x$fc$y$fc1$");
    }

    #[test]
    fn the_section_is_checked() {
        let on = |url: &str| PostgresSection {
            enabled: true,
            url: url.into(),
            ..PostgresSection::default()
        };
        assert!(
            PostgresSettings::compile(&PostgresSection::default())
                .unwrap()
                .is_none()
        );
        assert_eq!(
            PostgresSettings::compile(&on("")).unwrap_err().key,
            "postgresql.url"
        );
        assert_eq!(
            PostgresSettings::compile(&on("mysql://x")).unwrap_err().key,
            "postgresql.url"
        );
        assert!(
            PostgresSettings::compile(&on("postgres://u:p@127.0.0.1:5432/db"))
                .unwrap()
                .is_some()
        );
    }
}
