//! Counters and gauges behind `GET /stats` and `GET /metrics`. [`Stats`] serialises as it is:
//! its field names are the JSON keys (with the hub's and the broker's numbers beside them, see
//! `shared`); `metrics` exposes the same numbers in Prometheus' format.
//!
//! Hot-path counters (frames delivered, inbound messages, delivery latency) are striped over
//! cache lines so that two cores delivering to different connections do not fight over one
//! atomic. Nothing here locks or allocates on the delivery path.

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde::{Serialize, Serializer};

const STRIPES: usize = 16;

/// A moment on a process-wide microsecond clock, small enough to travel with a connection's
/// queue for free (an `Option<Stamp>` is four bytes and fits in padding). It wraps after 71
/// minutes, so only spans shorter than that (every delivery latency) are measured with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp(NonZeroU32);

impl Stamp {
    /// Now.
    pub fn now() -> Stamp {
        static EPOCH: OnceLock<Instant> = OnceLock::new();
        let micros = EPOCH.get_or_init(Instant::now).elapsed().as_micros() as u32;
        // Zero is the niche that makes `Option<Stamp>` small; one microsecond off is nothing.
        Stamp(NonZeroU32::new(micros).unwrap_or(NonZeroU32::MIN))
    }

    /// A number that differs from one stamp to the next, to choose a stripe with where no
    /// connection id is at hand.
    pub fn spread(self) -> u64 {
        u64::from(self.0.get())
    }

    /// Time from `self` to `later`.
    pub fn until(self, later: Stamp) -> Duration {
        Duration::from_micros(u64::from(later.0.get().wrapping_sub(self.0.get())))
    }
}

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

/// Upper bounds of the delivery latency buckets, in microseconds (the last bucket, +Inf, is
/// implicit): from 50 µs (a direct write on an idle server) to 5 s.
pub const LATENCY_BOUNDS_US: [u64; 16] = [
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 5_000_000,
];

#[repr(align(64))]
#[derive(Debug, Default)]
struct HistogramStripe {
    /// Per bucket (not cumulative); the last is +Inf.
    buckets: [AtomicU64; LATENCY_BOUNDS_US.len() + 1],
    sum_us: AtomicU64,
}

/// A latency histogram many threads observe (once per broadcast or per batch, never per
/// delivery) and a scrape reads: striped like [`StripedCounter`], no lock.
#[derive(Debug, Default)]
pub struct LatencyHistogram {
    stripes: [HistogramStripe; STRIPES],
}

/// What a [`LatencyHistogram`] holds at one moment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LatencySnapshot {
    /// Upper bounds of the buckets, in seconds (+Inf implicit, last).
    pub bounds_secs: Vec<f64>,
    /// Observations per bucket (not cumulative), +Inf last.
    pub counts: Vec<u64>,
    /// Every observation.
    pub count: u64,
    /// Sum of every observation, in seconds.
    pub sum_secs: f64,
}

impl LatencyHistogram {
    /// Records `latency` on the stripe chosen by `key` (e.g. a connection id).
    pub fn observe(&self, key: u64, latency: Duration) {
        let us = latency.as_micros().min(u128::from(u64::MAX)) as u64;
        let bucket = LATENCY_BOUNDS_US.partition_point(|&bound| bound < us);
        let stripe = &self.stripes[(key as usize) % STRIPES];
        stripe.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        stripe.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// The buckets summed over the stripes.
    pub fn snapshot(&self) -> LatencySnapshot {
        let mut counts = [0u64; LATENCY_BOUNDS_US.len() + 1];
        let mut sum_us = 0;
        for stripe in &self.stripes {
            for (total, bucket) in counts.iter_mut().zip(&stripe.buckets) {
                *total += bucket.load(Ordering::Relaxed);
            }
            sum_us += stripe.sum_us.load(Ordering::Relaxed);
        }
        LatencySnapshot {
            bounds_secs: LATENCY_BOUNDS_US
                .iter()
                .map(|&us| us as f64 / 1e6)
                .collect(),
            counts: counts.to_vec(),
            count: counts.iter().sum(),
            sum_secs: sum_us as f64 / 1e6,
        }
    }
}

impl Serialize for LatencyHistogram {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.snapshot().serialize(serializer)
    }
}

/// Refused connections by reason (`AuthError::reason`). Refusals are rare and never on the
/// delivery path, so a mutex is fine; the set of reasons is fixed, so the map stays small.
#[derive(Debug, Default)]
pub struct ReasonCounts(Mutex<BTreeMap<&'static str, u64>>);

impl ReasonCounts {
    /// Counts one `reason`.
    pub fn add(&self, reason: &'static str) {
        *self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(reason)
            .or_default() += 1;
    }

    /// Every reason seen, with its count.
    pub fn snapshot(&self) -> BTreeMap<&'static str, u64> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Serialize for ReasonCounts {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.snapshot().serialize(serializer)
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
    /// Frames that never reached a socket: dropped with an overflowing queue (too slow) or
    /// lost with a failed write.
    pub frames_failed: AtomicU64,
    /// Messages received from clients (text and binary frames).
    pub client_messages: StripedCounter,
    /// Of those, the ones that were not a command Rails would run (unparseable, unknown,
    /// too deep, binary): logged and ignored.
    pub client_messages_failed: AtomicU64,
    /// From a broadcast's arrival at the hub to the socket write that carried it: once per
    /// broadcast fanned out at once (until its last frame was handed over), once per batch a
    /// connection's task wrote (since the batch started: the arrival of the broadcast that
    /// opened it when fanned out queued, else when its first frame had to be queued).
    pub delivery_latency: LatencyHistogram,
    /// Pings that went out in the same write as a broadcast frame (see `outbox::beat`).
    pub pings_carried: StripedCounter,
    /// Pings the ping timer's sweep sent on their own, to connections nothing else was written
    /// to early in the beat.
    pub pings_sent_alone: StripedCounter,
    /// Connections refused by authentication.
    pub unauthorized_connections: AtomicU64,
    /// Those refusals by reason (`no_token`, `bad_signature`, `expired`, ...).
    pub auth_refusals: ReasonCounts,
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
    fn latency_buckets_are_bounded_inclusively() {
        let h = LatencyHistogram::default();
        h.observe(1, Duration::from_micros(50));
        h.observe(2, Duration::from_micros(51));
        h.observe(3, Duration::from_secs(60));
        let s = h.snapshot();
        assert_eq!(s.counts.len(), LATENCY_BOUNDS_US.len() + 1);
        assert_eq!(s.counts[0], 1, "50 µs is in le=50µs");
        assert_eq!(s.counts[1], 1);
        assert_eq!(
            *s.counts.last().unwrap(),
            1,
            "a minute is beyond every bound"
        );
        assert_eq!(s.count, 3);
        assert_eq!(s.bounds_secs[0], 0.00005);
        assert!((s.sum_secs - 60.000101).abs() < 1e-9);
    }

    #[test]
    fn stamps_measure_across_the_wrap() {
        let before = Stamp(NonZeroU32::new(u32::MAX - 10).unwrap());
        assert_eq!(
            before.until(Stamp(NonZeroU32::new(5).unwrap())),
            Duration::from_micros(16)
        );
        assert_eq!(std::mem::size_of::<Option<Stamp>>(), 4);
        let now = Stamp::now();
        assert!(now.until(Stamp::now()) < Duration::from_secs(1));
    }

    #[test]
    fn striped_counter_sums() {
        let c = StripedCounter::default();
        for k in 0..100 {
            c.add(k, 2);
        }
        assert_eq!(c.get(), 200);
    }
}
