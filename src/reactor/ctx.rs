//! [`Ctx`]: what an application callback may do to the reactor.

use super::app::{App, Message};
#[cfg(feature = "deflate")]
use super::compress::BroadcastCache;
use super::core::{Core, SendError, TimerTarget};
use super::remote::Remote;
use super::token::ConnId;
use crate::close::CloseCode;
use crate::time::Millis;
use crate::timer::TimerId;
use crate::wire::OpCode;
use crate::ws::{SharedFrame, SharedPayload};
use std::net::SocketAddr;

/// The reactor as seen from an application callback: send, broadcast, close, timers, and
/// each connection's state. Effects are queued and written at the end of the reactor's turn.
pub struct Ctx<'r, A: App> {
    pub(crate) core: &'r mut Core<A>,
}

impl<A: App> std::fmt::Debug for Ctx<'_, A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx")
            .field("now", &self.core.now)
            .field("connections", &self.core.ws_count)
            .finish()
    }
}

impl<'r, A: App> Ctx<'r, A> {
    pub(crate) fn new(core: &'r mut Core<A>) -> Self {
        Ctx { core }
    }

    /// The reactor's current time: milliseconds since it started, less the excess of any
    /// stall over `Config::stall_threshold` (see [`Config`](crate::Config)), or the time
    /// given to [`Reactor::turn_at`](super::Reactor::turn_at). Use it, not the OS clock, for
    /// deadlines given to [`Ctx::set_timer`].
    pub fn now(&self) -> Millis {
        self.core.now
    }

    /// Sends a message to one connection. The bytes are encoded straight into its outbox.
    #[must_use = "a send fails when the connection is gone, closing, or over its outbox cap"]
    pub fn send(&mut self, id: ConnId, message: Message<'_>) -> Result<(), SendError> {
        let (opcode, payload) = match message {
            Message::Text(t) => (OpCode::Text, t.as_bytes()),
            Message::Binary(b) => (OpCode::Binary, b),
        };
        #[cfg(feature = "deflate")]
        if let Some(sent) = self.core.send_deflated(id, opcode, payload) {
            return sent;
        }
        let len = payload.len() + crate::wire::MAX_HEADER_LEN;
        self.core.send_with(id, len, |outbox, pool| {
            outbox.push_frame(pool, opcode, payload)
        })
    }

    /// Sends a text message.
    #[must_use = "a send fails when the connection is gone, closing, or over its outbox cap"]
    pub fn send_text(&mut self, id: ConnId, text: &str) -> Result<(), SendError> {
        self.send(id, Message::Text(text))
    }

    /// Sends a binary message.
    #[must_use = "a send fails when the connection is gone, closing, or over its outbox cap"]
    pub fn send_binary(&mut self, id: ConnId, bytes: &[u8]) -> Result<(), SendError> {
        self.send(id, Message::Binary(bytes))
    }

    /// Queues a frame encoded once ([`SharedFrame`]) to one connection, by reference
    /// (compressed first when the connection negotiated permessage-deflate).
    #[must_use = "a send fails when the connection is gone, closing, or over its outbox cap"]
    pub fn send_shared(&mut self, id: ConnId, frame: &SharedFrame) -> Result<(), SendError> {
        self.send_shared_to(id, frame, &mut Default::default())
    }

    /// [`Ctx::send_shared`], with compressed variants made at most once per `cache`.
    fn send_shared_to(
        &mut self,
        id: ConnId,
        frame: &SharedFrame,
        cache: &mut BroadcastCache,
    ) -> Result<(), SendError> {
        #[cfg(feature = "deflate")]
        if let Some(sent) = self.core.send_shared_deflated(id, frame, cache) {
            return sent;
        }
        let _ = cache;
        self.core
            .send_with(id, frame.len(), |outbox, _| outbox.push_shared(frame))
    }

    /// Sends a text frame whose payload is `prefix` followed by a shared `body` (encoded
    /// once for many connections; only the prefix and frame header are per connection).
    /// With permessage-deflate (no context takeover) the body is compressed once for the
    /// members it goes to in a row, and the prefix goes in a stored block (5 bytes).
    #[must_use = "a send fails when the connection is gone, closing, or over its outbox cap"]
    pub fn send_prefixed(
        &mut self,
        id: ConnId,
        prefix: &[u8],
        body: &SharedPayload,
    ) -> Result<(), SendError> {
        #[cfg(feature = "deflate")]
        if let Some(sent) = self.core.send_prefixed_deflated(id, prefix, body) {
            return sent;
        }
        let len = prefix.len() + body.len() + crate::wire::MAX_HEADER_LEN;
        self.core.send_with(id, len, |outbox, pool| {
            outbox.push_prefixed(pool, OpCode::Text, prefix, body)
        })
    }

