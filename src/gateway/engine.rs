//! [`Gateway`]: the engine, a state machine that runs the session lifecycle for a
//! [`Handler`].
//!
//! Each lifecycle event is one `handle_*` method fed with a [`Link`] (where frames and
//! timers go). The reactor drives it through the [`App`](crate::App) adapter
//! (`gateway/app.rs`); tests and the fuzzer drive it through the in-memory driver.

use super::config::GatewayConfig;
use super::core::{GwConn, GwCore};
use super::ctx::Gw;
use super::dialect::{Dialect, Op};
use super::error::{DecodeError, GatewayError};
use super::handler::{Admit, Handler};
use super::link::Link;
use super::owner::Owner;
use super::registry::{Refusal, Registry};
use super::remote::GwCommand;
use super::secret::SessionId;
use super::session::{ConnSession, Tick};
use crate::conn_id::ConnId;
use crate::http::{Request, Response};
use serde_json::value::RawValue;

/// The engine's timers.
#[derive(Debug)]
pub enum GwTimer<T> {
    /// A connection's next deadline (identify, heartbeat, probe).
    Conn(ConnId),
    /// A detached session's resume window ends.
    Expire(SessionId),
    /// The handler's own timer.
    Handler(T),
}

/// A gateway server: the engine that speaks a [`Dialect`] and runs the whole
/// lifecycle (hello, identify, ready, heartbeats, sequence numbers, resume with replay,
/// rooms, rate limits, shutdown) for a [`Handler`]. Served by a reactor as an
/// [`App`](crate::App).
pub struct Gateway<H: Handler> {
    pub(crate) handler: H,
    pub(crate) core: GwCore<H>,
}

impl<H: Handler> std::fmt::Debug for Gateway<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway").field("core", &self.core).finish()
    }
}

/// The HTTP answer to an upgrade that would open a session the session bounds refuse.
fn refusal_response(refusal: Refusal) -> Response {
    match refusal {
        Refusal::OwnerFull => Response::text(429, "too many sessions for this client\n"),
        Refusal::Full => Response::text(503, "too many sessions\n"),
    }
}

impl<H: Handler> Gateway<H> {
    /// A gateway running `handler`, speaking `dialect`, with `config`.
    pub fn new(handler: H, dialect: H::Dialect, config: GatewayConfig) -> Gateway<H> {
        Gateway {
            handler,
            core: GwCore {
                dialect,
                config,
                registry: Registry::default(),
                out: String::new(),
                bus: None,
            },
        }
    }

    /// The handler.
    pub fn handler(&self) -> &H {
        &self.handler
    }

    /// The handler, mutably.
    pub fn handler_mut(&mut self) -> &mut H {
        &mut self.handler
    }

    /// Sessions held (live and resumable).
    pub fn session_count(&self) -> usize {
        self.core.registry.len()
    }

    /// The settings.
    pub fn config(&self) -> &GatewayConfig {
        &self.core.config
    }

    /// Every session and room, for inspection (tests, the fuzz model).
    pub fn registry(&self) -> &Registry<H::Session> {
        &self.core.registry
    }

    /// An upgrade request: the handler admits it (the engine state of the new connection)
    /// or refuses it with an HTTP response. A session the upgrade itself opens is refused
    /// with 429 (its owner's quota) or 503 (the server's bound) when there is no room.
    pub fn handle_upgrade(
        &mut self,
        link: &mut dyn Link<H>,
        id: ConnId,
        request: &Request<'_, '_>,
    ) -> Result<GwConn<H::Session>, Response> {
        let admit = {
            let mut gw = Gw::new(link, &mut self.core);
            self.handler.on_upgrade(&mut gw, id, request)
        };
        if let Admit::Identified(session) = &admit {
            let owner = self.owner_of(link, id, session);
            if let Err(refusal) = self.core.registry.room_for(&owner, self.core.quota()) {
                return Err(refusal_response(refusal));
            }
        }
        match admit {
            Admit::Reject(response) => Err(response),
            admit => Ok(GwConn {
                machine: ConnSession::new(link.now(), &self.core.config),
                timer: None,
                pending: Some(admit),
            }),
        }
    }

    /// The connection is open: HELLO, then whatever the upgrade decided (a session, a
    /// resume, a failure), then its first deadline.
    pub fn handle_open(&mut self, link: &mut dyn Link<H>, id: ConnId) {
        let interval = self.core.config.heartbeat_interval;
        let pending = link.conn(id).and_then(|s| s.pending.take());
        if !matches!(pending, Some(Admit::Fail(_))) {
            self.core
                .send_with(link, id, |d, out| d.hello(out, interval));
        }
        match pending {
            Some(Admit::Identified(session)) => self.start(link, id, session),
            Some(Admit::Resume(sid)) => self.resume(link, id, sid, None, None),
            Some(Admit::Fail(error)) => self.core.answer(link, id, &error),
            _ => {}
        }
        self.core.arm(link, id);
    }

