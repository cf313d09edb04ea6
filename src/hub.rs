//! Who listens to what: streams → subscribers, and the fan-out of a broadcast.
//!
//! The index is sharded by stream name (one `std::sync::Mutex` per shard, held only for map
//! work and non-blocking queue pushes, never across `.await`). A broadcast is decoded and
//! re-encoded once (protocol.md §4.3), then one frame is built per distinct identifier on the
//! stream and the same [`Bytes`] is queued for every subscriber with that identifier: no
//! per-subscriber serialisation, no allocation per delivery beyond the queue slot.
//!
//! Streams are *live* once the broker has acknowledged its subscription; subscriptions wait
//! for all their streams to be live before they are confirmed. With the in-process broker a
//! stream is live as soon as it exists. With Redis, the hub records which streams changed in
//! an [`Interest`] set that the Redis driver reconciles (see `broker::redis`).
//!
//! Per-stream order is preserved: one dispatcher feeds [`Hub::broadcast`] sequentially and
//! every connection's queue is FIFO.

use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use tokio::sync::Notify;

use crate::outbox::{CloseRequest, ConnHandle, FanOut, PendingConfirm};
use crate::stats::Stats;
use ferrocable_protocol::json::{self, Reencoded, Value};
use ferrocable_protocol::outgoing::{self, DisconnectReason, EscapedIdentifier};

const SHARDS: usize = 64;

/// Members of one stream that share an identifier: one frame serves them all.
#[derive(Debug, Default)]
struct Group {
    members: HashMap<u64, Arc<ConnHandle>>,
}

// Vectors, not maps, for the small parts: a stream has a handful of distinct identifiers,
// and an internal stream is one user's few connections. Every byte here exists once per
// stream, and with remote disconnect on, once per identity.
#[derive(Debug, Default)]
struct StreamEntry {
    live: bool,
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

    fn go_live(&mut self) -> Vec<Arc<PendingConfirm>> {
        self.live = true;
        std::mem::take(&mut self.waiters)
    }
}

#[derive(Debug, Default)]
struct Shard {
    streams: HashMap<Arc<str>, StreamEntry>,
}

/// Streams whose wanted state changed since the broker last looked. A set, so a stream that
/// flips many times before the broker runs costs one entry: bounded by the number of streams.
#[derive(Debug, Default)]
pub struct Interest {
    dirty: Mutex<HashSet<Arc<str>>>,
    /// Wakes the broker driver (its only waiter).
    changed: Notify,
}

impl Interest {
    fn mark(&self, stream: &Arc<str>) {
        let mut dirty = self.dirty.lock().unwrap_or_else(|e| e.into_inner());
        dirty.insert(stream.clone());
        drop(dirty);
        self.changed.notify_one();
    }

