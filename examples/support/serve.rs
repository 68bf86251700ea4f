//! Start-up shared by the example servers: the command line ([`parse`], with the options
//! every example takes in [`ServeOptions`]), the log backend, bind, SIGINT/SIGTERM →
//! graceful shutdown, `listening on ADDR` on stderr, run until the reactor stops
//! ([`serve`]), or the reactors ([`serve_reactors`], for `--reactors N`).

use clap::{Args, CommandFactory, Parser};
use postern::{App, Config, Reactor, Reactors};
use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;

/// The options every example takes: where to listen, the connection limits of
/// [`postern::Config`] (README's table), its poll size and permessage-deflate. Flattened into each example's parser; the default
/// of `--listen` is the example's own, given to [`parse`]. New shared options go here.
#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "Listener and connection limits (every example)")]
pub struct ServeOptions {
    /// Address to listen on (port 0: any free port)
    #[arg(long, value_name = "ADDR")]
    pub listen: SocketAddr,
    /// Upgraded connections at once; beyond it the upgrade is answered 503
    #[arg(long, value_name = "N", value_parser = at_least_one,
          default_value_t = Config::default().max_connections)]
    pub max_connections: usize,
    /// Open sockets per source address; beyond it 429
    #[arg(long, value_name = "N", value_parser = at_least_one,
          default_value_t = Config::default().max_connections_per_ip)]
    pub max_conns_per_ip: usize,
    /// New connections per second per source address; beyond it 429 with Retry-After: 1
    #[arg(long, value_name = "N", value_parser = at_least_one,
          default_value_t = Config::default().new_connections_per_ip as usize)]
    pub new_conns_per_ip: usize,
    /// Apply the two per-address limits to loopback clients (127.0.0.0/8, ::1) too
    #[arg(long, value_name = "true|false", value_parser = true_or_false,
          action = clap::ArgAction::Set, default_value_t = Config::default().limit_loopback)]
    pub limit_loopback: bool,
    /// Readiness events taken per poll (a tuning knob; polled again, up to 16 times, while
    /// full, before any deadline is judged)
    #[arg(long, value_name = "N", value_parser = at_least_one,
          default_value_t = Config::default().events_per_poll)]
    pub events_per_poll: usize,
    /// Reactors (one thread each) sharing the port with SO_REUSEPORT; 0 or `auto`: one per
    /// available core. The gateway examples refuse more than 1 until the bus between their
    /// engines exists
    #[arg(long, value_name = "N|auto", value_parser = reactor_count, default_value = "1")]
    pub reactors: usize,
    /// Negotiate permessage-deflate (RFC 7692) with clients that offer it; the payload
    /// limit then bounds the inflated size
    #[arg(long)]
    pub deflate: bool,
}

impl ServeOptions {
    /// `base` with these connection limits, and permessage-deflate's defaults if `--deflate`.
    pub fn config(&self, base: Config) -> Config {
        Config {
            max_connections: self.max_connections,
            max_connections_per_ip: self.max_conns_per_ip,
            new_connections_per_ip: u32::try_from(self.new_conns_per_ip).unwrap_or(u32::MAX),
            limit_loopback: self.limit_loopback,
            events_per_poll: self.events_per_poll,
            deflate: if self.deflate {
                Some(postern::http::DeflateConfig::default())
            } else {
                base.deflate
            },
            ..base
        }
    }

