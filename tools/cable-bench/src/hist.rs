//! A log-linear histogram of non-negative integers (microseconds here).
//!
//! Values below 256 are exact; above, every power of two is split into 128 equal buckets, so a
//! bucket is at most 1/128 of its lower bound wide (< 0.8 %) and the midpoint reported for a
//! percentile is within 0.4 % of any value in the bucket. 7,424 buckets cover all of `u64`;
//! the counts are allocated on the first record, so an unused histogram costs nothing.

use serde_json::{Value, json};

const SUB_BITS: u32 = 7;
const SUB: u64 = 1 << SUB_BITS;
const LINEAR: u64 = 2 * SUB;
const BUCKETS: usize = (LINEAR + (64 - 1 - SUB_BITS as u64) * SUB) as usize;

#[derive(Debug, Clone, Default)]
pub(crate) struct Hist {
    counts: Vec<u64>,
    n: u64,
    sum: u128,
    min: u64,
    max: u64,
}

fn index(v: u64) -> usize {
    if v < LINEAR {
        v as usize
    } else {
        let msb = 63 - v.leading_zeros();
        let shift = msb - SUB_BITS;
        (LINEAR + (shift as u64 - 1) * SUB + ((v >> shift) - SUB)) as usize
    }
}

/// Lowest and highest value that land in bucket `idx`.
fn bounds(idx: usize) -> (u64, u64) {
    let idx = idx as u64;
    if idx < LINEAR {
        (idx, idx)
    } else {
        let k = idx - LINEAR;
        let shift = k / SUB + 1;
        let lo = (k % SUB + SUB) << shift;
        (lo, lo + ((1u64 << shift) - 1))
    }
}

impl Hist {
    pub(crate) fn record(&mut self, v: u64) {
        if self.counts.is_empty() {
            self.counts = vec![0; BUCKETS];
            self.min = u64::MAX;
        }
        self.counts[index(v)] += 1;
        self.n += 1;
        self.sum += v as u128;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
    }

    pub(crate) fn count(&self) -> u64 {
        self.n
    }

    pub(crate) fn max(&self) -> u64 {
        self.max
    }

    pub(crate) fn mean(&self) -> f64 {
        if self.n == 0 {
            0.0
        } else {
            self.sum as f64 / self.n as f64
        }
    }

    /// The value at quantile `q` (0..=1): the midpoint of the bucket holding rank ⌈q·n⌉,
    /// clamped to the exact min and max seen.
    pub(crate) fn quantile(&self, q: f64) -> u64 {
        if self.n == 0 {
            return 0;
        }
        if q >= 1.0 {
            return self.max;
        }
        let rank = ((q * self.n as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                let (lo, hi) = bounds(i);
                return (lo + (hi - lo) / 2).clamp(self.min, self.max);
            }
        }
        self.max
    }

    pub(crate) fn merge(&mut self, other: &Hist) {
        if other.n == 0 {
            return;
        }
        if self.counts.is_empty() {
            *self = other.clone();
            return;
        }
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.n += other.n;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// Sparse JSON: `{"n":..,"sum":..,"min":..,"max":..,"b":[[index,count],...]}`.
    pub(crate) fn to_json(&self) -> Value {
        let buckets: Vec<Value> = self
            .counts
            .iter()
            .enumerate()
            .filter(|(_, c)| **c > 0)
            .map(|(i, c)| json!([i, c]))
            .collect();
        json!({"n": self.n, "sum": self.sum as f64, "min": self.min, "max": self.max, "b": buckets})
    }

    pub(crate) fn from_json(v: &Value) -> Hist {
        let mut h = Hist::default();
        let n = v["n"].as_u64().unwrap_or(0);
        if n == 0 {
            return h;
        }
        h.counts = vec![0; BUCKETS];
        for pair in v["b"].as_array().into_iter().flatten() {
            let i = pair[0].as_u64().unwrap_or(0) as usize;
            let c = pair[1].as_u64().unwrap_or(0);
            if i < BUCKETS {
                h.counts[i] += c;
            }
        }
        h.n = n;
        h.sum = v["sum"].as_f64().unwrap_or(0.0) as u128;
        h.min = v["min"].as_u64().unwrap_or(0);
        h.max = v["max"].as_u64().unwrap_or(0);
        h
    }

    /// Percentiles in milliseconds, for reports.
    pub(crate) fn summary_ms(&self) -> Value {
        let ms = |us: u64| (us as f64 / 1000.0 * 1000.0).round() / 1000.0;
        json!({
            "count": self.n,
            "p50_ms": ms(self.quantile(0.50)),
            "p90_ms": ms(self.quantile(0.90)),
            "p99_ms": ms(self.quantile(0.99)),
            "p999_ms": ms(self.quantile(0.999)),
            "max_ms": ms(self.max),
            "mean_ms": (self.mean() / 1000.0 * 1000.0).round() / 1000.0,
        })
    }
}

/// Checks the bucket maths (run by `cable-bench selftest`).
pub(crate) fn self_check() -> Result<(), String> {
    let mut prev = 0;
    for v in (0..5_000_000u64).step_by(7).chain([u64::MAX / 3, u64::MAX]) {
        let i = index(v);
        if i >= BUCKETS || i < prev {
            return Err(format!("index({v}) = {i} out of order"));
        }
        prev = i;
        let (lo, hi) = bounds(i);
        if !(lo <= v && v <= hi) {
            return Err(format!("{v} not in bucket [{lo},{hi}]"));
        }
        if lo > 0 && ((hi - lo) as f64) / (lo as f64) >= 0.008 {
            return Err(format!("bucket [{lo},{hi}] wider than 0.8 %"));
        }
    }
    let mut h = Hist::default();
    for v in 1..=100_000u64 {
        h.record(v);
    }
    for (q, want) in [(0.5, 50_000.0), (0.99, 99_000.0), (0.999, 99_900.0)] {
        let got = h.quantile(q) as f64;
        if (got - want).abs() / want >= 0.01 {
            return Err(format!("q{q}: {got} vs {want}"));
        }
    }
    if h.quantile(1.0) != 100_000 {
        return Err("max".into());
    }
    let back = Hist::from_json(&h.to_json());
    if back.quantile(0.99) != h.quantile(0.99) || back.count() != h.count() {
        return Err("JSON round trip".into());
    }
    Ok(())
}
