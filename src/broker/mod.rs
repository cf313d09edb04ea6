//! Where broadcasts come from, and where ferrocable's own broadcasts go.
//!
//! - **Inputs** ([`BroadcastInput`]) feed the hub. Each runs its own task, turns what it
//!   receives into (stream, payload) and hands it to the hub in bursts ([`Hub::burst`]),
//!   saying only whether more is already waiting; the hub decides how the frames are written.
//!   Several may be on at once:
//!   - Rails' Redis adapter ([`redis`]), whose connection also carries AnyCable's channel
//!     ([`redis::anycable`]) and routed channels ([`redis::routed`]);
//!   - Rails' PostgreSQL adapter ([`postgresql`], `LISTEN`/`NOTIFY`);
//!   - Solid Cable ([`solid_cable`], polling its table on SQLite or PostgreSQL);
//!   - CloudEvents over HTTP with Dapr's contract ([`cloudevents`], served by `http`).
//!
//!   Inputs that subscribe per stream (Redis streams, PostgreSQL, Solid Cable) acknowledge
//!   each stream in their own [`AckSlot`](crate::hub::AckSlot); a subscription is confirmed once all of them have.
//! - **The publisher** ([`Broker::publish`]) is where `POST /_broadcast`, channel actions and
//!   CloudEvents publish: in the format of the first of Rails' Redis adapter (when
//!   `redis.streams` is on), AnyCable's channel, PostgreSQL `NOTIFY`, so that every node
//!   (and the input above) sees it; straight into the hub when there is none of those
//!   (single node, Solid Cable read-only).
//!
//! A new input is a module here that implements [`BroadcastInput`], owns its config section
//! (a field of [`BrokerSections`]), and is registered in [`Broker::new`].

pub mod cloudevents;
pub mod health;
pub mod postgresql;
mod reconnect;
pub mod redis;
pub mod route;
pub mod solid_cable;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use health::InputStatus;

use crate::error::ConfigError;
use crate::hub::Hub;
use cloudevents::{CloudEventsInput, DaprSection, DaprSettings};
use postgresql::{PostgresInput, PostgresPublisher, PostgresSection, PostgresSettings};
use redis::anycable::{AnyCableSection, AnyCableSettings};
use redis::routed::{RedisRoute, RedisRouteSection};
use redis::{RedisInput, RedisPublisher, RedisSection, RedisSettings};
use solid_cable::{SolidCableInput, SolidCableSection, SolidCableSettings};

/// The configuration sections the broker is built from.
#[derive(Debug, Clone, Copy)]
pub struct BrokerSections<'a> {
    /// `[redis]`
    pub redis: &'a RedisSection,
    /// `[anycable]`
    pub anycable: &'a AnyCableSection,
    /// `[redis_routes.<name>]`
    pub redis_routes: &'a BTreeMap<String, RedisRouteSection>,
    /// `[postgresql]`
    pub postgresql: &'a PostgresSection,
    /// `[solid_cable]`
    pub solid_cable: &'a SolidCableSection,
    /// `[dapr]`
    pub dapr: &'a DaprSection,
}

/// Every input section, checked. All empty: the in-process broker.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BrokerSettings {
    /// `[redis]`, when a URL is set.
    pub redis: Option<Box<RedisSettings>>,
    /// `[anycable]`, when enabled.
    pub anycable: Option<AnyCableSettings>,
    /// `[redis_routes.*]`.
    pub redis_routes: Vec<RedisRoute>,
    /// `[postgresql]`, when enabled.
    pub postgresql: Option<PostgresSettings>,
    /// `[solid_cable]`, when enabled.
    pub solid_cable: Option<SolidCableSettings>,
    /// `[dapr]`, when enabled.
    pub dapr: Option<DaprSettings>,
}

