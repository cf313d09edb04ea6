//! Counters and gauges behind `GET /stats`. [`Stats`] serialises as it is: its field names
//! are the JSON keys (with the hub's and the broker's numbers beside them, see `shared`).
//!
//! Hot-path counters (frames delivered) are striped over cache lines so that two cores
//! delivering to different connections do not fight over one atomic.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use serde::{Serialize, Serializer};

const STRIPES: usize = 16;

#[repr(align(64))]
#[derive(Debug, Default)]
struct Padded(AtomicU64);

/// A counter that many threads bump often and someone reads rarely.
#[derive(Debug, Default)]
pub struct StripedCounter {
    stripes: [Padded; STRIPES],
}

impl StripedCounter {
    /// Adds `n` on the stripe chosen by `key` (e.g. a connection id).
    pub fn add(&self, key: u64, n: u64) {
        self.stripes[(key as usize) % STRIPES]
            .0
            .fetch_add(n, Ordering::Relaxed);
    }

    /// The sum of all stripes.
    pub fn get(&self) -> u64 {
        self.stripes
            .iter()
            .map(|s| s.0.load(Ordering::Relaxed))
            .sum()
    }
}

impl Serialize for StripedCounter {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(self.get())
    }
}

/// Every counter `/stats` reports (each read with a relaxed load when serialised).
#[derive(Debug, Default, Serialize)]
pub struct Stats {
    /// Open WebSocket connections that were welcomed.
    pub connections: AtomicI64,
    /// Active subscriptions (confirmed or pending).
    pub subscriptions: AtomicI64,
    /// Broadcasts that reached the hub (from Redis, `/_broadcast` or actions).
    pub broadcasts_received: AtomicU64,
    /// Broadcasts dropped because their payload is not valid JSON.
    pub broadcasts_invalid: AtomicU64,
    /// Broadcasts whose payload was not already what ActiveSupport writes and was written
    /// again: once per broadcast, never per recipient (the others are spliced as they are).
    pub broadcasts_rewritten: AtomicU64,
    /// Broadcasts fanned out while the dispatcher was behind: queued for the connections'
    /// tasks and coalesced with what else was waiting, instead of written at once.
    pub broadcasts_coalesced: AtomicU64,
    /// Frames written to sockets.
    pub frames_delivered: StripedCounter,
    /// Pings that went out in the same write as a broadcast frame (see `outbox::beat`).
    pub pings_carried: StripedCounter,
    /// Pings the ping timer's sweep sent on their own, to connections nothing else was written
    /// to early in the beat.
    pub pings_sent_alone: StripedCounter,
    /// Connections refused by authentication.
    pub unauthorized_connections: AtomicU64,
    /// Connections closed for not keeping up: outbound queue overflow or a write blocked
    /// past the write timeout.
    pub slow_client_disconnects: AtomicU64,
    /// Of those, the ones whose write stayed blocked past the write timeout.
    pub write_timeouts: AtomicU64,
    /// Upgrade requests refused because `limits.max_connections` was reached.
    pub connection_limit_refusals: AtomicU64,
    /// Inbound messages over `limits.max_message_bytes`.
    pub oversized_messages: AtomicU64,
    /// Subscribes refused by `limits.max_subscriptions_per_connection`.
    pub subscription_limit_rejections: AtomicU64,
    /// Connections closed by `limits.max_commands_per_second`.
    pub rate_limited_disconnects: AtomicU64,
    /// Commands ignored for nesting deeper than `limits.max_json_depth`.
    pub deep_json_commands: AtomicU64,
    /// Tokens refused by `limits.max_token_bytes`.
    pub oversized_tokens: AtomicU64,
    /// Connections closed before sending complete request headers in time.
    pub handshake_timeouts: AtomicU64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn striped_counter_sums() {
        let c = StripedCounter::default();
        for k in 0..100 {
            c.add(k, 2);
        }
        assert_eq!(c.get(), 200);
    }
}
