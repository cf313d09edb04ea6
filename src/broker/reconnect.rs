//! What every input with a connection does between connections: record the loss in its
//! health, log it once (a lost connection loudly, a server still unreachable with the next
//! delay), wait with exponential back-off (100 ms to 5 s, reset after a connection that
//! worked) and try again, until the server stops; and log a connection that came back with
//! the length of the outage.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::health::Health;

const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// An input's log lines around its connection.
#[derive(Debug)]
pub(crate) struct Wording {
    /// A working connection was lost.
    pub(crate) lost: &'static str,
    /// Connecting failed (again).
    pub(crate) unreachable: &'static str,
    /// The first connection.
    pub(crate) up: &'static str,
    /// A connection after an outage.
    pub(crate) back: &'static str,
}

/// The back-off between connection attempts.
#[derive(Debug)]
pub(crate) struct Backoff {
    delay: Duration,
    max: Duration,
    /// Failed attempts in a row; only the 1st, 2nd, 4th, 8th... are logged, so a long outage
    /// costs a few lines, not one per retry.
    failed: u64,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::up_to(BACKOFF_MAX)
    }
}

impl Backoff {
    /// A back-off that never waits longer than `max` (Sentinel: a failover is found by
    /// asking again soon, not in 5 s).
    pub(crate) fn up_to(max: Duration) -> Backoff {
        Backoff {
            delay: BACKOFF_MIN,
            max,
            failed: 0,
        }
    }

    /// A connection ended: `None` because the server is stopping, `Some(why)` because it
    /// was lost or never made. Records and logs a loss, then waits; false when the server
    /// stopped (now or while waiting), true to try again.
    pub(crate) async fn after(
        &mut self,
        lost: Option<String>,
        health: &Health,
        stop: &CancellationToken,
        wording: &Wording,
    ) -> bool {
        let Some(error) = lost else {
            return false;
        };
        let was_connected = health.is_connected();
        health.lost(&error);
        if was_connected {
            self.delay = BACKOFF_MIN;
            self.failed = 0;
            tracing::warn!(cause = %error, "{}", wording.lost);
        } else {
            self.failed += 1;
            if self.failed.is_power_of_two() {
                tracing::warn!(cause = %error, attempts = self.failed, retry_in_ms = self.delay.as_millis() as u64, "{}", wording.unreachable);
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return false,
            _ = tokio::time::sleep(self.delay) => {}
        }
        self.delay = (self.delay * 2).min(self.max);
        true
    }
}

/// Logs a connection made: after an outage (`outage`, from [`Health::connected`]) with its
/// length, else as the first one. `streams`: how many live streams it serves.
pub(crate) fn log_up(outage: Option<Duration>, health: &Health, streams: usize, wording: &Wording) {
    match outage {
        Some(gap) if health.connects() > 1 => tracing::info!(
            outage_ms = gap.as_millis() as u64,
            streams,
            "{}",
            wording.back
        ),
        _ => tracing::info!(streams, "{}", wording.up),
    }
}

/// Runs one database operation within `limit`; any failure means the connection is no longer
/// trustworthy, and is described for the health and the log.
pub(crate) async fn within<T, E: Display>(
    what: &str,
    limit: Duration,
    op: impl Future<Output = Result<T, E>>,
) -> Result<T, String> {
    match tokio::time::timeout(limit, op).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(format!("{what} failed: {e}")),
        Err(_) => Err(format!("{what}: no answer within {}s", limit.as_secs())),
    }
}
