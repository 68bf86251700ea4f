//! postern: a single-threaded, embeddable reactor that serves Discord-style WebSocket
//! gateways.
//!
//! # Layers
//!
//! ```text
//! wire  ←  http, ws  ←  reactor  ←  gateway        (time, close, timer: leaves)
//! ```
//!
//! - [`wire`]: frame header, masking, UTF-8 and close payload codecs over byte slices.
//! - [`http`]: the HTTP/1.1 upgrade and plain requests, parsed in place with `httparse`.
//! - [`ws`]: one WebSocket connection's receive machine ([`ws::WsConn`]), message assembly,
//!   shared frames and the bounded outbox.
//! - [`timer`]: a hierarchical timer wheel (O(1) insert and cancel, no allocation per timer).
//! - [`reactor`]: the only code that touches `mio` and the clock: [`Reactor`], [`Ctx`],
//!   [`Remote`]. Applications implement [`App`].
//! - [`gateway`]: the session lifecycle: implement [`gateway::Handler`] and pick or write a
//!   [`gateway::Dialect`]. The engine ([`gateway::Gateway`]) is a state machine too: it acts
//!   only through a [`gateway::Link`] (sends, closes, per-connection state, timers, the
//!   time). The reactor's [`Ctx`] is one `Link`, through the adapter that makes a
//!   `Gateway` an [`App`]; the in-memory driver `gateway::driver` (cargo feature
//!   `testing`: fake clock, recorded frames, ordered timers) is the other, for tests and
//!   fuzzing without sockets.
//!
//! Leaf types shared by every layer: [`ConnId`] (a connection's identity), [`Millis`],
//! [`CloseCode`], [`SendError`].
//!
//! # Guarantees
//!
//! - `#![forbid(unsafe_code)]`; no panic reachable from the network.
//! - The payload limit ([`Config::max_payload`], default 4096 bytes) is enforced from the
//!   frame header before any payload is buffered (close 1009), and for reassembled messages.
//! - A complete frame is unmasked and delivered in the shared read buffer (no copy); only an
//!   incomplete frame's bytes are kept per connection, and freed when it completes. An idle
//!   connection holds no buffer.
//! - permessage-deflate (RFC 7692, cargo feature `deflate`) only when [`Config::deflate`]
//!   enables it: the payload limit then bounds a message's inflated size, enforced while
//!   inflating (close 1009 after at most the limit plus one chunk of output).
//! - Every connection's output is bounded ([`Config::outbox_limit`]); a slow reader is closed
//!   with 1008 and never stalls anyone else. A broadcast is encoded once.
//! - Bad input gets a precise answer: the HTTP status (400, 404, 413, 426, 431, 503) or the
//!   close code (1002, 1007, 1008, 1009) with a reason, and the reactor goes on.
//!
//! # Non-goals
//!
//! TLS (terminate it in front), HTTP/2, multi-threaded reactors (run one
//! reactor per core with `SO_REUSEPORT` if you need more), and Windows.
#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]

pub mod close;
pub mod config;
mod conn_id;
pub mod error;
pub mod gateway;
pub mod http;
pub mod rate;
pub mod reactor;
pub mod time;
pub mod timer;
pub mod wire;
pub mod ws;

pub use close::CloseCode;
pub use config::Config;
pub use conn_id::ConnId;
pub use error::{Error, SendError};
pub use http::{Request, Response};
pub use reactor::{Accept, App, Closed, Ctx, Message, Reactor, Remote, RemoteError, Stats};
pub use time::Millis;
pub use ws::{SharedFrame, SharedPayload};

/// The README's examples, compiled and run as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
