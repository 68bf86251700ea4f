//! The embedding trait: how an application plugs into the reactor.
//!
//! An application implements [`App`]: it decides who may upgrade (and with what
//! per-connection state), receives messages, answers plain HTTP requests on the same port,
//! and is told when a connection ends. Every callback gets a [`Ctx`] to act on any
//! connection: send, broadcast, close, set timers. Callbacks run on the reactor thread, one at
//! a time; none may block.
//!
//! ```
//! use postern::{Accept, App, ConnId, Ctx, Message, Request};
//!
//! /// Echoes every message back to its sender.
//! struct Echo;
//!
//! impl App for Echo {
//!     type Conn = ();
//!     type Timer = ();
//!     type Command = ();
//!
//!     fn on_upgrade(&mut self, _: &mut Ctx<'_, Self>, _: ConnId, _: &Request<'_, '_>) -> Accept<()> {
//!         Accept::new(())
//!     }
//!
//!     fn on_message(&mut self, ctx: &mut Ctx<'_, Self>, id: ConnId, msg: Message<'_>) {
//!         let _ = ctx.send(id, msg);
//!     }
//! }
//! ```

use super::{ConnId, Ctx};
use crate::close::CloseCode;
use crate::http::{Request, Response};

/// One complete message, borrowed: from the read buffer for a single-frame message (zero
/// copy), from the reassembly buffer for a fragmented one.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Message<'a> {
    /// A text message (valid UTF-8, checked).
    Text(&'a str),
    /// A binary message.
    Binary(&'a [u8]),
}

impl<'a> Message<'a> {
    /// The payload bytes.
    pub fn as_bytes(&self) -> &'a [u8] {
        match self {
            Message::Text(t) => t.as_bytes(),
            Message::Binary(b) => b,
        }
    }
}

/// The application's answer to an upgrade request.
#[derive(Debug)]
pub enum Accept<S> {
    /// Upgrade, with the connection's state and extra `101` response headers (for example
    /// `Sec-WebSocket-Protocol`).
    Yes {
        /// Per-connection state, handed back in [`App::on_close`].
        state: S,
        /// Extra headers for the `101 Switching Protocols` response.
        headers: Vec<(String, String)>,
    },
    /// Refuse with this response (any status and body); the socket is then closed.
    No(Response),
}

impl<S> Accept<S> {
    /// Accepts with `state` and no extra headers.
    pub fn new(state: S) -> Accept<S> {
        Accept::Yes {
            state,
            headers: Vec::new(),
        }
    }

    /// Refuses with a plain-text response.
    pub fn reject(status: u16, body: &str) -> Accept<S> {
        Accept::No(Response::text(status, body))
    }
}

/// Why a WebSocket connection ended, as told to [`App::on_close`].
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Closed {
    /// The peer sent a Close frame (with this code, if any); we answered it.
    ByPeer(Option<CloseCode>),
    /// The server closed it with this code: the application, a slow reader overflowing its
    /// outbox (1008), an idle timeout (1001) or shutdown (1001).
    ByServer(CloseCode),
    /// The peer broke the protocol and the connection was failed with this code.
    Failed(CloseCode),
    /// The TCP connection ended without a closing handshake (reset, EOF, write error).
    Dropped,
}

/// An application served by the reactor. See the module documentation for an example.
///
/// Callbacks happen on the reactor thread in this order for one connection:
/// [`on_upgrade`](App::on_upgrade) → [`on_open`](App::on_open) →
/// [`on_message`](App::on_message)* → [`on_close`](App::on_close) (exactly once for every
/// accepted upgrade, also at shutdown).
pub trait App: Sized {
    /// Per-connection state, created at the upgrade and handed back when it ends.
    type Conn;
    /// Payload of the application's own timers ([`Ctx::set_timer`]).
    type Timer;
    /// Commands other threads send through a [`Remote`](crate::Remote).
    type Command: Send + 'static;

    /// A WebSocket upgrade request, already checked against RFC 6455 (method, version,
    /// key). Accept it with per-connection state or refuse it with any response.
    fn on_upgrade(
        &mut self,
        ctx: &mut Ctx<'_, Self>,
        id: ConnId,
        request: &Request<'_, '_>,
    ) -> Accept<Self::Conn>;

    /// The `101` response is queued and the connection is open: a good place for a greeting.
    fn on_open(&mut self, ctx: &mut Ctx<'_, Self>, id: ConnId) {
        let _ = (ctx, id);
    }

    /// A complete message arrived.
    fn on_message(&mut self, ctx: &mut Ctx<'_, Self>, id: ConnId, message: Message<'_>);

    /// The connection ended (or started its closing handshake): nothing more can be sent to
    /// it or received from it. `state` is the one returned by `on_upgrade`.
    fn on_close(&mut self, ctx: &mut Ctx<'_, Self>, id: ConnId, state: Self::Conn, why: Closed) {
        let _ = (ctx, id, state, why);
    }

    /// A plain HTTP request (no upgrade) with its `Content-Length` body. The default answers
    /// `426 Upgrade Required` on `/` and `404 Not Found` elsewhere.
    fn on_http(
        &mut self,
        ctx: &mut Ctx<'_, Self>,
        id: ConnId,
        request: &Request<'_, '_>,
        body: &[u8],
    ) -> Response {
        let _ = (ctx, id, body);
        if request.path() == "/" {
            Response::text(426, "this endpoint speaks WebSocket\n")
                .header("Upgrade", "websocket")
                .header("Sec-WebSocket-Version", "13")
        } else {
            Response::text(404, "not found\n")
        }
    }

    /// One of the application's timers expired.
    fn on_timer(&mut self, ctx: &mut Ctx<'_, Self>, timer: Self::Timer) {
        let _ = (ctx, timer);
    }

    /// A command arrived from another thread.
    fn on_command(&mut self, ctx: &mut Ctx<'_, Self>, command: Self::Command) {
        let _ = (ctx, command);
    }

    /// A graceful shutdown began: last words to every connection (e.g. a protocol's
    /// going-down event). Afterwards every open connection is closed with 1001.
    fn on_shutdown(&mut self, ctx: &mut Ctx<'_, Self>) {
        let _ = ctx;
    }
}
