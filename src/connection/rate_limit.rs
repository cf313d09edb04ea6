//! The per-connection bound on inbound frames (`limits.max_commands_per_second`): a token
//! bucket: `per_second` sustained, bursts of twice that. Tiny and unshared, so no crate.

/// A token bucket over inbound frames: `per_second` sustained, bursts of twice that.
pub(super) struct RateLimit {
    per_second: u32,
    /// Thousandths of a frame, so refills need no floating point.
    milli_tokens: u64,
    last: tokio::time::Instant,
}

impl RateLimit {
    pub(super) fn new(per_second: u32) -> RateLimit {
        RateLimit {
            per_second,
            milli_tokens: Self::capacity(per_second),
            last: tokio::time::Instant::now(),
        }
    }

    fn capacity(per_second: u32) -> u64 {
        u64::from(per_second) * 2 * 1000
    }

    /// Takes one frame's token; false when the bucket is empty.
    pub(super) fn allow(&mut self) -> bool {
        let now = tokio::time::Instant::now();
        let elapsed_ms = now.duration_since(self.last).as_millis() as u64;
        if elapsed_ms > 0 {
            self.last = now;
            self.milli_tokens = (self.milli_tokens + elapsed_ms * u64::from(self.per_second))
                .min(Self::capacity(self.per_second));
        }
        if self.milli_tokens >= 1000 {
            self.milli_tokens -= 1000;
            true
        } else {
            false
        }
    }
}
