//! `idle`: the server's memory per idle upgraded connection.
//!
//! Reads the server's `VmRSS` before opening any connection, opens N upgraded
//! connections (at most `--conns-in-flight` connecting at once, spread over
//! `--sources`), reads it again once all are up, holds them (answering pings) and
//! reads it a last time.

use std::time::{Duration, Instant};

use super::{note_error, pump, secs, Common};
use crate::cli::Args;
use crate::client::{Action, Closed, Handler, Message, Writer};
use crate::progress::Progress;
use crate::report::Report;

/// `idle` options.
#[derive(Debug, Clone)]
pub struct IdleOpts {
    /// Connections to hold open.
    pub conns: usize,
    /// Connections being opened at once.
    pub in_flight: usize,
    /// Seconds to hold them once all are open.
    pub hold: f64,
    /// Count a connection as up only after the first server message.
    pub first_message: bool,
    /// Milliseconds between the last upgrade and the second RSS reading.
    pub settle_ms: u64,
    /// Give up opening after this many seconds.
    pub open_timeout: f64,
}

impl IdleOpts {
    /// Parses `--conns --conns-in-flight --hold --first-message --settle-ms --open-timeout`.
    pub fn parse(args: &mut Args) -> crate::Result<Self> {
        Ok(Self {
            conns: args.get("--conns", 10_000)?,
            in_flight: args.get::<usize>("--conns-in-flight", 256)?.max(1),
            hold: args.get("--hold", 5.0)?,
            first_message: args.flag("--first-message"),
            settle_ms: args.get("--settle-ms", 500)?,
            open_timeout: args.get("--open-timeout", 120.0)?,
        })
    }
}

#[derive(Default)]
struct IdleHandler {
    first_message: bool,
    /// Whether each connection id is up.
    up: Vec<bool>,
    up_now: usize,
    /// Connections that failed before being up.
    failed: u64,
    /// Connections that closed after being up.
    dropped: u64,
    first_error: Option<String>,
}

impl IdleHandler {
    fn mark_up(&mut self, id: usize) {
        if self.up.len() <= id {
            self.up.resize(id + 1, false);
        }
        if !self.up[id] {
            self.up[id] = true;
            self.up_now += 1;
        }
    }
}

impl Handler for IdleHandler {
    fn on_open(&mut self, id: usize, _out: &mut Writer, _now: Instant) -> Action {
        if !self.first_message {
            self.mark_up(id);
        }
        Action::Keep
    }

    fn on_message(
        &mut self,
        id: usize,
        _msg: Message<'_>,
        _out: &mut Writer,
        _now: Instant,
    ) -> Action {
        self.mark_up(id);
        Action::Keep
    }

    fn on_closed(&mut self, id: usize, why: Closed, _now: Instant) {
        if self.up.get(id).copied().unwrap_or(false) {
            self.up[id] = false;
            self.up_now -= 1;
            self.dropped += 1;
        } else {
            self.failed += 1;
        }
        note_error(&mut self.first_error, &why);
    }
}

/// Runs the benchmark (needs `--pid`) and returns its report.
pub fn run(common: &Common, o: &IdleOpts) -> crate::Result<Report> {
    let probe = common
        .probe
        .as_ref()
        .ok_or("idle needs --pid PID of the server")?;
    let mut client = common.client()?;
    let mut h = IdleHandler {
        first_message: o.first_message,
        ..IdleHandler::default()
    };
    let max_errors = (o.conns as u64 / 20).max(100);
    let mut connect_errors = 0u64;
    let mut progress = Progress::new(common.quiet);

    let rss_before = probe.rss_bytes()?;
    let open_window = common.start_window()?;
    let start = Instant::now();
    let deadline = start + secs(o.open_timeout);
    while h.up_now < o.conns {
        let now = Instant::now();
        if now > deadline || h.failed + connect_errors > max_errors {
            break;
        }
        let mut connecting = client.len() - h.up_now;
        while client.len() < o.conns && connecting < o.in_flight {
            match client.connect() {
                Ok(_) => connecting += 1,
                Err(e) => {
                    connect_errors += 1;
                    h.first_error.get_or_insert_with(|| format!("connect: {e}"));
                    break;
                }
            }
        }
        client.poll(&mut h, Duration::from_millis(20))?;
        if progress.due(Instant::now()) {
            progress.say(format_args!(
                "idle: {}/{} up, {} connecting, {} failed, {} connect errors",
                h.up_now,
                o.conns,
                client.len() - h.up_now,
                h.failed,
                connect_errors
            ));
        }
    }
    let open_s = start.elapsed().as_secs_f64();
    let open_cpu = open_window.end()?;
    let up = h.up_now;
    if up == 0 {
        let why = h.first_error.as_deref().unwrap_or("timeout");
        return Err(format!("no connection came up: {why}").into());
    }
    pump(
        &mut client,
        &mut h,
        Instant::now() + Duration::from_millis(o.settle_ms),
    )?;
    let rss_open = probe.rss_bytes()?;
    progress.say(format_args!("idle: {up} up, holding {} s", o.hold));
    let hold_window = common.start_window()?;
    pump(&mut client, &mut h, Instant::now() + secs(o.hold))?;
    let hold_cpu = hold_window.end()?;
    let rss_hold = probe.rss_bytes()?;
    let still_up = h.up_now;
    client.close_all();

    let per_conn = rss_open.saturating_sub(rss_before) as f64 / up as f64;
    let per_conn_hold = rss_hold.saturating_sub(rss_before) as f64 / up as f64;
    let mut r = common.report("idle");
    r.set("conns", o.conns)
        .set("up", up)
        .set("still_up_after_hold", still_up)
        .set("rss_before_kib", rss_before / 1024)
        .set("rss_open_kib", rss_open / 1024)
        .set("rss_hold_kib", rss_hold / 1024)
        .set_f("rss_per_conn_bytes", Some(per_conn), 0)
        .set_f("rss_per_conn_kib", Some(per_conn / 1024.0), 2)
        .set_f(
            "rss_per_conn_kib_after_hold",
            Some(per_conn_hold / 1024.0),
            2,
        )
        .set_f("open_s", Some(open_s), 2)
        .set_f("upgrades_per_s", Some(up as f64 / open_s), 1)
        .set_f("open_server_cpu_s", open_cpu.server_s, 2)
        .set_f(
            "upgrades_per_server_cpu_s",
            open_cpu.per_server_cpu_s(up as f64),
            1,
        )
        .set_f("hold_server_cpu", hold_cpu.server_share(), 4)
        .set_f("other_cpu", open_cpu.other_share(), 3)
        .set("failed", h.failed)
        .set("dropped", h.dropped)
        .set("connect_errors", connect_errors);
    if let Some(e) = &h.first_error {
        r.set("first_error", e.as_str());
    }
    Ok(r)
}
