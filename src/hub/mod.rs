//! Who listens to what: streams → subscribers, and the delivery of broadcasts to them.
//!
//! - this file: the stream index, sharded by stream name (one `std::sync::Mutex` per shard,
//!   held only for map work and non-blocking queue pushes, never across `.await`);
//! - `dispatch`: the delivery path (re-encode once, one frame per identifier, shared bytes)
//!   and the policy that decides how frames are written, for every input;
//! - `group`: the subscribers that share an identifier, in the order the fan-out walks them;
//! - `pending`: a subscription's confirm, held until its streams are live;
//! - `listing`: what the hub reports (stream and identity counts, the console's listing).
//!
//! Streams are *live* once every input that acknowledges subscriptions has acknowledged
//! them; subscriptions wait for all their streams to be live before they are confirmed. Each
//! such input (Rails' Redis adapter, PostgreSQL `LISTEN`, Solid Cable's poller) has its own
//! [`AckSlot`] and [`Interest`] set, which it reconciles; a stream is live when all of them
//! have acknowledged it. With no such input (the in-process broker, AnyCable's channel,
//! routed channels, CloudEvents) a stream is live as soon as it exists.
//!
//! Per-stream order is preserved: each input hands its messages over sequentially and every
//! connection's queue is FIFO.

#[cfg(test)]
mod callgrind;
mod dispatch;
mod group;
mod interest;
mod listing;
mod pending;

pub use dispatch::Burst;
pub use interest::{AckSlot, Interest, MAX_ACK_SLOTS};
pub use listing::StreamListing;
pub use pending::PendingConfirm;

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, MutexGuard};

use ferrocable_protocol::json::Escaping;
use ferrocable_protocol::outgoing::EscapedIdentifier;

use crate::activity::Activity;
use crate::outbox::{Beat, ConnHandle};
use crate::stats::Stats;
use dispatch::LoadSignal;
use group::Group;

const SHARDS: usize = 64;

// Vectors, not maps, for the small parts: a stream has a handful of distinct identifiers,
// and an internal stream is one user's few connections. Every byte here exists once per
// stream, and with remote disconnect on, once per identity.
#[derive(Debug, Default)]
struct StreamEntry {
    /// Every acknowledging input has acknowledged the stream.
    live: bool,
    /// Which acknowledging inputs have (one bit per [`AckSlot`]).
    acks: u32,
    waiters: Vec<Arc<PendingConfirm>>,
    /// Subscriptions by escaped identifier.
    groups: Vec<(EscapedIdentifier, Group)>,
    /// Connections listening for remote disconnects on this (internal) stream.
    internal: Vec<Arc<ConnHandle>>,
}

impl StreamEntry {
    fn is_empty(&self) -> bool {
        self.groups.is_empty() && self.internal.is_empty()
    }

    /// Records `slot`'s acknowledgement; returns the waiters to confirm when that made the
    /// stream live (`all`: every slot's bit).
    fn acknowledge(&mut self, slot: AckSlot, all: u32) -> Vec<Arc<PendingConfirm>> {
        self.acks |= 1 << slot.0;
        if self.live || self.acks & all != all {
            return Vec::new();
        }
        self.live = true;
        std::mem::take(&mut self.waiters)
    }
}

#[derive(Debug, Default)]
struct Shard {
    streams: HashMap<Arc<str>, StreamEntry>,
}

/// What the hub needs of the configuration.
#[derive(Debug, Clone, Copy)]
pub struct HubOptions {
    /// Send `{"type":"disconnect","reason":"remote",...}` before closing.
    pub remote_disconnect_frame: bool,
    /// Deepest JSON nesting a broadcast payload may have.
    pub max_json_depth: usize,
    /// How the re-encoded payload escapes strings (U+2028/U+2029 on Rails 8.1).
    pub escaping: Escaping,
}

/// The stream index.
#[derive(Debug)]
pub struct Hub {
    shards: Box<[Mutex<Shard>]>,
    hasher: std::collections::hash_map::RandomState,
    /// One per acknowledging input, indexed by [`AckSlot`]; empty: streams are live at once.
    interests: Box<[Interest]>,
    /// Every slot's bit: a stream is live when its acknowledgements cover this.
    all_acks: u32,
    stats: Arc<Stats>,
    options: HubOptions,
    /// The delivery policy's load signal (see [`dispatch`]).
    load: Mutex<LoadSignal>,
    /// Rails' heartbeat: fan-outs carry the owed ping along (see [`crate::outbox::beat`]).
    beat: Beat,
    /// Where broadcasts are recorded for the console; `None` (nothing recorded, nothing
    /// spent) unless it is enabled.
    activity: Option<Arc<Activity>>,
}

