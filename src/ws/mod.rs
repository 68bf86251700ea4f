//! One WebSocket connection as plain state machines, with no sockets and no clock.
//!
//! - [`conn`]: [`WsConn`] decodes frames in the caller's read buffer (unmasking in place) and
//!   yields borrowed events; it tracks fragmentation and the close handshake.
//! - [`error`]: [`ProtocolError`], each with the close code and reason that answer it.
//! - [`assembler`]: fragmented messages, under the same size limit as single frames, with
//!   UTF-8 checked as each byte arrives.
//! - [`frame`]: server frames, encoded once into shared bytes ([`SharedFrame`]).
//! - [`outbox`]: the bounded per-connection queue of bytes waiting for the socket.
//! - [`deflate`]: permessage-deflate (RFC 7692): inflating under the payload limit, and
//!   compressing whole messages (a stand-in without the `deflate` cargo feature).

pub mod assembler;
pub mod conn;
#[cfg(feature = "deflate")]
pub mod deflate;
#[cfg(not(feature = "deflate"))]
#[path = "deflate_off.rs"]
pub mod deflate;
pub mod error;
pub mod frame;
pub mod outbox;

pub use assembler::Kind;
#[cfg(feature = "testing")]
pub use conn::ProtocolError;
pub use conn::{Decoded, Event, WsConn};
#[cfg(feature = "testing")]
pub use frame::{write_frame, write_frame_with};
pub use frame::{SharedFrame, SharedPayload};
pub use outbox::{BufPool, Outbox};
