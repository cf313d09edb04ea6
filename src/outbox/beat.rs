//! Rails' heartbeat, carried by the traffic a connection already gets.
//!
//! Rails pings every registered connection every 3 s from one timer (docs/PROTOCOL.md §2), and
//! its JavaScript client only needs one within its 6 s stale threshold (§6.1). A round of
//! separate ping writes costs one syscall per connection: at 10,000 connections and 2
//! broadcasts/s that is one write in six, and a broadcast that lands while the round runs waits
//! behind 10,000 writes. So the ping timer only opens a new *beat* (an epoch number and its ping
//! frame); a connection that is written to anyway during the beat gets the ping in the same
//! `send` as that frame ([`crate::outbox::ConnHandle::push_beating`]: the fan-out joins the
//! ping and the frame into one buffer once, in [`Carried`], for every connection owed that
//! ping), and the timer sweeps the
//! connections still owed a ping, shard by shard, over the first part of the interval
//! (`server.rs`, at [`Beat::sweep_offset`]). Every connection still gets exactly one ping per
//! beat, at most [`Beat::slack`] after the tick.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::BytesMut;

use super::{Frame, Pushed};

/// The current beat: which epoch it is and the ping frame that goes with it.
#[derive(Debug)]
pub struct Beat {
    /// Starts at 1; a connection that has not been welcomed yet has seen epoch 0 and is never
    /// owed a ping (Rails pings only registered connections).
    epoch: AtomicU64,
    /// The ping of the current epoch. Written before the epoch is advanced, so whoever sees the
    /// new epoch reads the new frame.
    frame: Mutex<Frame>,
}

impl Default for Beat {
    fn default() -> Self {
        Beat {
            epoch: AtomicU64::new(1),
            frame: Mutex::new(Frame::new()),
        }
    }
}

impl Beat {
    /// Opens the next beat with `ping` (one frame, shared by every connection).
    pub fn advance(&self, ping: Frame) -> u64 {
        *self.frame.lock().unwrap_or_else(|e| e.into_inner()) = ping;
        self.epoch.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// The current epoch.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// The current ping frame.
    pub fn frame(&self) -> Frame {
        self.frame.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// How long after a tick the last owed ping goes out: half the interval, at most 1.5 s.
    /// The gap between two pings of one connection stays within `interval ± slack` (1.5–4.5 s
    /// at Rails' 3 s), inside the client's 6 s stale threshold.
    pub fn slack(interval: Duration) -> Duration {
        (interval / 2).min(Duration::from_millis(1500))
    }

    /// When the sweep visits shard `shard` of `shards`, after the tick: spread over the second
    /// half of the slack, so a connection that gets a broadcast at least every `slack / 2`
    /// (every 750 ms at Rails' 3 s; Hafaloha-style loads send every 500 ms) never needs a ping
    /// write of its own, and the sweep's writes never come all at once. The same offset every
    /// beat, so a connection pinged by the sweep gets Rails' exact interval.
    pub fn sweep_offset(interval: Duration, shard: usize, shards: usize) -> Duration {
        let slack = Beat::slack(interval);
        let shards = shards.max(1) as u32;
        slack / 2 + slack / 2 * (shard as u32 + 1) / shards
    }
}

/// One broadcast frame on its way to many connections in one fan-out, with the current beat's
/// ping joined in front of it for the connections still owed that ping: built at the first such
/// connection and shared by the rest, so each gets one buffer (one plain `send`) instead of a
/// two-part `writev`, and the beat's frame is read once per fan-out, not per connection.
/// It also counts what the fan-out wrote and carried, for the stats to be added once per
/// fan-out rather than with an atomic add per delivery.
#[derive(Debug)]
pub struct Carried<'a> {
    frame: &'a Frame,
    beat: &'a Beat,
    /// The epoch, its ping, and the ping and the frame back to back.
    joined: Option<(u64, Frame, Frame)>,
    /// Frames written straight to sockets (a carried ping counts as one).
    written: u64,
    /// Pings that rode along (written or queued).
    pings: u64,
}

impl<'a> Carried<'a> {
    /// `frame`, to be carried along with `beat`'s pings.
    pub fn new(frame: &'a Frame, beat: &'a Beat) -> Carried<'a> {
        Carried {
            frame,
            beat,
            joined: None,
            written: 0,
            pings: 0,
        }
    }

    /// Counts one connection's push: the frame, with a ping if `with_ping`.
    pub(super) fn count(&mut self, pushed: Pushed, with_ping: bool) {
        if pushed == Pushed::Written {
            self.written += 1 + u64::from(with_ping);
        }
        self.pings += u64::from(with_ping);
    }

    /// Frames written straight to sockets so far, pings included.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Pings carried so far.
    pub fn pings(&self) -> u64 {
        self.pings
    }

    /// The frame alone.
    pub fn frame(&self) -> &'a Frame {
        self.frame
    }

    /// The beat whose pings ride along.
    pub fn beat(&self) -> &'a Beat {
        self.beat
    }

    /// For a connection owed `epoch`'s ping: the ping, the frame, and both in one buffer.
    pub fn with_ping(&mut self, epoch: u64) -> (&Frame, &Frame, &Frame) {
        if self.joined.as_ref().is_none_or(|(e, _, _)| *e != epoch) {
            // The timer may open the next beat meanwhile; the frame read here is then the
            // newer ping, which is as good (a connection still gets one per beat).
            let ping = self.beat.frame();
            let mut both = BytesMut::with_capacity(ping.len() + self.frame.len());
            both.extend_from_slice(&ping);
            both.extend_from_slice(self.frame);
            self.joined = Some((epoch, ping, both.freeze()));
        }
        let (_, ping, both) = self.joined.as_ref().expect("set above");
        (ping, self.frame, both)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn the_frame_is_in_place_before_the_epoch_moves() {
        let beat = Beat::default();
        assert_eq!(beat.epoch(), 1);
        assert_eq!(beat.advance(Bytes::from_static(b"ping 1")), 2);
        assert_eq!(beat.frame(), Bytes::from_static(b"ping 1"));
        assert_eq!(beat.epoch(), 2);
    }

    #[test]
    fn a_fan_out_joins_the_ping_and_the_frame_once_per_beat() {
        let beat = Beat::default();
        let epoch = beat.advance(Bytes::from_static(b"P1"));
        let frame = Bytes::from_static(b"frame");
        let mut carried = Carried::new(&frame, &beat);
        let (ping, alone, both) = carried.with_ping(epoch);
        assert_eq!(
            (&ping[..], &alone[..], &both[..]),
            (&b"P1"[..], &b"frame"[..], &b"P1frame"[..])
        );
        let first = both.as_ptr();
        assert_eq!(
            carried.with_ping(epoch).2.as_ptr(),
            first,
            "built once, then shared"
        );
        let next = beat.advance(Bytes::from_static(b"P2"));
        assert_eq!(&carried.with_ping(next).2[..], b"P2frame");
    }

    #[test]
    fn the_sweep_covers_the_second_half_of_the_slack() {
        let three = Duration::from_secs(3);
        assert_eq!(Beat::slack(three), Duration::from_millis(1500));
        assert_eq!(
            Beat::slack(Duration::from_secs(60)),
            Duration::from_millis(1500)
        );
        assert_eq!(
            Beat::slack(Duration::from_secs(1)),
            Duration::from_millis(500)
        );
        let first = Beat::sweep_offset(three, 0, 64);
        let last = Beat::sweep_offset(three, 63, 64);
        assert!(first > Duration::from_millis(750) && first < Duration::from_millis(800));
        assert_eq!(last, Duration::from_millis(1500));
    }
}