/// What a broadcast payload turned into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BroadcastOutcome {
    /// Dispatched to this many connections.
    Delivered(usize),
    /// Not valid JSON: dropped, as Rails drops it.
    Invalid,
}

impl Hub {
    /// A hub whose streams wait for `acknowledgers` inputs (at most [`MAX_ACK_SLOTS`]; 0:
    /// streams are live at once) before subscriptions to them are confirmed.
    pub fn new(acknowledgers: usize, stats: Arc<Stats>, options: HubOptions) -> Hub {
        let acknowledgers = acknowledgers.min(MAX_ACK_SLOTS);
        Hub {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            hasher: Default::default(),
            interests: (0..acknowledgers).map(|_| Interest::default()).collect(),
            all_acks: (0..acknowledgers).fold(0, |mask, i| mask | 1 << i),
            stats,
            options,
            load: Mutex::default(),
            beat: Beat::default(),
            activity: None,
        }
    }

    /// Records every broadcast in `activity` (for the console).
    pub fn recording(mut self, activity: Arc<Activity>) -> Hub {
        self.activity = Some(activity);
        self
    }

    /// The heartbeat every welcomed connection is owed a ping of, once per beat.
    pub fn beat(&self) -> &Beat {
        &self.beat
    }

    fn shard(&self, stream: &str) -> MutexGuard<'_, Shard> {
        let i = (self.hasher.hash_one(stream) as usize) % SHARDS;
        lock(&self.shards[i])
    }

    /// Every shard, each locked as the walk reaches it: a caller that drops each guard before
    /// taking the next holds one shard at a time.
    fn locked_shards(&self) -> impl Iterator<Item = MutexGuard<'_, Shard>> {
        self.shards.iter().map(lock)
    }

    /// Adds a subscriber; `pending` is told when the stream is live. Returns the hub's own
    /// copies of the stream name and identifier, so every subscriber shares one allocation.
    pub fn subscribe(
        &self,
        stream: &str,
        identifier: &EscapedIdentifier,
        conn: &Arc<ConnHandle>,
        pending: &Arc<PendingConfirm>,
    ) -> (Arc<str>, EscapedIdentifier) {
        let (ready_now, shared) = {
            let mut shard = self.shard(stream);
            let (key, entry) = self.entry(&mut shard, stream);
            let group = match entry.groups.iter().position(|(id, _)| id == identifier) {
                Some(i) => &mut entry.groups[i],
                None => {
                    entry.groups.push((identifier.clone(), Group::default()));
                    entry.groups.last_mut().expect("pushed")
                }
            };
            group.1.insert(conn);
            let shared = (key, group.0.clone());
            if !entry.live {
                entry.waiters.push(pending.clone());
            }
            (entry.live, shared)
        };
        if ready_now {
            pending.ready();
        }
        shared
    }

    /// Removes a subscriber (and its pending confirm, if still waiting).
    pub fn unsubscribe(
        &self,
        stream: &str,
        identifier: &EscapedIdentifier,
        conn_id: u64,
        pending: Option<&Arc<PendingConfirm>>,
    ) {
        let mut shard = self.shard(stream);
        let Some(entry) = shard.streams.get_mut(stream) else {
            return;
        };
        if let Some(i) = entry.groups.iter().position(|(id, _)| id == identifier) {
            entry.groups[i].1.remove(conn_id);
            if entry.groups[i].1.members.is_empty() {
                entry.groups.swap_remove(i);
            }
        }
        if let Some(p) = pending {
            entry.waiters.retain(|w| !Arc::ptr_eq(w, p));
        }
        if entry.is_empty() {
            self.remove_stream(&mut shard, stream);
        }
    }

    fn remove_stream(&self, shard: &mut Shard, stream: &str) {
        if let Some((key, _)) = shard.streams.remove_entry(stream) {
            self.mark_interest(&key);
        }
    }

    /// Listens for remote disconnects on `stream` (`action_cable/<connection identifier>`).
    /// Returns the hub's copy of the name.
    pub fn join_internal(&self, stream: &str, conn: &Arc<ConnHandle>) -> Arc<str> {
        let mut shard = self.shard(stream);
        let (key, entry) = self.entry(&mut shard, stream);
        entry.internal.push(conn.clone());
        key
    }

    /// The stream's entry and the hub's shared copy of its name, creating both when this is
    /// the stream's first listener: every acknowledging input is told (each subscribes, and
    /// the entry goes live on the last reply); without one, the entry is live at once.
    fn entry<'a>(&self, shard: &'a mut Shard, stream: &str) -> (Arc<str>, &'a mut StreamEntry) {
        let key = match shard.streams.get_key_value(stream) {
            Some((key, _)) => key.clone(),
            None => {
                let key: Arc<str> = Arc::from(stream);
                self.mark_interest(&key);
                key
            }
        };
        let entry = shard
            .streams
            .entry(key.clone())
            .or_insert_with(|| StreamEntry {
                live: self.all_acks == 0,
                ..StreamEntry::default()
            });
        (key, entry)
    }

    /// Stops listening for remote disconnects.
    pub fn leave_internal(&self, stream: &str, conn_id: u64) {
        let mut shard = self.shard(stream);
        let Some(entry) = shard.streams.get_mut(stream) else {
            return;
        };
        entry.internal.retain(|c| c.id != conn_id);
        if entry.is_empty() {
            self.remove_stream(&mut shard, stream);
        }
    }

    /// Whether any local connection wants `stream`.
    pub fn wants(&self, stream: &str) -> bool {
        self.shard(stream).streams.contains_key(stream)
    }

    /// Every stream with local listeners (to resubscribe after an input reconnects).
    pub fn streams(&self) -> Vec<Arc<str>> {
        let mut all = Vec::new();
        for shard in self.locked_shards() {
            all.extend(shard.streams.keys().cloned());
        }
        all
    }
}

