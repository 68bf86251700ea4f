//! A hierarchical timer wheel: O(1) insert, cancel and reschedule for the reactor's many
//! timeouts (heartbeats, handshakes, idle and write deadlines), with no clock inside.
//!
//! The wheel is sans-IO: it never reads a clock. The reactor passes its current time as a
//! [`Millis`] to [`TimerWheel::poll`] and sizes its `mio` poll timeout from
//! [`TimerWheel::next_deadline`].
//!
//! # Structure
//!
//! The design follows tokio-util's wheel, at a resolution of 1 ms:
//!
//! * Six **levels** of 64 **slots**. A slot on level `l` spans `64^l` ms, so a level spans
//!   `64^(l+1)` ms: level 0 has 1 ms slots over 64 ms, level 1 has 64 ms slots over ~4 s, …,
//!   level 5 has ~12.4 day slots over 64^6 ms ≈ 2.2 years. Each level keeps a `u64`
//!   occupancy bitmask, so finding the next non-empty slot is a `trailing_zeros`.
//! * A timer is filed on the lowest level whose span, counted from the wheel's current time
//!   `elapsed`, contains its deadline: the level is given by the highest bit in which
//!   `deadline` and `elapsed` differ, the slot by the deadline's bits at that level. So every
//!   filed timer sits in a slot that starts strictly after `elapsed`, and a non-empty lower
//!   level always expires before any higher one.
//! * When time reaches the start of a slot above level 0, the slot is **cascaded**: its
//!   timers are filed again relative to the new time, landing on lower levels, until they
//!   reach a level-0 slot, which holds timers of exactly one millisecond. An expired slot's
//!   timers move to the **ready list**, from which `poll` returns them one at a time.
//! * The top level is used as a ring: deadlines beyond the wheel's ~2 year span are filed in
//!   the top-level slot 63 slots ahead (clamped) and re-filed each time that slot comes
//!   round, until they are in range. They keep their true deadline and are never lost.
//! * All timers live in one `Vec`-backed slab (the private `slab` module) with a free list. Each slot (and the
//!   ready list) is an intrusive circular doubly linked list threaded through the slab by
//!   `u32` index, so insert, cancel and reschedule are O(1) and, once the slab has grown to
//!   the peak number of live timers, nothing is allocated per timer.
//! * A [`TimerId`] is the entry's index plus a generation that is bumped whenever the entry
//!   is freed, so ids of timers that already fired or were cancelled are recognised as stale
//!   even after their slab cell has been reused.
//!
//! An entry holds the deadline (`u64`), the value, two `u32` links, the `u32` generation and
//! two bytes saying which list it is in: 24 bytes plus `T`, rounded up to alignment.

mod slab;
#[cfg(test)]
mod tests;

use std::fmt;

use crate::time::Millis;
use slab::{Home, Slab, NIL};

/// Slots per level.
const SLOTS: usize = 64;
/// log2 of [`SLOTS`].
const SLOT_BITS: u32 = 6;
/// Number of levels.
const LEVELS: usize = 6;
/// Index of the top level, which is used as a ring.
const TOP: usize = LEVELS - 1;
/// log2 of the width, in ms, of one top-level slot (64^5).
const TOP_SLOT_SHIFT: u32 = SLOT_BITS * TOP as u32;
/// Deadlines differing from `elapsed` in this bit or above go to the top level.
const TOP_SPLIT: u64 = 1 << TOP_SLOT_SHIFT;

/// Handle to a scheduled timer, returned by [`TimerWheel::insert`] and by
/// [`TimerWheel::poll`] when the timer fires.
///
/// It is the timer's slab index plus a generation counter. Once the timer has fired or been
/// cancelled its cell may be reused by another timer, but with a new generation, so
/// [`TimerWheel::cancel`], [`TimerWheel::reschedule`] and [`TimerWheel::deadline`] on a
/// stale id return `None`/`false` instead of touching the other timer. (A cell's
/// generation wraps after 2^32 reuses; an id held across that many reuses of the same cell
/// could alias. The reactor drops ids when their timer fires or is cancelled.)
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct TimerId {
    index: u32,
    generation: u32,
}