    /// Takes the changed streams.
    pub fn take(&self) -> HashSet<Arc<str>> {
        std::mem::take(&mut *self.dirty.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Resolves when something changed since the last `take`.
    pub async fn changed(&self) {
        self.changed.notified().await
    }
}

/// How remote disconnects are shown to clients (Rails 7.1+ frame, or 6.1's bare close).
#[derive(Debug, Clone, Copy)]
pub struct HubOptions {
    /// Send `{"type":"disconnect","reason":"remote",...}` before closing.
    pub remote_disconnect_frame: bool,
    /// Deepest JSON nesting a broadcast payload may have.
    pub max_json_depth: usize,
}

/// The stream index.
#[derive(Debug)]
pub struct Hub {
    shards: Box<[Mutex<Shard>]>,
    hasher: std::collections::hash_map::RandomState,
    /// `None` for the in-process broker, whose streams are live at once.
    interest: Option<Interest>,
    stats: Arc<Stats>,
    options: HubOptions,
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
    /// A hub; `external_broker` makes streams wait for the broker's acknowledgement.
    pub fn new(external_broker: bool, stats: Arc<Stats>, options: HubOptions) -> Hub {
        Hub {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            hasher: Default::default(),
            interest: external_broker.then(Interest::default),
            stats,
            options,
        }
    }

    /// The change set the external broker reconciles.
    pub fn interest(&self) -> Option<&Interest> {
        self.interest.as_ref()
    }

    fn shard(&self, stream: &str) -> MutexGuard<'_, Shard> {
        let i = (self.hasher.hash_one(stream) as usize) % SHARDS;
        self.shards[i].lock().unwrap_or_else(|e| e.into_inner())
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
            group.1.members.insert(conn.id, conn.clone());
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
            entry.groups[i].1.members.remove(&conn_id);
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
        if let Some((key, _)) = shard.streams.remove_entry(stream)
            && let Some(interest) = &self.interest
        {
            interest.mark(&key);
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
    /// the stream's first listener: the broker is told (it subscribes, and the entry goes
    /// live on the reply); without a broker that confirms, the entry is live at once.
    fn entry<'a>(&self, shard: &'a mut Shard, stream: &str) -> (Arc<str>, &'a mut StreamEntry) {
        let key = match shard.streams.get_key_value(stream) {
            Some((key, _)) => key.clone(),
            None => {
                let key: Arc<str> = Arc::from(stream);
                if let Some(interest) = &self.interest {
                    interest.mark(&key);
                }
                key
            }
        };
        let entry = shard
            .streams
            .entry(key.clone())
            .or_insert_with(|| StreamEntry {
                live: self.interest.is_none(),
                ..StreamEntry::default()
            });
        (key, entry)
    }

    /// Identities (connection identifiers) with their connection counts, from the
    /// remote-disconnect streams: the number of distinct ones and the `top` largest.
    pub fn identities(&self, top: usize) -> (usize, Vec<(String, usize)>) {
        let mut all = Vec::new();
        for shard in self.shards.iter() {
            let shard = shard.lock().unwrap_or_else(|e| e.into_inner());
            for (name, entry) in &shard.streams {
                if let Some(id) = name.strip_prefix(crate::channels::INTERNAL_STREAM_PREFIX)
                    && !entry.internal.is_empty()
                {
                    all.push((id.to_string(), entry.internal.len()));
                }
            }
        }
        let unique = all.len();
        all.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        all.truncate(top);
        (unique, all)
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

    /// The broker acknowledged `stream`: confirm whoever waited for it.
    pub fn mark_live(&self, stream: &str) {
        let waiters = match self.shard(stream).streams.get_mut(stream) {
            Some(entry) if !entry.live => entry.go_live(),
            _ => return,
        };
        for w in waiters {
            w.ready();
        }
    }

    /// Every stream with local listeners (to resubscribe after a broker reconnect).
    pub fn streams(&self) -> Vec<Arc<str>> {
        let mut all = Vec::new();
        for shard in self.shards.iter() {
            let shard = shard.lock().unwrap_or_else(|e| e.into_inner());
            all.extend(shard.streams.keys().cloned());
        }
        all
    }

    /// Number of streams with local listeners.
    pub fn stream_count(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).streams.len())
            .sum()
    }

    /// Delivers a broadcast published on `stream`. `acknowledged` tells whether the broker
    /// has certainly subscribed the stream by now (a message on it proves the subscribe reply
    /// came first), so a still-waiting stream can go live before the message is delivered.
    pub fn broadcast(&self, stream: &str, payload: &Bytes, acknowledged: bool) -> BroadcastOutcome {
        self.broadcast_with(FanOut::Immediate, stream, payload, acknowledged)
    }

    /// [`Hub::broadcast`] with the frames handed over in `fan_out` mode.
    pub fn broadcast_with(
        &self,
        fan_out: FanOut,
        stream: &str,
        payload: &Bytes,
        acknowledged: bool,
    ) -> BroadcastOutcome {
        self.stats
            .broadcasts_received
            .fetch_add(1, Ordering::Relaxed);
        if stream.starts_with(crate::channels::INTERNAL_STREAM_PREFIX) {
            return self.remote_disconnect(stream, payload);
        }
        let rewritten;
        let message: &str = match json::reencode(payload, self.options.max_json_depth) {
            // A canonical payload passed the UTF-8 check inside reencode; from_utf8 cannot
            // fail, but an error path costs nothing and keeps this panic-free.
            Ok(Reencoded::Canonical) => match std::str::from_utf8(payload) {
                Ok(text) => text,
                Err(_) => return BroadcastOutcome::Invalid,
            },
            Ok(Reencoded::Rewritten(bytes)) => {
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
        let mut deliveries: Vec<(Bytes, Vec<Arc<ConnHandle>>)> = Vec::new();
        {
            let mut shard = self.shard(stream);
            let Some(entry) = shard.streams.get_mut(stream) else {
                return BroadcastOutcome::Delivered(0);
            };
            if !entry.live && acknowledged {
                // Confirms go first so a client never sees a message before its confirm.
                for w in entry.go_live() {
                    w.ready();
                }
            }
            for (identifier, group) in &entry.groups {
                let frame = outgoing::text_frame(&outgoing::message(identifier, message));
                deliveries.push((frame, group.members.values().cloned().collect()));
            }
        }
        if fan_out == FanOut::Queued {
            self.stats
                .broadcasts_coalesced
                .fetch_add(1, Ordering::Relaxed);
        }
        let mut delivered = 0;
        for (frame, members) in &deliveries {
            for conn in members {
                fan_out.push(conn, frame);
            }
            delivered += members.len();
        }
        BroadcastOutcome::Delivered(delivered)
    }

    /// Rails' internal channel (protocol.md §5.2).
    fn remote_disconnect(&self, stream: &str, payload: &Bytes) -> BroadcastOutcome {
        let Ok(value) = json::parse(payload, self.options.max_json_depth) else {
            self.stats
                .broadcasts_invalid
                .fetch_add(1, Ordering::Relaxed);
            return BroadcastOutcome::Invalid;
        };
        let request = match &value {
            Value::Object(_) => match value.get("type").and_then(Value::as_str) {
                Some("disconnect") => {
                    let mut reconnect = Vec::new();
                    json::write_value(
                        &mut reconnect,
                        value.get("reconnect").unwrap_or(&Value::Bool(true)),
                    );
                    let reconnect = String::from_utf8(reconnect).unwrap_or_else(|_| "true".into());
                    Some((DisconnectReason::Remote, reconnect.into_boxed_str()))
                }
                _ => None,
            },
            // Rails indexes the payload with ["type"]: a String answers nil, anything else
            // raises and the connection is closed without a reason.
            Value::String(_) => None,
            _ => Some((DisconnectReason::Unspecified, "true".into())),
        };
        let Some((reason, reconnect)) = request else {
            return BroadcastOutcome::Delivered(0);
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
                &stream[crate::channels::INTERNAL_STREAM_PREFIX.len()..]
            );
            conn.close(close.clone());
        }
        BroadcastOutcome::Delivered(entry.internal.len())
    }
}

type ConnMap = HashMap<u64, Arc<ConnHandle>>;

/// Every welcomed connection, for the ping timer, shutdown and stats.
#[derive(Debug)]
pub struct Registry {
    shards: Box<[Mutex<ConnMap>]>,
}

impl Default for Registry {
    fn default() -> Self {
        Registry {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }
}

impl Registry {
    fn shard(&self, id: u64) -> MutexGuard<'_, ConnMap> {
        self.shards[(id as usize) % SHARDS]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a connection.
    pub fn insert(&self, conn: Arc<ConnHandle>) {
        self.shard(conn.id).insert(conn.id, conn);
    }

    /// Removes a connection.
    pub fn remove(&self, id: u64) {
        self.shard(id).remove(&id);
    }

    /// Calls `f` for every connection, one shard lock at a time.
    pub fn for_each(&self, mut f: impl FnMut(&Arc<ConnHandle>)) {
        for shard in self.shards.iter() {
            let shard = shard.lock().unwrap_or_else(|e| e.into_inner());
            shard.values().for_each(&mut f);
        }
    }

    /// Number of registered connections.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).len())
            .sum()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hub(external: bool) -> Hub {
        Hub::new(
            external,
            Arc::new(Stats::default()),
            HubOptions {
                remote_disconnect_frame: true,
                max_json_depth: ferrocable_protocol::MAX_JSON_DEPTH,
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
        let out = h.broadcast("chat_1", &Bytes::from_static(br#"{ "x" : 1 }"#), false);
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
        assert_eq!(h.interest().unwrap().take().len(), 1);
        h.mark_live("s");
        assert_eq!(
            texts(&a),
            vec![r#"{"identifier":"{\"channel\":\"C\"}","type":"confirm_subscription"}"#]
        );
    }

    #[test]
    fn an_acknowledged_message_confirms_before_it_is_delivered() {
        let h = hub(true);
        let a = conn(1);
        sub(&h, "s", r#"{"channel":"C"}"#, &a);
        h.broadcast("s", &Bytes::from_static(b"1"), true);
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
            h.broadcast("s", &Bytes::from_static(b"not json"), false),
            BroadcastOutcome::Invalid
        );
        assert!(texts(&a).is_empty());
        assert_eq!(h.stats.broadcasts_invalid.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn payloads_deeper_than_the_limit_are_dropped() {
        let h = Hub::new(
            false,
            Arc::new(Stats::default()),
            HubOptions {
                remote_disconnect_frame: true,
                max_json_depth: 3,
            },
        );
        let a = conn(1);
        sub(&h, "s", r#"{"channel":"C"}"#, &a);
        texts(&a);
        let deep = Bytes::from_static(b"[[[[1]]]]");
        assert_eq!(h.broadcast("s", &deep, false), BroadcastOutcome::Invalid);
        assert_eq!(
            h.broadcast("s", &Bytes::from_static(b"[[[1]]]"), false),
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
        h.broadcast("order_channel_1", &Bytes::from_static(b"{}"), false);
        assert!(texts(&a)[0].contains(r#"\"restaurant_id\":1}"#));
        assert!(texts(&b)[0].contains(r#"\"restaurant_id\":\"1\"}"#));
    }

    #[test]
    fn the_last_unsubscribe_removes_the_stream_and_marks_interest() {
        let h = hub(true);
        let a = conn(1);
        let id = EscapedIdentifier::new("{}");
        let p = sub(&h, "s", "{}", &a);
        h.interest().unwrap().take();
        h.unsubscribe("s", &id, 1, Some(&p));
        assert!(!h.wants("s"));
        assert_eq!(h.interest().unwrap().take().len(), 1);
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
            false,
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
        h.broadcast(&stream, &Bytes::from_static(br#""disconnect""#), false);
        assert_eq!(c.drain().close, None);
        h.broadcast(&stream, &Bytes::from_static(b"[1]"), false);
        assert!(matches!(
            c.drain().close,
            Some(CloseRequest::Disconnect {
                reason: DisconnectReason::Unspecified,
                ..
            })
        ));
    }
}