impl BrokerSettings {
    /// Checks every input section. Problems that are not errors are added to `warnings`
    /// (logged once logging has started).
    pub fn compile(
        sections: BrokerSections<'_>,
        warnings: &mut Vec<String>,
    ) -> Result<BrokerSettings, ConfigError> {
        let redis = RedisSettings::compile(sections.redis, warnings)?;
        let has_redis = redis.is_some();
        let settings = BrokerSettings {
            anycable: AnyCableSettings::compile(sections.anycable, has_redis)?,
            redis_routes: RedisRoute::compile_all(sections.redis_routes, has_redis)?,
            postgresql: PostgresSettings::compile(sections.postgresql)?,
            solid_cable: SolidCableSettings::compile(sections.solid_cable)?,
            dapr: DaprSettings::compile(sections.dapr)?,
            redis: redis.map(Box::new),
        };
        if let Some(redis) = &settings.redis
            && !redis.streams
            && settings.anycable.is_none()
            && settings.redis_routes.is_empty()
        {
            warnings.push(
                "redis.streams is off and neither [anycable] nor [redis_routes] is set: Redis is not read at all"
                    .to_string(),
            );
        }
        Ok(settings)
    }

    /// Whether Rails' per-stream Redis channels are read.
    fn redis_streams(&self) -> bool {
        self.redis.as_ref().is_some_and(|r| r.streams)
    }

    /// How many inputs acknowledge subscriptions per stream (the hub's slots, in the order
    /// [`Broker::new`] hands them out).
    pub fn acknowledgers(&self) -> usize {
        usize::from(self.redis_streams())
            + usize::from(self.postgresql.is_some())
            + usize::from(self.solid_cable.is_some())
    }

    /// A few words for `config check` and the start-up log.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(redis) = &self.redis {
            if redis.streams {
                parts.push(format!(
                    "redis {} (prefix {:?})",
                    redis.connector.describe(),
                    redis.channel_prefix
                ));
            }
            if let Some(anycable) = &self.anycable {
                parts.push(format!("anycable ({})", anycable.redis_channel));
            }
            if !self.redis_routes.is_empty() {
                parts.push(format!(
                    "{} routed redis channel(s)",
                    self.redis_routes.len()
                ));
            }
        }
        if let Some(pg) = &self.postgresql {
            parts.push(format!("postgresql (prefix {:?})", pg.channel_prefix));
        }
        if self.solid_cable.is_some() {
            parts.push("solid_cable".to_string());
        }
        if let Some(dapr) = &self.dapr {
            parts.push(format!("cloudevents ({} topic(s))", dapr.topics.len()));
        }
        if parts.is_empty() {
            "in-process".to_string()
        } else {
            parts.join(" + ")
        }
    }
}

/// Rails adds the `:` between cable.yml's `channel_prefix` and the stream: a prefix written
/// with it is refused, naming `key`.
pub(crate) fn check_channel_prefix(key: &str, prefix: &str) -> Result<(), ConfigError> {
    if prefix.ends_with(':') {
        return Err(ConfigError::new(
            key,
            "write the prefix without the trailing ':' (Rails adds it)",
        ));
    }
    Ok(())
}

