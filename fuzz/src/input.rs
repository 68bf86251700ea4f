//! Fuzz input read as small numbers, and a gateway config made from it.
//!
//! Mounted as `crate::input` by the fuzz crate and by `tests/properties.rs` alike.

use postern::gateway::config::{DuplicatePolicy, GatewayConfig, ProbePolicy, RateLimit};
use postern::Millis;

/// Reads an input as a sequence of small numbers (zeros once it runs out).
#[derive(Debug)]
pub struct Input<'a>(pub &'a [u8]);

impl Input<'_> {
    /// The next byte.
    pub fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    /// The next two bytes, big-endian.
    pub fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.byte(), self.byte()])
    }

    /// A flag.
    pub fn flag(&mut self) -> bool {
        self.byte() & 1 == 1
    }

    /// Whether the input is used up.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A gateway config from the input: every duration at least 1 ms, bounds small.
pub fn config(input: &mut Input<'_>) -> GatewayConfig {
    let ms = |n: u16| Millis(u64::from(n));
    let mut c = GatewayConfig::with_heartbeat(ms(input.u16()) + Millis(1));
    c.heartbeat_grace = ms(input.u16());
    c.heartbeat_required = !input.byte().is_multiple_of(4);
    c.identify_timeout = ms(input.u16()) + Millis(1);
    c.heartbeat_burst = 1 + u32::from(input.byte() % 8);
    c.heartbeat_before_identify = input.flag();
    c.probe = match input.byte() % 3 {
        0 => Some(ProbePolicy {
            after_silence: ms(input.u16()) + Millis(1),
            answer_within: ms(input.u16()),
        }),
        _ => None,
    };
    c.resume_window = ms(input.u16());
    c.replay_events = usize::from(input.byte() % 12);
    c.replay_bytes = usize::from(input.u16() % 512);
    c.max_sessions = 1 + usize::from(input.byte() % 6);
    c.rate_limit = RateLimit {
        commands: 1 + u32::from(input.byte() % 16),
        window: ms(input.u16()) + Millis(1),
    };
    c.rate_limit_slack = u32::from(input.byte() % 4);
    c.duplicate = if input.flag() {
        DuplicatePolicy::ReplaceOld
    } else {
        DuplicatePolicy::RefuseNew
    };
    c.max_sessions_per_owner = 1 + usize::from(input.byte() % 4);
    c
}
