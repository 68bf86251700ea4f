//! `sessions`: what identified chat sessions cost the server while they only heartbeat.
//!
//! Reads the server's `VmRSS`, opens N connections (at most `--conns-in-flight`
//! presenting at once, spread over `--sources`), presents each with the token and waits
//! for READY (`"f":140`). Every identified session then sends `{"f":120}` every
//! `--heartbeat-ms` (default: the HELLO's `hb_int`), at phases spread evenly over the
//! interval, so the server sees a steady N / interval heartbeats per second and never
//! a burst. Once all are identified and `--settle-ms` passed, it holds them for
//! `--hold` seconds and reports the server's CPU share over the hold (from
//! `/proc/PID`), its RSS per session, heartbeat echoes and their round trip, and the
//! sessions the server closed (must be 0).

use std::time::{Duration, Instant};

use super::chat::{self, Heartbeats};
use super::{note_error, secs, Common};
use crate::cli::Args;
use crate::client::{Action, Client, Closed, Handler, Message, Writer};
use crate::histogram::Histogram;
use crate::progress::Progress;
use crate::report::Report;

/// `sessions` options.
#[derive(Debug, Clone)]
pub struct SessionsOpts {
    /// The token every connection presents (`--token`).
    pub token: String,
    /// Sessions to hold (`--conns`).
    pub conns: usize,
    /// Connections opening (not yet identified) at once.
    pub in_flight: usize,
    /// Heartbeat interval in ms; `None`: the HELLO's `hb_int`.
    pub heartbeat_ms: Option<u64>,
    /// Measured seconds once all sessions are identified.
    pub hold: f64,
    /// Milliseconds between the last READY and the start of the hold.
    pub settle_ms: u64,
    /// Give up opening after this many seconds.
    pub open_timeout: f64,
}

impl SessionsOpts {
    /// Parses `--token --conns --conns-in-flight --heartbeat-ms --hold --settle-ms
    /// --open-timeout`.
    pub fn parse(args: &mut Args) -> crate::Result<Self> {
        Ok(Self {
            token: args.required("--token")?,
            conns: args.get("--conns", 1000)?,
            in_flight: args.get::<usize>("--conns-in-flight", 256)?.max(1),
            heartbeat_ms: args.opt("--heartbeat-ms")?,
            hold: args.get("--hold", 60.0)?,
            settle_ms: args.get("--settle-ms", 1000)?,
            open_timeout: args.get("--open-timeout", 120.0)?,
        })
    }
}

/// Where one connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Connecting, upgrading, or waiting for HELLO.
    Opening,
    /// Present sent, waiting for READY.
    Presented,
    /// READY received: heartbeating.
    Identified,
}

struct SessionsHandler {
    present: Vec<u8>,
    stages: Vec<Stage>,
    identified: usize,
    /// The first HELLO's `hb_int`.
    hb_int: Option<u64>,
    /// Created once the interval is known (the first HELLO, or `--heartbeat-ms`).
    beats: Option<Heartbeats>,
    /// Sessions expected (spreads the heartbeat phases).
    slots: usize,
    anchor: Instant,
    /// Heartbeat echoes received, and their round trips.
    acks: u64,
    rtt: Histogram,
    /// Other messages after READY: 130 events (ROOM_USER_ADD ...) and 150 errors.
    events: u64,
    errors_150: u64,
    first_150: Option<String>,
    /// Connections that failed before READY.
    failed: u64,
    /// Identified sessions the server (or the network) closed.
    closed: u64,
    first_error: Option<String>,
}

impl SessionsHandler {
    fn stage(&mut self, id: usize) -> &mut Stage {
        if self.stages.len() <= id {
            self.stages.resize(id + 1, Stage::Opening);
        }
        &mut self.stages[id]
    }
}

impl Handler for SessionsHandler {
    fn on_open(&mut self, id: usize, _out: &mut Writer, _now: Instant) -> Action {
        *self.stage(id) = Stage::Opening;
        Action::Keep
    }

