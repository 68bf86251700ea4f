//! Start-up shared by the example servers: bind, SIGINT/SIGTERM → graceful shutdown,
//! `listening on ADDR` on stderr, run until the reactor stops.

use postern::{App, Config, Reactor, Remote};
use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;

/// Starts a thread that turns the first SIGINT or SIGTERM into a graceful shutdown of the
/// reactor behind `remote`, and a second one into an immediate exit.
pub fn shutdown_on_signals<C: Send + 'static>(remote: Remote<C>) {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = match signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) {
        Ok(signals) => signals,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "cannot watch signals: {e}");
            return;
        }
    };
    std::thread::spawn(move || {
        let mut seen = 0;
        for _ in signals.forever() {
            seen += 1;
            if seen == 1 {
                // Never panic here (a closed stderr): the shutdown must happen.
                let _ = writeln!(std::io::stderr(), "shutting down");
                remote.shutdown();
            } else {
                std::process::exit(130);
            }
        }
    });
}

/// Binds `listen`, installs the signal handling, prints `listening on ADDR`, and runs `app`
/// until a graceful shutdown completes. `name` prefixes error messages.
pub fn serve<A: App>(name: &str, listen: SocketAddr, config: Config, app: A) -> ExitCode {
    let mut reactor = match Reactor::bind(listen, config, app) {
        Ok(reactor) => reactor,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "{name}: {e}");
            return ExitCode::FAILURE;
        }
    };
    shutdown_on_signals(reactor.remote());
    let _ = writeln!(std::io::stderr(), "listening on {}", reactor.local_addr());
    match reactor.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "{name}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The secret given with `flag`, or else a random one (`bytes` random bytes as hex),
/// printed on stderr as `no FLAG given: the WHAT is SECRET` so the operator can use it.
/// `None` only when the OS has no randomness.
#[allow(dead_code)] // not every example that includes this file has a secret
pub fn secret_or_random(
    given: Option<String>,
    flag: &str,
    what: &str,
    bytes: usize,
) -> Option<String> {
    given.or_else(|| {
        let secret = postern::gateway::random_hex(bytes).ok()?;
        let _ = writeln!(std::io::stderr(), "no {flag} given: the {what} is {secret}");
        Some(secret)
    })
}

/// The connection-limit options every example accepts, for its usage line.
#[allow(dead_code)] // not every example prints a usage line
pub const LIMIT_USAGE: &str = "[--max-connections N] [--max-conns-per-ip N] \
     [--new-conns-per-ip N] [--limit-loopback true|false] [--events-per-poll N] [--deflate]";

/// Applies a switch (a flag without a value) every server takes: `--deflate` turns on
/// permessage-deflate with its defaults. Returns false for any other flag.
#[allow(dead_code)]
pub fn switch_option(config: &mut Config, flag: &str) -> bool {
    match flag {
        "--deflate" => config.deflate = Some(postern::http::DeflateConfig::default()),
        _ => return false,
    }
    true
}

/// Applies `flag value` to `config` if `flag` is one of the connection limits shared by the
/// examples (see `postern::Config` for what each bounds and its default):
///
/// - `--max-connections N`: the global cap (`503` beyond it);
/// - `--max-conns-per-ip N`: open sockets per source address (`429` beyond it);
/// - `--new-conns-per-ip N`: new connections per second per source address (`429`);
/// - `--limit-loopback true|false`: whether the per-address limits also apply to
///   127.0.0.0/8 and ::1 (exempt by default, for local proxies and load tests);
/// - `--events-per-poll N`: readiness events taken per poll (a tuning knob; tests use a
///   small value to have more ready sockets than one poll returns).
///
/// Returns `Ok(false)` for any other flag, so callers try it first and fall through.
#[allow(dead_code)] // included by examples that parse their own options
pub fn limit_option(config: &mut Config, flag: &str, value: &str) -> Result<bool, String> {
    let number = || {
        value
            .parse::<u32>()
            .map_err(|e| format!("{flag}: {e} (want a whole number)"))
    };
    match flag {
        "--max-connections" => config.max_connections = number()?.max(1) as usize,
        "--max-conns-per-ip" => config.max_connections_per_ip = number()?.max(1) as usize,
        "--new-conns-per-ip" => config.new_connections_per_ip = number()?.max(1),
        "--events-per-poll" => config.events_per_poll = number()?.max(1) as usize,
        // A switch: callers without one (rest::options) pass it with an empty value.
        "--deflate" => return Ok(switch_option(config, flag)),
        "--limit-loopback" => {
            config.limit_loopback = match value {
                "true" | "yes" | "1" => true,
                "false" | "no" | "0" => false,
                _ => return Err(format!("{flag}: want true or false, not {value:?}")),
            }
        }
        _ => return Ok(false),
    }
    Ok(true)
}
