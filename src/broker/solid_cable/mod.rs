//! Solid Cable (the Rails 8 default, ≥ 3.0 schema; docs/PROTOCOL.md §8.2): broadcasts are
//! rows of `solid_cable_messages(id, channel, payload, created_at, channel_hash)` that Rails
//! INSERTs; ferrocable polls for new ones, on SQLite (read-only, the file Rails writes in WAL
//! mode) or PostgreSQL.
//!
//! - `channel` is `<channel_prefix>:<stream>` (the stream alone without a prefix) and
//!   `channel_hash` the first 8 bytes of its SHA256 as a signed big-endian integer
//!   ([`channel_hash`]);
//! - the poller (`poller`) starts at the newest row (no history is replayed), reads every
//!   `polling_interval_ms` the rows past its position, delivers those of live streams in id
//!   order, and keeps going after trims (rows deleted under it), database restarts and
//!   bursts (a full batch is followed by the next query at once). Ids that were skipped but
//!   may still commit (PostgreSQL sequences hand ids out before commit) are looked at again
//!   for `gap_timeout_ms`, so a slow transaction's row is not lost; no row is delivered twice.
//! - the SQL and the row decoding are in `db`.
//!
//! Rails confirms a Solid Cable subscription at once; ferrocable confirms once the poller,
//! connected, has noted the stream (immediately while the database is reachable; else once it
//! is back), so "confirmed means live" holds.

mod db;
mod poller;

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::postgres::PgConnectOptions;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::health::{Health, InputCounters};
use super::{BroadcastInput, InputStatus};
use crate::error::ConfigError;
use crate::hub::{AckSlot, Hub};

/// `[solid_cable]`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SolidCableSection {
    /// Read broadcasts from Solid Cable's table.
    pub enabled: bool,
    /// The cable database: `sqlite3:storage/production_cable.sqlite3` (also `sqlite:` and
    /// `sqlite3:///absolute/path`) or `postgres://...`; `DATABASE_URL` fills it.
    pub database_url: String,
    /// cable.yml's `channel_prefix` (Solid Cable's install template sets none).
    pub channel_prefix: String,
    /// cable.yml's `polling_interval`, in milliseconds.
    pub polling_interval_ms: u64,
    /// Most rows read per query; a full batch is followed by the next query at once.
    pub batch_size: u32,
    /// Rows with a larger payload are skipped (counted and logged), never read into memory.
    pub max_payload_bytes: u64,
    /// How long an id skipped by the rows read so far is looked for again (a PostgreSQL
    /// transaction that took its id earlier but committed later).
    pub gap_timeout_ms: u64,
}

impl Default for SolidCableSection {
    fn default() -> Self {
        SolidCableSection {
            enabled: false,
            database_url: String::new(),
            channel_prefix: String::new(),
            polling_interval_ms: 100,
            batch_size: 1000,
            max_payload_bytes: 1024 * 1024,
            gap_timeout_ms: 5000,
        }
    }
}

/// Where the table is.
#[derive(Debug, Clone)]
pub enum Location {
    /// A SQLite file, opened read-only.
    Sqlite(PathBuf),
    /// A PostgreSQL database.
    Postgres(Box<PgConnectOptions>),
}

/// The `[solid_cable]` section, checked.
#[derive(Debug, Clone)]
pub struct SolidCableSettings {
    /// The URL as configured (its password is masked wherever it is shown).
    pub database_url: String,
    /// cable.yml's `channel_prefix`, without Rails' colon.
    pub channel_prefix: String,
    /// Time between polls.
    pub polling_interval: Duration,
    /// Rows per query.
    pub batch_size: u32,
    /// Largest payload delivered.
    pub max_payload_bytes: u64,
    /// How long a skipped id is looked for again.
    pub gap_timeout: Duration,
    location: Location,
}

