//! The PostgreSQL input's task: one LISTEN connection per process, like Rails.
//! `LISTEN "<channel>"` when the first local listener of a stream appears, `UNLISTEN` when
//! the last leaves; a stream is acknowledged once its `LISTEN` returned. The loop also
//! probes the connection (`SELECT 1` every few seconds), so a server that stopped answering
//! is detected and replaced; on any failure the health turns `disconnected`, sockets keep
//! being served, and the task reconnects with back-off (100 ms to 5 s) and LISTENs again to
//! every live stream. Notifications sent while the connection was down are lost, as with
//! Rails.
//!
//! **Buffers**: notifications pass through sqlx's unbounded channel between the socket and
//! this task, which never blocks on clients (the hub only queues frames, each client's queue
//! being bounded), so it drains at memory speed; PostgreSQL's 8 GB notification queue bounds
//! the rest on the server side.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use sqlx::Executor;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use tokio_util::sync::CancellationToken;

use super::{OP_TIMEOUT, as_postgres_names_it, channel_identifier};
use crate::broker::health::{Health, InputCounters};
use crate::broker::reconnect::{Backoff, Wording, log_up, within};
use crate::hub::{AckSlot, Hub};

const PROBE_EVERY: Duration = Duration::from_secs(5);
/// Channels per LISTEN batch (one round trip each).
const LISTEN_BATCH: usize = 500;
const WORDING: Wording = Wording {
    lost: "lost the PostgreSQL LISTEN connection; sockets stay open, broadcasts pause until it is back",
    unreachable: "cannot reach PostgreSQL",
    up: "PostgreSQL LISTEN connection up",
    back: "PostgreSQL LISTEN connection back; every live stream is LISTENed again",
};

enum Ended {
    Stopped,
    Lost(String),
}

pub(super) struct Driver {
    pub(super) options: PgConnectOptions,
    pub(super) prefix: String,
    pub(super) slot: AckSlot,
    pub(super) hub: Arc<Hub>,
    pub(super) health: Arc<Health>,
    pub(super) counters: Arc<InputCounters>,
    pub(super) stop: CancellationToken,
}

/// Which live streams each LISTENed channel (as PostgreSQL names it) stands for: usually one,
/// several only when long multibyte names share their first 63 bytes (Rails then mixes
/// their messages too).
#[derive(Debug, Default)]
struct Listening {
    by_channel: HashMap<String, Vec<Arc<str>>>,
}

impl Listening {
    fn channel_of(&self, prefix: &str, stream: &str) -> String {
        as_postgres_names_it(&channel_identifier(prefix, stream)).to_string()
    }

    /// Records `stream`; true when its channel is new (needs a LISTEN).
    fn add(&mut self, channel: &str, stream: Arc<str>) -> bool {
        let streams = self.by_channel.entry(channel.to_string()).or_default();
        let new = streams.is_empty();
        if !streams.contains(&stream) {
            streams.push(stream);
        }
        new
    }

    /// Forgets `stream`; true when its channel has no stream left (needs an UNLISTEN).
    fn remove(&mut self, channel: &str, stream: &str) -> bool {
        let Some(streams) = self.by_channel.get_mut(channel) else {
            return false;
        };
        streams.retain(|s| &**s != stream);
        if streams.is_empty() {
            self.by_channel.remove(channel);
            true
        } else {
            false
        }
    }

    fn has(&self, channel: &str, stream: &str) -> bool {
        self.by_channel
            .get(channel)
            .is_some_and(|streams| streams.iter().any(|s| &**s == stream))
    }
}

impl Driver {
    pub(super) async fn run(self) {
        let mut backoff = Backoff::default();
        loop {
            let lost = match self.serve().await {
                Ended::Stopped => None,
                Ended::Lost(error) => Some(error),
            };
            if !backoff
                .after(lost, &self.health, &self.stop, &WORDING)
                .await
            {
                return;
            }
        }
    }

    async fn connect(&self) -> Result<PgListener, String> {
        let pool = within(
            "connect",
            OP_TIMEOUT,
            PgPoolOptions::new()
                .max_connections(1)
                .acquire_timeout(OP_TIMEOUT)
                .max_lifetime(None)
                .idle_timeout(None)
                .connect_with(self.options.clone()),
        )
        .await?;
        within("connect", OP_TIMEOUT, PgListener::connect_with(&pool)).await
    }

