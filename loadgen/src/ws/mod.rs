//! A minimal client-side WebSocket codec (RFC 6455): just what a load generator needs.
//!
//! - [`handshake`]: the HTTP/1.1 upgrade request with a random key and the check of
//!   the server's `101 Switching Protocols` answer (status and `Sec-WebSocket-Accept`);
//! - [`frame`]: masked frame encoding and unmasked frame header decoding.

pub mod frame;
pub mod handshake;
