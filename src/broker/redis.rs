//! Rails' Redis cable adapter, read and written in its own format (protocol.md §4.1–4.2).
//!
//! One subscriber connection per process, like Rails: `SUBSCRIBE <prefix>:<stream>` when the
//! first local listener of a stream appears, `UNSUBSCRIBE` when the last leaves. The driver
//! task owns that connection and does three things in one loop, so their order is the order
//! Redis sent them in:
//!
//! 1. dispatches messages to the hub (sequentially: per-stream order is preserved);
//! 2. reconciles the hub's [`Interest`](crate::hub::Interest) set against what Redis has
//!    acknowledged, and marks streams live on each SUBSCRIBE reply ("confirmed means live");
//! 3. PINGs every few seconds, so a Redis that stopped answering is detected and replaced.
//!
//! On any failure the connection is dropped, the health turns `disconnected`, sockets keep
//! being served, and the driver reconnects with exponential back-off (100 ms to 5 s) and
//! resubscribes every live stream; the outage is logged with its duration.
//!
//! **Buffers**: replies and messages pass through the redis crate's own unbounded channel
//! between its socket reader and this driver. The driver never blocks on clients (hub
//! dispatch only queues frames, each client's queue being bounded), so that channel drains
//! at memory speed; Redis' `client-output-buffer-limit pubsub` bounds the rest.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{FutureExt, StreamExt};
use redis::aio::{MultiplexedConnection, PubSubSink};
use tokio_util::sync::CancellationToken;

use super::{BrokerStatus, PublishError};
use crate::hub::Hub;
use crate::outbox::FanOut;

/// How long any single Redis operation may take before the connection is considered dead.
const OP_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the subscriber connection is probed with PING.
const PING_EVERY: Duration = Duration::from_secs(5);
/// Channels per SUBSCRIBE command when (re)subscribing many streams at once.
const SUBSCRIBE_BATCH: usize = 500;
/// At most this many already-received messages are dispatched before the driver looks at
/// its other duties (reconciling subscriptions, PING).
const BURST_MAX: usize = 64;
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

const CONNECTING: u8 = 0;
const CONNECTED: u8 = 1;
const DISCONNECTED: u8 = 2;

#[derive(Debug)]
struct Health {
    state: AtomicU8,
    connects: AtomicU64,
    down_since: Mutex<Option<Instant>>,
    last_error: Mutex<Option<String>>,
}

impl Health {
    fn connected(&self) -> Option<Duration> {
        self.state.store(CONNECTED, Ordering::Release);
        self.connects.fetch_add(1, Ordering::Relaxed);
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = None;
        self.down_since
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .map(|t| t.elapsed())
    }

    fn lost(&self, error: &str) {
        self.state.store(DISCONNECTED, Ordering::Release);
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(error.to_string());
        self.down_since
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert_with(Instant::now);
    }
}

/// The Redis side of the broker: a publisher and the subscriber driver's health.
#[derive(Debug)]
pub struct RedisBroker {
    client: redis::Client,
    prefix: String,
    /// Cached publishing connection; dropped on error and reopened on the next publish.
    publisher: Mutex<Option<MultiplexedConnection>>,
    health: Arc<Health>,
}

impl RedisBroker {
    /// A broker for `url`; nothing is connected until [`RedisBroker::spawn_subscriber`].
    pub fn new(url: &str, prefix: &str) -> Result<RedisBroker, String> {
        let client = redis::Client::open(url).map_err(|e| e.to_string())?;
        Ok(RedisBroker {
            client,
            prefix: prefix.to_string(),
            publisher: Mutex::new(None),
            health: Arc::new(Health {
                state: AtomicU8::new(CONNECTING),
                connects: AtomicU64::new(0),
                down_since: Mutex::new(Some(Instant::now())),
                last_error: Mutex::new(None),
            }),
        })
    }

    /// The Redis channel Rails uses for a stream.
    fn channel(&self, stream: &str) -> String {
        channel_name(&self.prefix, stream)
    }

