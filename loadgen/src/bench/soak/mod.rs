//! `soak`: many chat sessions for a long time, under churn and a message flow, checking
//! that no session is dropped and no event is lost, and that the server's RSS stays flat.
//!
//! Opens `--conns` sessions like `sessions` (at most `--conns-in-flight` opening at once,
//! spread over `--sources`); every identified session sends `{"f":120}` every
//! `--heartbeat-ms` (default: the HELLO's `hb_int`), at phases spread evenly over the
//! interval. Then, for `--duration` seconds:
//! - a message flow: `--msgs-per-s` MESSAGE_CREATE commands a second (`soak-<n>`), each
//!   from the next identified session in turn, so each connection stays far below the
//!   command budget and every session (all are in `general`) receives every message;
//! - churn: `--churn-per-min` times a minute, evenly spaced, a random identified session
//!   (not one that sent a message in the last 2 s: its command could be lost with the
//!   socket) loses its connection, by turns with a Close frame, a FIN, an RST, or a Close
//!   frame awaiting the server's; 200-2000 ms later it reconnects and, after HELLO,
//!   resumes from the last `s` it received.
//!
//! Every `--report-every` seconds a sample (server `VmRSS`, server CPU share over the
//! interval, counters) goes to stderr and as a JSON line to stdout. Afterwards churn and
//! messages stop, every session is brought back, and after `--settle-ms` the checks end.
//!
//! Checks on every session, for the whole run: each event's `s` is the previous one + 1
//! (`seq_gaps` counts the numbers skipped, `seq_dups` those repeated or going back, which
//! covers a replay that does not continue from last + 1); the MESSAGE_CREATE `id`s a
//! session sees follow each other (`message_gaps`, `message_dups`), start at the run's
//! first message for sessions present from the start (`message_head_missing`) and reach
//! the run's last one (`message_tail_missing`); a resume is answered by READY with
//! `"resumed":true` and the same session id (else `resume_not_resumed`). A refused resume
//! (4006) is a failure: the session presents afresh and `unrecoverable` counts the
//! refusal plus the messages between the old session's last and the new one's first.
//! `messages_undelivered`: MESSAGE_CREATEs sent that no session received. `lost_events`
//! is the sum of all those. `unexpected_drops`: connections the load generator did not
//! close (a fatal 150 and its Close count once) and failed reconnects; such a session
//! is resumed 200 ms later. `pass`: no drop, nothing lost or duplicated, every session
//! identified, and the RSS samples from `--warmup-min` on within
//! `--max-rss-spread-pct` of their minimum. The server keeps 256 events per session for
//! replay, so RSS grows until those buffers are full: that is the warm-up.

mod state;

use state::{churn, send_message, turn, Counts, Session, Soak, Stage};
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use super::chat::{self, Heartbeats};
use super::{secs, Common};
use crate::cli::Args;
use crate::histogram::Histogram;
use crate::probe::{ServerProbe, Window};
use crate::progress::Progress;
use crate::report::Report;
use crate::rng::Rng;

/// `soak` options.
#[derive(Debug, Clone)]
pub struct SoakOpts {
    /// The token every session presents (`--token`).
    pub token: String,
    /// Sessions (`--conns`).
    pub conns: usize,
    /// Connections opening at once while the sessions are opened (`--conns-in-flight`).
    pub in_flight: usize,
    /// Heartbeat interval in ms; `None`: the HELLO's `hb_int`.
    pub heartbeat_ms: Option<u64>,
    /// Seconds of the steady phase (`--duration`).
    pub duration: f64,
    /// Connections dropped and resumed per minute (`--churn-per-min`).
    pub churn_per_min: f64,
    /// MESSAGE_CREATE commands per second (`--msgs-per-s`).
    pub msgs_per_s: f64,
    /// Seconds between two samples (`--report-every`).
    pub report_every: f64,
    /// Samples before this minute of the steady phase are warm-up (`--warmup-min`).
    pub warmup_min: f64,
    /// Largest RSS spread after warm-up that passes, in % (`--max-rss-spread-pct`).
    pub max_spread_pct: f64,
    /// Milliseconds between the last READY and the steady phase, and after the drain.
    pub settle_ms: u64,
    /// Give up opening after this many seconds (`--open-timeout`).
    pub open_timeout: f64,
    /// Give up bringing every session back after this many seconds (`--drain-timeout`).
    pub drain_timeout: f64,
}

