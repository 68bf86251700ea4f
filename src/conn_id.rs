//! [`ConnId`]: one connection's identity, a slot index and a generation in 64 bits.
//!
//! A leaf type: the reactor hands ids out (packed into its `mio` tokens), and everything
//! above it (the gateway engine, its in-memory driver, applications) only names them.
//! A slot is reused as soon as its connection is gone; the generation makes an old id (an
//! event still in flight, a timer, a send from another thread) miss the new occupant.

/// Identifies one connection for its whole life; never reused for another connection
/// (until 2^32 accepts reuse the same slot and generation, a risk accepted here).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(u64);

impl ConnId {
    pub(crate) fn new(index: usize, generation: u32) -> ConnId {
        ConnId((u64::from(generation) << 32) | (index as u64 & 0xFFFF_FFFF))
    }

    /// The slab index (shared by successive connections in the same slot).
    pub fn index(self) -> usize {
        (self.0 & 0xFFFF_FFFF) as usize
    }

    /// The generation that tells this connection from earlier ones in its slot.
    pub fn generation(self) -> u32 {
        (self.0 >> 32) as u32
    }

    /// The id as a plain number (e.g. for logs or an application's own maps).
    pub fn as_u64(self) -> u64 {
        self.0
    }

    /// Rebuilds an id from [`ConnId::as_u64`].
    pub fn from_u64(raw: u64) -> ConnId {
        ConnId(raw)
    }
}

impl std::fmt::Display for ConnId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}.{}", self.index(), self.generation())
    }
}
