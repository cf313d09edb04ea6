//! Rails' Redis cable adapter, read and written in its own format (docs/PROTOCOL.md §4.1–4.2):
//! the `[redis]` section, the publisher (`PUBLISH <prefix>:<stream> <json>`), and the input
//! whose subscriber task is in `subscriber`. How connections are made (TLS, Sentinel) is
//! `connect`'s business; both the publisher and the subscriber ask it for a node each time
//! they (re)connect.

pub mod connect;
mod subscriber;

use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use redis::aio::MultiplexedConnection;
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{BroadcastInput, InputStatus, PublishError};
use crate::error::ConfigError;
use crate::hub::Hub;
use connect::{ConnectionKeys, Purpose, RedisConnector, Role, SentinelEntry, SslParams};

/// How long any single Redis operation may take before the connection is considered dead.
const OP_TIMEOUT: Duration = Duration::from_secs(5);

/// `[redis]`: the keys of Rails' `cable.yml` for the Redis adapter.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RedisSection {
    /// Empty for the in-process broker; `redis://`, `rediss://` (TLS) or `unix://`. With
    /// `sentinels`, the host is the master's name (`redis://mymaster`), as for redis-rb.
    pub url: String,
    /// Rails' channel_prefix.
    pub channel_prefix: String,
    /// TLS for a `rediss://` URL: CA, client certificate, `verify_mode`.
    pub ssl_params: SslParams,
    /// Redis Sentinel: `[{ host, port }]`; the node is found through them.
    pub sentinels: Vec<SentinelEntry>,
    /// The master's name under Sentinel (default: the URL's host).
    pub name: String,
    /// `master` or `replica`: the node to subscribe on under Sentinel.
    pub role: Role,
    /// Password of the Redis nodes, when not in the URL.
    pub password: String,
    /// Password of the sentinels (an entry's own `password` wins).
    pub sentinel_password: String,
}

/// The `[redis]` section, checked.
#[derive(Debug, Clone)]
pub struct RedisSettings {
    /// The URL as configured (its password is masked wherever it is shown).
    pub url: String,
    /// Rails' channel_prefix, without the colon.
    pub channel_prefix: String,
    /// Makes the connections (directly, over TLS, through Sentinel); shared by every user.
    pub connector: Arc<RedisConnector>,
}

impl PartialEq for RedisSettings {
    fn eq(&self, other: &Self) -> bool {
        self.url == other.url && self.channel_prefix == other.channel_prefix
    }
}

impl Eq for RedisSettings {}