    /// `PUBLISH <prefix>:<stream> <payload>`.
    pub async fn publish(&self, stream: &str, payload: Bytes) -> Result<(), PublishError> {
        let channel = self.channel(stream);
        let cached = self
            .publisher
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut conn = match cached {
            Some(c) => c,
            None => {
                let c = tokio::time::timeout(
                    OP_TIMEOUT,
                    self.client.get_multiplexed_async_connection(),
                )
                .await
                .map_err(|_| PublishError::Unavailable("connect timed out".into()))?
                .map_err(|e| PublishError::Unavailable(e.to_string()))?;
                *self.publisher.lock().unwrap_or_else(|e| e.into_inner()) = Some(c.clone());
                c
            }
        };
        let result = tokio::time::timeout(
            OP_TIMEOUT,
            redis::cmd("PUBLISH")
                .arg(&channel)
                .arg(payload.as_ref())
                .query_async::<i64>(&mut conn),
        )
        .await;
        match result {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => {
                *self.publisher.lock().unwrap_or_else(|e| e.into_inner()) = None;
                Err(PublishError::Unavailable(e.to_string()))
            }
            Err(_) => {
                *self.publisher.lock().unwrap_or_else(|e| e.into_inner()) = None;
                Err(PublishError::Unavailable("PUBLISH timed out".into()))
            }
        }
    }

    /// Health for `/health`.
    pub fn status(&self) -> BrokerStatus {
        let state = self.health.state.load(Ordering::Acquire);
        let down_for_secs = self
            .health
            .down_since
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .map(|t| t.elapsed().as_secs());
        BrokerStatus {
            kind: "redis",
            state: match state {
                CONNECTED => "connected",
                CONNECTING => "connecting",
                _ => "disconnected",
            },
            healthy: state == CONNECTED,
            down_for_secs: (state != CONNECTED).then_some(down_for_secs.unwrap_or(0)),
            last_error: self
                .health
                .last_error
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            connects: Some(self.health.connects.load(Ordering::Relaxed)),
        }
    }

    /// Starts the subscriber driver; it runs until `stop` is cancelled.
    pub fn spawn_subscriber(
        &self,
        hub: Arc<Hub>,
        stop: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let driver = Driver {
            client: self.client.clone(),
            prefix: self.prefix.clone(),
            hub,
            health: self.health.clone(),
            stop,
            run_id: None,
        };
        tokio::spawn(driver.run())
    }
}

fn channel_name(prefix: &str, stream: &str) -> String {
    if prefix.is_empty() {
        stream.to_string()
    } else {
        format!("{prefix}:{stream}")
    }
}

/// Runs a subscriber-connection command within [`OP_TIMEOUT`]; any failure means the
/// connection is no longer trustworthy.
async fn bounded<T>(
    what: &str,
    op: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> Result<T, String> {
    match tokio::time::timeout(OP_TIMEOUT, op).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(format!("{what} failed: {e}")),
        Err(_) => Err(format!(
            "{what}: no answer within {}s",
            OP_TIMEOUT.as_secs()
        )),
    }
}

enum Ended {
    Stopped,
    Lost(String),
}

struct Driver {
    client: redis::Client,
    prefix: String,
    hub: Arc<Hub>,
    health: Arc<Health>,
    stop: CancellationToken,
    run_id: Option<String>,
}

