//! [`Gateway`]: the engine, an [`App`] that runs the session lifecycle for a [`Handler`].

use super::config::GatewayConfig;
use super::core::{GwConn, GwCore};
use super::ctx::Gw;
use super::dialect::{Dialect, GatewayError, Op};
use super::handler::{Admit, Handler};
use super::owner::Owner;
use super::registry::{Refusal, Registry};
use super::remote::GwCommand;
use super::session::{ConnSession, SessionId, Tick};
use crate::http::{Request, Response};
use crate::reactor::{ConnId, Ctx};
use crate::{Accept, App, Closed, Message};
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

/// A gateway server: the reactor application that speaks a [`Dialect`] and runs the whole
/// lifecycle (hello, identify, ready, heartbeats, sequence numbers, resume with replay,
/// rooms, rate limits, shutdown) for a [`Handler`].
pub struct Gateway<H: Handler> {
    handler: H,
    core: GwCore<H>,
}

impl<H: Handler> std::fmt::Debug for Gateway<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway").field("core", &self.core).finish()
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

    fn end_sessions(&mut self, ctx: &mut Ctx<'_, Self>, gone: Vec<(SessionId, H::Session)>) {
        for (sid, state) in gone {
            let mut gw = Gw::new(ctx, &mut self.core);
            self.handler.on_session_end(&mut gw, sid, state);
        }
    }

    fn identify(&mut self, ctx: &mut Ctx<'_, Self>, id: ConnId, payload: &RawValue) {
        let result = {
            let mut gw = Gw::new(ctx, &mut self.core);
            self.handler.identify(&mut gw, id, payload)
        };
        match result {
            Ok(session) => self.start(ctx, id, session),
            Err(e) => self.core.answer(ctx, id, &e),
        }
    }

    /// Who owns a new session on `id`: the handler's say, else the peer address.
    fn owner_of(&self, ctx: &Ctx<'_, Self>, id: ConnId, session: &H::Session) -> Owner {
        self.handler.owner(session).unwrap_or_else(|| {
            ctx.peer_addr(id)
                .map_or_else(Owner::unknown, |a| Owner::from_ip(a.ip()))
        })
    }

    fn start(&mut self, ctx: &mut Ctx<'_, Self>, id: ConnId, session: H::Session) {
        let owner = self.owner_of(ctx, id, &session);
        match self.core.make_room(ctx, &owner) {
            Ok(gone) => self.end_sessions(ctx, gone),
            Err(refused) => {
                // The handler's state is dropped unseen: handlers act in on_ready.
                self.core.answer(ctx, id, &refused);
                return;
            }
        }
        let extra = self.handler.ready_fields(&session);
        match self.core.open_session(ctx, id, session, owner, &extra) {
            Some(sid) => {
                let mut gw = Gw::new(ctx, &mut self.core);
                self.handler.on_ready(&mut gw, sid, false);
            }
            None => self
                .core
                .answer(ctx, id, &GatewayError::app(1011, true, "no randomness")),
        }
    }

    fn resume(
        &mut self,
        ctx: &mut Ctx<'_, Self>,
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
                self.core.answer(ctx, id, &GatewayError::InvalidSession);
                return;
            }
        }
        let extra = match self.core.registry.get(sid) {
            Some(record) => self.handler.ready_fields(&record.data),
            None => String::new(),
        };
        match self.core.resume(ctx, id, sid, seen, &extra) {
            Ok(()) => {
                let mut gw = Gw::new(ctx, &mut self.core);
                self.handler.on_ready(&mut gw, sid, true);
            }
            Err(e) => self.core.answer(ctx, id, &e),
        }
    }
}

/// The HTTP answer to an upgrade that would open a session the session bounds refuse.
fn refusal_response(refusal: Refusal) -> Response {
    match refusal {
        Refusal::OwnerFull => Response::text(429, "too many sessions for this client\n"),
        Refusal::Full => Response::text(503, "too many sessions\n"),
    }
}