impl SoakOpts {
    /// Parses `--token --conns --conns-in-flight --heartbeat-ms --duration --churn-per-min
    /// --msgs-per-s --report-every --warmup-min --max-rss-spread-pct --settle-ms
    /// --open-timeout --drain-timeout`.
    pub fn parse(args: &mut Args) -> crate::Result<Self> {
        Ok(Self {
            token: args.required("--token")?,
            conns: args.get::<usize>("--conns", 15_000)?.max(1),
            in_flight: args.get::<usize>("--conns-in-flight", 256)?.max(1),
            heartbeat_ms: args.opt("--heartbeat-ms")?,
            duration: args.get("--duration", 600.0)?,
            churn_per_min: args.get("--churn-per-min", 300.0)?,
            msgs_per_s: args.get("--msgs-per-s", 2.0)?,
            report_every: args.get::<f64>("--report-every", 60.0)?.max(1.0),
            warmup_min: args.get("--warmup-min", 3.0)?,
            max_spread_pct: args.get("--max-rss-spread-pct", 5.0)?,
            settle_ms: args.get("--settle-ms", 2000)?,
            open_timeout: args.get("--open-timeout", 300.0)?,
            drain_timeout: args.get("--drain-timeout", 60.0)?,
        })
    }
}

/// One `--report-every` sample: RSS and the counters so far.
struct Sample {
    t_s: f64,
    rss_kib: u64,
}

/// Takes a sample, prints it (stderr line, JSON line on stdout) and restarts `window`.
fn sample(
    common: &Common,
    probe: &ServerProbe,
    h: &Soak,
    t_s: f64,
    window: &mut Window,
) -> crate::Result<Sample> {
    let rss_kib = probe.rss_bytes()? / 1024;
    let cpu = window.end()?;
    *window = common.start_window()?;
    let share = cpu.server_share().map(|s| s * 100.0);
    let c = &h.c;
    let resumes = c.resumes_ok;
    if !common.quiet {
        eprintln!(
            "soak: min {:.1}: rss {rss_kib} KiB, server cpu {:.2}%, {} identified, {} events, \
             {} msgs, {resumes} resumes ok, {} refused, {} drops, {} lost",
            t_s / 60.0,
            share.unwrap_or(f64::NAN),
            h.identified,
            c.events,
            c.messages_sent,
            c.resumes_refused,
            c.drops,
            h.lost()
        );
    }
    let mut r = common.report("soak_sample");
    r.set_f("minute", Some(t_s / 60.0), 2)
        .set("rss_kib", rss_kib)
        .set_f("server_cpu_pct", share, 2)
        .set_f("client_cpu_pct", Some(cpu.client_share() * 100.0), 2)
        .set_f("other_cpu", cpu.other_share(), 3)
        .set("identified", h.identified)
        .set("events", c.events)
        .set("messages_sent", c.messages_sent)
        .set("churned", c.churned.iter().sum::<u64>())
        .set("resumes_ok", resumes)
        .set("resumes_refused", c.resumes_refused)
        .set("unexpected_drops", c.drops)
        .set("lost_so_far", h.lost())
        .set("heartbeat_echoes", c.acks);
    println!("{}", r.json());
    Ok(Sample { t_s, rss_kib })
}