impl Driver {
    async fn run(mut self) {
        let mut backoff = BACKOFF_MIN;
        loop {
            match self.serve().await {
                Ended::Stopped => return,
                Ended::Lost(error) => {
                    let was_connected = self.health.state.load(Ordering::Acquire) == CONNECTED;
                    self.health.lost(&error);
                    if was_connected {
                        backoff = BACKOFF_MIN;
                        tracing::warn!(cause = %error, "lost the Redis subscriber connection; sockets stay open, broadcasts pause until it is back");
                    } else {
                        tracing::warn!(cause = %error, retry_in_ms = backoff.as_millis() as u64, "cannot reach Redis");
                    }
                }
            }
            tokio::select! {
                _ = self.stop.cancelled() => return,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    async fn serve(&mut self) -> Ended {
        let pubsub = tokio::select! {
            _ = self.stop.cancelled() => return Ended::Stopped,
            r = tokio::time::timeout(OP_TIMEOUT, self.client.get_async_pubsub()) => match r {
                Ok(Ok(p)) => p,
                Ok(Err(e)) => return Ended::Lost(e.to_string()),
                Err(_) => return Ended::Lost("connect timed out".into()),
            },
        };
        let (mut sink, mut messages) = pubsub.split();
        self.check_run_id().await;
        let outage = self.health.connected();
        // Everything wanted now gets subscribed below; changes from here on are reconciled.
        if let Some(interest) = self.hub.interest() {
            interest.take();
        }
        let mut acknowledged: HashSet<Arc<str>> = HashSet::new();
        let wanted = self.hub.streams();
        if let Err(e) = self.subscribe(&mut sink, &wanted, &mut acknowledged).await {
            return Ended::Lost(e);
        }
        match outage {
            Some(gap) if self.health.connects.load(Ordering::Relaxed) > 1 => tracing::info!(
                outage_ms = gap.as_millis() as u64,
                streams = wanted.len(),
                "Redis subscriber reconnected; every live stream is subscribed again"
            ),
            _ => tracing::info!(streams = wanted.len(), "Redis subscriber connected"),
        }
        let Some(interest) = self.hub.interest() else {
            return Ended::Lost("hub has no interest set".into());
        };
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.tick().await;
        // When the last dispatch ended, and how long the last one written at once took:
        // the load signal for FanOut.
        let mut last_end = Instant::now();
        let mut immediate_cost = Duration::ZERO;
        loop {
            tokio::select! {
                biased;
                _ = self.stop.cancelled() => return Ended::Stopped,
                message = messages.next() => match message {
                    Some(msg) => {
                        // A message alone is written at once. When Redis already sent more,
                        // the server is behind: frames go to the connections' queues and
                        // each task writes its backlog in one go, so the syscalls per frame
                        // shrink as the load grows.
                        let mut next = messages.next().now_or_never();
                        let started = Instant::now();
                        // Writing the last broadcast at once took longer than the pause
                        // since: the connections' tasks are probably still writing what
                        // came since, so queue behind them and coalesce.
                        let behind = next.is_some()
                            || immediate_cost > started.saturating_duration_since(last_end);
                        let mode = if behind { FanOut::Queued } else { FanOut::Immediate };
                        self.dispatch(mode, &msg, &acknowledged);
                        let mut dispatched = 1;
                        while let Some(ready) = next.take() {
                            let Some(msg) = ready else {
                                return Ended::Lost("connection closed".into());
                            };
                            self.dispatch(FanOut::Queued, &msg, &acknowledged);
                            dispatched += 1;
                            if dispatched < BURST_MAX {
                                next = messages.next().now_or_never();
                            }
                        }
                        last_end = Instant::now();
                        if mode == FanOut::Immediate && dispatched == 1 {
                            immediate_cost = last_end - started;
                        }
                    }
                    None => return Ended::Lost("connection closed".into()),
                },
                _ = interest.changed() => {
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

    fn dispatch(&self, fan_out: FanOut, msg: &redis::Msg, acknowledged: &HashSet<Arc<str>>) {
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
        self.hub
            .broadcast_with(fan_out, stream, &payload, acknowledged.contains(stream));
    }

    async fn reconcile(
        &self,
        sink: &mut PubSubSink,
        acknowledged: &mut HashSet<Arc<str>>,
    ) -> Result<(), String> {
        let Some(interest) = self.hub.interest() else {
            return Ok(());
        };
        let mut subscribe = Vec::new();
        let mut unsubscribe = Vec::new();
        for stream in interest.take() {
            match (self.hub.wants(&stream), acknowledged.contains(&stream)) {
                (true, false) => subscribe.push(stream),
                (false, true) => unsubscribe.push(stream),
                // Re-created while Redis was still subscribed: live already.
                (true, true) => self.hub.mark_live(&stream),
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
    ) -> Result<(), String> {
        for batch in streams.chunks(SUBSCRIBE_BATCH) {
            let channels: Vec<String> = batch
                .iter()
                .map(|s| channel_name(&self.prefix, s))
                .collect();
            bounded("SUBSCRIBE", sink.subscribe(channels)).await?;
            for s in batch {
                acknowledged.insert(s.clone());
                self.hub.mark_live(s);
            }
        }
        Ok(())
    }

    /// Logs when Redis itself restarted (new run_id) rather than just the connection.
    async fn check_run_id(&mut self) {
        let info = async {
            let mut conn = self.client.get_multiplexed_async_connection().await.ok()?;
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
        if let Some(previous) = &self.run_id
            && previous != &run_id
        {
            tracing::warn!(previous = %previous, current = %run_id, "Redis restarted (new run_id): messages published while it was down are lost, as with Rails");
        }
        self.run_id = Some(run_id);
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
}
