//! Rate-limited progress lines on stderr (about once per second).

use std::time::{Duration, Instant};

/// Decides when the next progress line is due.
#[derive(Debug)]
pub struct Progress {
    next: Instant,
    interval: Duration,
    enabled: bool,
}

impl Progress {
    /// Progress every second, or never if `quiet`.
    pub fn new(quiet: bool) -> Self {
        let interval = Duration::from_secs(1);
        Self {
            next: Instant::now() + interval,
            interval,
            enabled: !quiet,
        }
    }

    /// True (and rearmed) if a line is due at `now`.
    pub fn due(&mut self, now: Instant) -> bool {
        if !self.enabled || now < self.next {
            return false;
        }
        self.next = now + self.interval;
        true
    }

    /// Prints `line` to stderr unless quiet.
    pub fn say(&self, line: impl std::fmt::Display) {
        if self.enabled {
            eprintln!("{line}");
        }
    }
}