    fn on_message(
        &mut self,
        id: usize,
        msg: Message<'_>,
        out: &mut Writer,
        now: Instant,
    ) -> Action {
        let code = chat::function_code(msg.data);
        match (*self.stage(id), code) {
            (_, Some(120)) => {
                self.acks += 1;
                if let Some(rtt) = self.beats.as_mut().and_then(|b| b.acked(id, now)) {
                    self.rtt.record(rtt);
                }
            }
            (_, Some(150)) => {
                self.errors_150 += 1;
                if self.first_150.is_none() {
                    self.first_150 = Some(String::from_utf8_lossy(msg.data).into_owned());
                }
            }
            (Stage::Opening, Some(100)) => {
                if self.hb_int.is_none() {
                    self.hb_int = chat::hb_int(msg.data);
                }
                if self.beats.is_none() {
                    let ms = self.hb_int.unwrap_or(20_000);
                    self.beats = Some(Heartbeats::new(
                        Duration::from_millis(ms),
                        self.slots,
                        self.anchor,
                    ));
                }
                out.text(&self.present);
                self.stages[id] = Stage::Presented;
            }
            (Stage::Presented, Some(140)) => {
                self.stages[id] = Stage::Identified;
                self.identified += 1;
                if let Some(beats) = self.beats.as_mut() {
                    beats.add(id, now);
                }
            }
            _ => self.events += 1,
        }
        Action::Keep
    }

    fn on_closed(&mut self, id: usize, why: Closed, _now: Instant) {
        if *self.stage(id) == Stage::Identified {
            self.identified -= 1;
            self.closed += 1;
            if let Some(beats) = self.beats.as_mut() {
                beats.remove(id);
            }
        } else {
            self.failed += 1;
        }
        self.stages[id] = Stage::Opening;
        note_error(&mut self.first_error, &why);
    }
}

/// Sends the heartbeats due by now and returns how many were sent.
fn beat(client: &mut Client, h: &mut SessionsHandler, due: &mut Vec<usize>) -> u64 {
    let Some(beats) = h.beats.as_mut() else {
        return 0;
    };
    due.clear();
    beats.take_due(Instant::now(), due);
    let mut sent = 0;
    for &id in due.iter() {
        if client.send_text(id, chat::HEARTBEAT, h) {
            sent += 1;
        }
    }
    sent
}

/// Polls until `until` (or `stop`), sending heartbeats on time; returns those sent.
fn run_until(
    client: &mut Client,
    h: &mut SessionsHandler,
    until: Instant,
    mut tick: impl FnMut(&mut Client, &mut SessionsHandler) -> crate::Result<bool>,
) -> crate::Result<u64> {
    let mut due = Vec::new();
    let mut sent = 0;
    loop {
        sent += beat(client, h, &mut due);
        let now = Instant::now();
        if now >= until || tick(client, h)? {
            return Ok(sent);
        }
        let mut wait = (until - now).min(Duration::from_millis(100));
        if let Some(next) = h.beats.as_mut().and_then(Heartbeats::next_due) {
            wait = wait.min(next.saturating_duration_since(now));
        }
        client.poll(h, wait)?;
    }
}