impl RedisSettings {
    /// Checks `[redis]`: `None` when no URL is set (the in-process broker), else a URL the
    /// redis crate accepts, its TLS and Sentinel keys (see `connect`), and a prefix without
    /// Rails' colon.
    pub fn compile(
        raw: &RedisSection,
        warnings: &mut Vec<String>,
    ) -> Result<Option<RedisSettings>, ConfigError> {
        if raw.url.is_empty() {
            // Redis keys without Redis are harmless but almost always a forgotten REDIS_URL.
            for (key, set) in [
                ("redis.channel_prefix", !raw.channel_prefix.is_empty()),
                ("redis.sentinels", !raw.sentinels.is_empty()),
            ] {
                if set {
                    warnings.push(format!(
                        "{key} is set but redis.url is empty: using the in-process broker"
                    ));
                }
            }
            return Ok(None);
        }
        let connector = RedisConnector::compile(
            ConnectionKeys {
                url: &raw.url,
                ssl_params: &raw.ssl_params,
                sentinels: &raw.sentinels,
                name: &raw.name,
                role: raw.role,
                password: &raw.password,
                sentinel_password: &raw.sentinel_password,
            },
            warnings,
        )?;
        if raw.channel_prefix.ends_with(':') {
            return Err(ConfigError::new(
                "redis.channel_prefix",
                "write the prefix without the trailing ':' (Rails adds it)",
            ));
        }
        Ok(Some(RedisSettings {
            url: raw.url.clone(),
            channel_prefix: raw.channel_prefix.clone(),
            connector: Arc::new(connector),
        }))
    }
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

/// The Redis channel Rails uses for a stream.
fn channel_name(prefix: &str, stream: &str) -> String {
    if prefix.is_empty() {
        stream.to_string()
    } else {
        format!("{prefix}:{stream}")
    }
}

/// `PUBLISH <prefix>:<stream> <payload>` on a cached connection to the master.
#[derive(Debug)]
pub struct RedisPublisher {
    connector: Arc<RedisConnector>,
    prefix: String,
    /// Cached publishing connection; dropped on error and reopened on the next publish.
    connection: Mutex<Option<MultiplexedConnection>>,
}

impl RedisPublisher {
    /// A publisher; it connects on the first publish.
    pub fn new(settings: &RedisSettings) -> RedisPublisher {
        RedisPublisher {
            connector: settings.connector.clone(),
            prefix: settings.channel_prefix.clone(),
            connection: Mutex::new(None),
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Option<MultiplexedConnection>> {
        self.connection.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Publishes `payload` on `stream`'s channel. A cached connection that fails is replaced
    /// once at once: after a failover Sentinel kills the old master's clients, and the next
    /// connection goes to the new master (like redis-rb, which retries a command once on a
    /// new connection; a PUBLISH whose reply was lost can so be delivered twice).
    pub async fn publish(&self, stream: &str, payload: Bytes) -> Result<(), PublishError> {
        let channel = channel_name(&self.prefix, stream);
        let cached = self.cache().clone();
        let fresh = cached.is_none();
        let mut conn = match cached {
            Some(c) => c,
            None => self.connect().await?,
        };
        match self.publish_on(&mut conn, &channel, &payload).await {
            Err(PublishError::Redis(_)) if !fresh => {
                let mut conn = self.connect().await?;
                self.publish_on(&mut conn, &channel, &payload).await
            }
            other => other,
        }
    }

    async fn connect(&self) -> Result<MultiplexedConnection, PublishError> {
        let connect = async {
            let node = self
                .connector
                .resolve(Purpose::Publish)
                .await
                .map_err(PublishError::Connect)?;
            node.client
                .get_multiplexed_async_connection()
                .await
                .map_err(PublishError::Redis)
        };
        let conn = tokio::time::timeout(OP_TIMEOUT, connect)
            .await
            .map_err(|_| PublishError::TimedOut("connect"))??;
        *self.cache() = Some(conn.clone());
        Ok(conn)
    }

    async fn publish_on(
        &self,
        conn: &mut MultiplexedConnection,
        channel: &str,
        payload: &[u8],
    ) -> Result<(), PublishError> {
        let result = tokio::time::timeout(
            OP_TIMEOUT,
            redis::cmd("PUBLISH")
                .arg(channel)
                .arg(payload)
                .query_async::<i64>(conn),
        )
        .await;
        match result {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => {
                *self.cache() = None;
                Err(PublishError::Redis(e))
            }
            Err(_) => {
                *self.cache() = None;
                Err(PublishError::TimedOut("PUBLISH"))
            }
        }
    }
}

const CONNECTING: u8 = 0;
const CONNECTED: u8 = 1;
const DISCONNECTED: u8 = 2;

/// The subscriber connection's health, written by its task and read by `/health`.
#[derive(Debug)]
struct Health {
    state: AtomicU8,
    connects: AtomicU64,
    /// Reconnections after a loss (the first connection is not one).
    outages: AtomicU64,
    /// Reconnections that landed on another node than before (a Sentinel failover).
    failovers: AtomicU64,
    /// The last outage's gap in milliseconds: from the loss until every live stream was
    /// subscribed again; what was published meanwhile was lost, as with Rails.
    last_gap_ms: AtomicU64,
    down_since: Mutex<Option<Instant>>,
    last_error: Mutex<Option<String>>,
    /// The node subscribed on (`host:port`).
    node: Mutex<Option<String>>,
}

/// What [`Health::connected`] found.
#[derive(Debug)]
struct Reconnection {
    /// The outage's gap; `None` for the first connection.
    gap: Option<Duration>,
    /// The node before, when it differs from the one now.
    moved_from: Option<String>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Health {
    fn new() -> Health {
        Health {
            state: AtomicU8::new(CONNECTING),
            connects: AtomicU64::new(0),
            outages: AtomicU64::new(0),
            failovers: AtomicU64::new(0),
            last_gap_ms: AtomicU64::new(0),
            down_since: Mutex::new(Some(Instant::now())),
            last_error: Mutex::new(None),
            node: Mutex::new(None),
        }
    }

    /// Connected to `node` with every live stream subscribed.
    fn connected(&self, node: &str) -> Reconnection {
        let first = self.connects.fetch_add(1, Ordering::Relaxed) == 0;
        *lock(&self.last_error) = None;
        let down_for = lock(&self.down_since).take().map(|t| t.elapsed());
        let previous = lock(&self.node).replace(node.to_string());
        self.state.store(CONNECTED, Ordering::Release);
        let gap = down_for.filter(|_| !first);
        if let Some(gap) = gap {
            self.outages.fetch_add(1, Ordering::Relaxed);
            self.last_gap_ms
                .store(gap.as_millis() as u64, Ordering::Relaxed);
        }
        let moved_from = previous.filter(|p| p != node);
        if moved_from.is_some() {
            self.failovers.fetch_add(1, Ordering::Relaxed);
        }
        Reconnection { gap, moved_from }
    }

    fn lost(&self, error: &str) {
        self.state.store(DISCONNECTED, Ordering::Release);
        *lock(&self.last_error) = Some(error.to_string());
        lock(&self.down_since).get_or_insert_with(Instant::now);
    }
}

/// Rails' Redis adapter as an input: one subscriber connection, its health.
#[derive(Debug)]
pub struct RedisInput {
    connector: Arc<RedisConnector>,
    prefix: String,
    health: Arc<Health>,
}

impl RedisInput {
    /// An input for `settings`; nothing is connected until it is spawned.
    pub fn new(settings: &RedisSettings) -> RedisInput {
        RedisInput {
            connector: settings.connector.clone(),
            prefix: settings.channel_prefix.clone(),
            health: Arc::new(Health::new()),
        }
    }
}

impl BroadcastInput for RedisInput {
    fn name(&self) -> &'static str {
        "redis"
    }

    fn status(&self) -> InputStatus {
        let health = &self.health;
        let state = health.state.load(Ordering::Acquire);
        let down_for_secs = lock(&health.down_since).map(|t| t.elapsed().as_secs());
        let outages = health.outages.load(Ordering::Relaxed);
        InputStatus {
            kind: self.name(),
            state: match state {
                CONNECTED => "connected",
                CONNECTING => "connecting",
                _ => "disconnected",
            },
            healthy: state == CONNECTED,
            down_for_secs: (state != CONNECTED).then_some(down_for_secs.unwrap_or(0)),
            last_error: lock(&health.last_error).clone(),
            connects: Some(health.connects.load(Ordering::Relaxed)),
            node: lock(&health.node).clone(),
            outages: Some(outages),
            last_gap_ms: (outages > 0).then(|| health.last_gap_ms.load(Ordering::Relaxed)),
            failovers: Some(health.failovers.load(Ordering::Relaxed)),
        }
    }

    fn spawn(&self, hub: Arc<Hub>, stop: CancellationToken) -> JoinHandle<()> {
        let driver = subscriber::Driver::new(
            self.connector.clone(),
            self.prefix.clone(),
            hub,
            self.health.clone(),
            stop,
        );
        tokio::spawn(driver.run())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_names_follow_rails() {
        assert_eq!(
            channel_name("myapp_production", "chat_1"),
            "myapp_production:chat_1"
        );
        assert_eq!(channel_name("", "chat_1"), "chat_1");
    }

    #[test]
    fn health_counts_outages_gaps_and_failovers() {
        let h = Health::new();
        let first = h.connected("10.0.0.1:6379");
        assert!(first.gap.is_none() && first.moved_from.is_none());
        h.lost("connection closed");
        let same = h.connected("10.0.0.1:6379");
        assert!(same.gap.is_some() && same.moved_from.is_none());
        h.lost("connection closed");
        let moved = h.connected("10.0.0.2:6379");
        assert_eq!(moved.moved_from.as_deref(), Some("10.0.0.1:6379"));
        assert_eq!(h.outages.load(Ordering::Relaxed), 2);
        assert_eq!(h.failovers.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn masks_redis_passwords() {
        assert_eq!(mask_url("redis://:pw@h:1/0"), "redis://:***@h:1/0");
        assert_eq!(mask_url("redis://u:pw@h:1"), "redis://u:***@h:1");
        assert_eq!(mask_url("redis://h:1"), "redis://h:1");
    }
}
