//! Reactor time: milliseconds since the reactor's epoch.
//!
//! Everything above the reactor receives `now` as a [`Millis`] argument and never reads a
//! clock, so state machines can be driven by a fake clock in tests. This file holds the only
//! clock arithmetic in the crate.

use std::fmt;
use std::ops::{Add, Sub};

/// A point in time, in whole milliseconds since the reactor started.
///
/// Also used as a duration where the meaning is clear (`now + Millis(500)`); arithmetic
/// saturates so that no input can make it panic or wrap.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Millis(pub u64);

impl Millis {
    /// The reactor's epoch.
    pub const ZERO: Millis = Millis(0);
    /// A time that never comes (used for "no deadline").
    pub const NEVER: Millis = Millis(u64::MAX);

    /// Builds a duration in milliseconds from a [`std::time::Duration`], saturating.
    pub fn from_duration(d: std::time::Duration) -> Millis {
        Millis(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    /// This value as a [`std::time::Duration`].
    pub fn to_duration(self) -> std::time::Duration {
        std::time::Duration::from_millis(self.0)
    }

    /// `self - earlier`, or zero when `earlier` is later.
    pub fn saturating_since(self, earlier: Millis) -> Millis {
        Millis(self.0.saturating_sub(earlier.0))
    }
}

impl Add for Millis {
    type Output = Millis;
    fn add(self, rhs: Millis) -> Millis {
        Millis(self.0.saturating_add(rhs.0))
    }
}

impl Sub for Millis {
    type Output = Millis;
    fn sub(self, rhs: Millis) -> Millis {
        Millis(self.0.saturating_sub(rhs.0))
    }
}

impl fmt::Display for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        assert_eq!(Millis(5) - Millis(9), Millis(0));
        assert_eq!(Millis::NEVER + Millis(1), Millis::NEVER);
        assert_eq!(Millis(9).saturating_since(Millis(4)), Millis(5));
        assert_eq!(
            Millis::from_duration(std::time::Duration::from_secs(2)),
            Millis(2000)
        );
    }
}
