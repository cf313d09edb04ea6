//! What every input reports about itself: its connection's health (`Health`, written by
//! its task) and its message counters (`InputCounters`), turned into an [`InputStatus`]
//! for `/health` and `/stats`.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

const CONNECTING: u8 = 0;
const CONNECTED: u8 = 1;
const DISCONNECTED: u8 = 2;

/// An input's health, for `/health` and `/stats`.
#[derive(Debug, Clone, Serialize)]
pub struct InputStatus {
    /// `memory`, `redis`, `postgresql`, `solid_cable` or `cloudevents`.
    pub kind: &'static str,
    /// `connected`, `connecting` or `disconnected` (`ready` for inputs without a connection).
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
    /// Messages this input handed to the hub (each may hold several broadcasts).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub messages: Option<u64>,
    /// Messages it refused, by reason (`unroutable`, `malformed`, `oversized`, ...); each
    /// refusal is also logged.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub rejected: BTreeMap<&'static str, u64>,
    /// Input-specific numbers (Solid Cable's position, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<serde_json::Value>,
    /// Where it is connected (`host:port`), for inputs that name their node.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Times the connection was lost and re-established.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outages: Option<u64>,
    /// The last outage's gap, from the loss until the input could deliver again (for Redis:
    /// every live stream subscribed again): what was published meanwhile was lost, as with
    /// Rails.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_gap_ms: Option<u64>,
    /// Reconnections that landed on another node (a Sentinel failover).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failovers: Option<u64>,
}

impl InputStatus {
    /// An input without a connection of its own, always able to deliver.
    pub fn ready(kind: &'static str) -> InputStatus {
        InputStatus {
            kind,
            state: "ready",
            healthy: true,
            down_for_secs: None,
            last_error: None,
            connects: None,
            messages: None,
            rejected: BTreeMap::new(),
            detail: None,
            node: None,
            outages: None,
            last_gap_ms: None,
            failovers: None,
        }
    }
}

/// One connection's health, written by the input's task and read by `/health`.
#[derive(Debug)]
pub(crate) struct Health {
    state: AtomicU8,
    connects: AtomicU64,
    /// Reconnections after a loss (the first connection is not one).
    outages: AtomicU64,
    /// The last outage's length in milliseconds.
    last_gap_ms: AtomicU64,
    /// Reconnections that landed on another node than before.
    failovers: AtomicU64,
    down_since: Mutex<Option<Instant>>,
    last_error: Mutex<Option<String>>,
    /// The node connected to (`host:port`), for inputs that name it.
    node: Mutex<Option<String>>,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            state: AtomicU8::new(CONNECTING),
            connects: AtomicU64::new(0),
            outages: AtomicU64::new(0),
            last_gap_ms: AtomicU64::new(0),
            failovers: AtomicU64::new(0),
            down_since: Mutex::new(Some(Instant::now())),
            last_error: Mutex::new(None),
            node: Mutex::new(None),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Health {
    /// The connection is up (and delivering); returns how long it was down, if it was.
    pub(crate) fn connected(&self) -> Option<Duration> {
        self.state.store(CONNECTED, Ordering::Release);
        let first = self.connects.fetch_add(1, Ordering::Relaxed) == 0;
        *lock(&self.last_error) = None;
        let down_for = lock(&self.down_since).take().map(|t| t.elapsed());
        if let Some(gap) = down_for.filter(|_| !first) {
            self.outages.fetch_add(1, Ordering::Relaxed);
            self.last_gap_ms
                .store(gap.as_millis() as u64, Ordering::Relaxed);
        }
        down_for
    }

    /// Records the node connected to; returns the previous one when it was another (a
    /// failover), counting it.
    pub(crate) fn on_node(&self, node: &str) -> Option<String> {
        let previous = lock(&self.node).replace(node.to_string());
        let moved_from = previous.filter(|p| p != node);
        if moved_from.is_some() {
            self.failovers.fetch_add(1, Ordering::Relaxed);
        }
        moved_from
    }

    /// The connection is down because of `error`.
    pub(crate) fn lost(&self, error: &str) {
        self.state.store(DISCONNECTED, Ordering::Release);
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(error.to_string());
        self.down_since
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert_with(Instant::now);
    }

    pub(crate) fn is_connected(&self) -> bool {
        self.state.load(Ordering::Acquire) == CONNECTED
    }

    /// Times connected so far.
    pub(crate) fn connects(&self) -> u64 {
        self.connects.load(Ordering::Relaxed)
    }

    /// The status `/health` shows for an input of this `kind` with this connection.
    pub(crate) fn status(&self, kind: &'static str) -> InputStatus {
        let state = self.state.load(Ordering::Acquire);
        let outages = self.outages.load(Ordering::Relaxed);
        let node = lock(&self.node).clone();
        let down_for_secs = self
            .down_since
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .map(|t| t.elapsed().as_secs());
        InputStatus {
            kind,
            state: match state {
                CONNECTED => "connected",
                CONNECTING => "connecting",
                _ => "disconnected",
            },
            healthy: state == CONNECTED,
            down_for_secs: (state != CONNECTED).then_some(down_for_secs.unwrap_or(0)),
            last_error: self
                .last_error
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            connects: Some(self.connects()),
            messages: None,
            rejected: BTreeMap::new(),
            detail: None,
            outages: Some(outages),
            last_gap_ms: (outages > 0).then(|| self.last_gap_ms.load(Ordering::Relaxed)),
            failovers: node
                .is_some()
                .then(|| self.failovers.load(Ordering::Relaxed)),
            node,
        }
    }
}

/// Why an input refused a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// No stream could be picked from it (a routing template had no value).
    Unroutable,
    /// Not in the input's format (bad JSON, a row missing its payload, ...).
    Malformed,
    /// Larger than the input's limit.
    Oversized,
    /// In the format, but asking for something ferrocable does not do.
    Unsupported,
}

