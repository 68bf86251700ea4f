//! [`Gw`]: what a [`Handler`] callback may do: dispatch to sessions and rooms, manage room
//! membership, end sessions, send raw payloads, set timers.

use super::core::GwCore;
use super::dialect::GatewayError;
use super::engine::GwTimer;
use super::handler::Handler;
use super::link::Link;
use super::session::SessionId;
use crate::close::CloseCode;
use crate::conn_id::ConnId;
use crate::error::SendError;
use crate::time::Millis;
use crate::timer::TimerId;
use std::net::SocketAddr;

/// The gateway as seen from a handler callback.
pub struct Gw<'g, 'r, H: Handler> {
    link: &'g mut (dyn Link<H> + 'r),
    core: &'g mut GwCore<H>,
}

impl<H: Handler> std::fmt::Debug for Gw<'_, '_, H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gw")
            .field("sessions", &self.core.registry.len())
            .finish()
    }
}

impl<'g, 'r, H: Handler> Gw<'g, 'r, H> {
    pub(crate) fn new(link: &'g mut (dyn Link<H> + 'r), core: &'g mut GwCore<H>) -> Self {
        Gw { link, core }
    }

    /// The current time (the reactor's, or the driver's fake clock).
    pub fn now(&self) -> Millis {
        self.link.now()
    }

    /// Dispatches an event (name and JSON data) to one session, with its next sequence
    /// number; kept for replay, sent now if the session is live. False for an unknown session.
    #[must_use = "false: the session is gone and nothing was dispatched"]
    pub fn dispatch(&mut self, session: SessionId, event: &str, data: &str) -> bool {
        if !self.core.registry.contains(session) {
            return false;
        }
        let tail = self.core.encode(event, data);
        self.core.deliver(self.link, session, &tail);
        true
    }

    /// Dispatches one event to every session in `room` except `except`. The payload is
    /// encoded once; each member costs its sequence prefix and a reference. Returns the
    /// number of members it was dispatched to.
    ///
    /// On an engine with a bus ([`Gateway::attach_bus`](super::Gateway::attach_bus)) the
    /// room's home engine gives it the room's one order: on the home it is delivered here
    /// and published to the other engines; elsewhere it is forwarded to the home and
    /// delivered to this engine's members when the home's copy comes back (the count is
    /// then 0).
    #[must_use = "the number of sessions reached (0: an empty or unknown room)"]
    pub fn dispatch_room(
        &mut self,
        room: &str,
        event: &str,
        data: &str,
        except: Option<SessionId>,
    ) -> usize {
        if self.core.bus.is_some() {
            let dispatch = super::bus::RoomDispatch {
                seq: 0,
                except: except.map(SessionId::get),
                event,
                data,
            };
            if let Some(n) = self.core.dispatch_room_on_bus(self.link, room, dispatch) {
                return n;
            }
        }
        let members = self.core.registry.members_vec(room);
        let tail = self.core.encode(event, data);
        let mut n = 0;
        for sid in members.into_iter().filter(|&s| Some(s) != except) {
            self.core.deliver(self.link, sid, &tail);
            n += 1;
        }
        n
    }

    /// Dispatches one event to every session (encoded once).
    #[must_use = "the number of sessions reached"]
    pub fn dispatch_all(&mut self, event: &str, data: &str) -> usize {
        let all: Vec<SessionId> = self.core.registry.ids().collect();
        let tail = self.core.encode(event, data);
        for &sid in &all {
            self.core.deliver(self.link, sid, &tail);
        }
        all.len()
    }

    /// Puts a session in a room. False for an unknown session.
    pub fn join(&mut self, session: SessionId, room: &str) -> bool {
        self.core.registry.join(session, room)
    }

    /// Takes a session out of a room.
    pub fn leave(&mut self, session: SessionId, room: &str) {
        self.core.registry.leave(session, room)
    }

    /// The sessions in a room.
    pub fn members(&self, room: &str) -> Vec<SessionId> {
        self.core.registry.members_vec(room)
    }

    /// How many sessions are in a room, in O(1).
    pub fn room_size(&self, room: &str) -> usize {
        self.core.registry.room_len(room)
    }

    /// The rooms a session is in.
    pub fn rooms_of(&self, session: SessionId) -> Vec<String> {
        self.core
            .registry
            .get(session)
            .map(|r| r.rooms.iter().map(|s| s.to_string()).collect())
            .unwrap_or_default()
    }

    /// A session's handler state.
    pub fn session(&mut self, session: SessionId) -> Option<&mut H::Session> {
        self.core.registry.get_mut(session).map(|r| &mut r.data)
    }

    /// Every session id (live and resumable).
    pub fn sessions(&self) -> Vec<SessionId> {
        self.core.registry.ids().collect()
    }

    /// The connection a session is live on.
    pub fn conn_of(&self, session: SessionId) -> Option<ConnId> {
        self.core.registry.get(session).and_then(|r| r.conn)
    }

    /// The session a connection is attached to, once identified.
    pub fn session_of(&self, id: ConnId) -> Option<SessionId> {
        self.link.conn_ref(id).and_then(|s| s.session())
    }

    /// Whether a resume of `session` without a client sequence (replaying everything since
    /// it was detached) can be served now: it exists and its replay buffer has no gap.
    /// Lets a protocol that resumes at the upgrade refuse with an HTTP status instead.
    pub fn can_resume(&self, session: SessionId) -> bool {
        self.core.registry.get(session).is_some_and(|r| {
            let from = if r.conn.is_some() {
                r.seq
            } else {
                r.detached_seq
            };
            r.replay.since(from, r.seq).is_some()
        })
    }

    /// The last sequence number dispatched to a session.
    pub fn seq(&self, session: SessionId) -> Option<u64> {
        self.core.registry.get(session).map(|r| r.seq)
    }

    /// Answers `error` on a connection the protocol's way (payload, then close if fatal).
    pub fn fail(&mut self, id: ConnId, error: &GatewayError) {
        self.core.answer(self.link, id, error);
    }

    /// Ends a session for good: its live connection (if any) gets `error`'s answer, and the
    /// session can no longer be resumed. Returns the session's state (`on_session_end` is
    /// not called for a session ended this way).
    pub fn end_session(&mut self, session: SessionId, error: &GatewayError) -> Option<H::Session> {
        let record = self.core.registry.remove(session)?;
        if let Some(t) = record.expiry {
            self.link.cancel_timer(t);
        }
        if let Some(conn) = record.conn {
            if let Some(state) = self.link.conn(conn) {
                state.detach();
            }
            self.core.answer(self.link, conn, error);
        }
        Some(record.data)
    }

    /// Sends a raw text payload (a protocol message outside the dispatch envelope).
    pub fn send_raw(&mut self, id: ConnId, text: &str) -> Result<(), SendError> {
        self.link.send_text(id, text)
    }

    /// Sends a raw text payload to a session's live connection
    /// ([`SendError::Unknown`] when it has none).
    pub fn send_raw_to(&mut self, session: SessionId, text: &str) -> Result<(), SendError> {
        match self.conn_of(session) {
            Some(id) => self.send_raw(id, text),
            None => Err(SendError::Unknown),
        }
    }

    /// Closes a connection with a code and reason.
    pub fn close(&mut self, id: ConnId, code: CloseCode, reason: &str) {
        self.link.close(id, code, reason);
    }

    /// Schedules [`Handler::on_timer`] at `at`.
    pub fn set_timer(&mut self, at: Millis, timer: H::Timer) -> TimerId {
        self.link.set_timer(at, GwTimer::Handler(timer))
    }

    /// Cancels a handler timer, returning its payload if it had not fired.
    pub fn cancel_timer(&mut self, id: TimerId) -> Option<H::Timer> {
        match self.link.cancel_timer(id) {
            Some(GwTimer::Handler(t)) => Some(t),
            _ => None,
        }
    }

    /// A connection's peer address.
    pub fn peer_addr(&self, id: ConnId) -> Option<SocketAddr> {
        self.link.peer_addr(id)
    }

    /// Connections held (live or closing).
    pub fn connection_count(&self) -> usize {
        self.link.connection_count()
    }
}
