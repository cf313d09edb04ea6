//! A connection's outbound side as the rest of the server sees it: a byte-bounded frame queue
//! plus a wake-up, and the pending confirm of a subscription.
//!
//! Producers (the hub's fan-out, the ping timer, shutdown, the session itself) never wait:
//! [`ConnHandle::push`] appends a shared frame and wakes the connection's task, which writes
//! everything queued in one go. **Overflow policy**: when the queued bytes would pass the
//! limit, the frame is not queued, the queue is dropped and the connection is marked too slow;
//! its task then sends `{"type":"disconnect","reason":"too_slow","reconnect":true}` and closes.
//! A stalled client therefore costs at most `limit` bytes and never delays anyone else.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

/// A text frame's payload: UTF-8 known once when built, then shared by reference count.
pub type Frame = hyper_tungstenite::tungstenite::Utf8Bytes;

use crate::protocol::outgoing::DisconnectReason;

/// How the connection's task must end the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseRequest {
    /// Send the disconnect frame (after what is queued), then close 1000.
    Disconnect {
        /// Reason in the frame.
        reason: DisconnectReason,
        /// The `reconnect` value, already JSON.
        reconnect: Box<str>,
    },
    /// Close 1000 without a frame (Rails 6.1/7.0 remote disconnect).
    CloseOnly,
    /// The queue overflowed: drop it, send too_slow, close.
    TooSlow,
}

#[derive(Debug, Default)]
struct Queue {
    frames: VecDeque<Frame>,
    bytes: usize,
    close: Option<CloseRequest>,
}

/// What the connection's task takes from its queue in one go.
#[derive(Debug, Default)]
pub struct Drained {
    /// Frames in order.
    pub frames: VecDeque<Frame>,
    /// Set once; the task ends the connection after writing `frames`.
    pub close: Option<CloseRequest>,
}

/// The shared half of a connection.
#[derive(Debug)]
pub struct ConnHandle {
    /// Process-unique connection number.
    pub id: u64,
    limit: usize,
    queue: Mutex<Queue>,
    /// Wakes the connection's task; the only waiter is that task.
    wake: Notify,
}

impl ConnHandle {
    /// A handle whose queue holds at most `limit` bytes.
    pub fn new(id: u64, limit: usize) -> ConnHandle {
        ConnHandle {
            id,
            limit,
            queue: Mutex::new(Queue::default()),
            wake: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        // A panic while holding this lock cannot leave the queue half-updated in a way that
        // matters more than losing the connection, so poisoning is ignored.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a frame. Returns false when it was not queued (closing, or overflow, which
    /// marks the connection too slow).
    pub fn push(&self, frame: Frame) -> bool {
        let mut q = self.lock();
        if q.close.is_some() {
            return false;
        }
        if q.bytes + frame.len() > self.limit {
            q.frames = VecDeque::new();
            q.bytes = 0;
            q.close = Some(CloseRequest::TooSlow);
            drop(q);
            self.wake.notify_one();
            return false;
        }
        q.bytes += frame.len();
        q.frames.push_back(frame);
        let first = q.frames.len() == 1;
        drop(q);
        // A non-empty queue means the task was already woken and has not drained yet.
        if first {
            self.wake.notify_one();
        }
        true
    }

    /// Asks the task to end the connection; the first request wins.
    pub fn close(&self, request: CloseRequest) {
        let mut q = self.lock();
        if q.close.is_none() {
            if request == CloseRequest::TooSlow {
                q.frames = VecDeque::new();
                q.bytes = 0;
            }
            q.close = Some(request);
        }
        drop(q);
        self.wake.notify_one();
    }

    /// Takes everything queued.
    pub fn drain(&self) -> Drained {
        let mut frames = VecDeque::new();
        let close = self.drain_into(&mut frames);
        Drained { frames, close }
    }

    /// Moves everything queued into `out` (which must be empty) by swapping buffers, so
    /// the queue reuses `out`'s allocation: no allocation per delivery. Returns the close
    /// request, if any.
    pub fn drain_into(&self, out: &mut VecDeque<Frame>) -> Option<CloseRequest> {
        debug_assert!(out.is_empty());
        let mut q = self.lock();
        q.bytes = 0;
        std::mem::swap(&mut q.frames, out);
        q.close.clone()
    }

    /// Resolves when something was queued or a close was requested since the last drain.
    pub async fn woken(&self) {
        self.wake.notified().await
    }

    /// Bytes queued right now.
    pub fn queued_bytes(&self) -> usize {
        self.lock().bytes
    }
}

/// A subscription waiting for its streams to be live before it is confirmed (Rails:
/// "confirmed means live", protocol.md §2). One count per stream plus one for the end of
/// subscribing, like Rails' counter.
#[derive(Debug)]
pub struct PendingConfirm {
    remaining: AtomicUsize,
    cancelled: AtomicBool,
    conn: Arc<ConnHandle>,
    frame: Frame,
}

impl PendingConfirm {
    /// Waits for `streams` streams, then queues `frame` on `conn`.
    pub fn new(streams: usize, conn: Arc<ConnHandle>, frame: Frame) -> PendingConfirm {
        PendingConfirm {
            remaining: AtomicUsize::new(streams + 1),
            cancelled: AtomicBool::new(false),
            conn,
            frame,
        }
    }

    /// One stream (or the end of subscribing) is done; the last one sends the confirm.
    pub fn ready(&self) {
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1
            && !self.cancelled.load(Ordering::Acquire)
        {
            self.conn.push(self.frame.clone());
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

    #[test]
    fn overflow_drops_the_queue_and_marks_too_slow() {
        let c = ConnHandle::new(1, 10);
        assert!(c.push(Frame::from_static("12345")));
        assert!(c.push(Frame::from_static("12345")));
        assert!(!c.push(Frame::from_static("1")));
        let d = c.drain();
        assert!(d.frames.is_empty());
        assert_eq!(d.close, Some(CloseRequest::TooSlow));
        assert!(!c.push(Frame::from_static("1")));
    }

    #[test]
    fn drain_resets_the_byte_count() {
        let c = ConnHandle::new(1, 10);
        assert!(c.push(Frame::from_static("1234567890")));
        assert_eq!(c.drain().frames.len(), 1);
        assert!(c.push(Frame::from_static("1234567890")));
    }

    #[test]
    fn first_close_wins() {
        let c = ConnHandle::new(1, 10);
        c.close(CloseRequest::CloseOnly);
        c.close(CloseRequest::TooSlow);
        assert_eq!(c.drain().close, Some(CloseRequest::CloseOnly));
    }

    #[test]
    fn confirm_waits_for_every_stream_and_the_end() {
        let c = Arc::new(ConnHandle::new(1, 100));
        let p = PendingConfirm::new(2, c.clone(), Frame::from_static("ok"));
        p.ready();
        p.ready();
        assert!(c.drain().frames.is_empty());
        p.ready();
        assert_eq!(c.drain().frames.len(), 1);
        let p = PendingConfirm::new(0, c.clone(), Frame::from_static("ok"));
        p.cancel();
        p.ready();
        assert!(c.drain().frames.is_empty());
    }

    #[tokio::test]
    async fn a_push_wakes_the_task_once() {
        let c = ConnHandle::new(1, 100);
        c.push(Frame::from_static("a"));
        c.push(Frame::from_static("b"));
        tokio::time::timeout(std::time::Duration::from_millis(100), c.woken())
            .await
            .unwrap();
        assert_eq!(c.drain().frames.len(), 2);
    }
}
