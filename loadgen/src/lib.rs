//! Benchmark tooling for postern: a single-threaded mio load generator with its own
//! minimal WebSocket client codec, plus helpers shared by the peer echo servers.
//!
//! The load generator (`src/bin/loadgen.rs`) is built from these modules:
//! - [`cli`]: tiny argument parser shared by every binary;
//! - [`ws`]: client-side WebSocket codec (masked frames, upgrade request/response);
//! - [`client`]: the mio reactor owning many client connections;
//! - [`bench`]: one module per subcommand (`upgrades`, `echo`, `idle`, `fanout`);
//! - [`probe`], [`histogram`], [`progress`], [`report`]: measurement and output.

pub mod bench;
pub mod cli;
pub mod client;
pub mod histogram;
pub mod probe;
pub mod progress;
pub mod report;
pub mod rng;
pub mod sys;
pub mod url;
pub mod ws;

/// Error type used across the crate: benchmarks only need to report and exit.
pub type Error = Box<dyn std::error::Error + Send + Sync>;
/// Result alias using [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
