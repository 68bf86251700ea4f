//! The chat gateway's client side, shared by `upgrades --chat`, `sessions` and
//! `fanout --chat` (protocol: docs/protocols/chat.md in the repository).
//!
//! A connection receives HELLO (`"f":100`, with `hb_int`), presents with
//! `{"f":110,"cnf":{"token":T}}`, is identified at READY (`"f":140`), then heartbeats
//! with `{"f":120}` (echoed by the server) every `hb_int` milliseconds.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use memchr::memmem;

/// The heartbeat a client sends (and the server echoes).
pub const HEARTBEAT: &[u8] = br#"{"f":120}"#;

/// The present (identify) message for `token`.
pub fn present(token: &str) -> Vec<u8> {
    serde_json::json!({"f": 110, "cnf": {"token": token}})
        .to_string()
        .into_bytes()
}

/// A MESSAGE_CREATE command carrying `content` (plain ASCII, no escaping needed).
pub fn message_create(content: &str) -> Vec<u8> {
    serde_json::json!({"f": 130, "cnf": {"content": content}, "t": "MESSAGE_CREATE"})
        .to_string()
        .into_bytes()
}

/// A resume of session `session_id` (sent as an exact integer) from the last event
/// `s` received.
pub fn resume(token: &str, session_id: u64, s: u64) -> Vec<u8> {
    serde_json::json!({"f": 110, "cnf": {"token": token, "session_id": session_id, "s": s}})
        .to_string()
        .into_bytes()
}

/// The unsigned integer after the first `"name":` (spaces allowed after the colon),
/// parsed exactly (no detour through `f64`: session ids go up to 2^64 - 1). `name`
/// comes with its quotes, e.g. `br#""s""#`. Allocates nothing.
pub fn uint_field(data: &[u8], name: &[u8]) -> Option<u64> {
    let mut at = 0;
    while let Some(i) = memmem::find(&data[at..], name) {
        let rest = &data[at + i + name.len()..];
        let rest = &rest[rest.iter().take_while(|&&b| b == b' ').count()..];
        if let Some(rest) = rest.strip_prefix(b":") {
            let rest = &rest[rest.iter().take_while(|&&b| b == b' ').count()..];
            let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
            return std::str::from_utf8(&rest[..digits]).ok()?.parse().ok();
        }
        at += i + name.len();
    }
    None
}

/// True if a message carries the function code `code` (`"f":N` or `"f": N`, not a
/// prefix of a longer number). Allocates nothing: it runs once per message.
pub fn has_f(data: &[u8], code: u16) -> bool {
    memmem::find_iter(data, br#""f":"#).any(|i| {
        let rest = &data[i + 4..];
        let rest = &rest[rest.iter().take_while(|&&b| b == b' ').count()..];
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        digits > 0
            && digits <= 5
            && rest[..digits]
                .iter()
                .fold(0u32, |n, &d| n * 10 + u32::from(d - b'0'))
                == u32::from(code)
    })
}

/// The function code of a server message, for the common tight spelling at the start
/// (`{"f":NNN`); falls back to a search for the codes the benchmarks care about.
pub fn function_code(data: &[u8]) -> Option<u16> {
    if let Some(rest) = data.strip_prefix(br#"{"f":"#) {
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits > 0 {
            return std::str::from_utf8(&rest[..digits]).ok()?.parse().ok();
        }
    }
    [100, 120, 130, 140, 150]
        .into_iter()
        .find(|&code| has_f(data, code))
}

