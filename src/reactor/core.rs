//! The reactor's state apart from the application: connections, timers, buffers, and the
//! primitives every path shares (queue bytes, start a close, flush, remove).
//!
//! Splitting it from [`Reactor`](super::Reactor) lets the application be called with a
//! `&mut Core` inside its [`Ctx`](super::Ctx) while the reactor holds `&mut App`.

use super::address::PerIp;
use super::app::{App, Closed};
use super::entry::{slot, AfterFlush, Entry, Phase};
use super::remote::RemoteInner;
use super::token::ConnId;
use crate::close::CloseCode;
use crate::config::Config;
use crate::time::Millis;
use crate::timer::TimerWheel;
use crate::wire::OpCode;
use crate::ws::{BufPool, Outbox, SharedFrame};
use mio::{Interest, Registry};
use slab::Slab;
use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::{IpAddr, Shutdown};
use std::sync::Arc;

/// What a wheel timer is for.
#[derive(Debug)]
pub(crate) enum TimerTarget<T> {
    /// The connection's own deadline: handshake, idle/ping, or close, by phase.
    Conn(ConnId),
    /// Retry accepting after descriptors ran out.
    Accept,
    /// Forget source addresses with no socket and a full rate bucket.
    SweepAddresses,
    /// The graceful shutdown's flush deadline.
    Shutdown,
    /// The application's timer.
    App(T),
}

/// A connection that ended, with its application state, waiting for `on_close`.
#[derive(Debug)]
pub(crate) struct Ended<S> {
    pub id: ConnId,
    pub state: S,
    pub why: Closed,
}

/// The reactor's state apart from the application.
#[derive(Debug)]
pub(crate) struct Core<A: App> {
    pub conns: Slab<Entry<A::Conn>>,
    pub wheel: TimerWheel<TimerTarget<A::Timer>>,
    pub pool: BufPool,
    pub config: Config,
    pub now: Millis,
    pub registry: Registry,
    /// The one read buffer shared by all connections.
    pub read_buf: Vec<u8>,
    /// Connections with output queued during this turn.
    pub dirty: Vec<ConnId>,
    /// Connections whose read budget ran out.
    pub pending_reads: Vec<ConnId>,
    /// Ended connections whose `on_close` is still to be called.
    pub closed: VecDeque<Ended<A::Conn>>,
    pub ws_count: usize,
    pub generation: u32,
    pub remote: Arc<RemoteInner<A::Command>>,
    pub shutting_down: bool,
    pub stop: bool,
    pub accept_paused: bool,
    /// Sockets and connection rate per source address, keyed by
    /// [`address_key`](super::address::address_key) (loopback exempt unless configured).
    pub per_ip: HashMap<IpAddr, PerIp>,
    /// Sockets not (yet) upgraded, in accept order, oldest first: the ones shed when
    /// descriptors run low. Entries of sockets since upgraded or gone are skipped (and
    /// compacted away once they outnumber the live ones).
    pub unupgraded: VecDeque<ConnId>,
    /// Sockets the reactor may hold before it sheds, from the descriptor limit (`None`:
    /// no limit known).
    pub socket_budget: Option<usize>,
    /// A sweep of `per_ip` is scheduled (only while it has entries, so that an idle
    /// reactor's timer wheel is empty).
    pub sweep_armed: bool,
    /// permessage-deflate's shared deflaters and buffer (see `compress.rs`).
    #[cfg(feature = "deflate")]
    pub deflate: super::compress::Shared,
}

pub(crate) use crate::error::SendError;

impl<A: App> Core<A> {
    /// The entry of a live connection, if `id` is still its current id.
    pub(crate) fn get(&self, id: ConnId) -> Option<&Entry<A::Conn>> {
        self.conns
            .get(id.index())
            .filter(|e| e.generation == id.generation())
    }

    /// The id of every connection held, in any phase (for a loop that may remove them).
    pub(crate) fn all_ids(&self) -> Vec<ConnId> {
        self.conns
            .iter()
            .map(|(index, e)| ConnId::new(index, e.generation))
            .collect()
    }

    /// Mutable [`Core::get`].
    pub(crate) fn get_mut(&mut self, id: ConnId) -> Option<&mut Entry<A::Conn>> {
        slot(&mut self.conns, id)
    }

    /// Marks a connection for flushing at the end of the turn.
    fn mark_dirty(dirty: &mut Vec<ConnId>, entry: &mut Entry<A::Conn>, id: ConnId) {
        if !entry.dirty {
            entry.dirty = true;
            dirty.push(id);
        }
    }

