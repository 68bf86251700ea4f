//! The entry storage of [`TimerWheel`](super::TimerWheel): one `Vec` used as a slab, with a
//! free list threaded through its vacant entries and intrusive circular doubly linked lists
//! threaded through its occupied ones.
//!
//! Entries refer to each other by `u32` index rather than by pointer, so the whole structure
//! is safe code, moves freely, and an entry costs two `u32` links instead of two pointers.
//! A list is named by its head index alone: the head's `prev` is the tail, so pushing to the
//! back, popping from the front and unlinking any member are all O(1) without a tail field.

/// "No entry": the empty list head, the end of the free list.
pub(super) const NIL: u32 = u32::MAX;

/// Which list an occupied entry is linked into. The slot within a level is kept beside it in
/// [`Node::slot`]. A field-less enum (rather than a `u8`) leaves a niche, so that
/// [`Entry`] needs no separate discriminant and stays as small as [`Node`].
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(super) enum Home {
    /// Level 0 of the wheel (1 ms slots).
    L0 = 0,
    /// Level 1 (64 ms slots).
    L1 = 1,
    /// Level 2 (4096 ms slots).
    L2 = 2,
    /// Level 3 (~4.4 min slots).
    L3 = 3,
    /// Level 4 (~4.7 h slots).
    L4 = 4,
    /// Level 5, the top level (~12.4 day slots), used as a ring.
    L5 = 5,
    /// The list of expired entries waiting to be returned by `poll`.
    Ready = 6,
}

impl Home {
    /// The home for wheel level `level` (0..=5); anything larger maps to the top level.
    pub(super) fn level(level: usize) -> Home {
        match level {
            0 => Home::L0,
            1 => Home::L1,
            2 => Home::L2,
            3 => Home::L3,
            4 => Home::L4,
            _ => Home::L5,
        }
    }
}

/// A pending timer.
#[derive(Debug)]
pub(super) struct Node<T> {
    /// The deadline as asked for (never clamped), in ms since the reactor's epoch.
    pub(super) deadline: u64,
    /// The caller's value, handed back when the timer fires or is cancelled.
    pub(super) value: T,
    /// Previous entry in this entry's circular list (the tail, for the head).
    pub(super) prev: u32,
    /// Next entry in this entry's circular list (the head, for the tail).
    pub(super) next: u32,
    /// Generation of this occupancy, copied into the [`TimerId`](super::TimerId).
    pub(super) generation: u32,
    /// The list the entry is linked into.
    pub(super) home: Home,
    /// The slot within the level (unused for [`Home::Ready`]).
    pub(super) slot: u8,
}

/// One slab cell: a pending timer, or a free cell remembering the generation its next
/// occupant gets (so that ids of earlier occupants are recognised as stale).
#[derive(Debug)]
pub(super) enum Entry<T> {
    /// Free; linked into the free list.
    Vacant {
        /// Next free cell, or [`NIL`].
        next_free: u32,
        /// Generation the next occupant of this cell will carry.
        generation: u32,
    },
    /// In use.
    Occupied(Node<T>),
}

/// Vec-backed slab of [`Entry`] with a free list.
#[derive(Debug)]
pub(super) struct Slab<T> {
    entries: Vec<Entry<T>>,
    /// First free cell, or [`NIL`].
    free_head: u32,
    /// Number of occupied cells.
    len: usize,
}

impl<T> Slab<T> {
    /// An empty slab with room for `capacity` entries before it reallocates.
    pub(super) fn with_capacity(capacity: usize) -> Self {
        Slab {
            entries: Vec::with_capacity(capacity),
            free_head: NIL,
            len: 0,
        }
    }

    /// Occupied cells.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Cells the slab can hold without reallocating.
    pub(super) fn capacity(&self) -> usize {
        self.entries.capacity()
    }