/// A shard's lock. A poisoned one (a panic while it was held) is used anyway, as every lock
/// in the hub is: failing each later subscribe and broadcast on the shard would be worse.
fn lock(shard: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    shard.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::CloseRequest;
    use bytes::Bytes;
    use ferrocable_protocol::outgoing::{self, DisconnectReason};
    use std::sync::atomic::Ordering;

    fn hub(external: bool) -> Hub {
        hub_escaping(external, Escaping::default())
    }

    fn hub_escaping(external: bool, escaping: Escaping) -> Hub {
        Hub::new(
            usize::from(external),
            Arc::new(Stats::default()),
            HubOptions {
                remote_disconnect_frame: true,
                max_json_depth: ferrocable_protocol::MAX_JSON_DEPTH,
                escaping,
            },
        )
    }

    fn conn(id: u64) -> Arc<ConnHandle> {
        Arc::new(ConnHandle::new(id, 1 << 20, None))
    }

    fn texts(c: &ConnHandle) -> Vec<String> {
        c.drain()
            .frames
            .into_iter()
            .map(|b| outgoing::text_payload(&b).unwrap().to_string())
            .collect()
    }

    fn sub(h: &Hub, stream: &str, ident: &str, c: &Arc<ConnHandle>) -> Arc<PendingConfirm> {
        let id = EscapedIdentifier::new(ident);
        let p = Arc::new(PendingConfirm::new(
            1,
            c.clone(),
            outgoing::text_frame(&outgoing::confirm(&id)),
        ));
        h.subscribe(stream, &id, c, &p);
        p.ready();
        p
    }

    #[test]
    fn memory_streams_confirm_at_once_and_share_frames() {
        let h = hub(false);
        let (a, b) = (conn(1), conn(2));
        sub(&h, "chat_1", r#"{"channel":"Chat"}"#, &a);
        sub(&h, "chat_1", r#"{"channel":"Chat"}"#, &b);
        assert_eq!(texts(&a).len(), 1);
        texts(&b);
        let out = h.broadcast("chat_1", &Bytes::from_static(br#"{ "x" : 1 }"#), None);
        assert_eq!(out, BroadcastOutcome::Delivered(2));
        let fa = a.drain().frames.pop_front().unwrap();
        let fb = b.drain().frames.pop_front().unwrap();
        assert_eq!(
            outgoing::text_payload(&fa).unwrap(),
            r#"{"identifier":"{\"channel\":\"Chat\"}","message":{"x":1}}"#
        );
        // One encoding shared by both subscribers.
        assert_eq!(fa.as_ptr(), fb.as_ptr());
    }

    #[test]
    fn external_streams_confirm_when_live() {
        let h = hub(true);
        let a = conn(1);
        sub(&h, "s", r#"{"channel":"C"}"#, &a);
        assert!(texts(&a).is_empty());
        let slot = h.ack_slot(0).unwrap();
        assert_eq!(h.interest(slot).take().len(), 1);
        h.mark_live(slot, "s");
        assert_eq!(
            texts(&a),
            vec![r#"{"identifier":"{\"channel\":\"C\"}","type":"confirm_subscription"}"#]
        );
    }

    #[test]
    fn a_stream_is_live_once_every_acknowledging_input_has_acknowledged_it() {
        let h = Hub::new(
            2,
            Arc::new(Stats::default()),
            HubOptions {
                remote_disconnect_frame: true,
                max_json_depth: ferrocable_protocol::MAX_JSON_DEPTH,
                escaping: Escaping::default(),
            },
        );
        let (first, second) = (h.ack_slot(0).unwrap(), h.ack_slot(1).unwrap());
        assert_eq!(h.ack_slot(2), None);
        let a = conn(1);
        sub(&h, "s", r#"{"channel":"C"}"#, &a);
        // Both inputs hear about the new stream.
        assert_eq!(h.interest(first).take().len(), 1);
        assert_eq!(h.interest(second).take().len(), 1);
        h.mark_live(first, "s");
        h.mark_live(first, "s");
        assert!(
            texts(&a).is_empty(),
            "one of two acknowledgements is not live"
        );
        // A message from the first input proves nothing about the second.
        h.broadcast("s", &Bytes::from_static(b"1"), Some(first));
        assert_eq!(
            texts(&a),
            vec![r#"{"identifier":"{\"channel\":\"C\"}","message":1}"#]
        );
        h.broadcast("s", &Bytes::from_static(b"2"), Some(second));
        let got = texts(&a);
        assert!(got[0].contains("confirm_subscription"), "{got:?}");
        assert!(got[1].contains(r#""message":2"#));
    }

    #[test]
    fn an_acknowledged_message_confirms_before_it_is_delivered() {
        let h = hub(true);
        let a = conn(1);
        sub(&h, "s", r#"{"channel":"C"}"#, &a);
        h.broadcast("s", &Bytes::from_static(b"1"), h.ack_slot(0));
        let got = texts(&a);
        assert!(got[0].contains("confirm_subscription"));
        assert!(got[1].contains(r#""message":1"#));
    }

    #[test]
    fn invalid_payloads_are_dropped_and_counted() {
        let h = hub(false);
        let a = conn(1);
        sub(&h, "s", r#"{"channel":"C"}"#, &a);
        texts(&a);
        assert_eq!(
            h.broadcast("s", &Bytes::from_static(b"not json"), None),
            BroadcastOutcome::Invalid
        );
        assert!(texts(&a).is_empty());
        assert_eq!(h.stats.broadcasts_invalid.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn payloads_deeper_than_the_limit_are_dropped() {
        let h = Hub::new(
            0,
            Arc::new(Stats::default()),
            HubOptions {
                remote_disconnect_frame: true,
                max_json_depth: 3,
                escaping: Escaping::default(),
            },
        );
        let a = conn(1);
        sub(&h, "s", r#"{"channel":"C"}"#, &a);
        texts(&a);
        let deep = Bytes::from_static(b"[[[[1]]]]");
        assert_eq!(h.broadcast("s", &deep, None), BroadcastOutcome::Invalid);
        assert_eq!(
            h.broadcast("s", &Bytes::from_static(b"[[[1]]]"), None),
            BroadcastOutcome::Delivered(1)
        );
    }

    #[test]
    fn distinct_identifiers_get_their_own_frames() {
        let h = hub(false);
        let (a, b) = (conn(1), conn(2));
        sub(
            &h,
            "order_channel_1",
            r#"{"channel":"OrderChannel","restaurant_id":1}"#,
            &a,
        );
        sub(
            &h,
            "order_channel_1",
            r#"{"channel":"OrderChannel","restaurant_id":"1"}"#,
            &b,
        );
        texts(&a);
        texts(&b);
        h.broadcast("order_channel_1", &Bytes::from_static(b"{}"), None);
        assert!(texts(&a)[0].contains(r#"\"restaurant_id\":1}"#));
        assert!(texts(&b)[0].contains(r#"\"restaurant_id\":\"1\"}"#));
    }

    /// A turbo-stream from a publisher that is not ActiveSupport (raw `<`, `\/`): written
    /// again once for the broadcast, then the same bytes for three recipients under two
    /// identifiers.
    #[test]
    fn a_payload_is_rewritten_once_per_broadcast_not_per_recipient() {
        let h = hub(false);
        let (a, b, c) = (conn(1), conn(2), conn(3));
        let turbo = r#"{"channel":"Turbo::StreamsChannel","signed_stream_name":"x--y"}"#;
        let with_data =
            r#"{"channel":"Turbo::StreamsChannel","signed_stream_name":"x--y","room":"1"}"#;
        sub(&h, "room:messages", turbo, &a);
        sub(&h, "room:messages", turbo, &b);
        sub(&h, "room:messages", with_data, &c);
        for x in [&a, &b, &c] {
            texts(x);
        }
        let payload = Bytes::from_static(
            br#""<turbo-stream action=\"append\" target=\"messages\"><template><p>Caf\u00e9 & <\/p></template></turbo-stream>""#,
        );
        assert_eq!(
            h.broadcast("room:messages", &payload, None),
            BroadcastOutcome::Delivered(3)
        );
        assert_eq!(h.stats.broadcasts_rewritten.load(Ordering::Relaxed), 1);
        let message = r#""\u003cturbo-stream action=\"append\" target=\"messages\"\u003e\u003ctemplate\u003e\u003cp\u003eCafé \u0026 \u003c/p\u003e\u003c/template\u003e\u003c/turbo-stream\u003e""#;
        for (x, id) in [(&a, turbo), (&b, turbo), (&c, with_data)] {
            let escaped = EscapedIdentifier::new(id);
            assert_eq!(
                texts(x),
                [format!(
                    r#"{{"identifier":{},"message":{message}}}"#,
                    escaped.as_str()
                )]
            );
        }
        // What Rails itself publishes is spliced as it is: no rewrite at all.
        let canonical = Bytes::from(message.as_bytes().to_vec());
        assert_eq!(
            h.broadcast("room:messages", &canonical, None),
            BroadcastOutcome::Delivered(3)
        );
        assert_eq!(h.stats.broadcasts_rewritten.load(Ordering::Relaxed), 1);
        assert_eq!(h.stats.broadcasts_received.load(Ordering::Relaxed), 2);
    }

    /// Rails 8.1 under `load_defaults 8.1`: U+2028 reaches the page raw, in the message and
    /// in the identifier echo.
    #[test]
    fn rails_8_1_delivers_js_separators_raw() {
        let h = hub_escaping(false, Escaping::RAW_JS_SEPARATORS);
        let a = conn(1);
        let id =
            EscapedIdentifier::with_escaping("{\"r\":\"\u{2028}\"}", Escaping::RAW_JS_SEPARATORS);
        let p = Arc::new(PendingConfirm::new(
            1,
            a.clone(),
            outgoing::text_frame(&outgoing::confirm(&id)),
        ));
        h.subscribe("s", &id, &a, &p);
        p.ready();
        texts(&a);
        h.broadcast("s", &Bytes::from_static(br#""a\u2028b""#), None);
        assert_eq!(
            texts(&a),
            ["{\"identifier\":\"{\\\"r\\\":\\\"\u{2028}\\\"}\",\"message\":\"a\u{2028}b\"}"]
        );
    }

    #[test]
    fn the_last_unsubscribe_removes_the_stream_and_marks_interest() {
        let h = hub(true);
        let a = conn(1);
        let id = EscapedIdentifier::new("{}");
        let p = sub(&h, "s", "{}", &a);
        let slot = h.ack_slot(0).unwrap();
        h.interest(slot).take();
        h.unsubscribe("s", &id, 1, Some(&p));
        assert!(!h.wants("s"));
        assert_eq!(h.interest(slot).take().len(), 1);
    }

    #[test]
    fn identities_come_from_remote_disconnect_streams() {
        let h = hub(false);
        let (a, b, c) = (conn(1), conn(2), conn(3));
        let shared = h.join_internal("action_cable/u1", &a);
        assert!(Arc::ptr_eq(
            &shared,
            &h.join_internal("action_cable/u1", &b)
        ));
        h.join_internal("action_cable/u2", &c);
        assert_eq!(h.identities(1), (2, vec![("u1".to_string(), 2)]));
        assert_eq!(h.identity_count(), 2);
        h.leave_internal("action_cable/u1", 1);
        h.leave_internal("action_cable/u1", 2);
        assert_eq!(h.identities(10).0, 1);
    }

    #[test]
    fn remote_disconnect_closes_every_listener() {
        let h = hub(false);
        let (a, b) = (conn(1), conn(2));
        let stream: Arc<str> = Arc::from("action_cable/1:Z2lk");
        h.join_internal(&stream, &a);
        h.join_internal(&stream, &b);
        h.broadcast(
            &stream,
            &Bytes::from_static(br#"{"type":"disconnect","reconnect":false}"#),
            None,
        );
        for c in [&a, &b] {
            assert_eq!(
                c.drain().close,
                Some(CloseRequest::Disconnect {
                    reason: DisconnectReason::Remote,
                    reconnect: "false".into()
                })
            );
        }
        let c = conn(3);
        h.join_internal(&stream, &c);
        h.broadcast(&stream, &Bytes::from_static(br#""disconnect""#), None);
        assert_eq!(c.drain().close, None);
        h.broadcast(&stream, &Bytes::from_static(b"[1]"), None);
        assert!(matches!(
            c.drain().close,
            Some(CloseRequest::Disconnect {
                reason: DisconnectReason::Unspecified,
                ..
            })
        ));
    }

    /// A hub with one connection subscribed to stream "s", and how many broadcasts it queued.
    fn one_listener() -> (Hub, Arc<ConnHandle>) {
        let h = hub(false);
        let a = conn(1);
        sub(&h, "s", r#"{"channel":"C"}"#, &a);
        (h, a)
    }

    fn coalesced(h: &Hub) -> u64 {
        h.stats.broadcasts_coalesced.load(Ordering::Relaxed)
    }

    #[test]
    fn a_burst_queues_what_was_waiting_and_an_idle_hub_writes_at_once() {
        let (h, a) = one_listener();
        let payload = Bytes::from_static(b"1");
        h.burst(false).dispatch("s", &payload, None);
        assert_eq!(
            coalesced(&h),
            0,
            "a lone message on an idle hub is written at once"
        );
        let mut burst = h.burst(true);
        burst.dispatch("s", &payload, None);
        burst.dispatch("s", &payload, None);
        drop(burst);
        assert_eq!(coalesced(&h), 2, "more waiting: the whole burst is queued");
        assert_eq!(
            texts(&a).len(),
            4,
            "the confirm and three messages, in order"
        );
    }

    #[test]
    fn one_short_pause_is_written_at_once_and_a_second_in_a_row_is_queued() {
        let (h, a) = one_listener();
        let payload = Bytes::from_static(b"1");
        // A lone message right after a fan-out that took `cost`.
        let after_a_fan_out_of = |cost| {
            h.pretend_a_fan_out_just_took(cost);
            h.burst(false).dispatch("s", &payload, None);
        };
        let slow = std::time::Duration::from_secs(3600);
        after_a_fan_out_of(slow);
        assert_eq!(
            coalesced(&h),
            0,
            "one message soon after a fan-out: at once"
        );
        after_a_fan_out_of(slow);
        assert_eq!(
            coalesced(&h),
            1,
            "the second short pause in a row: behind, queued"
        );
        after_a_fan_out_of(slow);
        assert_eq!(coalesced(&h), 2, "still behind while the pauses stay short");
        after_a_fan_out_of(std::time::Duration::ZERO);
        assert_eq!(
            coalesced(&h),
            2,
            "a pause longer than the fan-out: caught up"
        );
        assert_eq!(
            texts(&a).len(),
            5,
            "the confirm and four messages, in order"
        );
    }
}
