//! A connection's outbound side as the rest of the server sees it: the socket ([`socket`]) and
//! a byte-bounded queue of ready-to-send WebSocket frames ([`ConnHandle`]). Everyone who writes
//! to a connection (the hub, the ping timer, its own task) holds this, never the task itself.
//!
//! Producers (the hub's fan-out, the ping timer, the connection's own task, and tungstenite's
//! control frames through [`socket`]) never wait. [`ConnHandle::push`] writes a frame
//! straight to the socket when nothing is queued and the connection's task is not writing:
//! one non-blocking `write`, exactly what a hand-written fan-out would do, with no task
//! wake-up. Otherwise (the socket is full, frames are already waiting, or the hub is behind
//! and fans out in [`FanOut::Queued`] mode) the frame is queued and the task, woken once,
//! writes the whole backlog with vectored writes, so under load frames coalesce instead of
//! costing a syscall each.
//! All bytes of a connection go through this one ordered path, so frames never interleave.
//!
//! **Overflow policy**: when the queued bytes would pass the limit, the frame is not queued,
//! the queue is dropped (except the rest of a frame already partly on the wire) and the
//! connection is marked too slow; its task then sends
//! `{"type":"disconnect","reason":"too_slow","reconnect":true}` and closes. A stalled client
//! therefore costs at most `limit` bytes and never delays anyone else.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use ferrocable_protocol::outgoing::DisconnectReason;
use tokio::net::TcpStream;
use tokio::sync::Notify;

use crate::stats::{Stamp, Stats, StripedCounter};

pub mod beat;
pub mod socket;

pub use beat::{Beat, Carried};

/// A complete WebSocket frame (header and payload), encoded once and shared.
pub type Frame = Bytes;

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

/// What became of a pushed frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// Written to the socket in full, now.
    Written,
    /// Queued for the connection's task.
    Queued,
    /// Refused: the connection is closing (or just overflowed).
    Refused,
}

/// A connection's queue and write-side state, under [`ConnHandle`]'s lock. `repr(C)` with the
/// fields a direct write reads first: see [`ConnHandle`] for why.
#[derive(Debug, Default)]
#[repr(C)]
struct Queue {
    /// Bytes queued; 0 exactly when `frames` is empty (empty frames are never queued), so the
    /// direct-write check reads this rather than the deque in the next cache line.
    bytes: usize,
    /// The connection's task owns the socket's write side right now.
    writing: bool,
    /// `close` is set: nothing but control bytes goes out any more.
    closing: bool,
    /// The first queued chunk is the rest of a frame that is partly on the wire.
    partial_head: bool,
    /// When the batch now queued started (for the delivery latency): the arrival at the hub
    /// of the broadcast that opened it when fanned out queued, else when its first frame had
    /// to be queued. Set only when the queue goes from empty to not, so it costs nothing per
    /// frame; four bytes beside the flags, so it costs no memory.
    started: Option<Stamp>,
    frames: VecDeque<Frame>,
    /// Set once (see `closing`).
    close: Option<CloseRequest>,
}

impl Queue {
    /// Whether nothing is queued.
    fn is_empty(&self) -> bool {
        self.bytes == 0
    }

    /// Asks the task to end the connection, unless an earlier request stands.
    fn request_close(&mut self, request: CloseRequest) {
        if self.close.is_none() {
            self.close = Some(request);
            self.closing = true;
        }
    }
}

/// What the connection's task takes with a batch.
#[derive(Debug)]
pub struct Taken {
    /// Set once; the task ends the connection after writing the batch.
    pub close: Option<CloseRequest>,
    /// When the batch started (see `Queue::started`).
    pub started: Option<Stamp>,
}

/// Everything a test takes from a queue in one go.
#[cfg(test)]
#[derive(Debug, Default)]
pub struct Drained {
    /// Frames in order.
    pub frames: VecDeque<Frame>,
    /// Set once; the task ends the connection after writing `frames`.
    pub close: Option<CloseRequest>,
}