    /// A binary message: the dialects speak text, so it is answered as a decode error.
    pub fn handle_binary(&mut self, link: &mut dyn Link<H>, id: ConnId) {
        if self.hear(link, id) {
            let error = GatewayError::Decode(DecodeError::Binary);
            self.core.answer(link, id, &error);
        }
    }

    /// A text message: proof of life, then decoded, admitted (order, rate limits) and
    /// carried out.
    pub fn handle_message(&mut self, link: &mut dyn Link<H>, id: ConnId, text: &str) {
        if !self.hear(link, id) {
            return;
        }
        let op = match self.core.dialect.decode(text) {
            Ok(op) => op,
            Err(e) => return self.core.answer(link, id, &GatewayError::Decode(e)),
        };
        let (now, config) = (link.now(), &self.core.config);
        let verdict = match link.conn(id) {
            Some(state) => state.machine.admit(now, &op, config),
            None => return,
        };
        match verdict {
            Ok(()) => self.carry_out(link, id, op),
            Err(e) => self.core.answer(link, id, &e),
        }
    }

    /// Any message is proof of life, whatever becomes of it (refused, undecodable): the
    /// deadline timer finds the new silence when it fires, so nothing is re-armed here.
    /// False for a connection that is not live.
    fn hear(&mut self, link: &mut dyn Link<H>, id: ConnId) -> bool {
        let now = link.now();
        match link.conn(id) {
            Some(state) => {
                state.machine.heard(now);
                true
            }
            None => false,
        }
    }

    /// An admitted operation.
    fn carry_out(&mut self, link: &mut dyn Link<H>, id: ConnId, op: Op<'_>) {
        match op {
            Op::Heartbeat(echo) => self
                .core
                .send_with(link, id, |d, out| d.heartbeat_ack(out, echo)),
            Op::Identify(payload) => {
                self.identify(link, id, payload);
                // The identify deadline gave way to the heartbeat (and probe) deadlines.
                self.core.arm(link, id);
            }
            Op::Resume {
                session,
                seq,
                payload,
            } => {
                self.resume(link, id, session, Some(seq), Some(payload));
                self.core.arm(link, id);
            }
            Op::Dispatch { event, data } => {
                let Some(sid) = link.conn_ref(id).and_then(|s| s.machine.session()) else {
                    return;
                };
                let result = {
                    let mut gw = Gw::new(link, &mut self.core);
                    self.handler.on_event(&mut gw, sid, &event, data)
                };
                if let Err(e) = result {
                    self.core.answer(link, id, &e);
                }
            }
        }
    }

    /// The connection ended (`state` is what the link took from it): its session is
    /// detached for the resume window, or ended if the server is shutting down.
    pub fn handle_close(&mut self, link: &mut dyn Link<H>, id: ConnId, state: GwConn<H::Session>) {
        if let Some(t) = state.timer {
            link.cancel_timer(t);
        }
        let session = state.machine.session();
        {
            let mut gw = Gw::new(link, &mut self.core);
            self.handler.on_conn_close(&mut gw, id, session);
        }
        let Some(sid) = session else {
            return;
        };
        match self.core.registry.get(sid) {
            Some(record) if record.conn == Some(id) => {}
            _ => return,
        }
        if link.is_shutting_down() {
            if let Some(record) = self.core.registry.remove(sid) {
                self.end_sessions(link, vec![(sid, record.data)]);
            }
            return;
        }
        self.core.registry.detach(sid);
        let at = link.now() + self.core.config.resume_window;
        let timer = link.set_timer(at, GwTimer::Expire(sid));
        if let Some(record) = self.core.registry.get_mut(sid) {
            record.expiry = Some(timer);
        }
        let mut gw = Gw::new(link, &mut self.core);
        self.handler.on_detach(&mut gw, sid);
    }

    /// A plain HTTP request on the gateway's port, answered by the handler.
    pub fn handle_http(
        &mut self,
        link: &mut dyn Link<H>,
        request: &Request<'_, '_>,
        body: &[u8],
    ) -> Response {
        let mut gw = Gw::new(link, &mut self.core);
        self.handler.on_http(&mut gw, request, body)
    }

    /// One of the engine's timers fired.
    pub fn handle_timer(&mut self, link: &mut dyn Link<H>, timer: GwTimer<H::Timer>) {
        match timer {
            GwTimer::Conn(id) => self.deadline(link, id),
            GwTimer::Expire(sid) => {
                let detached = self
                    .core
                    .registry
                    .get(sid)
                    .is_some_and(|r| r.conn.is_none());
                if detached {
                    if let Some(record) = self.core.registry.remove(sid) {
                        self.end_sessions(link, vec![(sid, record.data)]);
                    }
                }
            }
            GwTimer::Handler(timer) => {
                let mut gw = Gw::new(link, &mut self.core);
                self.handler.on_timer(&mut gw, timer);
            }
        }
    }