    /// Queues an application message (or a frame built by `push`) to an open connection,
    /// enforcing the outbox cap.
    pub(crate) fn send_with(
        &mut self,
        id: ConnId,
        len: usize,
        push: impl FnOnce(&mut Outbox, &mut BufPool),
    ) -> Result<(), SendError> {
        let limit = self.config.outbox_limit;
        let entry = slot(&mut self.conns, id).ok_or(SendError::Unknown)?;
        if !entry.is_open() {
            return Err(SendError::Closing);
        }
        // The cap bounds the backlog: an empty outbox always takes one frame, however big
        // (the frame itself was bounded by whoever built it).
        if !entry.outbox.is_empty() && self.backlog_over(id, limit.saturating_sub(len)) {
            // Over means still there (a connection the flush dropped is not over).
            if let Some(entry) = slot(&mut self.conns, id) {
                entry.outbox.drop_unsent(&mut self.pool);
            }
            self.close(id, CloseCode::POLICY, "slow reader: outbox overflow");
            return Err(SendError::Overflow);
        }
        // The flush above may have dropped the connection (a write error).
        let entry = slot(&mut self.conns, id).ok_or(SendError::Closing)?;
        push(&mut entry.outbox, &mut self.pool);
        Self::mark_dirty(&mut self.dirty, entry, id);
        Ok(())
    }

    /// Whether a connection's queued output stays above `max` bytes once offered to its
    /// socket. Output is written at the end of the turn, so part of a backlog may never
    /// have been offered (a busy turn can queue more than the cap to a healthy reader):
    /// it is written now, and only what the kernel will not take counts. A connection the
    /// write drops (an error) is not over: it is gone.
    pub(crate) fn backlog_over(&mut self, id: ConnId, max: usize) -> bool {
        match slot(&mut self.conns, id) {
            Some(entry) if entry.outbox.len() > max => {}
            _ => return false,
        }
        self.flush(id);
        slot(&mut self.conns, id).is_some_and(|entry| entry.outbox.len() > max)
    }

    /// Queues a control frame regardless of the cap: used for frames there is at most one
    /// of per peer action we wait for (the Close answering the peer's, our own keepalive
    /// Ping). Pongs go through [`Core::send_with`]: a peer can ask for them without end.
    pub(crate) fn push_control(&mut self, id: ConnId, opcode: OpCode, payload: &[u8]) {
        if let Some(entry) = slot(&mut self.conns, id) {
            entry.outbox.push_frame(&mut self.pool, opcode, payload);
            Self::mark_dirty(&mut self.dirty, entry, id);
        }
    }

    /// Queues raw bytes (an HTTP response).
    pub(crate) fn push_bytes(&mut self, id: ConnId, bytes: &[u8]) {
        if let Some(entry) = slot(&mut self.conns, id) {
            entry.outbox.push_bytes(&mut self.pool, bytes);
            Self::mark_dirty(&mut self.dirty, entry, id);
        }
    }

    /// Queues a shared frame without the cap check (used for a close frame).
    fn push_shared_unchecked(&mut self, id: ConnId, frame: &SharedFrame) {
        if let Some(entry) = slot(&mut self.conns, id) {
            entry.outbox.push_shared(frame);
            Self::mark_dirty(&mut self.dirty, entry, id);
        }
    }

    /// (Re)arms a connection's single deadline timer.
    pub(crate) fn arm(&mut self, id: ConnId, at: Millis) {
        let Some(entry) = self.get_mut(id) else {
            return;
        };
        let current = entry.timer;
        match current {
            Some(t) if self.wheel.reschedule(t, at) => {}
            _ => {
                let t = self.wheel.insert(at, TimerTarget::Conn(id));
                if let Some(entry) = self.get_mut(id) {
                    entry.timer = Some(t);
                }
            }
        }
    }

    /// Starts the server side of the closing handshake: queues a Close frame, hands the
    /// application state to the `on_close` queue, and arms the close deadline. Nothing
    /// happens for a connection already closing.
    pub(crate) fn close(&mut self, id: ConnId, code: CloseCode, reason: &str) {
        self.close_as(id, code, reason, Closed::ByServer(code));
    }

