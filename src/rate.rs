//! Rate limiting: a token bucket in integer arithmetic, used for per-connection command
//! limits (gateway) and per-address connection rates (reactor).

use crate::time::Millis;

/// A token bucket in integer arithmetic: `capacity` tokens per `window`, refilled
/// continuously; credit is counted in token-milliseconds so nothing rounds away.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct TokenBucket {
    credit: u64,
    last: Millis,
}

impl TokenBucket {
    /// A full bucket.
    pub fn full(now: Millis, capacity: u32, window: Millis) -> TokenBucket {
        TokenBucket {
            credit: u64::from(capacity).saturating_mul(window.0.max(1)),
            last: now,
        }
    }

    /// Whether the bucket would be full at `now` (nothing to remember about this client).
    pub fn is_full(&self, now: Millis, capacity: u32, window: Millis) -> bool {
        let window = window.0.max(1);
        let elapsed = now.saturating_since(self.last).0;
        self.credit
            .saturating_add(elapsed.saturating_mul(u64::from(capacity)))
            >= u64::from(capacity).saturating_mul(window)
    }

    /// Takes one token if there is one.
    pub fn take(&mut self, now: Millis, capacity: u32, window: Millis) -> bool {
        let window = window.0.max(1);
        let elapsed = now.saturating_since(self.last).0;
        self.last = now.max(self.last);
        let max = u64::from(capacity).saturating_mul(window);
        self.credit = self
            .credit
            .saturating_add(elapsed.saturating_mul(u64::from(capacity)))
            .min(max);
        if self.credit >= window {
            self.credit -= window;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refills_continuously_up_to_capacity() {
        let w = Millis(1_000);
        let mut b = TokenBucket::full(Millis(0), 2, w);
        assert!(b.take(Millis(0), 2, w) && b.take(Millis(0), 2, w));
        assert!(!b.take(Millis(0), 2, w));
        assert!(!b.take(Millis(499), 2, w));
        assert!(b.take(Millis(500), 2, w));
        assert!(b.is_full(Millis(10_000), 2, w));
    }
}