impl PartialEq for SolidCableSettings {
    fn eq(&self, other: &Self) -> bool {
        self.database_url == other.database_url
            && self.channel_prefix == other.channel_prefix
            && self.polling_interval == other.polling_interval
    }
}

impl Eq for SolidCableSettings {}

impl SolidCableSettings {
    /// `None` when the section is off.
    pub fn compile(raw: &SolidCableSection) -> Result<Option<SolidCableSettings>, ConfigError> {
        if !raw.enabled {
            return Ok(None);
        }
        let key = |k: &str| format!("solid_cable.{k}");
        let location = parse_location(&raw.database_url)
            .map_err(|problem| ConfigError::new(key("database_url"), problem))?;
        if raw.polling_interval_ms == 0 {
            return Err(ConfigError::new(
                key("polling_interval_ms"),
                "must be at least 1 (Solid Cable's default is 100)",
            ));
        }
        if raw.batch_size == 0 {
            return Err(ConfigError::new(key("batch_size"), "must be at least 1"));
        }
        if raw.max_payload_bytes == 0 {
            return Err(ConfigError::new(
                key("max_payload_bytes"),
                "must be at least 1",
            ));
        }
        super::check_channel_prefix(&key("channel_prefix"), &raw.channel_prefix)?;
        Ok(Some(SolidCableSettings {
            database_url: raw.database_url.clone(),
            channel_prefix: raw.channel_prefix.clone(),
            polling_interval: Duration::from_millis(raw.polling_interval_ms),
            batch_size: raw.batch_size,
            max_payload_bytes: raw.max_payload_bytes,
            gap_timeout: Duration::from_millis(raw.gap_timeout_ms),
            location,
        }))
    }

    /// The `channel` column's value for `stream`.
    pub fn channel(&self, stream: &str) -> String {
        if self.channel_prefix.is_empty() {
            stream.to_string()
        } else {
            format!("{}:{stream}", self.channel_prefix)
        }
    }
}

fn parse_location(url: &str) -> Result<Location, String> {
    if url.is_empty() {
        return Err(
            "set the cable database (DATABASE_URL): sqlite3:storage/production_cable.sqlite3 or postgres://..."
                .into(),
        );
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| format!("invalid: {e}"))?
            .application_name("ferrocable-solid-cable");
        return Ok(Location::Postgres(Box::new(options)));
    }
    for scheme in ["sqlite3:", "sqlite:"] {
        if let Some(rest) = url.strip_prefix(scheme) {
            let rest = rest.strip_prefix("//").unwrap_or(rest);
            let path = rest.split('?').next().unwrap_or("");
            if path.is_empty() {
                return Err(format!("{url:?} names no file"));
            }
            return Ok(Location::Sqlite(PathBuf::from(path)));
        }
    }
    Err(format!(
        "{:?} is neither a sqlite3: nor a postgres:// URL (Solid Cable on MySQL is not supported)",
        super::redis::mask_url(url)
    ))
}

