//! [`Link`]: the engine's seam, where its frames and timers go.
//!
//! The gateway engine ([`Gateway`](super::Gateway)) is a state machine: its lifecycle
//! methods (`handle_open`, `handle_message`, `handle_timer`, ...) are fed an event and a
//! `Link`, and act only through it. Two things implement it:
//!
//! - the reactor's context, in the adapter that makes the engine an [`App`](crate::App)
//!   (`gateway/app.rs`): frames go to sockets, timers to the reactor's wheel;
//! - the in-memory driver (`gateway::driver`, cargo feature `testing`): frames are recorded
//!   per connection, timers kept in order under a fake clock.
//!
//! The engine reaches a `Link` as `&mut dyn Link<H>`: one virtual call per send, nothing
//! next to the socket write it stands for.

use super::core::GwConn;
use super::engine::GwTimer;
use super::handler::Handler;
use crate::close::CloseCode;
use crate::conn_id::ConnId;
use crate::error::SendError;
use crate::time::Millis;
use crate::timer::TimerId;
use crate::ws::SharedPayload;
use std::net::SocketAddr;

/// Where the engine's frames and timers go, and where each connection's engine state lives.
///
/// The contract the engine relies on (the reactor's, which the driver copies):
///
/// - A connection is *live* from the open until it starts closing; only a live
///   connection has its [`GwConn`] ([`conn`](Link::conn)) and takes sends.
/// - [`close`](Link::close) takes the connection's state at once and hands it back to the
///   engine's `handle_close` after the current lifecycle call returns, never inside it.
/// - A send may fail ([`SendError`]); an overflowing outbox closes the connection (1008)
///   as [`close`](Link::close) does.
pub trait Link<H: Handler> {
    /// The current time.
    fn now(&self) -> Millis;

    /// Sends a text message to a connection.
    fn send_text(&mut self, id: ConnId, text: &str) -> Result<(), SendError>;

    /// Sends a text message made of `prefix` (per connection, e.g. a sequence number)
    /// followed by `body` (encoded once, shared by many connections).
    fn send_prefixed(
        &mut self,
        id: ConnId,
        prefix: &[u8],
        body: &SharedPayload,
    ) -> Result<(), SendError>;

    /// Starts closing a connection with `code` and `reason`; no effect on one that is not
    /// live.
    fn close(&mut self, id: ConnId, code: CloseCode, reason: &str);

    /// A live connection's engine state.
    fn conn(&mut self, id: ConnId) -> Option<&mut GwConn<H::Session>>;

    /// A live connection's engine state, read-only.
    fn conn_ref(&self, id: ConnId) -> Option<&GwConn<H::Session>>;

    /// Every live connection.
    fn connections(&self) -> Vec<ConnId>;

    /// Connections held (live or closing).
    fn connection_count(&self) -> usize;

    /// A connection's peer address (the default owner of its sessions).
    fn peer_addr(&self, id: ConnId) -> Option<SocketAddr>;

    /// Schedules `timer` at `at`; it comes back to the engine's `handle_timer`.
    fn set_timer(&mut self, at: Millis, timer: GwTimer<H::Timer>) -> TimerId;

    /// Cancels a timer, returning its payload if it had not fired.
    fn cancel_timer(&mut self, id: TimerId) -> Option<GwTimer<H::Timer>>;

    /// Moves a timer to `at`; false if it already fired (or was cancelled).
    fn reschedule_timer(&mut self, id: TimerId, at: Millis) -> bool;

    /// Whether a graceful shutdown is under way.
    fn is_shutting_down(&self) -> bool;
}
