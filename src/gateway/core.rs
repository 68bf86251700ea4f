//! The engine's state and primitives apart from the handler: answering errors the
//! protocol's way, sequencing and replaying dispatches, opening and resuming sessions, and
//! each connection's deadline timer.

use super::config::{DuplicatePolicy, GatewayConfig};
use super::dialect::{Dialect, GatewayError, Ready};
use super::engine::GwTimer;
use super::handler::{Admit, Handler};
use super::link::Link;
use super::owner::Owner;
use super::registry::{Quota, Refusal, Registry};
use super::secret::{random_session_id, SessionId};
use super::session::ConnSession;
use crate::conn_id::ConnId;
use crate::timer::TimerId;
use crate::ws::SharedPayload;

/// Per-connection engine state, held for the engine by its [`Link`] (the reactor's
/// `App::Conn`, or the in-memory driver's).
#[derive(Debug)]
pub struct GwConn<S> {
    pub(crate) machine: ConnSession,
    pub(crate) timer: Option<TimerId>,
    pub(crate) pending: Option<Admit<S>>,
}

impl<S> GwConn<S> {
    /// The session this connection is attached to.
    pub fn session(&self) -> Option<SessionId> {
        self.machine.session()
    }

    /// Unhooks the connection from its session (the session was ended or moved), so that
    /// its close does not detach the session again.
    pub(crate) fn detach(&mut self) {
        self.machine.unhook();
    }
}

/// The engine's state apart from the handler.
pub struct GwCore<H: Handler> {
    pub(crate) dialect: H::Dialect,
    pub(crate) config: GatewayConfig,
    pub(crate) registry: Registry<H::Session>,
    pub(crate) out: String,
    /// The bus to the other engines, if this engine is one of several (`cluster.rs`).
    pub(crate) bus: Option<Box<dyn super::bus::Bus>>,
}

impl<H: Handler> std::fmt::Debug for GwCore<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GwCore")
            .field("config", &self.config)
            .field("sessions", &self.registry.len())
            .finish()
    }
}

/// Writes `prefix` and the decimal `seq` into `buf`, returning the length.
fn seq_prefix(buf: &mut [u8; 96], prefix: &[u8], seq: u64) -> usize {
    let n = prefix.len().min(64);
    buf[..n].copy_from_slice(&prefix[..n]);
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut v = seq;
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    let d = &digits[i..];
    buf[n..n + d.len()].copy_from_slice(d);
    n + d.len()
}

impl<H: Handler> GwCore<H> {
    /// Sends whatever `build` writes (nothing if it writes nothing) to `id` as text.
    pub(crate) fn send_with(
        &mut self,
        link: &mut dyn Link<H>,
        id: ConnId,
        build: impl FnOnce(&H::Dialect, &mut String),
    ) {
        self.out.clear();
        build(&self.dialect, &mut self.out);
        if !self.out.is_empty() {
            let _ = link.send_text(id, &self.out);
        }
    }

    /// Answers an error the protocol's way: its payload, then its close if fatal.
    pub(crate) fn answer(&mut self, link: &mut dyn Link<H>, id: ConnId, error: &GatewayError) {
        let answer = self.dialect.answer(error);
        if let Some(payload) = answer.payload {
            let _ = link.send_text(id, &payload);
        }
        if let Some((code, reason)) = answer.close {
            link.close(id, code, &reason);
        }
    }

    /// Encodes a dispatch's tail once.
    pub(crate) fn encode(&mut self, event: &str, data: &str) -> SharedPayload {
        let mut tail = String::with_capacity(event.len() + data.len() + 32);
        self.dialect.dispatch_tail(&mut tail, event, data);
        SharedPayload::new(tail.into_bytes())
    }

    /// Gives a session its next sequence number, keeps the event for replay, and sends it
    /// if the session is live. Returns whether it went out on a connection.
    pub(crate) fn deliver(
        &mut self,
        link: &mut dyn Link<H>,
        session: SessionId,
        tail: &SharedPayload,
    ) -> bool {
        let (events, bytes) = (self.config.replay_events, self.config.replay_bytes);
        let Some(record) = self.registry.get_mut(session) else {
            return false;
        };
        record.seq += 1;
        let seq = record.seq;
        record.replay.push(seq, tail.clone(), events, bytes);
        let Some(conn) = record.conn else {
            return false;
        };
        self.send_seq(link, conn, seq, tail)
    }

    pub(crate) fn send_seq(
        &self,
        link: &mut dyn Link<H>,
        conn: ConnId,
        seq: u64,
        tail: &SharedPayload,
    ) -> bool {
        let mut buf = [0u8; 96];
        let n = match self.dialect.dispatch_prefix() {
            Some(prefix) => seq_prefix(&mut buf, prefix, seq),
            None => 0,
        };
        link.send_prefixed(conn, &buf[..n], tail).is_ok()
    }