    /// A connection's deadline timer: identify or heartbeat timeout, or a probe.
    fn deadline(&mut self, link: &mut dyn Link<H>, id: ConnId) {
        let (now, config) = (link.now(), &self.core.config);
        let tick = match link.conn(id) {
            Some(state) => {
                state.timer = None;
                state.machine.tick(now, config)
            }
            None => return,
        };
        match tick {
            Tick::Expired(error) => self.core.answer(link, id, &error),
            Tick::Probe => self
                .core
                .send_with(link, id, |d, out| d.heartbeat_request(out)),
            Tick::Idle => {}
        }
        self.core.arm(link, id);
    }

    /// A command from another thread.
    pub fn handle_command(&mut self, link: &mut dyn Link<H>, command: GwCommand<H::Command>) {
        let mut gw = Gw::new(link, &mut self.core);
        match command {
            GwCommand::Dispatch(session, event, data) => {
                let _ = gw.dispatch(session, &event, &data);
            }
            GwCommand::DispatchRoom(room, event, data) => {
                let _ = gw.dispatch_room(&room, &event, &data, None);
            }
            GwCommand::DispatchAll(event, data) => {
                let _ = gw.dispatch_all(&event, &data);
            }
            GwCommand::EndSession(session, error) => {
                if let Some(state) = gw.end_session(session, &error) {
                    self.handler.on_session_end(&mut gw, session, state);
                }
            }
            GwCommand::Handler(command) => self.handler.on_command(&mut gw, command),
            GwCommand::Bus => self.handle_bus(link),
        }
    }

    /// A graceful shutdown began: the handler's last words, the dialect's going-down event
    /// to every live session, then every live connection closed the dialect's way.
    pub fn handle_shutdown(&mut self, link: &mut dyn Link<H>) {
        {
            let mut gw = Gw::new(link, &mut self.core);
            self.handler.on_shutdown(&mut gw);
        }
        let registry = &self.core.registry;
        let live: Vec<SessionId> = registry
            .ids()
            .filter(|&sid| registry.get(sid).is_some_and(|r| r.conn.is_some()))
            .collect();
        if let Some(event) = self.core.dialect.going_down_event() {
            let tail = self.core.encode(event, "{}");
            for sid in live {
                self.core.deliver(link, sid, &tail);
            }
        }
        let (code, reason) = self.core.dialect.shutdown_close();
        for id in link.connections() {
            link.close(id, code, reason);
        }
    }

    fn end_sessions(&mut self, link: &mut dyn Link<H>, gone: Vec<(SessionId, H::Session)>) {
        for (sid, state) in gone {
            let mut gw = Gw::new(link, &mut self.core);
            self.handler.on_session_end(&mut gw, sid, state);
        }
    }

    fn identify(&mut self, link: &mut dyn Link<H>, id: ConnId, payload: &RawValue) {
        let result = {
            let mut gw = Gw::new(link, &mut self.core);
            self.handler.identify(&mut gw, id, payload)
        };
        match result {
            Ok(session) => self.start(link, id, session),
            Err(e) => self.core.answer(link, id, &e),
        }
    }

    /// Who owns a new session on `id`: the handler's say, else the peer address.
    fn owner_of(&self, link: &dyn Link<H>, id: ConnId, session: &H::Session) -> Owner {
        self.handler.owner(session).unwrap_or_else(|| {
            link.peer_addr(id)
                .map_or_else(Owner::unknown, |a| Owner::from_ip(a.ip()))
        })
    }

    fn start(&mut self, link: &mut dyn Link<H>, id: ConnId, session: H::Session) {
        let owner = self.owner_of(link, id, &session);
        match self.core.make_room(link, &owner) {
            Ok(gone) => self.end_sessions(link, gone),
            Err(refused) => {
                // The handler's state is dropped unseen: handlers act in on_ready.
                self.core.answer(link, id, &refused);
                return;
            }
        }
        let extra = self.handler.ready_fields(&session);
        match self.core.open_session(link, id, session, owner, &extra) {
            Some(sid) => {
                let mut gw = Gw::new(link, &mut self.core);
                self.handler.on_ready(&mut gw, sid, false);
            }
            None => self
                .core
                .answer(link, id, &GatewayError::app(1011, true, "no randomness")),
        }
    }

    fn resume(
        &mut self,
        link: &mut dyn Link<H>,
        id: ConnId,
        sid: SessionId,
        seen: Option<u64>,
        credentials: Option<&RawValue>,
    ) {
        if let Some(payload) = credentials {
            let allowed = match self.core.registry.get(sid) {
                Some(record) => self.handler.resume(&record.data, payload),
                None => false,
            };
            if !allowed {
                self.core.answer(link, id, &GatewayError::InvalidSession);
                return;
            }
        }
        let extra = match self.core.registry.get(sid) {
            Some(record) => self.handler.ready_fields(&record.data),
            None => String::new(),
        };
        match self.core.resume(link, id, sid, seen, &extra) {
            Ok(()) => {
                let mut gw = Gw::new(link, &mut self.core);
                self.handler.on_ready(&mut gw, sid, true);
            }
            Err(e) => self.core.answer(link, id, &e),
        }
    }
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
