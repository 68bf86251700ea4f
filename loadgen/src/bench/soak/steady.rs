//! The soak's loop: the steady phase (messages, churn and samples on a schedule), then
//! the drain that brings every session back.

use std::time::{Duration, Instant};

use super::report::{sample, Sample};
use super::setup::settle;
use super::state::{churn, send_message, turn, Counts, Soak, Stage};
use super::SoakOpts;
use crate::bench::chat::Heartbeats;
use crate::bench::{secs, Common};
use crate::client::Client;
use crate::probe::{CpuUse, ServerProbe, Window};

/// What the steady phase leaves for the report.
pub(super) struct Steady {
    /// The counters when it began.
    pub(super) before: Counts,
    /// CPU used over it.
    pub(super) cpu: CpuUse,
    /// Every sample, the first at its start.
    pub(super) samples: Vec<Sample>,
}

/// When the steady phase's next message, churn and sample are due, and its end.
struct Schedule {
    t0: Instant,
    end: Instant,
    msg_every: Option<Duration>,
    churn_every: Option<Duration>,
    report_every: Duration,
    next_msg: Instant,
    next_churn: Instant,
    next_sample: Instant,
}

impl Schedule {
    /// A steady phase starting at `t0`: the first message at once, the first churn half
    /// an interval in, the first sample (after the one at `t0`) one interval in.
    fn new(o: &SoakOpts, t0: Instant) -> Self {
        let end = t0 + secs(o.duration);
        let msg_every = (o.msgs_per_s > 0.0).then(|| secs(1.0 / o.msgs_per_s));
        let churn_every = (o.churn_per_min > 0.0).then(|| secs(60.0 / o.churn_per_min));
        let report_every = secs(o.report_every);
        let far = end + Duration::from_secs(3600);
        Schedule {
            t0,
            end,
            msg_every,
            churn_every,
            report_every,
            next_msg: if msg_every.is_some() { t0 } else { far },
            next_churn: churn_every.map_or(far, |d| t0 + d / 2),
            next_sample: t0 + report_every,
        }
    }

    /// When something is next due.
    fn next_wake(&self) -> Instant {
        self.next_msg
            .min(self.next_churn)
            .min(self.next_sample)
            .min(self.end)
    }
}

/// The steady phase: for `o.duration` seconds, the message flow and the churn, and a
/// sample every `o.report_every` seconds (`window`: the CPU window of the first sample).
pub(super) fn steady(
    common: &Common,
    probe: &ServerProbe,
    client: &mut Client,
    h: &mut Soak,
    o: &SoakOpts,
    mut window: Window,
) -> crate::Result<Steady> {
    h.steady = true;
    let before = h.c.clone();
    let mut s = Schedule::new(o, Instant::now());
    let steady_window = common.start_window()?;
    let mut samples = vec![sample(common, probe, h, 0.0, &mut window)?];
    let mut cursor = 0usize;
    loop {
        let now = Instant::now();
        if now >= s.next_sample {
            let t_s = (s.next_sample - s.t0).as_secs_f64();
            samples.push(sample(common, probe, h, t_s, &mut window)?);
            s.next_sample += s.report_every;
        }
        if now >= s.end {
            break;
        }
        while let Some(d) = s.msg_every.filter(|_| s.next_msg <= now) {
            send_message(client, h, &mut cursor, now);
            s.next_msg += d;
        }
        while let Some(d) = s.churn_every.filter(|_| s.next_churn <= now) {
            churn(client, h, now);
            s.next_churn += d;
        }
        turn(client, h, s.next_wake())?;
    }
    let cpu = steady_window.end()?;
    Ok(Steady {
        before,
        cpu,
        samples,
    })
}

/// What the drain leaves for the report.
pub(super) struct Drained {
    /// The server's RSS once every session is back and settled.
    pub(super) rss_end_kib: u64,
    /// Heartbeats not echoed by then.
    pub(super) unechoed: usize,
}

/// Brings every session back (at most `o.drain_timeout` seconds), lets the last
/// messages arrive (`o.settle_ms`), then closes every connection.
pub(super) fn drain(
    client: &mut Client,
    h: &mut Soak,
    probe: &ServerProbe,
    o: &SoakOpts,
) -> crate::Result<Drained> {
    let drain_end = Instant::now() + secs(o.drain_timeout);
    let away = |h: &Soak| {
        h.sessions
            .iter()
            .filter(|s| !matches!(s.stage, Stage::Identified | Stage::New))
            .count()
    };
    while away(h) > 0 && Instant::now() < drain_end {
        turn(client, h, drain_end)?;
    }
    settle(client, h, o.settle_ms)?;
    let rss_end_kib = probe.rss_bytes()? / 1024;
    let unechoed = h.beats.as_ref().map_or(0, Heartbeats::unacked);
    client.close_all();
    Ok(Drained {
        rss_end_kib,
        unechoed,
    })
}
