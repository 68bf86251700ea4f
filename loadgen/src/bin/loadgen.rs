//! `loadgen`: single-threaded mio WebSocket load generator for postern and its peers.
//!
//! Run `loadgen help` for the subcommands and options.

use postern_loadgen::bench::{echo, fanout, idle, sessions, soak, upgrades, Common};
use postern_loadgen::cli::Args;

const USAGE: &str = "\
usage: loadgen SUBCOMMAND --url ws://HOST:PORT/path [common options] [options]

common options:
  --pid PID              server process: report server_cpu and work per server CPU-second
  --sources IP,IP,...    bind client sockets to these source addresses, round-robin
  --label NAME           tag copied into the report (e.g. the server's name)
  --tag KEY=VALUE        extra field copied into the report (repeatable)
  --quiet                no progress lines on stderr

subcommands:
  upgrades  --conns-in-flight K --duration S [--warmup S] [--first-message | --chat TOKEN]
            [--close wait|frame|drop|rst]      (default wait: close frame, await the server's)
  echo      --conns C --pipeline P --size N --duration S [--warmup S] [--binary]
  idle      --conns N --pid PID [--hold S] [--conns-in-flight K] [--first-message]
            [--settle-ms MS] [--open-timeout S]
  fanout    --conns N --trigger-message TEXT --expect SUBSTRING [--join-message TEXT]
            [--first-message] [--rounds R] [--settle-ms MS] [--timeout S] [--conns-in-flight K]
  fanout    --chat TOKEN --conns N [--heartbeat-ms MS] [--rounds R] [--settle-ms MS] ...
            chat gateway: N members present; one more sends MESSAGE_CREATE each round
  sessions  --token TOKEN --conns N --pid PID [--heartbeat-ms MS] [--hold S]
            [--conns-in-flight K] [--settle-ms MS] [--open-timeout S]
            chat gateway: N identified sessions heartbeating, spread evenly; server CPU
            share over the hold, RSS per session, sessions closed
  soak      --token TOKEN --pid PID [--conns N] [--duration S] [--heartbeat-ms MS]
            [--churn-per-min K] [--msgs-per-s M] [--report-every S] [--warmup-min M]
            [--max-rss-spread-pct P] [--conns-in-flight K] [--settle-ms MS]
            [--open-timeout S] [--drain-timeout S]
            chat gateway: N sessions heartbeating for S seconds (default 15000, 600) under
            churn (K drops and resumes a minute, default 300) and M MESSAGE_CREATE a second
            (default 2): unexpected drops, events lost across resumes, server RSS every
            S seconds (default 60, flat within P % after M minutes); exit 1 unless it passes

output: progress on stderr, then a table and one JSON line per result on stdout.";

fn main() {
    if let Err(e) = run() {
        eprintln!("loadgen: {e}");
        std::process::exit(1);
    }
}

fn run() -> postern_loadgen::Result<()> {
    let mut args = Args::from_env();
    let Some(sub) = args.subcommand() else {
        return Err(format!("missing subcommand\n{USAGE}").into());
    };
    if sub == "help" || args.flag("--help") || args.flag("-h") {
        println!("{USAGE}");
        return Ok(());
    }
    let limit = postern_loadgen::sys::raise_nofile_limit()?;
    let common = Common::parse(&mut args)?;
    let report = match sub.as_str() {
        "upgrades" => {
            let o = upgrades::UpgradeOpts::parse(&mut args)?;
            args.finish()?;
            upgrades::run(&common, &o)?
        }
        "echo" => {
            let o = echo::EchoOpts::parse(&mut args)?;
            args.finish()?;
            check_fds(o.conns, limit)?;
            echo::run(&common, &o)?
        }
        "idle" => {
            let o = idle::IdleOpts::parse(&mut args)?;
            args.finish()?;
            check_fds(o.conns, limit)?;
            idle::run(&common, &o)?
        }
        "fanout" => {
            let o = fanout::FanoutOpts::parse(&mut args)?;
            args.finish()?;
            check_fds(o.conns + 1, limit)?;
            fanout::run(&common, &o)?
        }
        "sessions" => {
            let o = sessions::SessionsOpts::parse(&mut args)?;
            args.finish()?;
            check_fds(o.conns, limit)?;
            sessions::run(&common, &o)?
        }
        "soak" => {
            let o = soak::SoakOpts::parse(&mut args)?;
            args.finish()?;
            check_fds(o.conns + 64, limit)?;
            let report = soak::run(&common, &o)?;
            report.print();
            if report.get("pass") != Some(&serde_json::Value::Bool(true)) {
                return Err("soak failed (see pass and its figures above)".into());
            }
            return Ok(());
        }
        other => return Err(format!("unknown subcommand {other:?}\n{USAGE}").into()),
    };
    report.print();
    Ok(())
}

/// Fails early if `conns` sockets cannot fit under the file descriptor limit.
fn check_fds(conns: usize, limit: u64) -> postern_loadgen::Result<()> {
    if conns as u64 + 32 > limit {
        return Err(format!("{conns} connections need more than RLIMIT_NOFILE={limit}").into());
    }
    Ok(())
}
