//! Acknowledgements: which inputs must have subscribed a stream before subscriptions to it
//! are confirmed ("confirmed means live"). Every input that subscribes per stream (Redis
//! `SUBSCRIBE`, PostgreSQL `LISTEN`, Solid Cable's poller) gets an [`AckSlot`] (its bit in
//! every stream's entry) and an [`Interest`] set of the streams that changed since it last
//! looked; a stream is live once every slot's bit is set.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use super::Hub;

/// Most inputs that acknowledge subscriptions at once (one bit each in a stream's entry).
pub const MAX_ACK_SLOTS: usize = 32;

/// One input that acknowledges subscriptions, as the hub numbers it: its bit in every
/// stream's acknowledgements and its [`Interest`] set. Only [`Hub::ack_slot`] makes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckSlot(pub(super) u8);

/// Streams whose wanted state changed since one input last looked. A set, so a stream that
/// flips many times before the input runs costs one entry: bounded by the number of streams.
/// Every acknowledging input has its own (see [`AckSlot`]).
#[derive(Debug, Default)]
pub struct Interest {
    dirty: Mutex<HashSet<Arc<str>>>,
    /// Wakes the input's task (its only waiter).
    changed: Notify,
}

impl Interest {
    pub(super) fn mark(&self, stream: &Arc<str>) {
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

impl Hub {
    /// The `index`-th acknowledging input's slot; `None` beyond the number the hub was made
    /// for.
    pub fn ack_slot(&self, index: usize) -> Option<AckSlot> {
        (index < self.interests.len()).then_some(AckSlot(index as u8))
    }

    /// The change set the input in `slot` reconciles.
    pub fn interest(&self, slot: AckSlot) -> &Interest {
        &self.interests[slot.0 as usize]
    }

    /// Tells every acknowledging input that `stream`'s wanted state changed.
    pub(super) fn mark_interest(&self, stream: &Arc<str>) {
        for interest in self.interests.iter() {
            interest.mark(stream);
        }
    }

    /// The input in `slot` acknowledged `stream`: once every acknowledging input has, confirm
    /// whoever waited for it.
    pub fn mark_live(&self, slot: AckSlot, stream: &str) {
        let waiters = match self.shard(stream).streams.get_mut(stream) {
            Some(entry) => entry.acknowledge(slot, self.all_acks),
            None => return,
        };
        for w in waiters {
            w.ready();
        }
    }
}
