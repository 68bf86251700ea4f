//! The bounded replay buffer of one session: events by sequence number, kept for resume.

use crate::ws::SharedPayload;
use std::collections::VecDeque;

/// The last events sent to a session, bounded in count and bytes. Payloads are shared with
/// the frames already sent, so keeping them costs a reference each.
#[derive(Debug, Default)]
pub struct ReplayBuffer {
    events: VecDeque<(u64, SharedPayload)>,
    bytes: usize,
}

impl ReplayBuffer {
    /// Records event `seq` (strictly above the previous one), dropping the oldest events
    /// while over either bound.
    ///
    /// Room is made before the push, so a full buffer never grows its storage: at 256
    /// events its `VecDeque` stays at 256 slots (pushing first would double it to 512).
    pub fn push(&mut self, seq: u64, payload: SharedPayload, max_events: usize, max_bytes: usize) {
        if max_events == 0 {
            // Replay is off: nothing is kept.
            self.events.clear();
            self.bytes = 0;
            return;
        }
        self.bytes += payload.len();
        while self.events.len() >= max_events || self.bytes > max_bytes {
            match self.events.pop_front() {
                Some((_, old)) => self.bytes -= old.len(),
                None => break, // the new event alone is over the byte bound: keep it
            }
        }
        self.events.push_back((seq, payload));
    }

    /// The events after `seen`, in order, if the buffer still holds all of them (the
    /// session's last sequence is `last`). `None` means a gap: the resume must be refused.
    pub fn since(
        &self,
        seen: u64,
        last: u64,
    ) -> Option<impl Iterator<Item = (u64, &SharedPayload)>> {
        if seen > last {
            return None;
        }
        if seen < last {
            let first = self.events.front().map(|(s, _)| *s)?;
            if first > seen + 1 {
                return None;
            }
        }
        Some(
            self.events
                .iter()
                .filter(move |(s, _)| *s > seen)
                .map(|(s, p)| (*s, p)),
        )
    }

    /// Events held.
    #[cfg(any(test, feature = "testing"))]
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether nothing is held.
    #[cfg(any(test, feature = "testing"))]
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Payload bytes held.
    #[cfg(any(test, feature = "testing"))]
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(n: usize) -> SharedPayload {
        SharedPayload::new(vec![b'x'; n])
    }

    #[test]
    fn replays_exactly_what_was_missed_or_refuses() {
        let mut r = ReplayBuffer::default();
        for seq in 1..=5 {
            r.push(seq, p(10), 3, 1000);
        }
        assert_eq!(r.len(), 3); // holds 3, 4, 5
        let seqs = |seen| {
            r.since(seen, 5)
                .map(|it| it.map(|(s, _)| s).collect::<Vec<_>>())
        };
        assert_eq!(seqs(5), Some(vec![]));
        assert_eq!(seqs(4), Some(vec![5]));
        assert_eq!(seqs(2), Some(vec![3, 4, 5]));
        assert_eq!(seqs(1), None); // 2 is gone: a gap, never silent
        assert_eq!(seqs(6), None); // from the future
    }

    #[test]
    fn byte_bound_evicts_oldest() {
        let mut r = ReplayBuffer::default();
        r.push(1, p(600), 100, 1000);
        r.push(2, p(600), 100, 1000);
        assert_eq!((r.len(), r.bytes()), (1, 600));
        assert!(r.since(0, 2).is_none());
        assert!(r.since(1, 2).is_some());
    }

    #[test]
    fn a_full_buffer_never_grows_its_storage() {
        let mut r = ReplayBuffer::default();
        for seq in 1..=1000 {
            r.push(seq, p(10), 256, 1 << 20);
        }
        assert_eq!(r.len(), 256);
        assert_eq!(r.events.capacity(), 256);
        assert!(r.since(744, 1000).is_some() && r.since(743, 1000).is_none());
        // An event alone over the byte bound is still kept (the newest one).
        r.push(1001, p(5000), 256, 1000);
        assert_eq!((r.len(), r.bytes()), (1, 5000));
        r.push(1002, p(10), 0, 1000);
        assert!(r.is_empty());
    }
}
