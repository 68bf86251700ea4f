//! The soak's report: a sample every `--report-every` seconds, then the end-of-run checks
//! and the final report.

use super::setup::Opened;
use super::state::{Soak, Stage};
use super::steady::{Drained, Steady};
use super::SoakOpts;
use crate::bench::Common;
use crate::probe::{ServerProbe, Window};
use crate::report::Report;

/// One `--report-every` sample: RSS and the counters so far.
pub(super) struct Sample {
    pub(super) t_s: f64,
    pub(super) rss_kib: u64,
}

/// Takes a sample, prints it (stderr line, JSON line on stdout) and restarts `window`.
pub(super) fn sample(
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

/// What the run measured, phase by phase, for the final report.
pub(super) struct Run {
    pub(super) opened: Opened,
    /// The heartbeat interval in seconds (0: none).
    pub(super) heartbeat_s: f64,
    pub(super) rss_before_kib: u64,
    pub(super) steady: Steady,
    pub(super) drained: Drained,
}

/// The end-of-run checks of what every session received.
struct Delivery {
    /// MESSAGE_CREATE ids the server handed out (first to last seen).
    created: u64,
    /// Messages missed at their start by sessions present from the start.
    head: u64,
    /// Messages missed at their end.
    tail: u64,
    /// Sessions not identified at the end.
    never: u64,
    /// Messages sent that no session received.
    undelivered: u64,
    /// Every event lost, all checks together.
    lost: u64,
    /// Events duplicated or malformed.
    dups: u64,
}

impl Delivery {
    fn check(h: &Soak) -> Self {
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
        Delivery {
            created,
            head,
            tail,
            never,
            undelivered,
            lost: h.lost() + head + tail + undelivered,
            dups: h.c.seq_dups + h.c.message_dups + h.c.malformed,
        }
    }
}

/// The RSS samples from the warm-up on: lowest, highest, and the spread in % of the
/// lowest (`None` with fewer than two samples).
struct RssAfterWarmup {
    min: Option<u64>,
    max: Option<u64>,
    spread_pct: Option<f64>,
}

impl RssAfterWarmup {
    fn of(samples: &[Sample], warmup_min: f64) -> Self {
        let after: Vec<u64> = samples
            .iter()
            .filter(|s| s.t_s + 1e-6 >= warmup_min * 60.0)
            .map(|s| s.rss_kib)
            .collect();
        let (min, max) = (after.iter().min().copied(), after.iter().max().copied());
        let spread_pct = match (min, max) {
            (Some(lo), Some(hi)) if after.len() >= 2 && lo > 0 => {
                Some((hi - lo) as f64 * 100.0 / lo as f64)
            }
            _ => None,
        };
        RssAfterWarmup {
            min,
            max,
            spread_pct,
        }
    }
}

/// The final report, with its verdict.
pub(super) fn finish(common: &Common, o: &SoakOpts, h: &Soak, run: &Run) -> Report {
    let d = Delivery::check(h);
    let rss = RssAfterWarmup::of(&run.steady.samples, o.warmup_min);
    let c = &h.c;
    let pass = c.drops == 0
        && d.lost == 0
        && d.dups == 0
        && d.never == 0
        && run.opened.sessions == o.conns
        && rss.spread_pct.is_some_and(|s| s <= o.max_spread_pct);
    let mut r = common.report("soak");
    set_run(&mut r, o, h, run, &d);
    set_events(&mut r, h, run, &d);
    set_heartbeats_cpu(&mut r, h, run);
    set_rss(&mut r, o, run, &rss);
    r.set("pass", pass);
    for (k, v) in [("first_drop", &h.first_drop), ("first_150", &h.first_150)] {
        if let Some(v) = v {
            r.set(k, v.as_str());
        }
    }
    r
}

/// The run's shape: sessions, times, rates.
fn set_run(r: &mut Report, o: &SoakOpts, h: &Soak, run: &Run, d: &Delivery) {
    r.set("conns", o.conns)
        .set("identified_at_start", run.opened.sessions)
        .set("identified_at_end", h.identified)
        .set("never_identified_at_end", d.never)
        .set_f("open_s", Some(run.opened.secs), 2)
        .set_f("heartbeat_s", Some(run.heartbeat_s), 3)
        .set_f("duration_s", Some(run.steady.cpu.wall.as_secs_f64()), 1)
        .set_f("churn_per_min", Some(o.churn_per_min), 1)
        .set_f("msgs_per_s", Some(o.msgs_per_s), 2);
}

/// Events, churn and resumes, drops, and every loss and duplicate.
fn set_events(r: &mut Report, h: &Soak, run: &Run, d: &Delivery) {
    let c = &h.c;
    r.set("events", c.events)
        .set("messages_sent", c.messages_sent)
        .set("messages_created", d.created)
        .set("churned", c.churned.iter().sum::<u64>())
        .set("churned_frame_fin_rst_wait", c.churned.to_vec())
        .set("resumes_ok", c.resumes_ok)
        .set("resumes_refused", c.resumes_refused)
        .set("resume_not_resumed", c.resume_not_resumed)
        .set("unexpected_drops", c.drops)
        .set(
            "unexpected_drops_in_steady",
            c.drops - run.steady.before.drops,
        )
        .set("fatal_150", c.fatal_150)
        .set("errors_150", c.errors_150)
        .set("open_failed", c.open_failed)
        .set("connect_errors", c.connect_errors)
        .set("lost_events", d.lost)
        .set("seq_gaps", c.seq_gaps)
        .set("message_gaps", c.message_gaps)
        .set("message_head_missing", d.head)
        .set("message_tail_missing", d.tail)
        .set("messages_undelivered", d.undelivered)
        .set("unrecoverable", c.unrecoverable)
        .set("seq_dups", c.seq_dups)
        .set("message_dups", c.message_dups)
        .set("malformed", c.malformed);
}

/// Heartbeats and their echoes, and CPU over the steady phase.
fn set_heartbeats_cpu(r: &mut Report, h: &Soak, run: &Run) {
    let (c, cpu) = (&h.c, &run.steady.cpu);
    let events = c.events - run.steady.before.events;
    r.set("heartbeats_sent", c.beats)
        .set("heartbeat_echoes", c.acks)
        .set("unechoed_at_end", run.drained.unechoed)
        .set_f("echo_rtt_p50_us", Some(h.rtt.quantile_us(0.5)), 1)
        .set_f("echo_rtt_p99_us", Some(h.rtt.quantile_us(0.99)), 1)
        .set_f("echo_rtt_max_us", Some(h.rtt.max_us()), 1)
        .set_f("server_cpu_pct", cpu.server_share().map(|s| s * 100.0), 2)
        .set_f("client_cpu_pct", Some(cpu.client_share() * 100.0), 2)
        .set_f("other_cpu", cpu.other_share(), 3)
        .set_f(
            "events_per_s",
            Some(events as f64 / cpu.wall.as_secs_f64()),
            1,
        );
}

/// The server's RSS: before, at the end, every sample, and after the warm-up.
fn set_rss(r: &mut Report, o: &SoakOpts, run: &Run, rss: &RssAfterWarmup) {
    let samples: Vec<u64> = run.steady.samples.iter().map(|s| s.rss_kib).collect();
    r.set("rss_before_kib", run.rss_before_kib)
        .set("rss_end_kib", run.drained.rss_end_kib)
        .set_f("report_every_s", Some(o.report_every), 1)
        .set("rss_kib", samples)
        .set_f("warmup_min", Some(o.warmup_min), 2)
        .set("rss_min_kib", rss.min)
        .set("rss_max_kib", rss.max)
        .set_f("rss_spread_pct_after_warmup", rss.spread_pct, 2);
}