/// A failed publish.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// Redis refused or dropped the command.
    #[error("redis unavailable: {0}")]
    Redis(#[source] ::redis::RedisError),
    /// PostgreSQL refused the NOTIFY or is unreachable.
    #[error("postgresql unavailable: {0}")]
    Postgres(String),
    /// The broker did not answer in time.
    #[error("broker unavailable: {0} timed out")]
    TimedOut(&'static str),
    /// No node to publish to (Sentinel named none that answered as master).
    #[error("redis unavailable: {0}")]
    Connect(#[source] redis::connect::ConnectError),
    /// The broker's format cannot carry this broadcast.
    #[error("{0}")]
    Refused(String),
}

/// A source of broadcasts that feeds the hub from its own task.
///
/// Nothing here is called per broadcast: the input's task calls the hub directly
/// ([`Hub::burst`]), so delivery involves no dynamic dispatch.
pub trait BroadcastInput: fmt::Debug + Send + Sync {
    /// Short name for logs, `/health` and `/stats` (`redis`).
    fn name(&self) -> &'static str;
    /// Current health.
    fn status(&self) -> InputStatus;
    /// Starts the task that feeds `hub`; it runs until `stop` is cancelled.
    fn spawn(&self, hub: Arc<Hub>, stop: CancellationToken) -> JoinHandle<()>;
}

#[derive(Debug)]
enum Publisher {
    /// Straight into the hub.
    Memory(Arc<Hub>),
    /// `PUBLISH <prefix>:<stream>` in Rails' format.
    Redis(Box<RedisPublisher>),
    /// `PUBLISH __anycable__ {"stream":…,"data":…}`.
    AnyCable(Box<RedisPublisher>, String),
    /// `NOTIFY "<channel>", '<payload>'`.
    Postgres(Box<PostgresPublisher>),
}

/// The configured broker: the publisher and the inputs.
#[derive(Debug)]
pub struct Broker {
    publisher: Publisher,
    inputs: Vec<Box<dyn BroadcastInput>>,
    cloudevents: Option<CloudEventsInput>,
}

impl Broker {
    /// The broker `settings` describe, delivering into `hub` (made with
    /// [`BrokerSettings::acknowledgers`] slots). Inputs start with [`Broker::spawn_inputs`].
    pub fn new(settings: &BrokerSettings, hub: Arc<Hub>, max_json_depth: usize) -> Broker {
        let mut slots = (0..).map(|i| hub.ack_slot(i));
        let mut inputs: Vec<Box<dyn BroadcastInput>> = Vec::new();
        if let Some(redis) = &settings.redis {
            let streams = if redis.streams {
                slots.next().flatten()
            } else {
                None
            };
            inputs.push(Box::new(RedisInput::new(
                redis,
                streams,
                settings.anycable.as_ref().map(|a| a.redis_channel.clone()),
                settings.redis_routes.clone(),
                max_json_depth,
            )));
        }
        if let Some(pg) = &settings.postgresql {
            inputs.push(Box::new(PostgresInput::new(pg, slots.next().flatten())));
        }
        if let Some(solid_cable) = &settings.solid_cable {
            inputs.push(Box::new(SolidCableInput::new(
                solid_cable,
                slots.next().flatten(),
            )));
        }
        let publisher = match (&settings.redis, &settings.anycable, &settings.postgresql) {
            (Some(redis), _, _) if redis.streams => {
                Publisher::Redis(Box::new(RedisPublisher::new(redis)))
            }
            (Some(redis), Some(anycable), _) => Publisher::AnyCable(
                Box::new(RedisPublisher::new(redis)),
                anycable.redis_channel.clone(),
            ),
            (_, _, Some(pg)) => Publisher::Postgres(Box::new(PostgresPublisher::new(pg))),
            _ => Publisher::Memory(hub),
        };
        Broker {
            publisher,
            inputs,
            cloudevents: settings.dapr.as_ref().map(|_| CloudEventsInput::default()),
        }
    }

    /// Starts every input's task; each runs until `stop` is cancelled.
    pub fn spawn_inputs(&self, hub: &Arc<Hub>, stop: &CancellationToken) -> Vec<JoinHandle<()>> {
        self.inputs
            .iter()
            .map(|input| input.spawn(hub.clone(), stop.clone()))
            .collect()
    }

    /// Publishes `payload` (JSON text) on `stream`, as `ActionCable.server.broadcast` would.
    pub async fn publish(&self, stream: &str, payload: Bytes) -> Result<(), PublishError> {
        match &self.publisher {
            Publisher::Memory(hub) => {
                hub.burst(false).dispatch(stream, &payload, None);
                Ok(())
            }
            Publisher::Redis(redis) => redis.publish(stream, payload).await,
            Publisher::AnyCable(redis, channel) => {
                let message = redis::anycable::encode(stream, &payload);
                redis.publish_to(channel, Bytes::from(message)).await
            }
            Publisher::Postgres(pg) => pg.publish(stream, payload).await,
        }
    }

    /// The CloudEvents input, when `[dapr]` is on.
    pub fn cloudevents(&self) -> Option<&CloudEventsInput> {
        self.cloudevents.as_ref()
    }

    /// Every input's health, in configuration order (the in-process broker's when there is
    /// no other): never empty, so the first one can stand for all (`/health`'s `broker`, kept
    /// for clients written before there were several).
    pub fn statuses(&self) -> Vec<InputStatus> {
        let mut all: Vec<InputStatus> = self.inputs.iter().map(|i| i.status()).collect();
        all.extend(self.cloudevents.iter().map(CloudEventsInput::status));
        if all.is_empty() {
            all.push(InputStatus {
                kind: "memory",
                state: "connected",
                ..InputStatus::ready("memory")
            });
        }
        all
    }
}
