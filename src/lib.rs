//! postern: a single-threaded, embeddable reactor that serves Discord-style WebSocket
//! gateways. (Crate documentation is written in full once the layers exist.)
#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]

pub mod app;
pub mod close;
pub mod config;
pub mod error;
pub mod gateway;
pub mod http;
pub mod reactor;
pub mod time;
pub mod timer;
pub mod wire;
pub mod ws;

pub use app::{Accept, App, Closed, Message};
pub use close::CloseCode;
pub use config::Config;
pub use error::Error;
pub use http::{Request, Response};
pub use reactor::{ConnId, Ctx, Reactor, Remote, RemoteError, SendError, Stats};
pub use time::Millis;
pub use ws::{SharedFrame, SharedPayload};