    /// [`Core::close`] with an explicit reason for `on_close`.
    pub(crate) fn close_as(&mut self, id: ConnId, code: CloseCode, reason: &str, why: Closed) {
        let Some(entry) = self.get_mut(id) else {
            return;
        };
        let upgraded = match &mut entry.phase {
            Phase::Ws(ws) => {
                if !ws.start_close() {
                    return;
                }
                if matches!(why, Closed::Failed(_)) {
                    // A failed connection reads nothing more: it only drains.
                    entry.phase.drain(AfterFlush::HalfClose);
                }
                true
            }
            Phase::Http(_) => {
                entry.phase.drain(AfterFlush::HalfClose);
                false
            }
            Phase::Draining(_) => return,
        };
        let state = entry.state.take();
        if upgraded {
            let frame = SharedFrame::close(code, reason);
            self.push_shared_unchecked(id, &frame);
        }
        if let Some(state) = state {
            self.closed.push_back(Ended { id, state, why });
        }
        // Flush at the end of the turn even when nothing was queued (a socket still in its
        // HTTP phase): the flush sends the FIN that ends it.
        if let Some(entry) = slot(&mut self.conns, id) {
            Self::mark_dirty(&mut self.dirty, entry, id);
        }
        let at = self.now + self.config.close_timeout;
        self.arm(id, at);
    }

    /// Ends a connection's closing handshake: flush, half-close, wait for EOF.
    pub(crate) fn drain(&mut self, id: ConnId) {
        let at = self.now + self.config.close_timeout;
        if let Some(entry) = slot(&mut self.conns, id) {
            entry.phase.drain(AfterFlush::HalfClose);
            Self::mark_dirty(&mut self.dirty, entry, id);
        }
        self.arm(id, at);
    }

    /// Ends a connection whose closing handshake is complete (both Close frames seen):
    /// close the socket as soon as our last bytes are written. The peer sends nothing after
    /// its Close, so closing at once cannot reset data it has not read; it saves a
    /// half-close, a wake-up and a read per connection.
    pub(crate) fn finish(&mut self, id: ConnId) {
        let at = self.now + self.config.close_timeout;
        if let Some(entry) = slot(&mut self.conns, id) {
            entry.phase.drain(AfterFlush::Drop);
            Self::mark_dirty(&mut self.dirty, entry, id);
        }
        self.arm(id, at);
    }

    /// Removes a connection now: closes the socket, cancels its timer, and queues
    /// `on_close` (as `why`) if the application still held its state.
    pub(crate) fn remove(&mut self, id: ConnId, why: Closed) {
        if self.get(id).is_none() {
            return;
        }
        let entry = self.conns.remove(id.index());
        if let Some(t) = entry.timer {
            self.wheel.cancel(t);
        }
        if entry.phase.is_upgraded() {
            self.ws_count -= 1;
        }
        if entry.counted {
            self.forget_address(entry.peer);
        }
        if let Some(state) = entry.state {
            self.closed.push_back(Ended { id, state, why });
        }
        let mut outbox = entry.outbox;
        outbox.drop_unsent(&mut self.pool);
        if self.accept_paused {
            // A descriptor just came free: try accepting again.
            self.accept_paused = false;
        }
        // Dropping the stream closes the socket, which also removes it from epoll.
    }

    /// Writes a connection's queued output; keeps WRITABLE interest only while some is
    /// left; half-closes after the last byte when asked to. A write error drops it.
    pub(crate) fn flush(&mut self, id: ConnId) {
        let Some(entry) = slot(&mut self.conns, id) else {
            return;
        };
        entry.dirty = false;
        let done = match entry.outbox.write_to(&mut entry.stream, &mut self.pool) {
            Ok(done) => done,
            Err(_) => {
                self.remove(id, Closed::Dropped);
                return;
            }
        };
        let then = match &entry.phase {
            Phase::Draining(drain) => Some(drain.then),
            _ => None,
        };
        if done && then == Some(AfterFlush::Drop) {
            self.remove(id, Closed::Dropped);
            return;
        }
        let want_writable = !done;
        if want_writable != entry.writable {
            let interest = if want_writable {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            if self
                .registry
                .reregister(&mut entry.stream, id.token(), interest)
                .is_err()
            {
                self.remove(id, Closed::Dropped);
                return;
            }
            entry.writable = want_writable;
        }
        if done && then == Some(AfterFlush::HalfClose) {
            if let Phase::Draining(drain) = &mut entry.phase {
                drain.then = AfterFlush::AwaitEof;
            }
            if let Err(e) = entry.stream.shutdown(Shutdown::Write) {
                if e.kind() != io::ErrorKind::NotConnected {
                    self.remove(id, Closed::Dropped);
                }
            }
        }
    }
}
