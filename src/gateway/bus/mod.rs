//! The bus between gateway engines: the seam through which an engine publishes what the
//! other engines must see, and receives what they published.
//!
//! Several reactors (see [`Reactors`](crate::Reactors)) each run their own engine; for the
//! engines to act as one gateway they must exchange room dispatches, presence, bans,
//! application events, and session look-ups and hand-overs for resume. The bus carries them
//! as **bytes**: an [`Envelope`] (kind, origin, topic, body) encoded by [`envelope`], never a
//! pointer to another engine's state, so the same trait serves a network between nodes (the
//! next backend: Redis) as well as threads in one process ([`local`]).
//!
//! What this module provides today (the engine uses it for room dispatches only, see
//! `gateway/cluster.rs`):
//!
//! - [`Bus`]: publish bytes to every other engine or to one, poll what arrived.
//! - [`envelope`]: the versioned binary envelope; foreign or malformed bytes are refused
//!   with a precise [`EnvelopeError`], and a backend drops them and counts the drop
//!   ([`BusStats::malformed`]), never passing them on.
//! - [`local`]: the in-process backend, bounded channels between engines plus a waker per
//!   engine. A full queue refuses the message at once ([`BusError::Full`], counted in
//!   [`BusStats::full`]); the receiver learns of every loss as a [`Received::Gap`] before
//!   the next message from that origin.
//! - [`room`]: a room's home engine ([`home`], a stable hash of its name), which gives the
//!   room one order, and the body of a room dispatch ([`RoomDispatch`]).
//!
//! The answer to a gap (to be built with the engine's use of the bus): the receiving
//! engine cannot know which events it missed, so its members of the rooms involved must not
//! go on as if nothing happened: they are closed with the protocol's resumable code, and
//! their resume is served from the room's home (which has the events), never with a hole.
//! Memory stays bounded either way: a queue holds at most its capacity in envelopes of at
//! most [`envelope::MAX_BODY`] bytes.

pub mod envelope;
pub mod local;
pub mod room;

pub use envelope::{Envelope, EnvelopeError, Kind};
pub use local::{LocalBus, LocalBusEnd, WakeSlot};
pub use room::{home, RoomBodyError, RoomDispatch};

use std::fmt;
use std::sync::Arc;

/// Who published a message: a node (a process; 0 on the in-process bus) and a reactor
/// (an engine) within it.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Origin {
    /// The process.
    pub node: u32,
    /// The engine within the process.
    pub reactor: u16,
}

/// Where a published message goes.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// Every other engine on the bus (never back to the publisher).
    Others,
    /// One engine (a room's home, a session's holder).
    Engine(Origin),
}

/// Why a message was not published.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum BusError {
    /// The receiver's queue is full (it cannot keep up): the message is dropped, counted,
    /// and the receiver will see a [`Received::Gap`].
    Full(Origin),
    /// No such engine on this bus, or it has gone.
    Unknown(Origin),
    /// The bytes are not a valid envelope (nothing is published).
    Malformed(EnvelopeError),
}

impl fmt::Display for BusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BusError::Full(to) => write!(f, "bus queue of reactor {} full", to.reactor),
            BusError::Unknown(to) => write!(f, "no reactor {} on the bus", to.reactor),
            BusError::Malformed(e) => write!(f, "not published: {e}"),
        }
    }
}

impl std::error::Error for BusError {}

/// What [`Bus::poll`] hands the engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Received {
    /// A checked envelope's bytes ([`Envelope::decode`] cannot fail on them). Immutable
    /// bytes, shared by every receiver of one publication (encoded once).
    Message(Arc<[u8]>),
    /// `missed` messages from `from` were lost (its queue to this engine was full): what
    /// follows from `from` is not contiguous with what came before.
    Gap {
        /// The publisher whose messages were lost.
        from: Origin,
        /// How many.
        missed: u64,
    },
}

/// Counters a bus end keeps, for monitoring and tests.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct BusStats {
    /// Messages published (per receiver reached).
    pub sent: u64,
    /// Messages received and handed on.
    pub received: u64,
    /// Messages this end could not publish because a receiver's queue was full.
    pub full: u64,
    /// Messages received that were not valid envelopes (or claimed to come from this
    /// end): dropped.
    pub malformed: u64,
    /// Messages from others that this end learned were lost (the sum of its gaps).
    pub lost: u64,
}

/// The seam between engines. An engine holds one end; every method is called on its own
/// reactor thread and never blocks.
///
/// The contract every backend keeps:
/// - messages from one origin to one receiver arrive in the order they were published,
///   each at most once;
/// - a loss is never silent: the receiver gets [`Received::Gap`] before the next message
///   from that origin, and the publisher a [`BusError::Full`];
/// - what [`poll`](Bus::poll) returns as a message is a valid envelope from another engine;
/// - every queue is bounded.
pub trait Bus {
    /// This end's identity, written into every envelope it publishes.
    fn origin(&self) -> Origin;

    /// Every engine on the bus, this one included, in a stable order (for a room's home:
    /// the same list on every engine).
    fn engines(&self) -> &[Origin];

    /// Publishes an encoded envelope. To [`Target::Others`], the error is the first
    /// receiver that could not take it (the others did).
    fn publish(&mut self, to: Target, envelope: &[u8]) -> Result<(), BusError>;

    /// The next thing that arrived, if any.
    fn poll(&mut self) -> Option<Received>;

    /// This end's counters.
    fn stats(&self) -> BusStats;
}
