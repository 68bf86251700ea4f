//! One connection's slot ([`Entry`]) and where it is in its life ([`Phase`]): each phase
//! carries the data that only it needs.

use super::token::ConnId;
use crate::time::Millis;
use crate::timer::TimerId;
use crate::ws::{Outbox, WsConn};
use mio::net::TcpStream;
use slab::Slab;
use std::net::SocketAddr;

/// Where a connection is in its life.
#[derive(Debug)]
pub(crate) enum Phase {
    /// Reading HTTP requests (an upgrade, or plain requests on keep-alive).
    Http(HttpPhase),
    /// An upgraded WebSocket (open, or waiting for the peer's Close).
    Ws(WsConn),
    /// Done: nothing read is handed to anyone any more; flush what is queued, then what
    /// [`Drain::then`] says.
    Draining(Drain),
}

/// What the HTTP phase keeps.
#[derive(Debug)]
pub(crate) struct HttpPhase {
    /// When the socket was accepted (bounds a keep-alive connection's life).
    pub born: Millis,
    /// Plain HTTP requests answered on it.
    pub requests: u32,
}

/// What a draining connection keeps.
#[derive(Debug)]
pub(crate) struct Drain {
    /// What happens once the outbox is empty.
    pub then: AfterFlush,
    /// Whether it was upgraded (it is counted in `ws_count` until removed).
    pub upgraded: bool,
    /// Bytes read and dropped since (bounded by `input::DRAIN_DISCARD`).
    pub discarded: u32,
}

/// What a draining connection does once its last bytes are written.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum AfterFlush {
    /// Half-close (FIN), then read until EOF or the close deadline.
    HalfClose,
    /// The FIN is sent: wait for EOF or the close deadline.
    AwaitEof,
    /// Close the socket (the closing handshake is complete: nothing more will be read, so
    /// there is no need to half-close and wait for EOF).
    Drop,
}

impl Phase {
    /// A fresh HTTP phase for a socket accepted at `now`.
    pub fn http(now: Millis) -> Phase {
        Phase::Http(HttpPhase {
            born: now,
            requests: 0,
        })
    }

    /// Whether the connection was upgraded (and so is counted in `ws_count`).
    pub fn is_upgraded(&self) -> bool {
        match self {
            Phase::Http(_) => false,
            Phase::Ws(_) => true,
            Phase::Draining(drain) => drain.upgraded,
        }
    }

    /// Moves to draining, then `then` (a later `Drop` wins over a half-close; a half-close
    /// already done stays done).
    pub fn drain(&mut self, then: AfterFlush) {
        match self {
            Phase::Draining(drain) => {
                if then == AfterFlush::Drop {
                    drain.then = AfterFlush::Drop;
                }
            }
            _ => {
                *self = Phase::Draining(Drain {
                    then,
                    upgraded: self.is_upgraded(),
                    discarded: 0,
                });
            }
        }
    }
}

/// One connection's slot: everything it owns. Idle, it holds no heap memory beyond the
/// application's state.
#[derive(Debug)]
pub(crate) struct Entry<S> {
    pub stream: TcpStream,
    pub peer: SocketAddr,
    pub generation: u32,
    pub phase: Phase,
    /// Bytes of an incomplete frame or request (empty, unallocated, between frames).
    pub rx: Vec<u8>,
    pub outbox: Outbox,
    pub timer: Option<TimerId>,
    pub last_rx: Millis,
    pub state: Option<S>,
    /// WRITABLE interest is registered (only while output is pending).
    pub writable: bool,
    /// In the reactor's dirty list (flushed at the end of the turn).
    pub dirty: bool,
    /// The read budget ran out with data possibly left: read again next turn.
    pub read_pending: bool,
    /// The peer's FIN (or an error) was reported: read until EOF, never stop at a short
    /// read (epoll, edge-triggered, will not report the FIN again).
    pub peer_closed: bool,
    /// Counted in the per-address table.
    pub counted: bool,
}

impl<S> Entry<S> {
    /// A socket just accepted at `now`.
    pub fn accepted(
        stream: TcpStream,
        peer: SocketAddr,
        generation: u32,
        now: Millis,
        counted: bool,
    ) -> Entry<S> {
        Entry {
            stream,
            peer,
            generation,
            phase: Phase::http(now),
            rx: Vec::new(),
            outbox: Outbox::default(),
            timer: None,
            last_rx: now,
            state: None,
            writable: false,
            dirty: false,
            read_pending: false,
            peer_closed: false,
            counted,
        }
    }

    /// Whether the application may still send to it: upgraded, its state live, and not
    /// closing.
    pub fn is_open(&self) -> bool {
        self.state.is_some() && matches!(&self.phase, Phase::Ws(ws) if ws.is_open())
    }
}

/// The entry of `id` in `conns`, if `id` is still its current id. A free function so that
/// callers can borrow `conns` apart from the rest of the [`Core`](super::core::Core).
pub(crate) fn slot<S>(conns: &mut Slab<Entry<S>>, id: ConnId) -> Option<&mut Entry<S>> {
    conns
        .get_mut(id.index())
        .filter(|e| e.generation == id.generation())
}