/// The shared half of a connection.
///
/// Laid out for the fan-out, which writes to thousands of these one after another and finds
/// each cold in the cache: everything a direct write reads or writes (the socket's descriptor
/// and tokio's registration, the owed-ping epoch, the lock, and the queue's byte count and
/// flags) is in the first 64 bytes, and the handle starts a cache line, so a delivery touches one
/// line of it (docs/BENCHMARKS.md, "Issue 8"). The socket lives here rather than behind an
/// `Arc` of its own, and the handle is made when the socket is accepted, right after tokio
/// registered it: one allocation less to reach per delivery, next to the one that is left.
#[derive(Debug)]
#[repr(C, align(64))]
pub struct ConnHandle {
    /// The socket, for writing straight from the producer; `None` in tests.
    socket: Option<TcpStream>,
    /// The last [`Beat`] epoch this connection got (or was owed nothing for); 0 until it is
    /// welcomed, and a connection at 0 is never owed a ping. Written only under the lock, so
    /// it only grows; read without it by the ping sweep, which skips a connection already
    /// paid without taking its lock (a stale read only sends it the locked way).
    pinged: AtomicU64,
    queue: Mutex<Queue>,
    /// Process-unique connection number, in accept order.
    pub id: u64,
    limit: usize,
    /// Where frames written straight to the socket are counted.
    stats: Option<Arc<Stats>>,
    /// Wakes the connection's task; the only waiter is that task.
    wake: Notify,
    /// Set once the upgraded connection has taken over the socket's writes: from then on
    /// hyper's and tungstenite's writes go through the queue ([`socket`]).
    attached: AtomicBool,
}

impl ConnHandle {
    /// A handle whose queue holds at most `limit` bytes. With a socket, pushes write to it
    /// directly whenever they can.
    pub fn new(id: u64, limit: usize, socket: Option<TcpStream>) -> ConnHandle {
        ConnHandle {
            socket,
            pinged: AtomicU64::new(0),
            queue: Mutex::new(Queue::default()),
            id,
            limit,
            stats: None,
            wake: Notify::new(),
            attached: AtomicBool::new(false),
        }
    }

    /// Counts frames it writes itself in `stats.frames_delivered`.
    pub fn counted(mut self, stats: Arc<Stats>) -> ConnHandle {
        self.stats = Some(stats);
        self
    }

    fn count(&self, counter: impl FnOnce(&Stats) -> &StripedCounter, n: u64) {
        if let Some(stats) = &self.stats {
            counter(stats).add(self.id, n);
        }
    }

