//! postern: a single-threaded, embeddable reactor that serves Discord-style WebSocket
//! gateways.
//!
//! # Layers
//!
//! ```text
//! wire  ←  http, ws  ←  reactor  ←  gateway        (time, close, timer: leaves)
//! ```
//!
//! - `wire`: frame header, masking, UTF-8 and close payload codecs over byte slices.
//! - [`http`]: the HTTP/1.1 upgrade and plain requests, parsed in place with `httparse`.
//! - `ws`: one WebSocket connection's receive machine (`ws::WsConn`), message assembly,
//!   shared frames and the bounded outbox.
//! - `timer`: a hierarchical timer wheel (O(1) insert and cancel, no allocation per timer).
//! - `reactor`: the only code that touches `mio` and the clock: [`Reactor`], [`Ctx`],
//!   [`Remote`], and [`Reactors`] (several reactors on one port). Applications implement
//!   [`App`].
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
//! # Public surface and the `testing` feature
//!
//! An embedder sees the crate root (the reactor, its [`Config`], the [`App`] family,
//! [`Request`]/[`Response`], [`SharedFrame`]/[`SharedPayload`], the leaf types and errors),
//! [`gateway`] (the engine, [`gateway::Handler`], [`gateway::Dialect`] and what a dialect
//! implementation needs, [`gateway::Link`], the bundled [`gateway::dialects`], the
//! secrets helpers) and [`http`]'s query helpers. The layers' modules are files of the
//! crate: none of `reactor`, `config`, `close`, `time`, `error` or the gateway's own
//! submodules is a public path; everything they export for embedders is re-exported at the
//! root or at `gateway`.
//!
//! The cargo feature `testing` (off by default; for tests, benches and the fuzz crate, not
//! for serving) additionally makes public the sans-IO internals those reach: the modules
//! `wire`, `ws` (`WsConn`, the outbox), `timer` (`TimerWheel`), `gateway::driver` (the
//! in-memory driver), `gateway::registry`, `gateway::replay` and `gateway::session`, the
//! HTTP codec functions (`http::parse_request`, `http::validate_upgrade`,
//! `http::write_response`, ...), and a few inspection methods (`Gateway::registry`, the
//! `heap_bytes`/`len` accessors). Nothing under it is covered by semver.
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
//! # Threading
//!
//! A [`Reactor`] is one thread's: it is not `Send` (its outboxes share frames through
//! `Rc`), and nothing on its hot path is locked or atomic; other threads reach it only
//! through its [`Remote`] (a bounded command queue and a waker). To use several cores,
//! [`Reactors`] runs N reactors of one application in one process: one thread each, each
//! with its own listener bound with `SO_REUSEPORT` on the same address, the kernel
//! spreading new connections among them. Per reactor the embedder gets its [`Remote`] and
//! its [`Stats`] ([`ReactorsHandle`]); one call shuts all down gracefully, and
//! [`Reactors::join`] returns once all have drained. A reactor thread that panics is not
//! restarted: the others are shut down gracefully at once and `join` reports
//! [`ReactorsError::Panicked`].
//!
//! Gateways on several reactors: the engines talk through a bus ([`gateway::bus`]: the
//! `Bus` trait, a versioned binary envelope that refuses foreign or malformed bytes, and an
//! in-process backend of bounded queues whose losses are counted and reported to the
//! receiver as gaps). An engine joined to a bus ([`gateway::Gateway::attach_bus`]) gives
//! each room one order: the room's home engine (a stable hash of its name) delivers and
//! publishes its dispatches, the others forward theirs to it, and every member on every
//! reactor sees the same events once in that order (a forwarded dispatch costs a second
//! bus hop). That is all that crosses reactors today: sessions, presence and room sizes,
//! bans, `dispatch`/`dispatch_all` and resume are each engine's own, and a gap on the bus
//! is logged, not yet answered; so the gateway examples refuse `--reactors` above 1.
//!
//! # Non-goals
//!
//! TLS (terminate it in front), HTTP/2, a reactor shared by several threads (run several
//! reactors, [`Reactors`]), and Windows.
#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]
#![warn(unreachable_pub)]

mod close;
mod config;
mod conn_id;
mod error;
pub mod gateway;
pub mod http;
mod rate;
mod reactor;
mod time;

// The sans-IO layers below the reactor: public only with the `testing` feature (for the
// integration tests, benches and the fuzz crate); an embedder sees what the crate root and
// `gateway` re-export. Their items are `pub` so that the feature can expose them, hence
// `unreachable_pub` is checked for them in the `testing` build only.
#[cfg(feature = "testing")]
pub mod timer;
#[cfg(not(feature = "testing"))]
#[allow(unreachable_pub)]
mod timer;
#[cfg(feature = "testing")]
pub mod wire;
#[cfg(not(feature = "testing"))]
#[allow(unreachable_pub)]
mod wire;
#[cfg(feature = "testing")]
pub mod ws;
#[cfg(not(feature = "testing"))]
#[allow(unreachable_pub)]
mod ws;

pub use close::CloseCode;
pub use config::{Config, ConfigError, MAX_PAYLOAD_LIMIT};
pub use conn_id::ConnId;
pub use error::{Error, SendError};
pub use http::{OriginPolicy, Request, Response};
pub use reactor::{
    Accept, App, Closed, Ctx, Message, Reactor, Reactors, ReactorsError, ReactorsHandle, Remote,
    RemoteError, Stats,
};
pub use time::Millis;
pub use timer::TimerId;
pub use ws::{SharedFrame, SharedPayload};

/// The README's examples, compiled and run as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
