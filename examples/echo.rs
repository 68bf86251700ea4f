//! Echo server: every text or binary message comes back to its sender unchanged.
//!
//! ```text
//! cargo run --release --example echo -- --listen 127.0.0.1:9001 --max-payload 16777216
//! ```
//!
//! Options (`--help` lists them with their defaults): `--max-payload BYTES` (default 4096,
//! at most 16 MiB), and what every example takes (`--listen ADDR`, default 127.0.0.1:9001,
//! the connection limits, and `--deflate` to negotiate permessage-deflate with clients that
//! offer it, the payload limit then bounding the inflated size; see
//! `examples/support/serve.rs`). Prints `listening on ADDR` on stderr when ready; SIGINT or
//! SIGTERM shuts it down gracefully. This is the server the Autobahn conformance run and the
//! throughput benchmarks talk to.

#[path = "support/serve.rs"]
mod serve;

use clap::Parser;
use postern::{Accept, App, Config, ConnId, Ctx, Message, Request};
use std::process::ExitCode;

/// The echo application: no per-connection state at all.
struct Echo;

impl App for Echo {
    type Conn = ();
    type Timer = ();
    type Command = ();

    fn on_upgrade(&mut self, _: &mut Ctx<'_, Self>, _: ConnId, _: &Request<'_, '_>) -> Accept<()> {
        Accept::new(())
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, Self>, id: ConnId, message: Message<'_>) {
        // A failed send means the connection is closing (or was a slow reader): nothing to do.
        let _ = ctx.send(id, message);
    }
}

/// Echo server: every text or binary message comes back to its sender unchanged.
#[derive(Parser, Debug)]
#[command(name = "echo")]
struct Cli {
    /// Largest message in bytes (1 to 16 MiB)
    #[arg(long, value_name = "BYTES", default_value_t = Config::default().max_payload)]
    max_payload: usize,
    #[command(flatten)]
    serve: serve::ServeOptions,
}

fn main() -> ExitCode {
    let cli: Cli = serve::parse("127.0.0.1:9001");
    let mut config = cli.serve.config(Config::default());
    config.max_payload = cli.max_payload;
    // Echoing means queueing what was received: let a few maximal messages wait.
    config.outbox_limit = config.outbox_limit.max(4 * config.max_payload);
    // A large limit allows a message in many small fragments (Autobahn 9.3/9.4 send 4 MiB in
    // 64-byte fragments): keep the per-message fragment bound at one per 64 bytes allowed.
    config.max_fragments = config.max_fragments.max(config.max_payload / 64);
    serve::serve_reactors("echo", &cli.serve, config, |_| Echo)
}
