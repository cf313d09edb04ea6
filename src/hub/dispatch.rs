//! The delivery path and its policy, for every input alike (Redis, PostgreSQL, Solid Cable,
//! AnyCable's channel, routed channels, CloudEvents, the in-process publisher behind
//! `POST /_broadcast` and channel actions).
//!
//! A broadcast is decoded and re-encoded once (docs/PROTOCOL.md §4.3), then one frame is built
//! per distinct identifier on the stream and the same [`Bytes`] is handed to every subscriber
//! with that identifier: no per-subscriber serialisation, no allocation per delivery.
//!
//! **Delivery policy.** Inputs hand messages over in [`Burst`]s and say only whether more are
//! already waiting. The hub decides how frames are handed over ([`FanOut`]): a message alone,
//! arriving after a pause longer than the last immediate fan-out took, is written at once
//! ([`FanOut::Immediate`]: one `write` per socket from this thread, no task wake-up). When more
//! are waiting, or two bursts in a row came sooner after the one before than the last immediate
//! fan-out took (messages arrive faster than they can be written at once), the server is
//! behind: frames go to the connections' queues ([`FanOut::Queued`]) and each task writes its
//! backlog in one vectored write, so the syscalls per frame shrink as the load grows. One short
//! pause alone is not load (two broadcasts published together, or a quiet stream's first
//! message right after a busy one's): queuing it would cost every recipient a task wake-up
//! (~3 µs each, 35 ms at 10,000) for nothing to coalesce with. The signal costs two
//! uncontended lock sections per burst, never anything per delivery.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferrocable_protocol::INTERNAL_STREAM_PREFIX;
use ferrocable_protocol::incoming::{self, RemoteDisconnect};
use ferrocable_protocol::json::{self, Reencoded};
use ferrocable_protocol::outgoing::{self, DisconnectReason};

use super::{AckSlot, BroadcastOutcome, Hub};
use crate::outbox::{Carried, CloseRequest, ConnHandle, FanOut};
use crate::stats::Stamp;

/// The load signal behind the delivery policy.
#[derive(Debug)]
pub(super) struct LoadSignal {
    /// When the last burst ended.
    last_end: Instant,
    /// How long the last burst fanned out at once took.
    immediate_cost: Duration,
    /// The last burst came sooner after the one before it than `immediate_cost`.
    after_short_pause: bool,
}

impl Default for LoadSignal {
    fn default() -> Self {
        LoadSignal {
            last_end: Instant::now(),
            immediate_cost: Duration::ZERO,
            after_short_pause: false,
        }
    }
}

/// Messages an input hands over back to back: the first in the mode the load signal chose,
/// the rest (which were already waiting) queued. Dropping it records when it ended.
#[derive(Debug)]
pub struct Burst<'a> {
    hub: &'a Hub,
    mode: FanOut,
    started: Instant,
    dispatched: usize,
}