impl Rejection {
    fn key(self) -> &'static str {
        match self {
            Rejection::Unroutable => "unroutable",
            Rejection::Malformed => "malformed",
            Rejection::Oversized => "oversized",
            Rejection::Unsupported => "unsupported",
        }
    }

    const ALL: [Rejection; 4] = [
        Rejection::Unroutable,
        Rejection::Malformed,
        Rejection::Oversized,
        Rejection::Unsupported,
    ];
}

/// An input's message counters.
#[derive(Debug)]
pub(crate) struct InputCounters {
    messages: AtomicU64,
    rejected: [AtomicU64; 4],
    /// When refusals were last logged, and how many were not logged since.
    log_gate: Mutex<(Option<Instant>, u64)>,
}

impl Default for InputCounters {
    fn default() -> Self {
        InputCounters {
            messages: AtomicU64::new(0),
            rejected: Default::default(),
            log_gate: Mutex::new((None, 0)),
        }
    }
}

/// At most one refusal per input is logged per this period (the rest are counted), so a
/// publisher gone wrong cannot flood the log.
const LOG_EVERY: Duration = Duration::from_secs(1);

impl InputCounters {
    /// Whether to log this refusal: `Some(n)` with the number of refusals not logged since
    /// the last one, `None` to stay quiet.
    pub(crate) fn log_gate(&self) -> Option<u64> {
        let mut gate = self.log_gate.lock().unwrap_or_else(|e| e.into_inner());
        if gate.0.is_none_or(|at| at.elapsed() >= LOG_EVERY) {
            let skipped = gate.1;
            *gate = (Some(Instant::now()), 0);
            Some(skipped)
        } else {
            gate.1 += 1;
            None
        }
    }

    /// One message handed to the hub.
    pub(crate) fn message(&self) {
        self.messages.fetch_add(1, Ordering::Relaxed);
    }

    /// One message refused (the caller logs why).
    pub(crate) fn reject(&self, why: Rejection) {
        let i = Rejection::ALL.iter().position(|r| *r == why).unwrap_or(0);
        self.rejected[i].fetch_add(1, Ordering::Relaxed);
    }

    /// Adds the counters to `status`.
    pub(crate) fn fill(&self, status: &mut InputStatus) {
        status.messages = Some(self.messages.load(Ordering::Relaxed));
        for (why, n) in Rejection::ALL.iter().zip(&self.rejected) {
            let n = n.load(Ordering::Relaxed);
            if n > 0 {
                status.rejected.insert(why.key(), n);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_counts_outages_gaps_and_failovers() {
        let h = Health::default();
        assert!(h.connected().is_some(), "down since it was created");
        assert_eq!(h.on_node("10.0.0.1:6379"), None);
        h.lost("connection closed");
        assert!(h.connected().is_some());
        assert_eq!(h.on_node("10.0.0.1:6379"), None);
        h.lost("connection closed");
        h.connected();
        assert_eq!(h.on_node("10.0.0.2:6379").as_deref(), Some("10.0.0.1:6379"));
        let status = h.status("redis");
        assert_eq!(status.outages, Some(2));
        assert_eq!(status.failovers, Some(1));
        assert!(status.last_gap_ms.is_some());
        assert_eq!(status.node.as_deref(), Some("10.0.0.2:6379"));
    }
}