    /// How many reactors `--reactors` asks for (`auto` resolved to the available cores).
    pub fn reactor_count(&self) -> usize {
        match self.reactors {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }
}

/// `auto` (as 0) or a whole number of reactors up to 1024 (0 also means one per core).
fn reactor_count(value: &str) -> Result<usize, String> {
    if value == "auto" {
        return Ok(0);
    }
    let n: u16 = value
        .parse()
        .map_err(|e| format!("{e} (want a whole number or auto)"))?;
    match n {
        0..=1024 => Ok(usize::from(n)),
        _ => Err("at most 1024 reactors".into()),
    }
}

/// Parses the command line into `C`, an example's parser that flattens [`ServeOptions`],
/// with `listen` as the default of `--listen`. A flag given twice takes its last value.
/// `--help` prints every flag with its default and exits 0; an unknown flag or a bad value
/// prints an error naming the flag and exits 2 (clap's status for usage errors).
#[allow(dead_code)] // chat calls parse_matches
pub fn parse<C: Parser>(listen: &'static str) -> C {
    parse_matches(listen).0
}

/// [`parse`], also giving clap's matches (for the order of repeated flags).
pub fn parse_matches<C: Parser>(listen: &'static str) -> (C, clap::ArgMatches) {
    let mut command = command::<C>(listen);
    let matches = command.get_matches_mut();
    let parsed = C::from_arg_matches(&matches).unwrap_or_else(|e| e.format(&mut command).exit());
    (parsed, matches)
}

/// Exits 2 with `message` as a usage error of the command line [`parse`] read (for a value
/// that parsed but was refused afterwards, such as a too-long token).
#[allow(dead_code)] // not every example checks values after parsing
pub fn usage_error<C: CommandFactory>(listen: &'static str, message: String) -> ! {
    command::<C>(listen)
        .error(clap::error::ErrorKind::ValueValidation, message)
        .exit()
}

/// `C`'s command with `listen` as the default of `--listen`, the last of a repeated flag
/// winning (as with the hand-written parsers before).
fn command<C: CommandFactory>(listen: &'static str) -> clap::Command {
    C::command()
        .args_override_self(true)
        .mut_arg("listen", |arg| arg.required(false).default_value(listen))
}

/// A count of at least one: a whole number up to 2^32 - 1, where 0 is taken as 1.
pub fn at_least_one(value: &str) -> Result<usize, String> {
    let n: u32 = value
        .parse()
        .map_err(|e| format!("{e} (want a whole number)"))?;
    Ok((n as usize).max(1))
}

/// `true`/`yes`/`1` or `false`/`no`/`0`.
fn true_or_false(value: &str) -> Result<bool, String> {
    match value {
        "true" | "yes" | "1" => Ok(true),
        "false" | "no" | "0" => Ok(false),
        _ => Err("want true or false".into()),
    }
}

/// Installs the log backend, once: `env_logger` on stderr, filtered by `RUST_LOG` (for
/// example `RUST_LOG=debug` or `RUST_LOG=postern=info`), at `warn` when it is unset (the
/// library's warnings are resource exhaustion, which an operator must see unasked).
fn init_logs() {
    let env = env_logger::Env::default().default_filter_or("warn");
    // Fails only if a logger is installed already: then that one stays.
    let _ = env_logger::Builder::from_env(env).try_init();
}

/// Starts a thread that turns the first SIGINT or SIGTERM into a graceful shutdown (calls
/// `shutdown`), and a second one into an immediate exit.
pub fn shutdown_on_signals(shutdown: impl Fn() + Send + 'static) {
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
                shutdown();
            } else {
                std::process::exit(130);
            }
        }
    });
}

/// Installs the log backend, binds `options.listen`, installs the signal handling, prints
/// `listening on ADDR`, and runs `app` on one reactor until a graceful shutdown completes.
/// `name` prefixes error messages. More than one reactor (`--reactors`) is refused with
/// exit status 2: `app` is one application, and a gateway's engines cannot act as one
/// gateway across reactors yet (independent engines would silently split its rooms).
#[allow(dead_code)] // echo serves with serve_reactors
pub fn serve<A: App>(name: &str, options: &ServeOptions, config: Config, app: A) -> ExitCode {
    init_logs();
    let count = options.reactor_count();
    if count > 1 {
        let _ = writeln!(
            std::io::stderr(),
            "{name}: --reactors {count}: this server runs one reactor (its sessions, rooms \
             and presence cannot span reactors yet); use --reactors 1"
        );
        return ExitCode::from(2);
    }
    serve_one(name, options.listen, config, app)
}

/// [`serve`] on `listen`, without the check.
fn serve_one<A: App>(name: &str, listen: SocketAddr, config: Config, app: A) -> ExitCode {
    let mut reactor = match Reactor::bind(listen, config, app) {
        Ok(reactor) => reactor,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "{name}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let remote = reactor.remote();
    shutdown_on_signals(move || remote.shutdown());
    let _ = writeln!(std::io::stderr(), "listening on {}", reactor.local_addr());
    match reactor.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "{name}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// [`serve`] for an application of independent connections: `--reactors N` reactors on
/// one port (SO_REUSEPORT), reactor `i` serving `factory(i)`; with one reactor exactly
/// [`serve`]. SIGINT/SIGTERM shuts every reactor down gracefully; exits 0 once all have
/// drained, 1 if a reactor panicked (its panic printed on stderr, the others shut down
/// gracefully first) or failed.
#[allow(dead_code)] // only echo serves independent connections
pub fn serve_reactors<A, F>(
    name: &str,
    options: &ServeOptions,
    config: Config,
    factory: F,
) -> ExitCode
where
    A: App + 'static,
    F: Fn(usize) -> A + Send + Sync + 'static,
{
    init_logs();
    let count = options.reactor_count();
    if count == 1 {
        return serve_one(name, options.listen, config, factory(0));
    }
    let reactors = match Reactors::spawn(options.listen, config, count, factory) {
        Ok(reactors) => reactors,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "{name}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let handle = reactors.handle();
    shutdown_on_signals(move || handle.shutdown());
    let _ = writeln!(std::io::stderr(), "listening on {}", reactors.local_addr());
    match reactors.join() {
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