    /// Counts `frames` written straight to the socket, if they were.
    fn count_written(&self, pushed: Pushed, frames: u64) -> Pushed {
        if pushed == Pushed::Written {
            self.count(|s| &s.frames_delivered, frames);
        }
        pushed
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        // A panic while holding this lock cannot leave the queue half-updated in a way that
        // matters more than losing the connection, so poisoning is ignored.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends a data frame: straight to the socket if possible, else queued. Refused while
    /// the connection is closing; an overflow marks it too slow.
    pub fn push(&self, frame: &Frame) -> Pushed {
        let mut q = self.lock();
        if q.closing {
            return Pushed::Refused;
        }
        let pushed = self.send_locked(&mut q, frame);
        self.count_written(pushed, 1)
    }

    /// Sends bytes that must go out even while closing (the closing frames themselves,
    /// tungstenite's pongs and close replies, the HTTP 101). Still bounded.
    pub fn push_control(&self, bytes: &Bytes) -> Pushed {
        let mut q = self.lock();
        let pushed = self.send_locked(&mut q, bytes);
        self.count_written(pushed, 1)
    }

    fn send_locked(&self, q: &mut Queue, frame: &Frame) -> Pushed {
        self.send_all_locked(q, &[frame], frame)
    }

    /// Writes `frames` (one frame, or a ping and the frame it rides with) straight to the
    /// socket when nothing is queued and the task is not writing, from `joined`: their bytes
    /// back to back in one buffer, so one plain `send` (the kernel's vectored-write path cost
    /// more than the ping's bytes: docs/BENCHMARKS.md, "Issue 8"). What the socket does not
    /// take is queued, in order, frame by frame. Counts nothing: the callers count what was
    /// written, the fan-out once per broadcast.
    fn send_all_locked(&self, q: &mut Queue, frames: &[&Frame], joined: &Frame) -> Pushed {
        if q.is_empty()
            && !q.writing
            && let Some(socket) = &self.socket
        {
            match socket.try_write(joined) {
                Ok(n) if n == joined.len() => return Pushed::Written,
                Ok(n) => {
                    // The rest must go out before anything else: the task finishes it.
                    queue_unwritten(q, frames, n);
                    q.started = queued_now();
                    self.wake.notify_one();
                    return Pushed::Queued;
                }
                // Full socket (or a dead one: the task finds out and ends the connection).
                Err(_) => q.started = queued_now(),
            }
        }
        let mut pushed = Pushed::Queued;
        for frame in frames {
            pushed = self.queue_locked(q, frame);
        }
        pushed
    }

    fn queue_locked(&self, q: &mut Queue, frame: &Frame) -> Pushed {
        if frame.is_empty() {
            // Nothing to send; queuing it would break `Queue::is_empty`.
            return Pushed::Queued;
        }
        if q.bytes + frame.len() > self.limit {
            self.overflow(q, 1);
            return Pushed::Refused;
        }
        q.bytes += frame.len();
        q.frames.push_back(frame.clone());
        // A non-empty queue, or a writing task, means the task will see this frame anyway.
        if q.frames.len() == 1 && !q.writing {
            self.wake.notify_one();
        }
        Pushed::Queued
    }

    /// Queues a data frame for the connection's task without trying the socket: under load
    /// the task, woken once, writes everything that piled up meanwhile in one vectored
    /// write. Refused while closing; an overflow marks the connection too slow.
    pub fn push_queued(&self, frame: &Frame) -> Pushed {
        let mut q = self.lock();
        if q.closing {
            return Pushed::Refused;
        }
        self.queue_locked(&mut q, frame)
    }

    /// The beat whose ping this connection is owed, if any; the answer marks it paid. Takes
    /// the locked queue to be called only under the lock.
    fn owed_epoch(&self, _locked: &Queue, beat: &Beat) -> Option<u64> {
        let epoch = self.owes(beat)?;
        self.pinged.store(epoch, Ordering::Relaxed);
        Some(epoch)
    }

    /// The beat whose ping this connection is owed, if any, without marking it paid. Safe to
    /// ask without the lock: `pinged` only grows, so a stale answer can only say "owed", which
    /// the locked path then asks again.
    fn owes(&self, beat: &Beat) -> Option<u64> {
        let pinged = self.pinged.load(Ordering::Relaxed);
        let epoch = beat.epoch();
        (pinged != 0 && pinged < epoch).then_some(epoch)
    }

    /// The ping this connection is owed for the current beat, if any; taking it marks it paid.
    fn owed_ping(&self, locked: &Queue, beat: &Beat) -> Option<Frame> {
        self.owed_epoch(locked, beat).map(|_| beat.frame())
    }

    /// [`ConnHandle::push`] of a broadcast frame, carrying the ping of the current beat along
    /// if this connection is still owed it (one `send` for both: see [`beat`]). What was
    /// written is counted in `carried`, for the fan-out to add up once.
    pub fn push_beating(&self, carried: &mut Carried<'_>) -> Pushed {
        let mut q = self.lock();
        if q.closing {
            return Pushed::Refused;
        }
        match self.owed_epoch(&q, carried.beat()) {
            Some(epoch) => {
                let (ping, frame, joined) = carried.with_ping(epoch);
                let pushed = self.send_all_locked(&mut q, &[ping, frame], joined);
                carried.count(pushed, true);
                pushed
            }
            None => {
                let pushed = self.send_locked(&mut q, carried.frame());
                carried.count(pushed, false);
                pushed
            }
        }
    }

    /// [`ConnHandle::push_queued`] for a broadcast frame, of a broadcast that reached the hub
    /// at `received`, with the owed ping queued first.
    pub fn push_queued_beating(&self, frame: &Frame, beat: &Beat, received: Stamp) -> Pushed {
        let mut q = self.lock();
        if q.closing {
            return Pushed::Refused;
        }
        let was_empty = q.is_empty();
        if let Some(ping) = self.owed_ping(&q, beat) {
            self.count(|s| &s.pings_carried, 1);
            self.queue_locked(&mut q, &ping);
        }
        let pushed = self.queue_locked(&mut q, frame);
        if was_empty && pushed == Pushed::Queued {
            q.started = Some(received);
        }
        pushed
    }

    /// From now on this connection is owed one ping per beat, starting with the next one
    /// (Rails pings a connection only once it is registered, after its welcome).
    pub fn start_pings(&self, beat: &Beat) {
        let _locked = self.lock();
        self.pinged.store(beat.epoch(), Ordering::Relaxed);
    }

    /// Sends the current beat's ping unless this connection already got it (or is not
    /// welcomed, or is closing). The ping timer's sweep: when broadcasts carried the ping to
    /// every connection, it visits each without taking its lock (no write to the cache line,
    /// and the reads of many connections overlap instead of waiting on one another).
    pub fn ping_if_due(&self, beat: &Beat) -> Pushed {
        if self.owes(beat).is_none() {
            return Pushed::Written;
        }
        let mut q = self.lock();
        if q.closing {
            return Pushed::Refused;
        }
        match self.owed_ping(&q, beat) {
            Some(ping) => {
                self.count(|s| &s.pings_sent_alone, 1);
                let pushed = self.send_locked(&mut q, &ping);
                self.count_written(pushed, 1)
            }
            None => Pushed::Written,
        }
    }

    /// Drops the queue (but a partly written frame) and marks the connection too slow;
    /// `refused` frames did not even get in.
    fn overflow(&self, q: &mut Queue, refused: usize) {
        if let Some(stats) = &self.stats {
            let dropped = q.frames.len() - usize::from(q.partial_head) + refused;
            stats
                .frames_failed
                .fetch_add(dropped as u64, std::sync::atomic::Ordering::Relaxed);
        }
        if q.partial_head {
            q.frames.truncate(1);
            q.bytes = q.frames.front().map_or(0, Bytes::len);
        } else {
            q.frames.clear();
            q.bytes = 0;
        }
        q.request_close(CloseRequest::TooSlow);
        self.wake.notify_one();
    }

    /// Asks the task to end the connection; the first request wins.
    pub fn close(&self, request: CloseRequest) {
        let mut q = self.lock();
        if q.close.is_none() {
            if request == CloseRequest::TooSlow {
                self.overflow(&mut q, 0);
            } else {
                q.request_close(request);
            }
        }
        drop(q);
        self.wake.notify_one();
    }

    /// The task takes the queue into `out` (which must be empty) by swapping buffers, and
    /// owns the write side until a call finds nothing left. Returns the close request and
    /// when the batch started.
    pub fn take_batch(&self, out: &mut VecDeque<Frame>) -> Taken {
        debug_assert!(out.is_empty());
        let mut q = self.lock();
        std::mem::swap(&mut q.frames, out);
        q.bytes = 0;
        q.partial_head = false;
        q.writing = !out.is_empty();
        Taken {
            close: q.close.clone(),
            started: q.started.take(),
        }
    }

    /// Takes everything queued (tests; the task uses [`ConnHandle::take_batch`]).
    #[cfg(test)]
    pub fn drain(&self) -> Drained {
        let mut frames = VecDeque::new();
        let close = self.take_batch(&mut frames).close;
        self.lock().writing = false;
        Drained { frames, close }
    }

    /// Resolves when something was queued or a close was requested since the last look.
    pub async fn woken(&self) {
        self.wake.notified().await
    }

    /// Bytes queued right now.
    pub fn queued_bytes(&self) -> usize {
        self.lock().bytes
    }
}

/// Queues what a short write of `frames` left: the rest of the frame it stopped in (marked as
/// partly on the wire), then every later frame. Only called with an empty queue.
fn queue_unwritten(q: &mut Queue, frames: &[&Frame], written: usize) {
    let mut skip = written;
    for frame in frames {
        if skip >= frame.len() {
            skip -= frame.len();
            continue;
        }
        q.frames.push_back(frame.slice(skip..));
        q.bytes += frame.len() - skip;
        if skip > 0 {
            q.partial_head = true;
        }
        skip = 0;
    }
}

/// When a frame that could not be written at once was queued: off the direct-write path
/// (a full socket is the rare case), so it costs that path nothing.
#[cold]
#[inline(never)]
fn queued_now() -> Option<Stamp> {
    Some(Stamp::now())
}

/// How the hub's fan-out hands a broadcast's frames to connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FanOut {
    /// Nothing else is waiting: each frame is written at once where the socket takes it
    /// ([`ConnHandle::push`]), one syscall per connection and no task wake-up.
    Immediate,
    /// More broadcasts are already waiting (the server is behind): frames are queued and
    /// each connection's task writes its whole backlog in one vectored write
    /// ([`ConnHandle::push_queued`]), so the syscalls per frame shrink as the load grows.
    Queued,
}

