//! The Redis input's task: one subscriber connection per process, like Rails.
//! `SUBSCRIBE <prefix>:<stream>` when the first local listener of a stream appears,
//! `UNSUBSCRIBE` when the last leaves (unless `redis.streams` is off), plus the fixed channels
//! of AnyCable and routed channels (`fixed`), subscribed on every connect. The task owns that
//! connection and does three things in one loop, so their order is the order Redis sent them
//! in:
//!
//! 1. hands messages to the hub (sequentially: per-stream order is preserved), in bursts of
//!    what Redis has already sent, so the hub knows when it is behind;
//! 2. reconciles the hub's [`Interest`](crate::hub::Interest) set against what Redis has
//!    acknowledged, and marks streams live on each SUBSCRIBE reply ("confirmed means live");
//! 3. PINGs every few seconds, so a Redis that stopped answering is detected and replaced.
//!
//! On any failure the connection is dropped, the health turns `disconnected`, sockets keep
//! being served, and the task reconnects with exponential back-off (100 ms to 5 s; to 250 ms
//! under Sentinel, where asking for the new master is cheap and a failover is the usual cause),
//! resubscribes every live stream and logs the gap (loss until resubscribed: what was published
//! meanwhile is lost, as with Rails), and whether it landed on another node (a failover).
//! Each (re)connection asks `connect` for the node, so under Sentinel it follows the master.
//!
//! **Buffers**: replies and messages pass through the redis crate's own unbounded channel
//! between its socket reader and this task. The task never blocks on clients (the hub only
//! queues frames, each client's queue being bounded), so that channel drains at memory speed;
//! Redis' `client-output-buffer-limit pubsub` bounds the rest.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{FutureExt, StreamExt};
use redis::aio::PubSubSink;
use tokio_util::sync::CancellationToken;

use super::connect::{ConnectError, Node, Purpose, RedisConnector};
use super::fixed::FixedChannels;
use super::{Health, OP_TIMEOUT, channel_name};
use crate::broker::reconnect::{Backoff, Wording, log_up};
use crate::hub::{AckSlot, Burst, Hub, Interest};

/// How often the subscriber connection is probed with PING.
const PING_EVERY: Duration = Duration::from_secs(5);
/// Channels per SUBSCRIBE command when (re)subscribing many streams at once.
const SUBSCRIBE_BATCH: usize = 500;
/// At most this many already-received messages are handed on in one burst before the task
/// looks at its other duties (reconciling subscriptions, PING).
const BURST_MAX: usize = 64;
/// Under Sentinel the next attempt asks the sentinels again soon: a failover is found in
/// well under a second instead of after a 5 s back-off.
const BACKOFF_MAX_SENTINEL: Duration = Duration::from_millis(250);
const WORDING: Wording = Wording {
    lost: "lost the Redis subscriber connection; sockets stay open, broadcasts pause until it is back",
    unreachable: "cannot reach Redis",
    up: "Redis subscriber connected",
    back: "Redis subscriber reconnected; every live stream is subscribed again",
};

