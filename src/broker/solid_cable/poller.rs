//! The Solid Cable input's task: one poller per process, like Solid Cable's listener thread.
//!
//! Each round it reads the rows past its position ([`Position`]) and the ids it skipped but
//! still looks for, delivers the rows of live streams in id order as one burst, and moves
//! on. A full batch means more are waiting: the next round starts at once. Between rounds it
//! sleeps `polling_interval` (a slow round delays the next; rounds never overlap), or wakes
//! early when a stream is added so its subscription is confirmed without waiting.
//!
//! **Position.** The first successful round starts at `MAX(id)` (no history is replayed).
//! Ids only grow (Rails' SQLite tables are AUTOINCREMENT, PostgreSQL's are sequences), so
//! rows deleted under the poller (Solid Cable's trim) change nothing. If the newest id is
//! ever below the position (checked on every reconnect, and every 2 s while no rows come),
//! the table was recreated: the poller logs it and starts again at the newest row.
//!
//! **Outages.** A failed query (database down, file missing, no answer within 5 s) turns the
//! health `disconnected`; the position is kept, and after reconnecting (back-off 100 ms to
//! 5 s) the poller reads everything committed meanwhile: nothing published while it was away
//! is lost.
//!
//! **Buffers.** One round holds at most `batch_size` rows and stops reading once the payloads
//! it holds pass [`ROUND_BYTES`] (the rest are read by the next round); oversized payloads are
//! never read. The skipped ids it looks for are capped at [`MAX_GAPS`] (oldest given up first,
//! counted in `/stats`).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio_util::sync::CancellationToken;

use super::db::{Database, OP_TIMEOUT, Row};
use super::{Location, Progress, SolidCableSettings, channel_hash};
use crate::broker::health::{Health, InputCounters, Rejection};
use crate::broker::reconnect::{Backoff, Wording, log_up, within};
use crate::hub::{AckSlot, Hub};

const WORDING: Wording = Wording {
    lost: "lost the Solid Cable database; sockets stay open, broadcasts resume from the last row read when it is back",
    unreachable: "cannot read the Solid Cable database",
    up: "Solid Cable database open",
    back: "Solid Cable database back; reading on from the last row read",
};
/// How often an idle poller checks that the table did not restart below its position.
const RECHECK_EVERY: Duration = Duration::from_secs(2);
/// Payload bytes one round holds before it stops reading (the next round continues).
pub(super) const ROUND_BYTES: usize = 16 * 1024 * 1024;
/// Skipped ids looked for at once.
pub(super) const MAX_GAPS: usize = 10_000;
/// A jump in ids larger than this is not recorded as skipped ids (a sequence that jumped,
/// not transactions in flight).
const MAX_GAP_SPAN: i64 = 1000;

/// Where the poller is: the highest id read, and the ids below it not seen yet that may
/// still appear (with when they were first missed).
#[derive(Debug, Default)]
pub(super) struct Position {
    pub(super) last_id: Option<i64>,
    gaps: BTreeMap<i64, Instant>,
    pub(super) abandoned: u64,
}

impl Position {
    /// Records a row read at `now`: the first read ever sets the position; a row past it
    /// moves it, noting the ids jumped over; a row that filled a gap closes it. Returns
    /// whether the row is new (never seen before).
    pub(super) fn see(&mut self, id: i64, now: Instant) -> bool {
        let Some(last) = self.last_id else {
            self.last_id = Some(id);
            return true;
        };
        if id > last {
            if id - last <= MAX_GAP_SPAN {
                for skipped in last + 1..id {
                    self.gaps.insert(skipped, now);
                }
            }
            self.last_id = Some(id);
            self.trim();
            true
        } else {
            self.gaps.remove(&id).is_some()
        }
    }

    /// Gives up on gaps older than `timeout`.
    pub(super) fn expire(&mut self, timeout: Duration, now: Instant) {
        let before = self.gaps.len();
        self.gaps.retain(|_, at| now.duration_since(*at) < timeout);
        self.abandoned += (before - self.gaps.len()) as u64;
    }

    fn trim(&mut self) {
        while self.gaps.len() > MAX_GAPS {
            self.gaps.pop_first();
            self.abandoned += 1;
        }
    }

    pub(super) fn gaps(&self) -> Vec<i64> {
        self.gaps.keys().copied().collect()
    }
}

/// The streams sharing one channel hash, each with its exact `channel` value.
type SameHash = Vec<(Vec<u8>, Arc<str>)>;

/// Live streams by channel hash.
#[derive(Debug, Default)]
pub(super) struct Wanted {
    by_hash: HashMap<i64, SameHash>,
}

impl Wanted {
    fn add(&mut self, channel: String, stream: Arc<str>) {
        let entry = self.by_hash.entry(channel_hash(&channel)).or_default();
        if !entry.iter().any(|(_, s)| *s == stream) {
            entry.push((channel.into_bytes(), stream));
        }
    }