impl<H: Handler> App for Gateway<H> {
    type Conn = GwConn<H::Session>;
    type Timer = GwTimer<H::Timer>;
    type Command = GwCommand<H::Command>;

    fn on_upgrade(
        &mut self,
        ctx: &mut Ctx<'_, Self>,
        id: ConnId,
        request: &Request<'_, '_>,
    ) -> Accept<Self::Conn> {
        let admit = {
            let mut gw = Gw::new(ctx, &mut self.core);
            self.handler.on_upgrade(&mut gw, id, request)
        };
        if let Admit::Identified(session) = &admit {
            // A session the upgrade itself opens is refused with an HTTP status when the
            // session bounds leave no room for it (429: its owner's quota; 503: the server's).
            let owner = self.owner_of(ctx, id, session);
            if let Err(refusal) = self.core.registry.room_for(&owner, self.core.quota()) {
                return Accept::No(refusal_response(refusal));
            }
        }
        match admit {
            Admit::Reject(response) => Accept::No(response),
            admit => Accept::new(GwConn {
                machine: ConnSession::new(ctx.now(), &self.core.config),
                timer: None,
                pending: Some(admit),
            }),
        }
    }

    fn on_open(&mut self, ctx: &mut Ctx<'_, Self>, id: ConnId) {
        let interval = self.core.config.heartbeat_interval;
        let pending = ctx.state(id).and_then(|s| s.pending.take());
        if !matches!(pending, Some(Admit::Fail(_))) {
            self.core
                .send_with(ctx, id, |d, out| d.hello(out, interval));
        }
        match pending {
            Some(Admit::Identified(session)) => self.start(ctx, id, session),
            Some(Admit::Resume(sid)) => self.resume(ctx, id, sid, None, None),
            Some(Admit::Fail(error)) => self.core.answer(ctx, id, &error),
            _ => {}
        }
        self.core.arm(ctx, id);
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, Self>, id: ConnId, message: Message<'_>) {
        // Any message is proof of life, whatever becomes of it (refused, undecodable): the
        // deadline timer finds the new silence when it fires, so nothing is re-armed here.
        let now = ctx.now();
        match ctx.state(id) {
            Some(state) => state.machine.heard(now),
            None => return,
        }
        let Message::Text(text) = message else {
            self.core
                .answer(ctx, id, &GatewayError::Decode(super::DecodeError::Binary));
            return;
        };
        let op = match self.core.dialect.decode(text) {
            Ok(op) => op,
            Err(e) => {
                self.core.answer(ctx, id, &GatewayError::Decode(e));
                return;
            }
        };
        let config = &self.core.config;
        let verdict = match ctx.state(id) {
            Some(state) => state.machine.admit(now, &op, config),
            None => return,
        };
        if let Err(e) = verdict {
            self.core.answer(ctx, id, &e);
            return;
        }
        match op {
            Op::Heartbeat(echo) => self
                .core
                .send_with(ctx, id, |d, out| d.heartbeat_ack(out, echo)),
            Op::Identify(payload) => {
                self.identify(ctx, id, payload);
                // The identify deadline gave way to the heartbeat (and probe) deadlines.
                self.core.arm(ctx, id);
            }
            Op::Resume {
                session,
                seq,
                payload,
            } => {
                self.resume(ctx, id, session, Some(seq), Some(payload));
                self.core.arm(ctx, id);
            }
            Op::Dispatch { event, data } => {
                let Some(sid) = ctx.state_ref(id).and_then(|s| s.machine.session()) else {
                    return;
                };
                let result = {
                    let mut gw = Gw::new(ctx, &mut self.core);
                    self.handler.on_event(&mut gw, sid, &event, data)
                };
                if let Err(e) = result {
                    self.core.answer(ctx, id, &e);
                }
            }
        }
    }