/// Runs the soak (needs `--pid`) and returns its final report.
pub fn run(common: &Common, o: &SoakOpts) -> crate::Result<Report> {
    let probe = common
        .probe
        .as_ref()
        .ok_or("soak needs --pid PID of the server")?;
    let mut client = common.client()?;
    let start = Instant::now();
    let mut h = Soak {
        token: o.token.clone(),
        present: chat::present(&o.token),
        sessions: vec![Session::default(); o.conns],
        by_conn: Vec::new(),
        identified: 0,
        beats: o
            .heartbeat_ms
            .map(|ms| Heartbeats::new(Duration::from_millis(ms), o.conns, start)),
        due: Vec::new(),
        slots: o.conns,
        anchor: start,
        rtt: Histogram::new(),
        retry: (0..o.conns).rev().collect(),
        reconnects: BinaryHeap::new(),
        steady: false,
        msg_min: None,
        msg_max: 0,
        c: Counts::default(),
        rng: Rng::from_time(),
        first_drop: None,
        first_150: None,
    };
    let mut progress = Progress::new(common.quiet);
    let rss_before = probe.rss_bytes()? / 1024;

    // Open and identify every session.
    let deadline = start + secs(o.open_timeout);
    let max_errors = (o.conns as u64 / 20).max(100);
    while h.identified < o.conns && Instant::now() < deadline {
        if h.c.open_failed + h.c.connect_errors > max_errors {
            break;
        }
        while client.len() - h.identified < o.in_flight {
            let Some(i) = h.retry.pop() else { break };
            match client.connect() {
                Ok(conn) => h.attach(conn, i),
                Err(e) => {
                    h.c.connect_errors += 1;
                    h.first_drop.get_or_insert_with(|| format!("connect: {e}"));
                    h.retry.push(i);
                    break;
                }
            }
        }
        let tick = Instant::now() + Duration::from_millis(100);
        turn(&mut client, &mut h, tick)?;
        if progress.due(Instant::now()) {
            progress.say(format_args!(
                "soak: {}/{} identified, {} opening, {} failed",
                h.identified,
                o.conns,
                client.len() - h.identified,
                h.c.open_failed + h.c.connect_errors
            ));
        }
    }
    let open_s = start.elapsed().as_secs_f64();
    let opened = h.identified;
    if opened == 0 {
        let why = h.first_drop.as_deref().unwrap_or("timeout");
        return Err(format!("no session was identified: {why}").into());
    }
    let mut window = common.start_window()?; // sample 0: CPU over the settle time
    let settle = Instant::now() + Duration::from_millis(o.settle_ms);
    while Instant::now() < settle {
        turn(&mut client, &mut h, settle)?;
    }
    let hb_s = h.beats.as_ref().map_or(0.0, |b| b.interval().as_secs_f64());
    progress.say(format_args!(
        "soak: {opened} identified in {open_s:.1} s; {} s of churn ({}/min) and messages \
         ({}/s), heartbeats every {hb_s} s",
        o.duration, o.churn_per_min, o.msgs_per_s
    ));

    // The steady phase.
    h.steady = true;
    let c0 = h.c.clone();
    let t0 = Instant::now();
    let end = t0 + secs(o.duration);
    let steady_window = common.start_window()?;
    let mut samples = vec![sample(common, probe, &h, 0.0, &mut window)?];
    let msg_every = (o.msgs_per_s > 0.0).then(|| secs(1.0 / o.msgs_per_s));
    let churn_every = (o.churn_per_min > 0.0).then(|| secs(60.0 / o.churn_per_min));
    let report_every = secs(o.report_every);
    let far = end + Duration::from_secs(3600);
    let mut next_msg = if msg_every.is_some() { t0 } else { far };
    let mut next_churn = churn_every.map_or(far, |d| t0 + d / 2);
    let mut next_sample = t0 + report_every;
    let mut cursor = 0usize;
    loop {
        let now = Instant::now();
        if now >= next_sample {
            let t_s = (next_sample - t0).as_secs_f64();
            samples.push(sample(common, probe, &h, t_s, &mut window)?);
            next_sample += report_every;
        }
        if now >= end {
            break;
        }
        while let Some(d) = msg_every.filter(|_| next_msg <= now) {
            send_message(&mut client, &mut h, &mut cursor, now);
            next_msg += d;
        }
        while let Some(d) = churn_every.filter(|_| next_churn <= now) {
            churn(&mut client, &mut h, now);
            next_churn += d;
        }
        let until = next_msg.min(next_churn).min(next_sample).min(end);
        turn(&mut client, &mut h, until)?;
    }
    let steady_cpu = steady_window.end()?;

    // Drain: every session back, then the last messages delivered.
    let drain_end = Instant::now() + secs(o.drain_timeout);
    let away = |h: &Soak| {
        h.sessions
            .iter()
            .filter(|s| !matches!(s.stage, Stage::Identified | Stage::New))
            .count()
    };
    while away(&h) > 0 && Instant::now() < drain_end {
        turn(&mut client, &mut h, drain_end)?;
    }
    let settle = Instant::now() + Duration::from_millis(o.settle_ms);
    while Instant::now() < settle {
        turn(&mut client, &mut h, settle)?;
    }
    let rss_end = probe.rss_bytes()? / 1024;
    let unechoed = h.beats.as_ref().map_or(0, Heartbeats::unacked);
    client.close_all();

    // End-of-run checks.
    let (first, last) = (h.msg_min.unwrap_or(1), h.msg_max);
    let created = (last + 1).saturating_sub(first);
    let (mut head, mut tail, mut never) = (0u64, 0u64, 0u64);
    for s in &h.sessions {
        if s.id == 0 || s.stage != Stage::Identified {
            never += 1;
            continue;
        }
        if s.fresh {
            head += s.first_msg.unwrap_or(last + 1).saturating_sub(first);
        }
        tail += s.last_msg.map_or(0, |m| last.saturating_sub(m));
    }
    let undelivered = h.c.messages_sent.saturating_sub(created);
    let lost = h.lost() + head + tail + undelivered;
    let dups = h.c.seq_dups + h.c.message_dups + h.c.malformed;
    let after: Vec<u64> = samples
        .iter()
        .filter(|s| s.t_s + 1e-6 >= o.warmup_min * 60.0)
        .map(|s| s.rss_kib)
        .collect();
    let (rmin, rmax) = (after.iter().min().copied(), after.iter().max().copied());
    let spread = match (rmin, rmax) {
        (Some(lo), Some(hi)) if after.len() >= 2 && lo > 0 => {
            Some((hi - lo) as f64 * 100.0 / lo as f64)
        }
        _ => None,
    };
    let c = &h.c;
    let pass = c.drops == 0
        && lost == 0
        && dups == 0
        && never == 0
        && opened == o.conns
        && spread.is_some_and(|s| s <= o.max_spread_pct);

    let wall = steady_cpu.wall.as_secs_f64();
    let mut r = common.report("soak");
    r.set("conns", o.conns)
        .set("identified_at_start", opened)
        .set("identified_at_end", h.identified)
        .set("never_identified_at_end", never)
        .set_f("open_s", Some(open_s), 2)
        .set_f("heartbeat_s", Some(hb_s), 3)
        .set_f("duration_s", Some(wall), 1)
        .set_f("churn_per_min", Some(o.churn_per_min), 1)
        .set_f("msgs_per_s", Some(o.msgs_per_s), 2)
        .set("events", c.events)
        .set("messages_sent", c.messages_sent)
        .set("messages_created", created)
        .set("churned", c.churned.iter().sum::<u64>())
        .set("churned_frame_fin_rst_wait", c.churned.to_vec())
        .set("resumes_ok", c.resumes_ok)
        .set("resumes_refused", c.resumes_refused)
        .set("resume_not_resumed", c.resume_not_resumed)
        .set("unexpected_drops", c.drops)
        .set("unexpected_drops_in_steady", c.drops - c0.drops)
        .set("fatal_150", c.fatal_150)
        .set("errors_150", c.errors_150)
        .set("open_failed", c.open_failed)
        .set("connect_errors", c.connect_errors)
        .set("lost_events", lost)
        .set("seq_gaps", c.seq_gaps)
        .set("message_gaps", c.message_gaps)
        .set("message_head_missing", head)
        .set("message_tail_missing", tail)
        .set("messages_undelivered", undelivered)
        .set("unrecoverable", c.unrecoverable)
        .set("seq_dups", c.seq_dups)
        .set("message_dups", c.message_dups)
        .set("malformed", c.malformed)
        .set("heartbeats_sent", c.beats)
        .set("heartbeat_echoes", c.acks)
        .set("unechoed_at_end", unechoed)
        .set_f("echo_rtt_p50_us", Some(h.rtt.quantile_us(0.5)), 1)
        .set_f("echo_rtt_p99_us", Some(h.rtt.quantile_us(0.99)), 1)
        .set_f("echo_rtt_max_us", Some(h.rtt.max_us()), 1)
        .set_f(
            "server_cpu_pct",
            steady_cpu.server_share().map(|s| s * 100.0),
            2,
        )
        .set_f("client_cpu_pct", Some(steady_cpu.client_share() * 100.0), 2)
        .set_f("other_cpu", steady_cpu.other_share(), 3)
        .set_f(
            "events_per_s",
            Some((c.events - c0.events) as f64 / wall),
            1,
        )
        .set("rss_before_kib", rss_before)
        .set("rss_end_kib", rss_end)
        .set_f("report_every_s", Some(o.report_every), 1)
        .set(
            "rss_kib",
            samples.iter().map(|s| s.rss_kib).collect::<Vec<_>>(),
        )
        .set_f("warmup_min", Some(o.warmup_min), 2)
        .set("rss_min_kib", rmin)
        .set("rss_max_kib", rmax)
        .set_f("rss_spread_pct_after_warmup", spread, 2)
        .set("pass", pass);
    for (k, v) in [("first_drop", &h.first_drop), ("first_150", &h.first_150)] {
        if let Some(v) = v {
            r.set(k, v.as_str());
        }
    }
    Ok(r)
}