    fn remove(&mut self, channel: &str, stream: &str) {
        let hash = channel_hash(channel);
        if let Some(entry) = self.by_hash.get_mut(&hash) {
            entry.retain(|(_, s)| &**s != stream);
            if entry.is_empty() {
                self.by_hash.remove(&hash);
            }
        }
    }

    fn hashes(&self) -> Vec<i64> {
        self.by_hash.keys().copied().collect()
    }

    /// The stream a row's channel is, if live (Solid Cable checks the channel itself too:
    /// hashes may collide).
    fn stream(&self, channel: &[u8]) -> Option<&Arc<str>> {
        let text = std::str::from_utf8(channel).ok()?;
        self.by_hash
            .get(&channel_hash(text))?
            .iter()
            .find(|(c, _)| c == channel)
            .map(|(_, s)| s)
    }
}

pub(super) struct Driver {
    pub(super) settings: SolidCableSettings,
    pub(super) slot: AckSlot,
    pub(super) hub: Arc<Hub>,
    pub(super) health: Arc<Health>,
    pub(super) counters: Arc<InputCounters>,
    pub(super) progress: Arc<Mutex<Progress>>,
    pub(super) stop: CancellationToken,
    pub(super) position: Position,
    pub(super) wanted: Wanted,
}

enum Round {
    /// A full batch: more rows are waiting.
    More,
    /// Caught up, after reading this many rows.
    Done { read: usize },
}

impl Driver {
    pub(super) async fn run(mut self) {
        let mut backoff = Backoff::default();
        loop {
            let lost = self.serve().await;
            if !backoff
                .after(lost, &self.health, &self.stop, &WORDING)
                .await
            {
                return;
            }
        }
    }

    async fn open(&self) -> Result<Database, String> {
        let open = async {
            match &self.settings.location {
                Location::Sqlite(path) => Database::sqlite(path).await,
                Location::Postgres(options) => Database::postgres(options).await,
            }
        };
        within("connect", OP_TIMEOUT, open).await
    }

    /// Polls until stopped (`None`) or the database fails (`Some(why)`).
    async fn serve(&mut self) -> Option<String> {
        let db = tokio::select! {
            _ = self.stop.cancelled() => return None,
            db = self.open() => match db {
                Ok(db) => db,
                Err(e) => return Some(e),
            },
        };
        let newest = match within("MAX(id)", OP_TIMEOUT, db.max_id()).await {
            Ok(id) => id,
            Err(e) => return Some(e),
        };
        self.place(newest);
        let outage = self.health.connected();
        log_up(outage, &self.health, self.hub.stream_count(), &WORDING);
        // The position is known: every live stream can be confirmed now.
        self.reconcile();
        let hub = self.hub.clone();
        let interest = hub.interest(self.slot);
        let mut checked = Instant::now();
        loop {
            let round = match self.round(&db).await {
                Ok(round) => round,
                Err(e) => return Some(e),
            };
            match round {
                Round::More => {
                    self.reconcile();
                    continue;
                }
                Round::Done { read: 0 } if checked.elapsed() >= RECHECK_EVERY => {
                    checked = Instant::now();
                    match within("MAX(id)", OP_TIMEOUT, db.max_id()).await {
                        Ok(newest) => self.place(newest),
                        Err(e) => return Some(e),
                    }
                }
                Round::Done { .. } => {}
            }
            tokio::select! {
                biased;
                _ = self.stop.cancelled() => return None,
                _ = interest.changed() => self.reconcile(),
                _ = tokio::time::sleep(self.settings.polling_interval) => {}
            }
        }
    }

    /// Sets the position from the table's newest id: at the first read, or again when the
    /// table restarted below it.
    fn place(&mut self, newest: i64) {
        match self.position.last_id {
            None => {
                self.position.see(newest, Instant::now());
                tracing::info!(
                    start_id = newest,
                    "Solid Cable poller started at the newest row"
                );
            }
            Some(last) if newest < last => {
                tracing::warn!(
                    newest,
                    last_id = last,
                    "the Solid Cable table restarted below the last row read (recreated?): starting again at its newest row"
                );
                self.position = Position {
                    abandoned: self.position.abandoned,
                    ..Position::default()
                };
                self.position.see(newest, Instant::now());
                self.publish_progress();
            }
            Some(_) => {}
        }
    }

    /// Takes the streams that changed: added ones are live at once (rows past the position
    /// will be delivered), removed ones are forgotten.
    fn reconcile(&mut self) {
        for stream in self.hub.interest(self.slot).take() {
            let channel = self.settings.channel(&stream);
            if self.hub.wants(&stream) {
                self.wanted.add(channel, stream.clone());
                self.hub.mark_live(self.slot, &stream);
            } else {
                self.wanted.remove(&channel, &stream);
            }
        }
    }