/// One wheel level: 64 slots, each the head of a list of entries, and a bitmask of the
/// non-empty ones.
#[derive(Debug)]
struct Level {
    /// Bit `s` is set iff `heads[s]` is a non-empty list.
    occupied: u64,
    /// Head entry of each slot's list, or [`NIL`].
    heads: [u32; SLOTS],
}

/// The earliest non-empty slot of the wheel.
#[derive(Copy, Clone, Debug)]
struct Expiration {
    level: usize,
    slot: usize,
    /// The time the slot starts: its timers' deadline on level 0, a lower bound above.
    start: u64,
}

/// A hierarchical timer wheel holding values of type `T` until their deadline.
///
/// See the [module documentation](self) for how it works. All times are [`Millis`] since
/// the reactor's epoch; the wheel keeps its own notion of the current time (see
/// [`TimerWheel::now`]) which only moves forward, when [`TimerWheel::poll`] is called.
pub struct TimerWheel<T> {
    /// Entries and their links.
    slab: Slab<T>,
    /// The wheel's current time in ms: every entry filed on a level has a deadline after
    /// it, in a slot that starts after it.
    elapsed: u64,
    /// The levels, finest first.
    levels: [Level; LEVELS],
    /// Head of the list of expired entries not yet returned by `poll`.
    ready: u32,
    /// While `ready` is non-empty: a lower bound of the deadlines in it.
    ready_min: u64,
}

impl<T> fmt::Debug for TimerWheel<T> {
    /// A summary (the entries themselves are not printed, so `T` need not be `Debug`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimerWheel")
            .field("now", &self.now())
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .field("next_deadline", &self.next_deadline())
            .finish()
    }
}

impl<T> TimerWheel<T> {
    /// An empty wheel whose current time is `now`.
    pub fn new(now: Millis) -> Self {
        Self::with_capacity(now, 0)
    }

    /// An empty wheel whose current time is `now`, with room for `capacity` pending timers
    /// before its slab has to grow. Sizing it for the expected peak avoids reallocation
    /// (and its latency spike) while serving.
    pub fn with_capacity(now: Millis, capacity: usize) -> Self {
        let level = || Level {
            occupied: 0,
            heads: [NIL; SLOTS],
        };
        TimerWheel {
            slab: Slab::with_capacity(capacity),
            elapsed: now.0,
            levels: [level(), level(), level(), level(), level(), level()],
            ready: NIL,
            ready_min: u64::MAX,
        }
    }

    /// Schedules `value` to be returned by [`poll`](Self::poll) at `deadline`, and returns
    /// the id to cancel or move it with.
    ///
    /// A deadline at or before the wheel's current time fires on the next poll. Any deadline
    /// is accepted, up to `Millis::NEVER`: ones beyond the wheel's ~2 year span are clamped
    /// for placement (see the module docs) and fire at their true time. O(1); allocates only
    /// when more timers are pending than ever before. Never panics.
    pub fn insert(&mut self, deadline: Millis, value: T) -> TimerId {
        let (index, generation) = self.slab.alloc(deadline.0, value);
        self.file(index);
        TimerId { index, generation }
    }

    /// Removes a pending timer and returns its value, or `None` if `id` is stale (the timer
    /// already fired or was cancelled). O(1).
    pub fn cancel(&mut self, id: TimerId) -> Option<T> {
        self.slab.get_live(id.index, id.generation)?;
        self.unfile(id.index);
        self.slab.release(id.index).map(|node| node.value)
    }

    /// Moves a pending timer to `deadline`, keeping its id and value (cheaper than cancel
    /// plus insert, and the id held elsewhere stays valid). Same deadline rules as
    /// [`insert`](Self::insert). Returns `false`, changing nothing, if `id` is stale. O(1).
    pub fn reschedule(&mut self, id: TimerId, deadline: Millis) -> bool {
        if self.slab.get_live(id.index, id.generation).is_none() {
            return false;
        }
        self.unfile(id.index);
        if let Some(node) = self.slab.get_mut(id.index) {
            node.deadline = deadline.0;
        }
        self.file(id.index);
        true
    }

