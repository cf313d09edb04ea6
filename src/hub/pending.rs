//! A subscription's confirm, held until every one of its streams is live.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::outbox::{ConnHandle, Frame};

/// A subscription waiting for its streams to be live before it is confirmed (Rails:
/// "confirmed means live", docs/PROTOCOL.md §2). One count per stream plus one for the end of
/// subscribing, like Rails' counter.
#[derive(Debug)]
pub struct PendingConfirm {
    remaining: AtomicUsize,
    cancelled: AtomicBool,
    conn: Arc<ConnHandle>,
    /// Taken when sent, so a confirmed subscription does not keep its frame.
    frame: Mutex<Option<Frame>>,
}

impl PendingConfirm {
    /// Waits for `streams` streams, then sends `frame` on `conn`.
    pub fn new(streams: usize, conn: Arc<ConnHandle>, frame: Frame) -> PendingConfirm {
        PendingConfirm {
            remaining: AtomicUsize::new(streams + 1),
            cancelled: AtomicBool::new(false),
            conn,
            frame: Mutex::new(Some(frame)),
        }
    }

    /// One stream (or the end of subscribing) is done; the last one sends the confirm.
    pub fn ready(&self) {
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1
            && !self.cancelled.load(Ordering::Acquire)
            && let Some(frame) = self.frame.lock().unwrap_or_else(|e| e.into_inner()).take()
        {
            self.conn.push(&frame);
        }
    }

    /// The subscription went away first: never confirm.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Release);
    }

    /// Whether the confirm went out (or is due).
    pub fn is_confirmed(&self) -> bool {
        self.remaining.load(Ordering::Acquire) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn f(s: &'static str) -> Frame {
        Bytes::from_static(s.as_bytes())
    }

    #[test]
    fn confirm_waits_for_every_stream_and_the_end() {
        let c = Arc::new(ConnHandle::new(1, 100, None));
        let p = PendingConfirm::new(2, c.clone(), f("ok"));
        p.ready();
        p.ready();
        assert!(c.drain().frames.is_empty());
        p.ready();
        assert_eq!(c.drain().frames.len(), 1);
        let p = PendingConfirm::new(0, c.clone(), f("ok"));
        p.cancel();
        p.ready();
        assert!(c.drain().frames.is_empty());
    }
}