/// `hb_int` (milliseconds) from a HELLO, if present.
pub fn hb_int(data: &[u8]) -> Option<u64> {
    let at = memmem::find(data, br#""hb_int""#)? + 8;
    let rest = &data[at..];
    let start = rest.iter().position(|b| b.is_ascii_digit())?;
    if rest[..start].iter().any(|b| !matches!(b, b' ' | b':')) {
        return None;
    }
    let digits = rest[start..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    std::str::from_utf8(&rest[start..start + digits])
        .ok()?
        .parse()
        .ok()
}

/// The error code `c` of a 150, if present.
pub fn error_code(data: &[u8]) -> Option<u16> {
    let at = memmem::find(data, br#""c":"#)? + 4;
    let digits = data[at..].iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&data[at..at + digits])
        .ok()?
        .parse()
        .ok()
}

/// Heartbeat schedule for many sessions, spread evenly over the interval.
///
/// The k-th session added gets the phase `k * interval / slots` (k counted modulo
/// `slots`), so with `slots` sessions one heartbeat is due every `interval / slots`:
/// 19,000 sessions at 20 s make one heartbeat every 1.05 ms, never a burst. A session's
/// first heartbeat is the first time on its phase after it was added; then one every
/// `interval`.
#[derive(Debug)]
pub struct Heartbeats {
    interval: Duration,
    slots: u32,
    anchor: Instant,
    added: u32,
    /// (due, connection id, generation): the earliest due first.
    heap: BinaryHeap<Reverse<(Instant, usize, u32)>>,
    /// Current generation per connection id (an id may be reused after a close).
    generation: Vec<u32>,
    /// When the last heartbeat was sent on each connection (for the echo latency).
    sent_at: Vec<Option<Instant>>,
}

impl Heartbeats {
    /// A schedule for about `slots` sessions beating every `interval`.
    pub fn new(interval: Duration, slots: usize, anchor: Instant) -> Self {
        Self {
            interval: interval.max(Duration::from_millis(1)),
            slots: u32::try_from(slots.max(1)).unwrap_or(u32::MAX),
            anchor,
            added: 0,
            heap: BinaryHeap::new(),
            generation: Vec::new(),
            sent_at: Vec::new(),
        }
    }

    /// The interval between two heartbeats of one session.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Starts beating on connection `id` (identified at `now`).
    pub fn add(&mut self, id: usize, now: Instant) {
        if self.generation.len() <= id {
            self.generation.resize(id + 1, 0);
            self.sent_at.resize(id + 1, None);
        }
        self.generation[id] = self.generation[id].wrapping_add(1);
        let k = self.added % self.slots;
        self.added = self.added.wrapping_add(1);
        let mut due = self.anchor + self.interval.mul_f64(f64::from(k) / f64::from(self.slots));
        if due < now {
            let behind = (now - due).as_secs_f64() / self.interval.as_secs_f64();
            due += self.interval.mul_f64(behind.ceil());
        }
        self.heap.push(Reverse((due, id, self.generation[id])));
    }

    /// Stops beating on connection `id` (closed).
    pub fn remove(&mut self, id: usize) {
        if let Some(g) = self.generation.get_mut(id) {
            *g = g.wrapping_add(1);
            self.sent_at[id] = None;
        }
    }

    /// When the next heartbeat is due, if any session beats.
    pub fn next_due(&mut self) -> Option<Instant> {
        while let Some(&Reverse((due, id, g))) = self.heap.peek() {
            if self.generation[id] == g {
                return Some(due);
            }
            self.heap.pop();
        }
        None
    }

    /// Moves the connections due by `now` into `out` and reschedules them one interval
    /// later (from their due time, so a late wake-up does not shift the phase).
    pub fn take_due(&mut self, now: Instant, out: &mut Vec<usize>) {
        while let Some(&Reverse((due, id, g))) = self.heap.peek() {
            if due > now {
                break;
            }
            self.heap.pop();
            if self.generation[id] != g {
                continue;
            }
            out.push(id);
            self.sent_at[id] = Some(now);
            let mut next = due + self.interval;
            if next <= now {
                next = now + self.interval; // far behind: do not fire a burst
            }
            self.heap.push(Reverse((next, id, g)));
        }
    }

    /// The echo of connection `id`'s last heartbeat arrived at `now`: its round trip.
    pub fn acked(&mut self, id: usize, now: Instant) -> Option<Duration> {
        let sent = self.sent_at.get_mut(id)?.take()?;
        Some(now.saturating_duration_since(sent))
    }

    /// Heartbeats sent and not yet echoed.
    pub fn unacked(&self) -> usize {
        self.sent_at.iter().filter(|s| s.is_some()).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_function_codes() {
        assert!(has_f(br#"{"f":140,"cnf":{}}"#, 140));
        assert!(has_f(br#"{"cnf":{}, "f": 100}"#, 100));
        assert!(!has_f(br#"{"f":1400}"#, 140));
        assert_eq!(function_code(br#"{"f":130,"s":1}"#), Some(130));
        assert_eq!(function_code(br#"{"cnf":{},"f":120}"#), Some(120));
        assert_eq!(function_code(br#"{"x":1}"#), None);
        assert_eq!(hb_int(br#"{"f":100,"cnf":{"hb_int":20000}}"#), Some(20000));
        assert_eq!(hb_int(br#"{"cnf":{"hb_int": 500},"f":100}"#), Some(500));
        assert_eq!(hb_int(br#"{"f":100}"#), None);
        assert_eq!(
            error_code(br#"{"f":150,"cnf":{"c":4004,"d":true}}"#),
            Some(4004)
        );
        assert_eq!(
            present("tok"),
            br#"{"f":110,"cnf":{"token":"tok"}}"#.to_vec()
        );
        assert_eq!(
            message_create("hi"),
            br#"{"f":130,"cnf":{"content":"hi"},"t":"MESSAGE_CREATE"}"#.to_vec()
        );
    }

    #[test]
    fn reads_unsigned_fields_exactly() {
        let ready = br#"{"f":140,"cnf":{"v":6,"session_id":18446744073709551615,"user":"a"}}"#;
        assert_eq!(uint_field(ready, br#""session_id""#), Some(u64::MAX));
        let ev = br#"{"f":130,"s": 42,"t":"MESSAGE_CREATE","cnf":{"id":7,"content":"s"}}"#;
        assert_eq!(uint_field(ev, br#""s""#), Some(42));
        assert_eq!(uint_field(ev, br#""id""#), Some(7));
        assert_eq!(uint_field(br#"{"s":"x"}"#, br#""s""#), None);
        assert_eq!(uint_field(br#"{"f":120}"#, br#""s""#), None);
        assert_eq!(
            resume("t", u64::MAX, 3),
            br#"{"f":110,"cnf":{"token":"t","session_id":18446744073709551615,"s":3}}"#.to_vec()
        );
    }

    #[test]
    fn heartbeats_are_spread_and_periodic() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut hb = Heartbeats::new(ms(1000), 4, t0);
        for id in 0..4 {
            hb.add(id, t0 + ms(10)); // phases 0, 250, 500, 750 ms; phase 0 is past
        }
        let mut out = Vec::new();
        hb.take_due(t0 + ms(300), &mut out);
        assert_eq!(out, vec![1]);
        out.clear();
        hb.take_due(t0 + ms(1000), &mut out);
        assert_eq!(out, vec![2, 3, 0]);
        assert_eq!(hb.next_due(), Some(t0 + ms(1250)));
        hb.remove(1);
        assert_eq!(hb.next_due(), Some(t0 + ms(1500)));
        assert_eq!(hb.unacked(), 3);
        assert!(hb.acked(2, t0 + ms(1001)).is_some());
        assert!(hb.acked(2, t0 + ms(1002)).is_none());
        assert_eq!(hb.unacked(), 2);
    }
}
