//! postern: a single-threaded, embeddable reactor that serves Discord-style WebSocket
//! gateways. (Crate documentation is written in full once the layers exist.)
#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]

pub mod close;
pub mod time;
pub mod timer;
pub mod http;