impl Hub {
    /// Starts a burst. `more_waiting`: the input already holds more messages after the first
    /// (it hands them to this same burst). Inputs call this sequentially, which keeps each
    /// stream's order.
    pub fn burst(&self, more_waiting: bool) -> Burst<'_> {
        let started = Instant::now();
        let mut signal = self.load.lock().unwrap_or_else(|e| e.into_inner());
        let short_pause =
            signal.immediate_cost > started.saturating_duration_since(signal.last_end);
        let behind = more_waiting || (short_pause && signal.after_short_pause);
        signal.after_short_pause = short_pause;
        drop(signal);
        Burst {
            hub: self,
            mode: if behind {
                FanOut::Queued
            } else {
                FanOut::Immediate
            },
            started,
            dispatched: 0,
        }
    }

    /// Delivers a broadcast published on `stream`, handing the frames over in `fan_out` mode.
    /// `acknowledged` names the input that has certainly subscribed the stream by now (a
    /// message on it proves the subscribe reply came first), so a still-waiting stream can go
    /// live before the message is delivered when that input was the last one missing.
    pub(super) fn fan_out(
        &self,
        fan_out: FanOut,
        stream: &str,
        payload: &Bytes,
        acknowledged: Option<AckSlot>,
    ) -> BroadcastOutcome {
        let received = Stamp::now();
        self.stats
            .broadcasts_received
            .fetch_add(1, Ordering::Relaxed);
        if stream.starts_with(INTERNAL_STREAM_PREFIX) {
            return self.remote_disconnect(stream, payload);
        }
        let rewritten;
        // Once per broadcast, whatever the number of recipients (docs/PROTOCOL.md §4.3).
        let message: &str = match json::reencode_with(
            payload,
            self.options.max_json_depth,
            self.options.escaping,
        ) {
            // A canonical payload passed the UTF-8 check inside reencode; from_utf8 cannot
            // fail, but an error path costs nothing and keeps this panic-free.
            Ok(Reencoded::Canonical) => match std::str::from_utf8(payload) {
                Ok(text) => text,
                Err(_) => return BroadcastOutcome::Invalid,
            },
            Ok(Reencoded::Rewritten(bytes)) => {
                self.stats
                    .broadcasts_rewritten
                    .fetch_add(1, Ordering::Relaxed);
                rewritten = String::from_utf8(bytes).unwrap_or_default();
                &rewritten
            }
            Err(e) => {
                self.stats
                    .broadcasts_invalid
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(stream, cause = %e, "dropped a broadcast that is not valid JSON (Rails drops it too)");
                return BroadcastOutcome::Invalid;
            }
        };
        // Under the shard lock only the cheap part: confirms and a snapshot of who gets
        // which frame. The writes (one syscall each) happen after, so a big fan-out never
        // blocks subscribes to other streams of the shard.
        let mut deliveries: Vec<(Bytes, Arc<[Arc<ConnHandle>]>)> = Vec::new();
        {
            let mut shard = self.shard(stream);
            let Some(entry) = shard.streams.get_mut(stream) else {
                drop(shard);
                self.record(stream, message, 0);
                return BroadcastOutcome::Delivered(0);
            };
            if let Some(slot) = acknowledged {
                // Confirms go first so a client never sees a message before its confirm.
                for w in entry.acknowledge(slot, self.all_acks) {
                    w.ready();
                }
            }
            for (identifier, group) in &mut entry.groups {
                let frame = outgoing::text_frame(&outgoing::message(identifier, message));
                deliveries.push((frame, group.snapshot()));
            }
        }
        if fan_out == FanOut::Queued {
            self.stats
                .broadcasts_coalesced
                .fetch_add(1, Ordering::Relaxed);
        }
        let mut delivered = 0;
        // The mode is chosen once per broadcast, not per delivery.
        for (frame, members) in &deliveries {
            match fan_out {
                FanOut::Immediate => {
                    let mut carried = Carried::new(frame, &self.beat);
                    for conn in members.iter() {
                        conn.push_beating(&mut carried);
                    }
                    // Counted once per fan-out, not per delivery (any stripe will do).
                    let stripe = members.first().map_or(0, |c| c.id);
                    self.stats.frames_delivered.add(stripe, carried.written());
                    self.stats.pings_carried.add(stripe, carried.pings());
                }
                FanOut::Queued => {
                    for conn in members.iter() {
                        conn.push_queued_beating(frame, &self.beat, received);
                    }
                }
            }
            delivered += members.len();
        }
        // Once per broadcast, for the frames written at once (queued ones are timed by the
        // connections' tasks, per batch).
        if fan_out == FanOut::Immediate && delivered > 0 {
            self.stats
                .delivery_latency
                .observe(received.spread(), received.until(Stamp::now()));
        }
        self.record(stream, message, delivered);
        BroadcastOutcome::Delivered(delivered)
    }

    /// Keeps the broadcast for the console, when it is enabled (once per broadcast).
    fn record(&self, stream: &str, message: &str, recipients: usize) {
        if let Some(activity) = &self.activity {
            activity.recent.record(stream, message, recipients);
        }
    }

    /// A message on a connection's internal stream: Rails' remote disconnect
    /// (docs/PROTOCOL.md §5.2), decoded by the protocol crate; the hub only routes it.
    fn remote_disconnect(&self, stream: &str, payload: &Bytes) -> BroadcastOutcome {
        let (reason, reconnect) =
            match incoming::parse_remote_disconnect(payload, self.options.max_json_depth) {
                Ok(RemoteDisconnect::Close { reason, reconnect }) => (reason, reconnect),
                Ok(RemoteDisconnect::Ignore) => return BroadcastOutcome::Delivered(0),
                Err(_) => {
                    self.stats
                        .broadcasts_invalid
                        .fetch_add(1, Ordering::Relaxed);
                    return BroadcastOutcome::Invalid;
                }
            };
        // Rails 6.1/7.0 answer a "disconnect" message with a bare close, but the error path
        // (a payload it cannot index) goes through `close`, which always sends the frame.
        let close = if self.options.remote_disconnect_frame || reason != DisconnectReason::Remote {
            CloseRequest::Disconnect { reason, reconnect }
        } else {
            CloseRequest::CloseOnly
        };
        let shard = self.shard(stream);
        let Some(entry) = shard.streams.get(stream) else {
            return BroadcastOutcome::Delivered(0);
        };
        for conn in &entry.internal {
            tracing::info!(
                conn = conn.id,
                "Removing connection ({})",
                &stream[INTERNAL_STREAM_PREFIX.len()..]
            );
            conn.close(close.clone());
        }
        BroadcastOutcome::Delivered(entry.internal.len())
    }

    /// As if the last immediate fan-out had taken `cost` and just ended (tests).
    #[cfg(test)]
    pub(super) fn pretend_a_fan_out_just_took(&self, cost: Duration) {
        let mut signal = self.load.lock().unwrap_or_else(|e| e.into_inner());
        signal.last_end = Instant::now();
        signal.immediate_cost = cost;
    }

    /// Delivers with [`FanOut::Immediate`], outside any burst (tests).
    #[cfg(test)]
    pub(super) fn broadcast(
        &self,
        stream: &str,
        payload: &Bytes,
        acknowledged: Option<AckSlot>,
    ) -> BroadcastOutcome {
        self.fan_out(FanOut::Immediate, stream, payload, acknowledged)
    }
}

impl Burst<'_> {
    /// Delivers a broadcast published on `stream`. `acknowledged`: the slot of the input that
    /// has certainly subscribed the stream (it received the message on it), so a stream still
    /// waiting for that acknowledgement goes live first. `None` for inputs that do not
    /// acknowledge subscriptions.
    pub fn dispatch(
        &mut self,
        stream: &str,
        payload: &Bytes,
        acknowledged: Option<AckSlot>,
    ) -> BroadcastOutcome {
        let mode = if self.dispatched == 0 {
            self.mode
        } else {
            FanOut::Queued
        };
        self.dispatched += 1;
        self.hub.fan_out(mode, stream, payload, acknowledged)
    }
}

impl Drop for Burst<'_> {
    fn drop(&mut self) {
        let end = Instant::now();
        let mut signal = self.hub.load.lock().unwrap_or_else(|e| e.into_inner());
        signal.last_end = end;
        if self.mode == FanOut::Immediate && self.dispatched <= 1 {
            signal.immediate_cost = end - self.started;
        }
    }
}
