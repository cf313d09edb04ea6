//! Rails' Redis cable adapter, read and written in its own format (docs/PROTOCOL.md §4.1–4.2):
//! the `[redis]` section, the publisher (`PUBLISH <prefix>:<stream> <json>`), and the input
//! whose subscriber task is in `subscriber`. The same connection also carries AnyCable's
//! channel (`anycable`) and routed channels (`routed`), read in `fixed`. How connections are
//! made (TLS, Sentinel) is `connect`'s business; both the publisher and the subscriber ask it
//! for a node each time they (re)connect.

pub mod anycable;
pub mod connect;
mod fixed;
pub mod routed;
mod subscriber;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use redis::aio::MultiplexedConnection;
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::health::{Health, InputCounters};
use super::{BroadcastInput, InputStatus, PublishError};
use crate::error::ConfigError;
use crate::hub::{AckSlot, Hub};
use connect::{ConnectionKeys, Purpose, RedisConnector, Role, SentinelEntry, SslParams};
use fixed::FixedChannels;

/// How long any single Redis operation may take before the connection is considered dead.
const OP_TIMEOUT: Duration = Duration::from_secs(5);

/// `[redis]`: the keys of Rails' `cable.yml` for the Redis adapter.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
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
    /// SUBSCRIBE `<prefix>:<stream>` per live stream (Rails' Redis adapter). Off when Redis
    /// only carries AnyCable's channel or routed channels.
    pub streams: bool,
}

impl Default for RedisSection {
    fn default() -> Self {
        RedisSection {
            url: String::new(),
            channel_prefix: String::new(),
            ssl_params: SslParams::default(),
            sentinels: Vec::new(),
            name: String::new(),
            role: Role::default(),
            password: String::new(),
            sentinel_password: String::new(),
            streams: true,
        }
    }
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
    /// Whether Rails' per-stream channels are read (and written by the publisher).
    pub streams: bool,
}

impl PartialEq for RedisSettings {
    fn eq(&self, other: &Self) -> bool {
        self.url == other.url
            && self.channel_prefix == other.channel_prefix
            && self.streams == other.streams
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
        super::check_channel_prefix("redis.channel_prefix", &raw.channel_prefix)?;
        Ok(Some(RedisSettings {
            url: raw.url.clone(),
            channel_prefix: raw.channel_prefix.clone(),
            connector: Arc::new(connector),
            streams: raw.streams,
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
        self.publish_to(&channel_name(&self.prefix, stream), payload)
            .await
    }

    /// Publishes `payload` on `channel` as is (AnyCable's channel).
    pub async fn publish_to(&self, channel: &str, payload: Bytes) -> Result<(), PublishError> {
        let cached = self.cache().clone();
        let fresh = cached.is_none();
        let mut conn = match cached {
            Some(c) => c,
            None => self.connect().await?,
        };
        match self.publish_on(&mut conn, channel, &payload).await {
            Err(PublishError::Redis(_)) if !fresh => {
                let mut conn = self.connect().await?;
                self.publish_on(&mut conn, channel, &payload).await
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

/// Rails' Redis adapter as an input: one subscriber connection, its health, and the fixed
/// channels (AnyCable's, routed) it also reads.
#[derive(Debug)]
pub struct RedisInput {
    connector: Arc<RedisConnector>,
    prefix: String,
    /// The hub's slot for the per-stream channels; `None` when `redis.streams` is off.
    streams: Option<AckSlot>,
    fixed: Arc<FixedChannels>,
    health: Arc<Health>,
    counters: Arc<InputCounters>,
}

impl RedisInput {
    /// An input for `settings`, reading AnyCable's channel and `routes` too; nothing is
    /// connected until it is spawned. `streams`: the hub's slot for Rails' per-stream
    /// channels (`None` when they are off).
    pub fn new(
        settings: &RedisSettings,
        streams: Option<AckSlot>,
        anycable_channel: Option<String>,
        routes: Vec<routed::RedisRoute>,
        max_depth: usize,
    ) -> RedisInput {
        let counters = Arc::new(InputCounters::default());
        RedisInput {
            connector: settings.connector.clone(),
            prefix: settings.channel_prefix.clone(),
            streams,
            fixed: Arc::new(FixedChannels::new(
                anycable_channel,
                routes,
                max_depth,
                counters.clone(),
            )),
            health: Arc::new(Health::default()),
            counters,
        }
    }
}

impl BroadcastInput for RedisInput {
    fn name(&self) -> &'static str {
        "redis"
    }

    fn status(&self) -> InputStatus {
        let mut status = self.health.status(self.name());
        let (channels, patterns) = (self.fixed.channels(), self.fixed.patterns());
        if !channels.is_empty() || !patterns.is_empty() {
            // Rails' per-stream messages are not counted (the hub counts every broadcast).
            self.counters.fill(&mut status);
            status.detail = Some(serde_json::json!({
                "streams": self.streams.is_some(),
                "channels": channels,
                "patterns": patterns,
            }));
        }
        status
    }

    fn spawn(&self, hub: Arc<Hub>, stop: CancellationToken) -> JoinHandle<()> {
        let driver = subscriber::Driver::new(
            self.connector.clone(),
            self.prefix.clone(),
            self.streams,
            self.fixed.clone(),
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
    fn masks_redis_passwords() {
        assert_eq!(mask_url("redis://:pw@h:1/0"), "redis://:***@h:1/0");
        assert_eq!(mask_url("redis://u:pw@h:1"), "redis://u:***@h:1");
        assert_eq!(mask_url("redis://h:1"), "redis://h:1");
    }
}