impl FanOut {
    /// Hands `frame`, of a broadcast that reached the hub at `received`, to `conn` in this
    /// mode, with the ping of `beat` if `conn` is owed it. (The hub's fan-out chooses the mode
    /// once per broadcast and calls the two directly; this is the tests' shorthand.)
    #[cfg(test)]
    pub fn push(self, conn: &ConnHandle, frame: &Frame, beat: &Beat, received: Stamp) -> Pushed {
        match self {
            FanOut::Immediate => conn.push_beating(&mut Carried::new(frame, beat)),
            FanOut::Queued => conn.push_queued_beating(frame, beat, received),
        }
    }
}

/// Writes every frame of `frames`, in order, with vectored writes; the deque is empty after.
pub async fn write_frames<W>(out: &mut W, frames: &mut VecDeque<Frame>) -> io::Result<()>
where
    W: tokio::io::AsyncWrite + Unpin,
{
    const SLICES: usize = 32;
    while !frames.is_empty() {
        // The slices are built inside each poll, so they never live in the future's state
        // (which every connection carries while it waits on a slow socket).
        let written = std::future::poll_fn(|cx| {
            let mut slices = [io::IoSlice::new(&[]); SLICES];
            let mut count = 0;
            for (slot, frame) in slices.iter_mut().zip(frames.iter()) {
                *slot = io::IoSlice::new(frame);
                count += 1;
            }
            std::pin::Pin::new(&mut *out).poll_write_vectored(cx, &slices[..count])
        })
        .await?;
        if written == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        let mut left = written;
        while left > 0 {
            let Some(front) = frames.front_mut() else {
                break;
            };
            if left >= front.len() {
                left -= front.len();
                frames.pop_front();
            } else {
                *front = front.slice(left..);
                left = 0;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