/// Why the subscriber connection was given up.
#[derive(Debug, thiserror::Error)]
enum Lost {
    /// No node to connect to (Sentinel named none that confirmed its role).
    #[error("{0}")]
    Resolve(#[source] ConnectError),
    /// Connecting failed.
    #[error("{0}")]
    Connect(#[source] redis::RedisError),
    /// Connecting took longer than [`OP_TIMEOUT`].
    #[error("connect timed out")]
    ConnectTimedOut,
    /// A command failed.
    #[error("{what} failed: {source}")]
    Command {
        /// The command.
        what: &'static str,
        /// Redis' error.
        #[source]
        source: redis::RedisError,
    },
    /// A command got no answer within [`OP_TIMEOUT`].
    #[error("{0}: no answer within {secs}s", secs = OP_TIMEOUT.as_secs())]
    NoAnswer(&'static str),
    /// Redis closed the connection.
    #[error("connection closed")]
    Closed,
}

enum Ended {
    Stopped,
    Lost(Lost),
}

/// Runs a subscriber-connection command within [`OP_TIMEOUT`]; any failure means the
/// connection is no longer trustworthy.
async fn bounded<T>(
    what: &'static str,
    op: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> Result<T, Lost> {
    match tokio::time::timeout(OP_TIMEOUT, op).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(source)) => Err(Lost::Command { what, source }),
        Err(_) => Err(Lost::NoAnswer(what)),
    }
}

pub(super) struct Driver {
    connector: Arc<RedisConnector>,
    prefix: String,
    /// The hub's slot for Rails' per-stream channels; `None` when they are off.
    streams: Option<AckSlot>,
    /// AnyCable's channel and routed channels.
    fixed: Arc<FixedChannels>,
    hub: Arc<Hub>,
    health: Arc<Health>,
    stop: CancellationToken,
    /// The node and its run_id, last time.
    run_id: Option<(String, String)>,
}

/// Resolves when `interest` changed; never when there is none (per-stream channels off).
async fn changed(interest: Option<&Interest>) {
    match interest {
        Some(interest) => interest.changed().await,
        None => std::future::pending().await,
    }
}

impl Driver {
    pub(super) fn new(
        connector: Arc<RedisConnector>,
        prefix: String,
        streams: Option<AckSlot>,
        fixed: Arc<FixedChannels>,
        hub: Arc<Hub>,
        health: Arc<Health>,
        stop: CancellationToken,
    ) -> Driver {
        Driver {
            connector,
            prefix,
            streams,
            fixed,
            hub,
            health,
            stop,
            run_id: None,
        }
    }

    pub(super) async fn run(mut self) {
        let mut backoff = if self.connector.uses_sentinel() {
            Backoff::up_to(BACKOFF_MAX_SENTINEL)
        } else {
            Backoff::default()
        };
        loop {
            let lost = match self.serve().await {
                Ended::Stopped => None,
                Ended::Lost(error) => Some(error.to_string()),
            };
            if !backoff
                .after(lost, &self.health, &self.stop, &WORDING)
                .await
            {
                return;
            }
        }
    }

    async fn serve(&mut self) -> Ended {
        let connect = async {
            let node = self
                .connector
                .resolve(Purpose::Subscribe)
                .await
                .map_err(Lost::Resolve)?;
            let pubsub = node
                .client
                .get_async_pubsub()
                .await
                .map_err(Lost::Connect)?;
            Ok::<_, Lost>((node, pubsub))
        };
        let (node, pubsub) = tokio::select! {
            _ = self.stop.cancelled() => return Ended::Stopped,
            r = tokio::time::timeout(OP_TIMEOUT, connect) => match r {
                Ok(Ok(pair)) => pair,
                Ok(Err(lost)) => return Ended::Lost(lost),
                Err(_) => return Ended::Lost(Lost::ConnectTimedOut),
            },
        };
        let (mut sink, mut messages) = pubsub.split();
        self.check_run_id(&node).await;
        let interest = self.streams.map(|slot| self.hub.interest(slot));
        // Everything wanted now gets subscribed below; changes from here on are reconciled.
        if let Some(interest) = interest {
            interest.take();
        }
        let mut acknowledged: HashSet<Arc<str>> = HashSet::new();
        let wanted = if interest.is_some() {
            self.hub.streams()
        } else {
            Vec::new()
        };
        if let Err(e) = self.subscribe(&mut sink, &wanted, &mut acknowledged).await {
            return Ended::Lost(e);
        }
        if let Err(e) = self.subscribe_fixed(&mut sink).await {
            return Ended::Lost(e);
        }
        // Connected means delivering: the gap runs until every live stream is subscribed.
        let outage = self.health.connected();
        match (outage, self.health.on_node(&node.address)) {
            (Some(gap), Some(previous)) if self.health.connects() > 1 => tracing::warn!(
                gap_ms = gap.as_millis() as u64,
                streams = wanted.len(),
                previous = %previous,
                node = %node.address,
                "Redis failover followed: subscribed on the new node; broadcasts published during the gap are lost (as with Rails)"
            ),
            _ => log_up(outage, &self.health, wanted.len(), &WORDING),
        }
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.tick().await;
        loop {
            tokio::select! {
                biased;
                _ = self.stop.cancelled() => return Ended::Stopped,
                message = messages.next() => match message {
                    Some(msg) => {
                        // Whatever Redis has already sent goes to the hub as one burst: the
                        // first message says whether more are waiting, which tells the hub it
                        // is behind (and so how to write the frames).
                        let mut next = messages.next().now_or_never();
                        let mut burst = self.hub.burst(next.is_some());
                        self.hand_on(&mut burst, &msg, &acknowledged);
                        let mut handed = 1;
                        while let Some(ready) = next.take() {
                            let Some(msg) = ready else {
                                return Ended::Lost(Lost::Closed);
                            };
                            self.hand_on(&mut burst, &msg, &acknowledged);
                            handed += 1;
                            if handed < BURST_MAX {
                                next = messages.next().now_or_never();
                            }
                        }
                    }
                    None => return Ended::Lost(Lost::Closed),
                },
                _ = changed(interest) => {
                    if let Err(e) = self.reconcile(&mut sink, &mut acknowledged).await {
                        return Ended::Lost(e);
                    }
                }
                _ = ping.tick() => {
                    if let Err(e) = bounded("PING", sink.ping::<redis::Value>()).await {
                        return Ended::Lost(e);
                    }
                }
            }
        }
    }

    /// Hands a message on a fixed channel to its reader; else strips Rails' `<prefix>:` and
    /// hands the message to the hub: a message on a stream proves its SUBSCRIBE was
    /// acknowledged.
    fn hand_on(&self, burst: &mut Burst<'_>, msg: &redis::Msg, acknowledged: &HashSet<Arc<str>>) {
        if self.fixed.hand_on(burst, msg) {
            return;
        }
        let Some(slot) = self.streams else {
            return;
        };
        let channel = msg.get_channel_name();
        let stream = if self.prefix.is_empty() {
            channel
        } else {
            match channel
                .strip_prefix(self.prefix.as_str())
                .and_then(|rest| rest.strip_prefix(':'))
            {
                Some(s) => s,
                None => return,
            }
        };
        let payload = Bytes::copy_from_slice(msg.get_payload_bytes());
        burst.dispatch(
            stream,
            &payload,
            acknowledged.contains(stream).then_some(slot),
        );
    }

    async fn reconcile(
        &self,
        sink: &mut PubSubSink,
        acknowledged: &mut HashSet<Arc<str>>,
    ) -> Result<(), Lost> {
        let Some(slot) = self.streams else {
            return Ok(());
        };
        let interest = self.hub.interest(slot);
        let mut subscribe = Vec::new();
        let mut unsubscribe = Vec::new();
        for stream in interest.take() {
            match (self.hub.wants(&stream), acknowledged.contains(&stream)) {
                (true, false) => subscribe.push(stream),
                (false, true) => unsubscribe.push(stream),
                // Re-created while Redis was still subscribed: live already.
                (true, true) => self.hub.mark_live(slot, &stream),
                (false, false) => {}
            }
        }
        if !unsubscribe.is_empty() {
            for s in &unsubscribe {
                acknowledged.remove(s);
            }
            let channels: Vec<String> = unsubscribe
                .iter()
                .map(|s| channel_name(&self.prefix, s))
                .collect();
            bounded("UNSUBSCRIBE", sink.unsubscribe(channels)).await?;
        }
        self.subscribe(sink, &subscribe, acknowledged).await
    }

    async fn subscribe(
        &self,
        sink: &mut PubSubSink,
        streams: &[Arc<str>],
        acknowledged: &mut HashSet<Arc<str>>,
    ) -> Result<(), Lost> {
        let Some(slot) = self.streams else {
            return Ok(());
        };
        for batch in streams.chunks(SUBSCRIBE_BATCH) {
            let channels: Vec<String> = batch
                .iter()
                .map(|s| channel_name(&self.prefix, s))
                .collect();
            bounded("SUBSCRIBE", sink.subscribe(channels)).await?;
            for s in batch {
                acknowledged.insert(s.clone());
                self.hub.mark_live(slot, s);
            }
        }
        Ok(())
    }

    /// SUBSCRIBE AnyCable's and the routed channels, PSUBSCRIBE the routed patterns.
    async fn subscribe_fixed(&self, sink: &mut PubSubSink) -> Result<(), Lost> {
        let channels = self.fixed.channels();
        if !channels.is_empty() {
            bounded("SUBSCRIBE", sink.subscribe(channels)).await?;
        }
        let patterns = self.fixed.patterns();
        if !patterns.is_empty() {
            bounded("PSUBSCRIBE", sink.psubscribe(patterns)).await?;
        }
        Ok(())
    }

    /// Logs when Redis itself restarted (new run_id) rather than just the connection.
    async fn check_run_id(&mut self, node: &Node) {
        let info = async {
            let mut conn = node.client.get_multiplexed_async_connection().await.ok()?;
            redis::cmd("INFO")
                .arg("server")
                .query_async::<String>(&mut conn)
                .await
                .ok()
        };
        let Ok(Some(info)) = tokio::time::timeout(OP_TIMEOUT, info).await else {
            return;
        };
        let Some(run_id) = info
            .lines()
            .find_map(|l| l.strip_prefix("run_id:"))
            .map(|s| s.trim().to_string())
        else {
            return;
        };
        // A failover moves us to another server, whose run_id differs too: that is not a
        // restart, and the failover is logged on its own.
        if let Some((previous_node, previous)) = &self.run_id
            && previous_node == &node.address
            && previous != &run_id
        {
            tracing::warn!(previous = %previous, current = %run_id, "Redis restarted (new run_id): messages published while it was down are lost, as with Rails");
        }
        self.run_id = Some((node.address.clone(), run_id));
    }
}
