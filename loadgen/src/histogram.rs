//! A fixed-size log-linear latency histogram (about 1.6% relative precision), so
//! millions of samples cost no memory and no sorting.

use std::time::Duration;

/// Sub-buckets per power of two (as a bit count): 2^6 = 64.
const SUB_BITS: u32 = 6;
const SUB: u64 = 1 << SUB_BITS;
/// Largest power of two tracked (values above are clamped): 2^40 ns, about 18 min.
const MAX_EXP: u32 = 40;
const BUCKETS: usize = ((MAX_EXP - SUB_BITS + 2) as usize) * SUB as usize;

/// Latency histogram in nanoseconds.
#[derive(Debug, Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Self {
        Self {
            counts: vec![0; BUCKETS],
            total: 0,
            max: 0,
        }
    }

    /// Records one sample.
    pub fn record(&mut self, d: Duration) {
        let ns = (d.as_nanos() as u64).min((1 << (MAX_EXP + 1)) - 1);
        self.counts[index(ns)] += 1;
        self.total += 1;
        self.max = self.max.max(ns);
    }

    /// Number of samples.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// Forgets all samples.
    pub fn clear(&mut self) {
        self.counts.fill(0);
        self.total = 0;
        self.max = 0;
    }

    /// The value at quantile `q` (0..=1) in microseconds (bucket midpoint), 0 if empty.
    pub fn quantile_us(&self, q: f64) -> f64 {
        if self.total == 0 {
            return 0.0;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                let (lo, hi) = bounds(i);
                let mid = (lo + hi) as f64 / 2.0;
                return mid.min(self.max as f64) / 1000.0;
            }
        }
        self.max as f64 / 1000.0
    }

    /// Largest sample in microseconds.
    pub fn max_us(&self) -> f64 {
        self.max as f64 / 1000.0
    }
}

/// Bucket of a value: exact below `SUB`, then `SUB` buckets per power of two.
fn index(ns: u64) -> usize {
    if ns < SUB {
        return ns as usize;
    }
    let exp = 63 - ns.leading_zeros(); // >= SUB_BITS
    let shift = exp - SUB_BITS;
    let sub = (ns >> shift) - SUB; // 0..SUB
    ((exp - SUB_BITS + 1) as u64 * SUB + sub) as usize
}

/// Inclusive-exclusive value range of bucket `i`.
fn bounds(i: usize) -> (u64, u64) {
    let i = i as u64;
    if i < SUB {
        return (i, i + 1);
    }
    let exp = (i / SUB - 1) as u32 + SUB_BITS;
    let shift = exp - SUB_BITS;
    let lo = (SUB + i % SUB) << shift;
    (lo, lo + (1 << shift))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_and_bounds_agree() {
        for ns in [
            0,
            1,
            63,
            64,
            65,
            127,
            128,
            1000,
            123_456,
            9_999_999,
            1 << 40,
        ] {
            let (lo, hi) = bounds(index(ns));
            assert!(lo <= ns && ns < hi, "{ns} not in [{lo},{hi})");
        }
        assert!(index((1 << (MAX_EXP + 1)) - 1) < BUCKETS);
    }

    #[test]
    fn quantiles_are_close() {
        let mut h = Histogram::new();
        for us in 1..=1000u64 {
            h.record(Duration::from_micros(us));
        }
        let p50 = h.quantile_us(0.5);
        assert!((p50 - 500.0).abs() < 10.0, "{p50}");
        let p99 = h.quantile_us(0.99);
        assert!((p99 - 990.0).abs() < 20.0, "{p99}");
        assert_eq!(h.count(), 1000);
        h.clear();
        assert_eq!(h.quantile_us(0.5), 0.0);
    }
}