    /// Queues one shared frame to many connections (one encode, one reference each).
    /// Returns how many accepted it; a slow member overflowing its cap is closed (1008)
    /// and never stalls the others. Members that negotiated permessage-deflate without
    /// context takeover share one compressed frame (compressed once per call).
    pub fn broadcast<I>(&mut self, ids: I, frame: &SharedFrame) -> usize
    where
        I: IntoIterator<Item = ConnId>,
    {
        let mut cache = BroadcastCache::default();
        ids.into_iter()
            .filter(|&id| self.send_shared_to(id, frame, &mut cache).is_ok())
            .count()
    }

    /// Queues one shared frame to every open WebSocket connection.
    pub fn broadcast_all(&mut self, frame: &SharedFrame) -> usize {
        let ids: Vec<ConnId> = self.connections().collect();
        self.broadcast(ids, frame)
    }

    /// Every connection whose application state is live (upgraded and not closing).
    pub fn connections(&self) -> impl Iterator<Item = ConnId> + '_ {
        self.core
            .conns
            .iter()
            .filter(|(_, e)| e.state.is_some())
            .map(|(index, e)| ConnId::new(index, e.generation))
    }

    /// Upgraded connections currently held (open or closing).
    pub fn connection_count(&self) -> usize {
        self.core.ws_count
    }

    /// Starts closing a connection with `code` and `reason` (cut to 123 bytes). Its
    /// `on_close` follows once this callback returns. No effect on one already closing.
    pub fn close(&mut self, id: ConnId, code: CloseCode, reason: &str) {
        self.core.close(id, code, reason);
    }

    /// The application state of a live connection.
    pub fn state(&mut self, id: ConnId) -> Option<&mut A::Conn> {
        self.core.get_mut(id).and_then(|e| e.state.as_mut())
    }

    /// The state of a live connection, read-only.
    pub fn state_ref(&self, id: ConnId) -> Option<&A::Conn> {
        self.core.get(id).and_then(|e| e.state.as_ref())
    }

    /// The peer's address.
    pub fn peer_addr(&self, id: ConnId) -> Option<SocketAddr> {
        self.core.get(id).map(|e| e.peer)
    }

    /// Bytes queued for a connection and not yet written (its backlog).
    pub fn backlog(&self, id: ConnId) -> Option<usize> {
        self.core.get(id).map(|e| e.outbox.len())
    }

    /// Schedules [`App::on_timer`] with `timer` at `at` on the reactor's timer wheel.
    pub fn set_timer(&mut self, at: Millis, timer: A::Timer) -> TimerId {
        self.core.wheel.insert(at, TimerTarget::App(timer))
    }

    /// Cancels an application timer, returning its payload if it had not fired. An id that
    /// is not a pending application timer's changes nothing.
    pub fn cancel_timer(&mut self, id: TimerId) -> Option<A::Timer> {
        if !self.is_app_timer(id) {
            return None;
        }
        match self.core.wheel.cancel(id) {
            Some(TimerTarget::App(t)) => Some(t),
            _ => None,
        }
    }

    /// Moves an application timer to a new deadline; false (changing nothing) if it already
    /// fired or `id` is not an application timer's.
    #[must_use = "false: the timer already fired (or was cancelled)"]
    pub fn reschedule_timer(&mut self, id: TimerId, at: Millis) -> bool {
        self.is_app_timer(id) && self.core.wheel.reschedule(id, at)
    }

    /// Whether `id` is a pending application timer (never one of the reactor's own, which
    /// share the wheel: an application can only touch what it set).
    fn is_app_timer(&self, id: TimerId) -> bool {
        matches!(self.core.wheel.get(id), Some(TimerTarget::App(_)))
    }

    /// A handle for other threads.
    pub fn remote(&self) -> Remote<A::Command> {
        Remote::from_inner(self.core.remote.clone())
    }

    /// Begins a graceful shutdown (see [`Reactor::shutdown`](super::Reactor::shutdown)).
    pub fn shutdown(&mut self) {
        self.core.remote.request_shutdown();
    }

    /// Whether a graceful shutdown is under way.
    pub fn is_shutting_down(&self) -> bool {
        self.core.shutting_down
    }
}

/// Without the `deflate` feature a broadcast has nothing to cache.
#[cfg(not(feature = "deflate"))]
#[derive(Default)]
struct BroadcastCache(());
