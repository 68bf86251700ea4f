//! The gateway engine: the Discord-style session lifecycle above the WebSocket transport.
//!
//! - [`session`]: the per-connection machine (identify first, heartbeat and identify
//!   deadlines, server probes, rate limits), sans-IO.
//! - [`replay`]: the bounded per-session replay buffer for resume.
//! - [`registry`]: sessions by id and rooms by name, and the session quotas per
//!   [`owner`].
//! - [`dialect`]: how a protocol spells its envelope ([`Dialect`]); [`error`]: what the
//!   engine may have to tell a client ([`GatewayError`]) and a dialect's [`Answer`].
//! - [`handler`]: what an application implements ([`Handler`]).
//! - [`engine`]: [`Gateway`], the engine: one `handle_*` method per lifecycle event, on
//!   the primitives of [`core`], acting only through a [`Link`] ([`link`]).
//! - The reactor adapter (private `app.rs`): `Gateway` as an [`App`](crate::App), the
//!   reactor's [`Ctx`](crate::Ctx) as its `Link`.
//! - `driver` (cargo feature `testing`): the in-memory `Link` and driver for tests and
//!   fuzzing (fake clock, recorded frames, ordered timers).
//! - [`secret`]: session ids, the OS randomness, constant-time comparison, random tokens.
//! - [`remote`]: [`GatewayRemote`], the cross-thread handle to sessions and rooms.
//! - [`dialects`]: the seed protocols' dialects.
//! - [`bus`]: the seam between the engines of several reactors (or nodes); the engine's
//!   side is the private `cluster.rs` ([`Gateway::attach_bus`], [`Gateway::handle_bus`]).

mod app;
pub mod bus;
mod cluster;
pub mod config;
pub mod core;
pub mod ctx;
pub mod dialect;
pub mod dialects;
#[cfg(any(test, feature = "testing"))]
pub mod driver;
pub mod engine;
pub mod error;
pub mod handler;
pub mod link;
pub mod owner;
pub mod registry;
pub mod remote;
pub mod replay;
pub mod secret;
pub mod session;

pub use self::core::GwConn;
pub use config::{DuplicatePolicy, GatewayConfig, ProbePolicy, RateLimit};
pub use ctx::Gw;
pub use dialect::{write_json_str, Dialect, Op, Ready};
pub use engine::{Gateway, GwTimer};
pub use error::{Answer, DecodeError, GatewayError};
pub use handler::{Admit, Handler};
pub use link::Link;
pub use owner::Owner;
pub use remote::{GatewayRemote, GwCommand};
pub use secret::{random_hex, random_uuid, secret_eq};
pub use session::{SessionId, TokenBucket};