    /// The value of a pending timer, or `None` if `id` is stale. O(1).
    pub fn get(&self, id: TimerId) -> Option<&T> {
        self.slab
            .get_live(id.index, id.generation)
            .map(|n| &n.value)
    }

    /// The deadline a pending timer was given (unclamped), or `None` if `id` is stale.
    pub fn deadline(&self, id: TimerId) -> Option<Millis> {
        self.slab
            .get_live(id.index, id.generation)
            .map(|n| Millis(n.deadline))
    }

    /// A time at or before the earliest pending deadline, or `None` when no timer is
    /// pending. The reactor sleeps until then at most.
    ///
    /// It is exact when the earliest timer sits on level 0 (due within the current 64 ms
    /// window) and for expired timers not yet polled. Otherwise it is the start of the
    /// earliest non-empty slot on a higher level: polling at that time cascades the slot
    /// (firing nothing, or firing timers due exactly then) and the next call returns a later
    /// time. So `poll(next_deadline())` in a loop always makes progress, and a timer far away
    /// costs at most one early wake-up per level (plus one per ~2 years beyond the span).
    pub fn next_deadline(&self) -> Option<Millis> {
        if self.ready != NIL {
            return Some(Millis(self.ready_min));
        }
        self.next_expiration().map(|e| Millis(e.start))
    }

    /// Advances the wheel's time to `now` and returns one expired timer, or `None` when
    /// nothing is due at `now`. Call it until it returns `None`.
    ///
    /// Timers fire in deadline order (timers due in the same millisecond in any order);
    /// a timer inserted or rescheduled with a deadline at or before the wheel's time counts
    /// as due at the wheel's time. `now` earlier than the wheel's time is treated as the
    /// wheel's time. While expired timers remain unreturned, the wheel's time stays at their
    /// deadline, so a timer inserted between two polls for a time before `now` still fires
    /// in order. Each call costs O(1) plus the cascading of any slots reached; a jump of
    /// more than the wheel's ~2 year span costs an extra step per ~2 years per far timer.
    pub fn poll(&mut self, now: Millis) -> Option<(TimerId, T)> {
        let now = now.0.max(self.elapsed);
        loop {
            if let Some(index) = self.slab.pop_front(&mut self.ready) {
                if let Some(node) = self.slab.release(index) {
                    return Some((
                        TimerId {
                            index,
                            generation: node.generation,
                        },
                        node.value,
                    ));
                }
                continue;
            }
            match self.next_expiration() {
                Some(exp) if exp.start <= now => {
                    self.elapsed = self.elapsed.max(exp.start);
                    self.cascade(exp.level, exp.slot);
                }
                _ => {
                    self.elapsed = now;
                    return None;
                }
            }
        }
    }

    /// Number of pending timers (including expired ones not yet returned by `poll`).
    pub fn len(&self) -> usize {
        self.slab.len()
    }

    /// Whether no timer is pending.
    pub fn is_empty(&self) -> bool {
        self.slab.len() == 0
    }

    /// The wheel's current time: the latest `now` given to [`poll`](Self::poll) (or to
    /// [`new`](Self::new)), except while expired timers remain unreturned, when it is their
    /// deadline. Deadlines at or before it fire on the next poll.
    pub fn now(&self) -> Millis {
        Millis(self.elapsed)
    }

    /// Number of timers the wheel can hold before its slab has to grow.
    pub fn capacity(&self) -> usize {
        self.slab.capacity()
    }

    /// Bytes of memory the wheel holds: slab capacity × entry size, plus the fixed part (the
    /// struct itself, including the slot heads of all levels, ~1.6 KiB). For footprint
    /// accounting; the values' own heap allocations, if any, are not included.
    pub fn heap_bytes(&self) -> usize {
        self.slab.capacity() * std::mem::size_of::<slab::Entry<T>>() + std::mem::size_of::<Self>()
    }

