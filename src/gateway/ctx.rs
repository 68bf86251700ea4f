//! [`Gw`]: what a [`Handler`] callback may do: dispatch to sessions and rooms, manage room
//! membership, end sessions, send raw payloads, set timers.

use super::core::GwCore;
use super::dialect::GatewayError;
use super::engine::{Gateway, GwTimer};
use super::handler::Handler;
use super::session::SessionId;
use crate::close::CloseCode;
use crate::reactor::{ConnId, Ctx};
use crate::time::Millis;
use crate::timer::TimerId;

/// The gateway as seen from a handler callback.
pub struct Gw<'g, 'r, H: Handler> {
    ctx: &'g mut Ctx<'r, Gateway<H>>,
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
    pub(crate) fn new(ctx: &'g mut Ctx<'r, Gateway<H>>, core: &'g mut GwCore<H>) -> Self {
        Gw { ctx, core }
    }

    /// The reactor's time.
    pub fn now(&self) -> Millis {
        self.ctx.now()
    }

    /// Dispatches an event (name and JSON data) to one session, with its next sequence
    /// number; kept for replay, sent now if the session is live. False for an unknown session.
    pub fn dispatch(&mut self, session: SessionId, event: &str, data: &str) -> bool {
        if !self.core.registry.contains(session) {
            return false;
        }
        let tail = self.core.encode(event, data);
        self.core.deliver(self.ctx, session, &tail);
        true
    }

    /// Dispatches one event to every session in `room` except `except`. The payload is
    /// encoded once; each member costs its sequence prefix and a reference. Returns the
    /// number of members it was dispatched to.
    pub fn dispatch_room(
        &mut self,
        room: &str,
        event: &str,
        data: &str,
        except: Option<SessionId>,
    ) -> usize {
        let members = self.core.registry.members_vec(room);
        let tail = self.core.encode(event, data);
        let mut n = 0;
        for sid in members.into_iter().filter(|&s| Some(s) != except) {
            self.core.deliver(self.ctx, sid, &tail);
            n += 1;
        }
        n
    }

    /// Dispatches one event to every session (encoded once).
    pub fn dispatch_all(&mut self, event: &str, data: &str) -> usize {
        let all: Vec<SessionId> = self.core.registry.ids().collect();
        let tail = self.core.encode(event, data);
        for &sid in &all {
            self.core.deliver(self.ctx, sid, &tail);
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
        self.ctx.state_ref(id).and_then(|s| s.session())
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
        self.core.answer(self.ctx, id, error);
    }

    /// Ends a session for good: its live connection (if any) gets `error`'s answer, and the
    /// session can no longer be resumed. Returns the session's state (`on_session_end` is
    /// not called for a session ended this way).
    pub fn end_session(&mut self, session: SessionId, error: &GatewayError) -> Option<H::Session> {
        let record = self.core.registry.remove(session)?;
        if let Some(t) = record.expiry {
            self.ctx.cancel_timer(t);
        }
        if let Some(conn) = record.conn {
            if let Some(state) = self.ctx.state(conn) {
                state.detach();
            }
            self.core.answer(self.ctx, conn, error);
        }
        Some(record.data)
    }

    /// Sends a raw text payload (a protocol message outside the dispatch envelope).
    pub fn send_raw(&mut self, id: ConnId, text: &str) -> bool {
        self.ctx.send_text(id, text).is_ok()
    }

    /// Sends a raw text payload to a session's live connection.
    pub fn send_raw_to(&mut self, session: SessionId, text: &str) -> bool {
        match self.conn_of(session) {
            Some(id) => self.send_raw(id, text),
            None => false,
        }
    }

    /// Closes a connection with a code and reason.
    pub fn close(&mut self, id: ConnId, code: CloseCode, reason: &str) {
        self.ctx.close(id, code, reason);
    }

    /// Schedules [`Handler::on_timer`] at `at`.
    pub fn set_timer(&mut self, at: Millis, timer: H::Timer) -> TimerId {
        self.ctx.set_timer(at, GwTimer::Handler(timer))
    }

    /// Cancels a handler timer, returning its payload if it had not fired.
    pub fn cancel_timer(&mut self, id: TimerId) -> Option<H::Timer> {
        match self.ctx.cancel_timer(id) {
            Some(GwTimer::Handler(t)) => Some(t),
            _ => None,
        }
    }

    /// The underlying reactor context (raw sends, peer addresses, remote handle).
    pub fn reactor(&mut self) -> &mut Ctx<'r, Gateway<H>> {
        self.ctx
    }
}