/// Solid Cable's `channel_hash_for`: the first 8 bytes of SHA256(channel), read as a signed
/// big-endian 64-bit integer.
pub fn channel_hash(channel: &str) -> i64 {
    let digest = Sha256::digest(channel.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(first)
}

/// What the poller reports beyond its connection's health.
#[derive(Debug, Default)]
pub(crate) struct Progress {
    /// The highest id read.
    pub(crate) last_id: Option<i64>,
    /// Skipped ids still looked for.
    pub(crate) gaps: usize,
    /// Skipped ids given up on (their rows, if any, were never seen).
    pub(crate) gaps_abandoned: u64,
}

/// Solid Cable as an input: one poller, its health.
#[derive(Debug)]
pub struct SolidCableInput {
    settings: SolidCableSettings,
    slot: Option<AckSlot>,
    health: Arc<Health>,
    counters: Arc<InputCounters>,
    progress: Arc<Mutex<Progress>>,
}

impl SolidCableInput {
    /// An input for `settings` acknowledging in `slot`; nothing connects until it is spawned.
    pub fn new(settings: &SolidCableSettings, slot: Option<AckSlot>) -> SolidCableInput {
        SolidCableInput {
            settings: settings.clone(),
            slot,
            health: Arc::new(Health::default()),
            counters: Arc::new(InputCounters::default()),
            progress: Arc::default(),
        }
    }
}

impl BroadcastInput for SolidCableInput {
    fn name(&self) -> &'static str {
        "solid_cable"
    }

    fn status(&self) -> InputStatus {
        let mut status = self.health.status(self.name());
        self.counters.fill(&mut status);
        let progress = self.progress.lock().unwrap_or_else(|e| e.into_inner());
        status.detail = Some(serde_json::json!({
            "database": match &self.settings.location {
                Location::Sqlite(_) => "sqlite",
                Location::Postgres(_) => "postgresql",
            },
            "last_id": progress.last_id,
            "gaps": progress.gaps,
            "gaps_abandoned": progress.gaps_abandoned,
            "polling_interval_ms": self.settings.polling_interval.as_millis() as u64,
        }));
        status
    }

    fn spawn(&self, hub: Arc<Hub>, stop: CancellationToken) -> JoinHandle<()> {
        let Some(slot) = self.slot else {
            tracing::error!("the Solid Cable input has no acknowledgement slot; it is not started");
            return tokio::spawn(async {});
        };
        let driver = poller::Driver {
            settings: self.settings.clone(),
            slot,
            hub,
            health: self.health.clone(),
            counters: self.counters.clone(),
            progress: self.progress.clone(),
            stop,
            position: Default::default(),
            wanted: Default::default(),
        };
        tokio::spawn(driver.run())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_hashes_match_solid_cable() {
        // rails-apps.md §4 / docs/PROTOCOL.md §8.2's worked examples.
        assert_eq!(channel_hash("chat_1"), -1934204123788821583);
        assert_eq!(channel_hash("myapp_production:chat_1"), 5436408392182857105);
    }

    #[test]
    fn locations() {
        let sqlite = |url: &str| match parse_location(url) {
            Ok(Location::Sqlite(p)) => p,
            other => panic!("{url}: {other:?}"),
        };
        assert_eq!(
            sqlite("sqlite3:storage/production_cable.sqlite3"),
            PathBuf::from("storage/production_cable.sqlite3")
        );
        assert_eq!(
            sqlite("sqlite3:///var/db/cable.sqlite3"),
            PathBuf::from("/var/db/cable.sqlite3")
        );
        assert_eq!(
            sqlite("sqlite://cable.db?mode=ro"),
            PathBuf::from("cable.db")
        );
        assert!(matches!(
            parse_location("postgres://u@h/db"),
            Ok(Location::Postgres(_))
        ));
        for bad in ["", "sqlite3:", "mysql2://h/db", "redis://h"] {
            assert!(parse_location(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_values_name_their_key() {
        let on = SolidCableSection {
            enabled: true,
            database_url: "sqlite3:x.db".into(),
            ..SolidCableSection::default()
        };
        assert!(SolidCableSettings::compile(&on).unwrap().is_some());
        let cases: [(SolidCableSection, &str); 4] = [
            (
                SolidCableSection {
                    database_url: String::new(),
                    ..on.clone()
                },
                "solid_cable.database_url",
            ),
            (
                SolidCableSection {
                    polling_interval_ms: 0,
                    ..on.clone()
                },
                "solid_cable.polling_interval_ms",
            ),
            (
                SolidCableSection {
                    batch_size: 0,
                    ..on.clone()
                },
                "solid_cable.batch_size",
            ),
            (
                SolidCableSection {
                    channel_prefix: "app:".into(),
                    ..on
                },
                "solid_cable.channel_prefix",
            ),
        ];
        for (section, key) in cases {
            assert_eq!(SolidCableSettings::compile(&section).unwrap_err().key, key);
        }
    }
}