    /// The earliest non-empty slot over all levels (ignoring the ready list).
    fn next_expiration(&self) -> Option<Expiration> {
        // A non-empty level's slots all end before the next-higher level's slots start, so
        // the first non-empty level holds the earliest slot.
        let (level, lv) = self
            .levels
            .iter()
            .enumerate()
            .find(|(_, lv)| lv.occupied != 0)?;
        if level < TOP {
            // Occupied slots all lie after the current one in the current window (they
            // start after `elapsed`), so the lowest set bit is the earliest.
            let slot = lv.occupied.trailing_zeros();
            let shift = SLOT_BITS * level as u32;
            let window = !((1u64 << (shift + SLOT_BITS)) - 1);
            let start = (self.elapsed & window) | (u64::from(slot) << shift);
            Some(Expiration {
                level,
                slot: slot as usize,
                start,
            })
        } else {
            // The top level is a ring: a slot holds the entries of the absolute top slot
            // 1..=63 ahead of the current one that has its index modulo 64.
            let current = self.elapsed >> TOP_SLOT_SHIFT;
            let ahead = lv
                .occupied
                .rotate_right((current % SLOTS as u64) as u32)
                .trailing_zeros();
            let absolute = current + u64::from(ahead);
            let start = absolute
                .checked_shl(TOP_SLOT_SHIFT)
                .filter(|s| s >> TOP_SLOT_SHIFT == absolute);
            Some(Expiration {
                level,
                slot: (absolute % SLOTS as u64) as usize,
                start: start.unwrap_or(u64::MAX),
            })
        }
    }

    /// Empties slot `slot` of level `level` (whose start time has been reached) by filing its
    /// entries again relative to the wheel's time: to a lower level, or the ready list.
    fn cascade(&mut self, level: usize, slot: usize) {
        let Some(lv) = self.levels.get_mut(level) else {
            return;
        };
        let Some(head) = lv.heads.get_mut(slot) else {
            return;
        };
        let mut list = std::mem::replace(head, NIL);
        lv.occupied &= !(1u64 << slot);
        while let Some(index) = self.slab.pop_front(&mut list) {
            self.file(index);
        }
    }

    /// Links the unlinked entry `index` into the list its deadline belongs to, relative to
    /// the wheel's time, and records that list in the entry.
    fn file(&mut self, index: u32) {
        let Some(deadline) = self.slab.get(index).map(|n| n.deadline) else {
            return;
        };
        let elapsed = self.elapsed;
        if deadline <= elapsed {
            if self.ready == NIL || deadline < self.ready_min {
                self.ready_min = deadline;
            }
            self.slab.push_back(&mut self.ready, index);
            if let Some(n) = self.slab.get_mut(index) {
                n.home = Home::Ready;
            }
            return;
        }
        let differ = elapsed ^ deadline;
        let (level, slot) = if differ < TOP_SPLIT {
            // Highest differing bit, at least 5 so that level 0 covers bits 0..6.
            let bit = 63 - (differ | (SLOTS as u64 - 1)).leading_zeros();
            let level = (bit / SLOT_BITS) as usize;
            let slot = (deadline >> (SLOT_BITS * level as u32)) % SLOTS as u64;
            (level, slot as usize)
        } else {
            // Top level, at most 63 slots ahead of the current one (the clamp).
            let current = elapsed >> TOP_SLOT_SHIFT;
            let absolute = (deadline >> TOP_SLOT_SHIFT).min(current + (SLOTS as u64 - 1));
            (TOP, (absolute % SLOTS as u64) as usize)
        };
        let Some(lv) = self.levels.get_mut(level) else {
            return;
        };
        let Some(head) = lv.heads.get_mut(slot) else {
            return;
        };
        lv.occupied |= 1u64 << slot;
        self.slab.push_back(head, index);
        if let Some(n) = self.slab.get_mut(index) {
            n.home = Home::level(level);
            n.slot = slot as u8;
        }
    }

    /// Unlinks entry `index` from whichever list it is in (it stays allocated).
    fn unfile(&mut self, index: u32) {
        let Some((home, slot)) = self.slab.get(index).map(|n| (n.home, usize::from(n.slot))) else {
            return;
        };
        if home == Home::Ready {
            self.slab.unlink(&mut self.ready, index);
            return;
        }
        let Some(lv) = self.levels.get_mut(home as usize) else {
            return;
        };
        let Some(head) = lv.heads.get_mut(slot) else {
            return;
        };
        self.slab.unlink(head, index);
        if *head == NIL {
            lv.occupied &= !(1u64 << slot);
        }
    }
}