    pub(crate) fn arm(&self, link: &mut dyn Link<H>, id: ConnId) {
        let config = &self.config;
        let Some(state) = link.conn_ref(id) else {
            return;
        };
        let at = state.machine.next_deadline(config);
        let timer = state.timer;
        if at == crate::time::Millis::NEVER {
            if let Some(t) = timer {
                link.cancel_timer(t);
                if let Some(state) = link.conn(id) {
                    state.timer = None;
                }
            }
            return;
        }
        if let Some(t) = timer {
            if link.reschedule_timer(t, at) {
                return;
            }
        }
        let t = link.set_timer(at, GwTimer::Conn(id));
        if let Some(state) = link.conn(id) {
            state.timer = Some(t);
        }
    }

    /// Starts a new session on `id` and sends READY.
    pub(crate) fn open_session(
        &mut self,
        link: &mut dyn Link<H>,
        id: ConnId,
        session: H::Session,
        owner: Owner,
        extra: &str,
    ) -> Option<SessionId> {
        let mut sid = random_session_id().ok()?;
        while self.registry.contains(sid) {
            sid = random_session_id().ok()?;
        }
        self.registry.insert(sid, session, id, owner);
        let now = link.now();
        if let Some(state) = link.conn(id) {
            state.machine.identified(now, sid);
        }
        self.send_with(link, id, |d, out| {
            d.ready(
                out,
                &Ready {
                    session: sid,
                    resumed: false,
                    extra,
                },
            )
        });
        Some(sid)
    }

    /// Re-attaches `sid` to `id`, sends READY (resumed) and replays what was missed.
    pub(crate) fn resume(
        &mut self,
        link: &mut dyn Link<H>,
        id: ConnId,
        sid: SessionId,
        seen: Option<u64>,
        extra: &str,
    ) -> Result<(), GatewayError> {
        let record = self.registry.get(sid).ok_or(GatewayError::InvalidSession)?;
        // Without a client sequence: a detached session replays what it missed since it was
        // detached; a session taken over from a live connection has missed nothing.
        let from = match seen {
            Some(seen) => seen,
            None if record.conn.is_some_and(|c| c != id) => record.seq,
            None => record.detached_seq,
        };
        if record.replay.since(from, record.seq).is_none() {
            return Err(GatewayError::InvalidSession);
        }
        if let Some(old) = record.conn.filter(|&c| c != id) {
            match self.config.duplicate {
                DuplicatePolicy::RefuseNew => return Err(GatewayError::AlreadyConnected),
                DuplicatePolicy::ReplaceOld => {
                    // Unhook the old connection first so its close does not detach us.
                    if let Some(state) = link.conn(old) {
                        state.detach();
                    }
                    self.answer(link, old, &GatewayError::SessionReplaced);
                }
            }
        }
        let now = link.now();
        if let Some(state) = link.conn(id) {
            state.machine.identified(now, sid);
        }
        let record = self
            .registry
            .get_mut(sid)
            .ok_or(GatewayError::InvalidSession)?;
        if let Some(t) = record.expiry.take() {
            link.cancel_timer(t);
        }
        self.registry.attach(sid, id);
        self.send_with(link, id, |d, out| {
            d.ready(
                out,
                &Ready {
                    session: sid,
                    resumed: true,
                    extra,
                },
            )
        });
        let missed: Vec<(u64, SharedPayload)> = match self.registry.get(sid) {
            Some(r) => r
                .replay
                .since(from, r.seq)
                .into_iter()
                .flatten()
                .map(|(s, p)| (s, p.clone()))
                .collect(),
            None => Vec::new(),
        };
        for (seq, tail) in missed {
            self.send_seq(link, id, seq, &tail);
        }
        Ok(())
    }

    /// The session bounds from the config.
    pub(crate) fn quota(&self) -> Quota {
        Quota {
            max_sessions: self.config.max_sessions,
            per_owner: self.config.max_sessions_per_owner,
        }
    }

    /// Makes room for a new session of `owner` within the session bounds: ends the detached
    /// sessions [`Registry::room_for`] picks (their resume timers cancelled) and returns
    /// them for `on_session_end`, or the answer refusing the new session.
    pub(crate) fn make_room(
        &mut self,
        link: &mut dyn Link<H>,
        owner: &Owner,
    ) -> Result<Vec<(SessionId, H::Session)>, GatewayError> {
        let victims = self
            .registry
            .room_for(owner, self.quota())
            .map_err(refusal_error)?;
        let mut gone = Vec::with_capacity(victims.len());
        for sid in victims {
            if let Some(r) = self.registry.remove(sid) {
                if let Some(t) = r.expiry {
                    link.cancel_timer(t);
                }
                gone.push((sid, r.data));
            }
        }
        Ok(gone)
    }
}

/// The answer to a new session refused for the session bounds.
pub(crate) fn refusal_error(refusal: Refusal) -> GatewayError {
    GatewayError::TooManySessions {
        per_owner: refusal == Refusal::OwnerFull,
    }
}
