//! The reactor's clock: the OS's monotonic clock less the stalls it has seen, or a clock a
//! test (or a simulation) sets itself with [`Reactor::turn_at`](super::Reactor::turn_at).

use crate::time::Millis;
use std::time::{Duration, Instant};

/// Where the reactor's time comes from.
#[derive(Debug)]
pub(super) enum Clock {
    /// The OS's monotonic clock, with stalls left out.
    Os(OsClock),
    /// Set by the caller of `turn_at` only: no OS time, no stall detection.
    Manual,
}

/// The OS clock and what the stall detection remembers.
#[derive(Debug)]
pub(super) struct OsClock {
    epoch: Instant,
    /// The OS clock (since `epoch`) when the reactor's time was last set.
    last_raw: Millis,
    /// Time left out of the reactor's clock: the excess of every stall over the threshold.
    skipped: Millis,
}

/// One poll as the clock sees it: when it began (raw clock), how long it was asked to
/// sleep at most, and when it returned.
#[derive(Copy, Clone, Debug)]
pub(super) struct PollSpan {
    pub before: Millis,
    pub asked: Option<Duration>,
    pub after: Millis,
}

impl Clock {
    /// The OS clock, starting now.
    pub fn os() -> Clock {
        Clock::Os(OsClock {
            epoch: Instant::now(),
            last_raw: Millis::ZERO,
            skipped: Millis::ZERO,
        })
    }

    /// The raw clock now (`current` for a manual clock, which only moves when set).
    pub fn raw(&self, current: Millis) -> Millis {
        match self {
            Clock::Os(os) => Millis::from_duration(os.epoch.elapsed()),
            Clock::Manual => current,
        }
    }

    /// `raw` as the reactor's time: less what stalls left out.
    pub fn reactor_time(&self, raw: Millis) -> Millis {
        match self {
            Clock::Os(os) => raw - os.skipped,
            Clock::Manual => raw,
        }
    }

    /// The reactor's time after `poll`, or `None` when the clock is manual (it stays as
    /// set). See [`OsClock::advance`].
    pub fn after_poll(&mut self, poll: PollSpan, stall_threshold: Millis) -> Option<Millis> {
        match self {
            Clock::Os(os) => Some(os.advance(poll, stall_threshold)),
            Clock::Manual => None,
        }
    }
}

impl OsClock {
    /// The reactor's time after a poll. The turn was late by the time spent since the
    /// time was last set before the poll (the previous turn's work, and the host's between
    /// turns) plus whatever the poll slept beyond what it asked for. Lateness beyond
    /// `threshold` is a stall: it is left out of the clock, so every deadline moves back by
    /// it and nobody is judged by time the process did not see.
    fn advance(&mut self, poll: PollSpan, threshold: Millis) -> Millis {
        let working = poll.before.saturating_since(self.last_raw);
        let overslept = match poll.asked {
            Some(asked) => poll
                .after
                .saturating_since(poll.before)
                .saturating_since(Millis::from_duration(asked)),
            None => Millis::ZERO,
        };
        let late = working + overslept;
        if late > threshold {
            let excess = late - threshold;
            log::warn!("the reactor was stalled for {late}; {excess} left out of its clock");
            self.skipped = self.skipped + excess;
        }
        self.last_raw = poll.after;
        poll.after - self.skipped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os() -> OsClock {
        OsClock {
            epoch: Instant::now(),
            last_raw: Millis::ZERO,
            skipped: Millis::ZERO,
        }
    }

    fn poll(before: u64, asked: Option<u64>, after: u64) -> PollSpan {
        PollSpan {
            before: Millis(before),
            asked: asked.map(Duration::from_millis),
            after: Millis(after),
        }
    }

    #[test]
    fn lateness_beyond_the_threshold_is_left_out() {
        let mut clock = os();
        // On time: a poll that slept what it asked for.
        assert_eq!(
            clock.advance(poll(0, Some(100), 100), Millis(200)),
            Millis(100)
        );
        // 3 s of work (or of being stopped) before the poll: 2.8 s left out.
        assert_eq!(
            clock.advance(poll(3_100, Some(0), 3_100), Millis(200)),
            Millis(300)
        );
        // A poll that overslept by 1 s: 0.8 s more left out.
        assert_eq!(
            clock.advance(poll(3_100, Some(10), 4_110), Millis(200)),
            Millis(510)
        );
        // Lateness within the threshold counts as time.
        assert_eq!(
            clock.advance(poll(4_260, None, 4_300), Millis(200)),
            Millis(700)
        );
    }
}