    /// Stores a new, unlinked node and returns its index and generation. Reuses a free cell
    /// when there is one, so a steady state allocates nothing.
    pub(super) fn alloc(&mut self, deadline: u64, value: T) -> (u32, u32) {
        let reuse = match self.entries.get(self.free_head as usize) {
            Some(&Entry::Vacant {
                next_free,
                generation,
            }) => Some((next_free, generation)),
            _ => None,
        };
        let (index, generation) = match reuse {
            Some((next_free, generation)) => {
                let index = self.free_head;
                self.free_head = next_free;
                (index, generation)
            }
            None => {
                // NIL is reserved, so at most u32::MAX - 1 cells. Reaching that needs over
                // 96 GiB of entries; treat it like the allocation failure it would be.
                let index = match u32::try_from(self.entries.len()) {
                    Ok(i) if i != NIL => i,
                    _ => std::process::abort(),
                };
                self.entries.push(Entry::Vacant {
                    next_free: NIL,
                    generation: 0,
                });
                (index, 0)
            }
        };
        let node = Node {
            deadline,
            value,
            prev: NIL,
            next: NIL,
            generation,
            home: Home::Ready,
            slot: 0,
        };
        if let Some(cell) = self.entries.get_mut(index as usize) {
            *cell = Entry::Occupied(node);
        }
        self.len += 1;
        (index, generation)
    }

    /// Frees the (already unlinked) node at `index`, returning it. The cell's generation is
    /// bumped so ids of this occupancy go stale.
    pub(super) fn release(&mut self, index: u32) -> Option<Node<T>> {
        let cell = self.entries.get_mut(index as usize)?;
        let generation = match cell {
            Entry::Occupied(node) => node.generation.wrapping_add(1),
            Entry::Vacant { .. } => return None,
        };
        let old = std::mem::replace(
            cell,
            Entry::Vacant {
                next_free: self.free_head,
                generation,
            },
        );
        self.free_head = index;
        self.len -= 1;
        match old {
            Entry::Occupied(node) => Some(node),
            Entry::Vacant { .. } => None,
        }
    }

    /// The occupied node at `index`.
    pub(super) fn get(&self, index: u32) -> Option<&Node<T>> {
        match self.entries.get(index as usize) {
            Some(Entry::Occupied(node)) => Some(node),
            _ => None,
        }
    }

    /// The occupied node at `index`, mutably.
    pub(super) fn get_mut(&mut self, index: u32) -> Option<&mut Node<T>> {
        match self.entries.get_mut(index as usize) {
            Some(Entry::Occupied(node)) => Some(node),
            _ => None,
        }
    }

    /// The occupied node at `index` if its generation is `generation` (the id is live).
    pub(super) fn get_live(&self, index: u32, generation: u32) -> Option<&Node<T>> {
        self.get(index).filter(|n| n.generation == generation)
    }

    fn set_prev(&mut self, index: u32, prev: u32) {
        if let Some(n) = self.get_mut(index) {
            n.prev = prev;
        }
    }

    fn set_next(&mut self, index: u32, next: u32) {
        if let Some(n) = self.get_mut(index) {
            n.next = next;
        }
    }

    /// Appends the unlinked node `index` to the list whose head is `*head`.
    pub(super) fn push_back(&mut self, head: &mut u32, index: u32) {
        if *head == NIL {
            if let Some(n) = self.get_mut(index) {
                n.prev = index;
                n.next = index;
                *head = index;
            }
            return;
        }
        let first = *head;
        let Some(tail) = self.get(first).map(|n| n.prev) else {
            return;
        };
        if let Some(n) = self.get_mut(index) {
            n.prev = tail;
            n.next = first;
        } else {
            return;
        }
        self.set_next(tail, index);
        self.set_prev(first, index);
    }

    /// Removes node `index` from the list whose head is `*head` (it must be a member).
    pub(super) fn unlink(&mut self, head: &mut u32, index: u32) {
        let Some((prev, next)) = self.get(index).map(|n| (n.prev, n.next)) else {
            return;
        };
        if next == index {
            // The only member.
            *head = NIL;
        } else {
            self.set_next(prev, next);
            self.set_prev(next, prev);
            if *head == index {
                *head = next;
            }
        }
        if let Some(n) = self.get_mut(index) {
            n.prev = NIL;
            n.next = NIL;
        }
    }

    /// Unlinks and returns the first node of the list whose head is `*head`.
    pub(super) fn pop_front(&mut self, head: &mut u32) -> Option<u32> {
        let index = *head;
        if self.get(index).is_none() {
            // Empty (or, were an invariant ever broken, a dangling head: drop the list
            // rather than loop on it).
            *head = NIL;
            return None;
        }
        self.unlink(head, index);
        Some(index)
    }
}
