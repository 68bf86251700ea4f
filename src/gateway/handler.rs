//! [`Handler`]: what a gateway application implements on top of the engine.

use super::ctx::Gw;
use super::dialect::{Dialect, GatewayError};
use super::owner::Owner;
use super::session::SessionId;
use crate::conn_id::ConnId;
use crate::http::{Request, Response};
use serde_json::value::RawValue;

/// The handler's answer to an upgrade request.
#[derive(Debug)]
pub enum Admit<S> {
    /// Upgrade; the client must identify (or resume) with a message.
    Accept,
    /// Upgrade, already identified by the request itself (e.g. query parameters): the
    /// session starts at once with this state; READY (if the protocol has one) follows HELLO.
    Identified(S),
    /// Upgrade and resume this session (resume carried by the request itself); every event
    /// produced while it was detached is replayed.
    Resume(SessionId),
    /// Upgrade, then answer with this error (e.g. a protocol that refuses credentials with a
    /// close code after the upgrade rather than an HTTP status).
    Fail(GatewayError),
    /// Refuse the upgrade with an HTTP response.
    Reject(Response),
}

/// A gateway application: the protocol's behaviour above the engine's lifecycle.
///
/// The engine calls, in order for a session: `on_upgrade` → (`identify` | `resume`) →
/// `on_ready` → `on_event`* → `on_detach` → (`resume` → `on_ready` ...) → `on_session_end`.
pub trait Handler: Sized {
    /// How the protocol spells its payloads.
    type Dialect: Dialect;
    /// Per-session state; survives reconnects within the resume window.
    type Session;
    /// Payload of the handler's own timers.
    type Timer;
    /// Commands from other threads.
    type Command: Send + 'static;

    /// An upgrade request (already valid RFC 6455). Default: accept.
    fn on_upgrade(
        &mut self,
        gw: &mut Gw<'_, '_, Self>,
        id: ConnId,
        request: &Request<'_, '_>,
    ) -> Admit<Self::Session> {
        let _ = (gw, id, request);
        Admit::Accept
    }

    /// Checks identify credentials and creates the session's state, or refuses.
    fn identify(
        &mut self,
        gw: &mut Gw<'_, '_, Self>,
        id: ConnId,
        payload: &RawValue,
    ) -> Result<Self::Session, GatewayError>;

    /// Who a new session belongs to, for the per-owner session quota
    /// ([`GatewayConfig::max_sessions_per_owner`](super::GatewayConfig::max_sessions_per_owner)):
    /// the authenticated user where the protocol has a login ([`Owner::user`]). `None` (the
    /// default) keys the session on its connection's peer address (IPv4, or the IPv6 /64):
    /// right for a protocol whose clients only claim who they are.
    fn owner(&self, session: &Self::Session) -> Option<Owner> {
        let _ = session;
        None
    }

    /// Whether resume credentials belong to this session's owner. Default: refuse, so that
    /// a handler must opt in to in-band resume.
    fn resume(&mut self, session: &Self::Session, payload: &RawValue) -> bool {
        let _ = (session, payload);
        false
    }

    /// Extra READY members for a session, as JSON object members without braces
    /// (`"a":1,"b":"x"`), or "" (the default).
    fn ready_fields(&self, session: &Self::Session) -> String {
        let _ = session;
        String::new()
    }

    /// The session is ready (new or resumed) on a connection.
    fn on_ready(&mut self, gw: &mut Gw<'_, '_, Self>, session: SessionId, resumed: bool) {
        let _ = (gw, session, resumed);
    }

    /// An event from an identified client. An error is answered to that client.
    fn on_event(
        &mut self,
        gw: &mut Gw<'_, '_, Self>,
        session: SessionId,
        event: &str,
        data: Option<&RawValue>,
    ) -> Result<(), GatewayError>;

    /// A connection ended, identified (`session`) or not. Called before `on_detach`; for
    /// bookkeeping kept per connection (e.g. who is connected before identifying).
    fn on_conn_close(&mut self, gw: &mut Gw<'_, '_, Self>, id: ConnId, session: Option<SessionId>) {
        let _ = (gw, id, session);
    }

    /// The session lost its connection; it stays resumable for the resume window.
    fn on_detach(&mut self, gw: &mut Gw<'_, '_, Self>, session: SessionId) {
        let _ = (gw, session);
    }

    /// The session is gone for good (window expired, ended, or shutdown).
    fn on_session_end(
        &mut self,
        gw: &mut Gw<'_, '_, Self>,
        session: SessionId,
        state: Self::Session,
    ) {
        let _ = (gw, session, state);
    }

    /// A plain HTTP request on the gateway's port. Default: 404.
    fn on_http(
        &mut self,
        gw: &mut Gw<'_, '_, Self>,
        request: &Request<'_, '_>,
        body: &[u8],
    ) -> Response {
        let _ = (gw, request, body);
        Response::text(404, "not found\n")
    }

    /// A handler timer expired.
    fn on_timer(&mut self, gw: &mut Gw<'_, '_, Self>, timer: Self::Timer) {
        let _ = (gw, timer);
    }

    /// A command from another thread.
    fn on_command(&mut self, gw: &mut Gw<'_, '_, Self>, command: Self::Command) {
        let _ = (gw, command);
    }

    /// Shutdown began; the engine then sends the protocol's going-down event and closes.
    fn on_shutdown(&mut self, gw: &mut Gw<'_, '_, Self>) {
        let _ = gw;
    }
}
