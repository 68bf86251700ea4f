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

mod report;
mod setup;
mod state;
mod steady;

use std::time::Instant;

use super::Common;
use crate::cli::Args;
use crate::progress::Progress;
use crate::report::Report;

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

/// Runs the soak (needs `--pid`) and returns its final report: the set-up (every session
/// opened and identified, then a settle), the steady phase and the drain, then the checks.
pub fn run(common: &Common, o: &SoakOpts) -> crate::Result<Report> {
    let probe = common
        .probe
        .as_ref()
        .ok_or("soak needs --pid PID of the server")?;
    let mut client = common.client()?;
    let start = Instant::now();
    let mut h = setup::state(o, start);
    let mut progress = Progress::new(common.quiet);
    let rss_before_kib = probe.rss_bytes()? / 1024;
    let opened = setup::open_all(&mut client, &mut h, o, start, &mut progress)?;
    let window = common.start_window()?; // sample 0: CPU over the settle time
    setup::settle(&mut client, &mut h, o.settle_ms)?;
    let heartbeat_s = h.beats.as_ref().map_or(0.0, |b| b.interval().as_secs_f64());
    progress.say(format_args!(
        "soak: {} identified in {:.1} s; {} s of churn ({}/min) and messages ({}/s), \
         heartbeats every {heartbeat_s} s",
        opened.sessions, opened.secs, o.duration, o.churn_per_min, o.msgs_per_s
    ));
    let steady = steady::steady(common, probe, &mut client, &mut h, o, window)?;
    let drained = steady::drain(&mut client, &mut h, probe, o)?;
    let run = report::Run {
        opened,
        heartbeat_s,
        rss_before_kib,
        steady,
        drained,
    };
    Ok(report::finish(common, o, &h, &run))
}