    async fn serve(&self) -> Ended {
        let mut listener = tokio::select! {
            _ = self.stop.cancelled() => return Ended::Stopped,
            r = self.connect() => match r {
                Ok(l) => l,
                Err(e) => return Ended::Lost(e),
            },
        };
        let outage = self.health.connected();
        let interest = self.hub.interest(self.slot);
        // Everything wanted now is LISTENed below; changes from here on are reconciled.
        interest.take();
        let mut listening = Listening::default();
        let wanted = self.hub.streams();
        if let Err(e) = self.listen(&mut listener, &mut listening, &wanted).await {
            return Ended::Lost(e);
        }
        log_up(outage, &self.health, wanted.len(), &WORDING);
        let mut probe = tokio::time::interval(PROBE_EVERY);
        probe.tick().await;
        loop {
            tokio::select! {
                biased;
                _ = self.stop.cancelled() => return Ended::Stopped,
                received = listener.try_recv() => match received {
                    Ok(Some(first)) => {
                        // What sqlx already holds goes to the hub as one burst.
                        let mut next = listener.next_buffered();
                        let mut burst = self.hub.burst(next.is_some());
                        self.hand_on(&mut burst, &listening, first.channel(), first.payload());
                        while let Some(n) = next.take() {
                            self.hand_on(&mut burst, &listening, n.channel(), n.payload());
                            next = listener.next_buffered();
                        }
                    }
                    Ok(None) => return Ended::Lost("connection closed".into()),
                    Err(e) => return Ended::Lost(format!("receive failed: {e}")),
                },
                _ = interest.changed() => {
                    if let Err(e) = self.reconcile(&mut listener, &mut listening).await {
                        return Ended::Lost(e);
                    }
                }
                _ = probe.tick() => {
                    if let Err(e) = within("SELECT 1", OP_TIMEOUT, (&mut listener).execute("SELECT 1")).await {
                        return Ended::Lost(e);
                    }
                }
            }
        }
    }

    /// A notification on `channel`: a broadcast to every live stream it stands for, each of
    /// which it proves LISTENed.
    fn hand_on(
        &self,
        burst: &mut crate::hub::Burst<'_>,
        listening: &Listening,
        channel: &str,
        payload: &str,
    ) {
        let Some(streams) = listening.by_channel.get(channel) else {
            return;
        };
        self.counters.message();
        let payload = Bytes::copy_from_slice(payload.as_bytes());
        for stream in streams {
            burst.dispatch(stream, &payload, Some(self.slot));
        }
    }

    async fn reconcile(
        &self,
        listener: &mut PgListener,
        listening: &mut Listening,
    ) -> Result<(), String> {
        let mut add = Vec::new();
        let mut unlisten = Vec::new();
        for stream in self.hub.interest(self.slot).take() {
            let channel = listening.channel_of(&self.prefix, &stream);
            match (self.hub.wants(&stream), listening.has(&channel, &stream)) {
                (true, false) => add.push(stream),
                (false, true) => {
                    if listening.remove(&channel, &stream) {
                        unlisten.push(channel);
                    }
                }
                // Re-created while still LISTENed: live already.
                (true, true) => self.hub.mark_live(self.slot, &stream),
                (false, false) => {}
            }
        }
        for channel in unlisten {
            within("UNLISTEN", OP_TIMEOUT, listener.unlisten(&channel)).await?;
        }
        self.listen(listener, listening, &add).await
    }

    /// LISTENs to the channels of `streams` that are not LISTENed yet, in batches, and marks
    /// every one of `streams` live once its channel is.
    async fn listen(
        &self,
        listener: &mut PgListener,
        listening: &mut Listening,
        streams: &[Arc<str>],
    ) -> Result<(), String> {
        for batch in streams.chunks(LISTEN_BATCH) {
            let mut channels: Vec<String> = Vec::new();
            for stream in batch {
                let channel = listening.channel_of(&self.prefix, stream);
                if listening.add(&channel, stream.clone()) {
                    channels.push(channel);
                }
            }
            if !channels.is_empty() {
                within(
                    "LISTEN",
                    OP_TIMEOUT,
                    listener.listen_all(channels.iter().map(String::as_str)),
                )
                .await?;
            }
            for stream in batch {
                self.hub.mark_live(self.slot, stream);
            }
        }
        Ok(())
    }
}
