//! Where broadcasts come from and go to.
//!
//! - In-process ([`Broker::Memory`]): single node. `publish` hands the payload straight to
//!   the hub; streams are live as soon as someone subscribes.
//! - Redis ([`Broker::Redis`]): Rails' Redis adapter format, `PUBLISH <prefix>:<stream>
//!   <json>`, so Rails apps keep publishing with `ActionCable.server.broadcast` and every
//!   ferrocable node sharing the Redis sees every broadcast. See [`redis`].

pub mod redis;

use std::sync::Arc;

use bytes::Bytes;

use crate::hub::Hub;

/// A failed publish.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// Redis could not be reached or did not answer in time.
    #[error("redis unavailable: {0}")]
    Unavailable(String),
}

/// The broker's health, for `/health` and `/stats`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BrokerStatus {
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
    /// Times the subscriber connection was (re)established.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connects: Option<u64>,
}

/// The configured broker.
#[derive(Debug)]
pub enum Broker {
    /// In-process.
    Memory(Arc<Hub>),
    /// Rails' Redis adapter.
    Redis(Box<redis::RedisBroker>),
}

impl Broker {
    /// Publishes `payload` (JSON text) on `stream`, as `ActionCable.server.broadcast` would.
    pub async fn publish(&self, stream: &str, payload: Bytes) -> Result<(), PublishError> {
        match self {
            Broker::Memory(hub) => {
                hub.broadcast(stream, &payload, true);
                Ok(())
            }
            Broker::Redis(redis) => redis.publish(stream, payload).await,
        }
    }

    /// Current health.
    pub fn status(&self) -> BrokerStatus {
        match self {
            Broker::Memory(_) => BrokerStatus {
                kind: "memory",
                state: "connected",
                healthy: true,
                down_for_secs: None,
                last_error: None,
                connects: None,
            },
            Broker::Redis(redis) => redis.status(),
        }
    }
}
