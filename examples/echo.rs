//! Echo server: every text or binary message comes back to its sender unchanged.
//!
//! ```text
//! cargo run --release --example echo -- --listen 127.0.0.1:9001 --max-payload 16777216
//! ```
//!
//! Options: `--listen ADDR` (default 127.0.0.1:9001), `--max-payload BYTES` (default 4096,
//! at most 16 MiB), `--deflate` (negotiate permessage-deflate with clients that offer it;
//! the payload limit then bounds the inflated size), and the connection limits every example takes (`--max-connections`,
//! `--max-conns-per-ip`, `--new-conns-per-ip`, `--limit-loopback`, `--events-per-poll`; see
//! `examples/support/serve.rs`). Prints `listening on ADDR` on stderr when ready; SIGINT or
//! SIGTERM shuts it down gracefully. This is the server the Autobahn conformance run and the
//! throughput benchmarks talk to.

#[path = "support/serve.rs"]
mod serve;

use postern::{Accept, App, Config, ConnId, Ctx, Message, Request};
use std::net::SocketAddr;
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

fn parse_args() -> Result<(SocketAddr, Config), String> {
    let mut listen: SocketAddr = ([127, 0, 0, 1], 9001).into();
    let mut config = Config::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "-h" || arg == "--help" {
            return Err(format!(
                "usage: echo [--listen ADDR] [--max-payload BYTES] {}",
                serve::LIMIT_USAGE
            ));
        }
        if serve::switch_option(&mut config, &arg) {
            continue;
        }
        let value = args.next().ok_or(format!("{arg} needs a value"))?;
        if serve::limit_option(&mut config, &arg, &value)? {
            continue;
        }
        match arg.as_str() {
            "--listen" => listen = value.parse().map_err(|e| format!("--listen: {e}"))?,
            "--max-payload" => {
                config.max_payload = value.parse().map_err(|e| format!("--max-payload: {e}"))?
            }
            other => return Err(format!("unknown option {other}")),
        }
    }
    // Echoing means queueing what was received: let a few maximal messages wait.
    config.outbox_limit = config.outbox_limit.max(4 * config.max_payload);
    // A largest message may come in 64-byte fragments (Autobahn 9.3.1 and 9.4.1: 4 MiB in
    // 65,536 frames): allow that many, not the default 1,024.
    config.max_fragments = config.max_fragments.max(config.max_payload / 64);
    Ok((listen, config))
}

fn main() -> ExitCode {
    let (listen, config) = match parse_args() {
        Ok(parsed) => parsed,
        Err(msg) => {
            eprintln!("{msg}");
            return ExitCode::from(2);
        }
    };
    serve::serve("echo", listen, config, Echo)
}