/// Runs the benchmark (needs `--pid`) and returns its report.
pub fn run(common: &Common, o: &SessionsOpts) -> crate::Result<Report> {
    let probe = common
        .probe
        .as_ref()
        .ok_or("sessions needs --pid PID of the server")?;
    let mut client = common.client()?;
    let start = Instant::now();
    let mut h = SessionsHandler {
        present: chat::present(&o.token),
        stages: Vec::new(),
        identified: 0,
        hb_int: None,
        beats: o
            .heartbeat_ms
            .map(|ms| Heartbeats::new(Duration::from_millis(ms), o.conns, start)),
        slots: o.conns,
        anchor: start,
        acks: 0,
        rtt: Histogram::new(),
        events: 0,
        errors_150: 0,
        first_150: None,
        failed: 0,
        closed: 0,
        first_error: None,
    };
    let max_errors = (o.conns as u64 / 20).max(100);
    let mut connect_errors = 0u64;
    let mut progress = Progress::new(common.quiet);

    // Open and identify every session.
    let rss_before = probe.rss_bytes()?;
    let open_window = common.start_window()?;
    let deadline = start + secs(o.open_timeout);
    let mut open_beats = run_until(&mut client, &mut h, deadline, |client, h| {
        if h.identified >= o.conns || h.failed + connect_errors > max_errors {
            return Ok(true);
        }
        let mut opening = client.len() - h.identified;
        while client.len() < o.conns && opening < o.in_flight {
            match client.connect() {
                Ok(id) => {
                    *h.stage(id) = Stage::Opening;
                    opening += 1;
                }
                Err(e) => {
                    connect_errors += 1;
                    h.first_error.get_or_insert_with(|| format!("connect: {e}"));
                    break;
                }
            }
        }
        if progress.due(Instant::now()) {
            progress.say(format_args!(
                "sessions: {}/{} identified, {} opening, {} failed, {} connect errors",
                h.identified,
                o.conns,
                client.len() - h.identified,
                h.failed,
                connect_errors
            ));
        }
        Ok(false)
    })?;
    let open_s = start.elapsed().as_secs_f64();
    let open_cpu = open_window.end()?;
    let identified = h.identified;
    if identified == 0 {
        let why = h.first_error.as_deref().unwrap_or("timeout");
        return Err(format!("no session was identified: {why}").into());
    }
    open_beats += run_until(
        &mut client,
        &mut h,
        Instant::now() + Duration::from_millis(o.settle_ms),
        |_, _| Ok(false),
    )?;
    let rss_open = probe.rss_bytes()?;
    let interval = h.beats.as_ref().map_or(0.0, |b| b.interval().as_secs_f64());
    progress.say(format_args!(
        "sessions: {identified} identified in {open_s:.1} s; holding {} s, a heartbeat \
         each every {interval} s",
        o.hold
    ));

    // The hold: heartbeats only.
    let (closed0, acks0) = (h.closed, h.acks);
    h.rtt.clear();
    let hold_window = common.start_window()?;
    let hold_start = Instant::now();
    let hold_end = hold_start + secs(o.hold);
    let mut next_say = hold_start;
    let hold_beats = run_until(&mut client, &mut h, hold_end, |_, h| {
        let now = Instant::now();
        if !common.quiet && now >= next_say {
            next_say = now + Duration::from_secs(5);
            eprintln!(
                "sessions: hold {:.0}/{} s: {} identified, {} heartbeat echoes, {} closed",
                (now - hold_start).as_secs_f64(),
                o.hold,
                h.identified,
                h.acks - acks0,
                h.closed - closed0
            );
        }
        Ok(false)
    })?;
    let hold_cpu = hold_window.end()?;
    let rss_hold = probe.rss_bytes()?;
    let hold_acks = h.acks - acks0;
    let closed_in_hold = h.closed - closed0;
    let unacked = h.beats.as_ref().map_or(0, Heartbeats::unacked);
    let still = h.identified;
    client.close_all();

    let per = |rss: u64| rss.saturating_sub(rss_before) as f64 / identified as f64;
    let share = hold_cpu.server_share();
    let hold_wall = hold_cpu.wall.as_secs_f64();
    let mut r = common.report("sessions");
    r.set("conns", o.conns)
        .set("identified", identified)
        .set("still_identified_after_hold", still)
        .set_f("heartbeat_s", Some(interval), 3)
        .set_f("hold_s", Some(hold_wall), 1)
        .set_f("hold_server_cpu", share, 5)
        .set_f("hold_server_cpu_pct", share.map(|s| s * 100.0), 2)
        .set_f("hold_server_cpu_s", hold_cpu.server_s, 3)
        .set("hold_heartbeats", hold_beats)
        .set("hold_heartbeat_echoes", hold_acks)
        .set_f("heartbeats_per_s", Some(hold_beats as f64 / hold_wall), 1)
        .set_f(
            "server_us_per_heartbeat",
            hold_cpu
                .server_s
                .filter(|_| hold_beats > 0)
                .map(|s| s * 1e6 / hold_beats as f64),
            2,
        )
        .set_f("echo_rtt_p50_us", Some(h.rtt.quantile_us(0.5)), 1)
        .set_f("echo_rtt_p99_us", Some(h.rtt.quantile_us(0.99)), 1)
        .set("unechoed_at_end", unacked)
        .set("rss_before_kib", rss_before / 1024)
        .set("rss_open_kib", rss_open / 1024)
        .set("rss_hold_kib", rss_hold / 1024)
        .set_f("rss_per_session_kib", Some(per(rss_open) / 1024.0), 2)
        .set_f(
            "rss_per_session_kib_after_hold",
            Some(per(rss_hold) / 1024.0),
            2,
        )
        .set_f("open_s", Some(open_s), 2)
        .set_f("handshakes_per_s", Some(identified as f64 / open_s), 1)
        .set_f(
            "handshakes_per_server_cpu_s",
            open_cpu.per_server_cpu_s(identified as f64),
            1,
        )
        .set("open_heartbeats", open_beats)
        .set_f("client_cpu", Some(hold_cpu.client_share()), 4)
        .set_f("other_cpu", hold_cpu.other_share(), 3)
        .set("events", h.events)
        .set("errors_150", h.errors_150)
        .set("closed", h.closed)
        .set("closed_in_hold", closed_in_hold)
        .set("failed", h.failed)
        .set("connect_errors", connect_errors);
    if let Some(e) = &h.first_150 {
        r.set("first_150", e.as_str());
    }
    if let Some(e) = &h.first_error {
        r.set("first_error", e.as_str());
    }
    Ok(r)
}
