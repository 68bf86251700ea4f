//! [`GatewayRemote`]: the gateway's cross-thread handle: dispatch to a session, a room or
//! everyone, end a session, or pass the handler its own command, from any thread.

use super::dialect::GatewayError;
use super::session::SessionId;
use crate::reactor::{Remote, RemoteError};

/// A command for the gateway engine, queued through the reactor's [`Remote`].
#[derive(Debug)]
pub enum GwCommand<C> {
    /// Dispatch an event (name, JSON data) to one session.
    Dispatch(SessionId, String, String),
    /// Dispatch an event to every session in a room.
    DispatchRoom(String, String, String),
    /// Dispatch an event to every session.
    DispatchAll(String, String),
    /// End a session with an error (its connection gets the error's answer).
    EndSession(SessionId, GatewayError),
    /// The handler's own command ([`Handler::on_command`](super::Handler::on_command)).
    Handler(C),
    /// Something arrived on the bus ([`Gateway::handle_bus`](super::Gateway::handle_bus)):
    /// what an in-process bus's waker queues.
    Bus,
}

/// A `Send + Clone` handle to a running gateway for other threads.
#[derive(Debug)]
pub struct GatewayRemote<C> {
    remote: Remote<GwCommand<C>>,
}

impl<C> Clone for GatewayRemote<C> {
    fn clone(&self) -> Self {
        GatewayRemote {
            remote: self.remote.clone(),
        }
    }
}

impl<C: Send + 'static> GatewayRemote<C> {
    /// Wraps the reactor's remote of a [`Gateway`](super::Gateway).
    pub fn new(remote: Remote<GwCommand<C>>) -> Self {
        GatewayRemote { remote }
    }

    /// Dispatches an event to one session (sequenced and kept for replay like any other).
    /// `data` must be JSON text.
    pub fn dispatch(
        &self,
        session: SessionId,
        event: impl Into<String>,
        data: impl Into<String>,
    ) -> Result<(), RemoteError> {
        self.remote
            .command(GwCommand::Dispatch(session, event.into(), data.into()))
    }

    /// Dispatches an event to every session in `room`.
    pub fn dispatch_room(
        &self,
        room: impl Into<String>,
        event: impl Into<String>,
        data: impl Into<String>,
    ) -> Result<(), RemoteError> {
        self.remote.command(GwCommand::DispatchRoom(
            room.into(),
            event.into(),
            data.into(),
        ))
    }

    /// Dispatches an event to every session.
    pub fn dispatch_all(
        &self,
        event: impl Into<String>,
        data: impl Into<String>,
    ) -> Result<(), RemoteError> {
        self.remote
            .command(GwCommand::DispatchAll(event.into(), data.into()))
    }

    /// Ends a session for good, answering its connection with `error`.
    pub fn end_session(&self, session: SessionId, error: GatewayError) -> Result<(), RemoteError> {
        self.remote.command(GwCommand::EndSession(session, error))
    }

    /// Passes the handler a command.
    pub fn command(&self, command: C) -> Result<(), RemoteError> {
        self.remote.command(GwCommand::Handler(command))
    }

    /// Begins a graceful shutdown (going-down event, close, flush, `run` returns).
    pub fn shutdown(&self) {
        self.remote.shutdown();
    }

    /// The underlying reactor remote (raw sends and closes by connection).
    pub fn reactor(&self) -> &Remote<GwCommand<C>> {
        &self.remote
    }
}