    fn on_close(&mut self, ctx: &mut Ctx<'_, Self>, id: ConnId, state: Self::Conn, _why: Closed) {
        if let Some(t) = state.timer {
            ctx.cancel_timer(t);
        }
        {
            let mut gw = Gw::new(ctx, &mut self.core);
            self.handler
                .on_conn_close(&mut gw, id, state.machine.session());
        }
        let Some(sid) = state.machine.session() else {
            return;
        };
        match self.core.registry.get(sid) {
            Some(record) if record.conn == Some(id) => {}
            _ => return,
        }
        if ctx.is_shutting_down() {
            if let Some(record) = self.core.registry.remove(sid) {
                self.end_sessions(ctx, vec![(sid, record.data)]);
            }
            return;
        }
        self.core.registry.detach(sid);
        let at = ctx.now() + self.core.config.resume_window;
        let timer = ctx.set_timer(at, GwTimer::Expire(sid));
        if let Some(record) = self.core.registry.get_mut(sid) {
            record.expiry = Some(timer);
        }
        let mut gw = Gw::new(ctx, &mut self.core);
        self.handler.on_detach(&mut gw, sid);
    }

    fn on_http(
        &mut self,
        ctx: &mut Ctx<'_, Self>,
        _id: ConnId,
        request: &Request<'_, '_>,
        body: &[u8],
    ) -> Response {
        let mut gw = Gw::new(ctx, &mut self.core);
        self.handler.on_http(&mut gw, request, body)
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, Self>, timer: Self::Timer) {
        match timer {
            GwTimer::Conn(id) => {
                let now = ctx.now();
                let config = &self.core.config;
                let tick = match ctx.state(id) {
                    Some(state) => {
                        state.timer = None;
                        state.machine.tick(now, config)
                    }
                    None => return,
                };
                match tick {
                    Tick::Expired(error) => self.core.answer(ctx, id, &error),
                    Tick::Probe => self
                        .core
                        .send_with(ctx, id, |d, out| d.heartbeat_request(out)),
                    Tick::Idle => {}
                }
                self.core.arm(ctx, id);
            }
            GwTimer::Expire(sid) => {
                let detached = self
                    .core
                    .registry
                    .get(sid)
                    .is_some_and(|r| r.conn.is_none());
                if detached {
                    if let Some(record) = self.core.registry.remove(sid) {
                        self.end_sessions(ctx, vec![(sid, record.data)]);
                    }
                }
            }
            GwTimer::Handler(timer) => {
                let mut gw = Gw::new(ctx, &mut self.core);
                self.handler.on_timer(&mut gw, timer);
            }
        }
    }

    fn on_command(&mut self, ctx: &mut Ctx<'_, Self>, command: Self::Command) {
        let mut gw = Gw::new(ctx, &mut self.core);
        match command {
            GwCommand::Dispatch(session, event, data) => {
                gw.dispatch(session, &event, &data);
            }
            GwCommand::DispatchRoom(room, event, data) => {
                gw.dispatch_room(&room, &event, &data, None);
            }
            GwCommand::DispatchAll(event, data) => {
                gw.dispatch_all(&event, &data);
            }
            GwCommand::EndSession(session, error) => {
                if let Some(state) = gw.end_session(session, &error) {
                    self.handler.on_session_end(&mut gw, session, state);
                }
            }
            GwCommand::Handler(command) => self.handler.on_command(&mut gw, command),
        }
    }

    fn on_shutdown(&mut self, ctx: &mut Ctx<'_, Self>) {
        {
            let mut gw = Gw::new(ctx, &mut self.core);
            self.handler.on_shutdown(&mut gw);
        }
        let live: Vec<(SessionId, ConnId)> = self
            .core
            .registry
            .ids()
            .filter_map(|sid| {
                self.core
                    .registry
                    .get(sid)
                    .and_then(|r| r.conn)
                    .map(|c| (sid, c))
            })
            .collect();
        if let Some(event) = self.core.dialect.going_down_event() {
            let tail = self.core.encode(event, "{}");
            for &(sid, _) in &live {
                self.core.deliver(ctx, sid, &tail);
            }
        }
        let (code, reason) = self.core.dialect.shutdown_close();
        let ids: Vec<ConnId> = ctx.connections().collect();
        for id in ids {
            ctx.close(id, code, reason);
        }
    }
}