    /// One query and the deliveries it yields.
    async fn round(&mut self, db: &Database) -> Result<Round, String> {
        let now = Instant::now();
        self.position.expire(self.settings.gap_timeout, now);
        let after = self.position.last_id.unwrap_or(0);
        let limit = i64::from(self.settings.batch_size);
        let max_payload = i64::try_from(self.settings.max_payload_bytes).unwrap_or(i64::MAX);
        let rows = within(
            "poll",
            OP_TIMEOUT,
            db.poll(
                &self.wanted.hashes(),
                after,
                &self.position.gaps(),
                max_payload,
                limit,
            ),
        )
        .await?;
        let full = rows.len() as i64 >= limit;
        let read = rows.len();
        let mut deliveries: Vec<(Arc<str>, Bytes)> = Vec::new();
        let mut held = 0usize;
        let mut stopped_early = false;
        for row in rows {
            if held > ROUND_BYTES {
                stopped_early = true;
                break;
            }
            if !self.position.see(row.id, now) {
                continue;
            }
            if let Some((stream, payload)) = self.accept(row) {
                held += payload.len();
                deliveries.push((stream, payload));
            }
        }
        self.publish_progress();
        if !deliveries.is_empty() {
            let mut burst = self.hub.burst(deliveries.len() > 1);
            for (stream, payload) in &deliveries {
                self.counters.message();
                burst.dispatch(stream, payload, Some(self.slot));
            }
        }
        Ok(if full || stopped_early {
            Round::More
        } else {
            Round::Done { read }
        })
    }

    /// A new row: its stream and payload if it is a live stream's and well formed; refusals
    /// are counted and logged.
    fn accept(&self, row: Row) -> Option<(Arc<str>, Bytes)> {
        let wanted = row.wanted?;
        let refuse = |why: Rejection, cause: &str| {
            self.counters.reject(why);
            if let Some(skipped) = self.counters.log_gate() {
                tracing::warn!(id = row.id, cause, skipped, "skipped a Solid Cable row");
            }
        };
        let Some(channel) = wanted.channel else {
            refuse(Rejection::Malformed, "channel is NULL");
            return None;
        };
        // A hash collision with another channel is not ours (Solid Cable compares too).
        let stream = self.wanted.stream(&channel)?.clone();
        let Some(size) = wanted.size else {
            refuse(Rejection::Malformed, "payload is NULL");
            return None;
        };
        let Some(payload) = wanted.payload else {
            refuse(
                Rejection::Oversized,
                &format!(
                    "payload of {size} bytes is over solid_cable.max_payload_bytes ({})",
                    self.settings.max_payload_bytes
                ),
            );
            return None;
        };
        Some((stream, Bytes::from(payload)))
    }

    fn publish_progress(&self) {
        let mut progress = self.progress.lock().unwrap_or_else(|e| e.into_inner());
        progress.last_id = self.position.last_id;
        progress.gaps = self.position.gaps.len();
        progress.gaps_abandoned = self.position.abandoned;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_position_starts_moves_and_remembers_skipped_ids() {
        let now = Instant::now();
        let mut p = Position::default();
        assert!(p.see(10, now), "the first row read sets the position");
        assert!(p.see(11, now));
        assert!(p.see(14, now), "12 and 13 are skipped");
        assert_eq!(p.gaps(), vec![12, 13]);
        assert!(!p.see(11, now), "seen before");
        assert!(p.see(13, now), "a skipped id that shows up is new");
        assert!(!p.see(13, now), "and only once");
        assert_eq!(p.gaps(), vec![12]);
        p.expire(Duration::from_secs(5), now + Duration::from_secs(6));
        assert!(p.gaps().is_empty());
        assert_eq!(p.abandoned, 1);
        assert!(!p.see(12, now), "a gap given up on is not delivered late");
    }

    #[test]
    fn huge_jumps_are_not_gaps_and_gaps_are_bounded() {
        let now = Instant::now();
        let mut p = Position::default();
        p.see(0, now);
        p.see(MAX_GAP_SPAN + 10, now);
        assert!(p.gaps().is_empty());
        let mut p = Position::default();
        p.see(0, now);
        let mut id = 0;
        while p.gaps.len() < MAX_GAPS {
            id += 3;
            p.see(id, now);
        }
        p.see(id + 3, now);
        assert_eq!(p.gaps.len(), MAX_GAPS);
        assert_eq!(p.abandoned, 2);
    }

    #[test]
    fn wanted_channels_are_matched_exactly() {
        let mut w = Wanted::default();
        w.add("app:chat_1".into(), Arc::from("chat_1"));
        assert_eq!(w.hashes(), vec![channel_hash("app:chat_1")]);
        assert_eq!(w.stream(b"app:chat_1").map(|s| &**s), Some("chat_1"));
        assert_eq!(w.stream(b"app:chat_2"), None);
        assert_eq!(w.stream(&[0xff, 0xfe]), None);
        w.remove("app:chat_1", "chat_1");
        assert!(w.hashes().is_empty());
    }
}
