//! Where broadcasts come from, and where ferrocable's own broadcasts go.
//!
//! - **Inputs** ([`BroadcastInput`]) feed the hub. Each runs its own task, turns what it
//!   receives into (stream, payload) and hands it to the hub in bursts ([`Hub::burst`]),
//!   saying only whether more is already waiting; the hub decides how the frames are written.
//!   Today there is one: Rails' Redis adapter ([`redis`]).
//! - **The publisher** ([`Broker::publish`]) is where `POST /_broadcast` and channel actions
//!   publish: straight into the hub when there is no external broker (single node), else in
//!   the external broker's format, so that every node (and the input above) sees it.
//!
//! A new input (Solid Cable, PostgreSQL `LISTEN`, ...) is a module here that implements
//! [`BroadcastInput`], owns its config section, and is registered in [`Broker::new`].

pub mod redis;

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::error::ConfigError;
use crate::hub::Hub;
use redis::{RedisInput, RedisPublisher, RedisSection, RedisSettings};

/// Which broker the `[redis]` section (and, later, other input sections) describe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrokerSettings {
    /// In-process: single node, fed by `POST /_broadcast` and channel actions.
    Memory,
    /// Rails' Redis adapter format.
    Redis(Box<RedisSettings>),
}

impl BrokerSettings {
    /// Checks `[redis]`; an empty URL means the in-process broker. Problems that are not errors
    /// are added to `warnings` (logged once logging has started).
    pub fn compile(
        redis: &RedisSection,
        warnings: &mut Vec<String>,
    ) -> Result<BrokerSettings, ConfigError> {
        Ok(match RedisSettings::compile(redis, warnings)? {
            Some(settings) => BrokerSettings::Redis(Box::new(settings)),
            None => BrokerSettings::Memory,
        })
    }

    /// Whether streams must wait for an input's acknowledgement before subscriptions to them
    /// are confirmed ("confirmed means live"): true for Redis, whose SUBSCRIBE has a reply.
    pub fn confirms_subscriptions(&self) -> bool {
        matches!(self, BrokerSettings::Redis(_))
    }

    /// A few words for `config check` and the start-up log.
    pub fn describe(&self) -> String {
        match self {
            BrokerSettings::Memory => "in-process".to_string(),
            BrokerSettings::Redis(redis) => format!(
                "redis {} (prefix {:?})",
                redis.connector.describe(),
                redis.channel_prefix
            ),
        }
    }
}

/// A failed publish.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// Redis refused or dropped the command.
    #[error("redis unavailable: {0}")]
    Redis(#[source] ::redis::RedisError),
    /// Redis did not answer in time.
    #[error("redis unavailable: {0} timed out")]
    TimedOut(&'static str),
    /// No node to publish to (Sentinel named none that answered as master).
    #[error("redis unavailable: {0}")]
    Connect(#[source] redis::connect::ConnectError),
}

/// An input's health, for `/health` and `/stats`.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct InputStatus {
    /// `memory` or `redis`.
    pub kind: &'static str,
    /// `connected`, `connecting` or `disconnected`.
    pub state: &'static str,
    /// Whether broadcasts can flow right now.
    pub healthy: bool,
    /// Seconds since the connection was lost, while it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub down_for_secs: Option<u64>,
    /// The last connection error, while disconnected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Times the connection was (re)established.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connects: Option<u64>,
    /// Where it is connected (`host:port`), for inputs that connect somewhere.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Times the connection was lost and re-established.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outages: Option<u64>,
    /// The last outage's gap, from the loss until every live stream was subscribed again:
    /// broadcasts published meanwhile were lost (as with Rails).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_gap_ms: Option<u64>,
    /// Reconnections that landed on another node (a Sentinel failover).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failovers: Option<u64>,
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
    /// `PUBLISH` in Rails' format.
    Redis(Box<RedisPublisher>),
}

/// The configured broker: the publisher and the inputs.
#[derive(Debug)]
pub struct Broker {
    publisher: Publisher,
    // One input today. With several (Solid Cable, PostgreSQL and AnyCable inputs are planned), `/health` and `/stats` grow an
    // `inputs` list and the hub one acknowledgement set per confirming input (see
    // `hub::Interest`); `status` below stays the first input's, for existing clients.
    inputs: Vec<Box<dyn BroadcastInput>>,
}

impl Broker {
    /// The broker `settings` describe, delivering into `hub`. Inputs start with
    /// [`Broker::spawn_inputs`].
    pub fn new(settings: &BrokerSettings, hub: Arc<Hub>) -> Broker {
        match settings {
            BrokerSettings::Memory => Broker {
                publisher: Publisher::Memory(hub),
                inputs: Vec::new(),
            },
            BrokerSettings::Redis(redis) => Broker {
                publisher: Publisher::Redis(Box::new(RedisPublisher::new(redis))),
                inputs: vec![Box::new(RedisInput::new(redis))],
            },
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
                hub.burst(false).dispatch(stream, &payload, true);
                Ok(())
            }
            Publisher::Redis(redis) => redis.publish(stream, payload).await,
        }
    }

    /// Current health: the input's, or the in-process broker's (always up).
    pub fn status(&self) -> InputStatus {
        match self.inputs.first() {
            Some(input) => input.status(),
            None => memory_status(),
        }
    }

    /// Every input's health (the in-process broker's alone when there is none), for
    /// `/metrics`.
    pub fn statuses(&self) -> Vec<InputStatus> {
        if self.inputs.is_empty() {
            return vec![memory_status()];
        }
        self.inputs.iter().map(|input| input.status()).collect()
    }
}

/// The in-process broker is always up.
fn memory_status() -> InputStatus {
    InputStatus {
        kind: "memory",
        state: "connected",
        healthy: true,
        ..InputStatus::default()
    }
}
