//! `fanout`: time for one broadcast to reach every member of a room.
//!
//! The room protocol is left to options: N member connections open (and, with
//! `--first-message`, wait for the server's first message), each sends
//! `--join-message` if given; after `--settle-ms`, one extra connection sends
//! `--trigger-message`. Every member counts the first text message received after
//! the trigger that contains `--expect`. Repeated `--rounds` times.

use std::time::{Duration, Instant};

use memchr::memmem::Finder;

use super::{add_cpu, note_error, pump, secs, Common};
use crate::cli::Args;
use crate::client::{Action, Closed, Handler, Message, Writer};
use crate::histogram::Histogram;
use crate::progress::Progress;
use crate::report::Report;

/// `fanout` options.
#[derive(Debug, Clone)]
pub struct FanoutOpts {
    /// Room members.
    pub conns: usize,
    /// Connections being opened at once.
    pub in_flight: usize,
    /// Wait for the server's first message before joining.
    pub first_message: bool,
    /// Sent by each member once ready.
    pub join: Option<String>,
    /// Sent by the extra connection to cause the broadcast.
    pub trigger: String,
    /// Substring identifying the broadcast.
    pub expect: String,
    /// Broadcasts to measure.
    pub rounds: usize,
    /// Milliseconds to wait after all joined, and between rounds.
    pub settle_ms: u64,
    /// Seconds a round may take before the missing members are given up.
    pub timeout: f64,
}

impl FanoutOpts {
    /// Parses the `fanout` options.
    pub fn parse(args: &mut Args) -> crate::Result<Self> {
        Ok(Self {
            conns: args.get("--conns", 1000)?,
            in_flight: args.get::<usize>("--conns-in-flight", 256)?.max(1),
            first_message: args.flag("--first-message"),
            join: args.opt_str("--join-message")?,
            trigger: args.required("--trigger-message")?,
            expect: args.required("--expect")?,
            rounds: args.get::<usize>("--rounds", 5)?.max(1),
            settle_ms: args.get("--settle-ms", 500)?,
            timeout: args.get("--timeout", 10.0)?,
        })
    }
}

struct FanoutHandler {
    first_message: bool,
    join: Option<Vec<u8>>,
    expect: Finder<'static>,
    trigger_id: Option<usize>,
    ready: Vec<bool>,
    members_ready: usize,
    trigger_ready: bool,
    /// Send time of the current trigger, while a round runs.
    armed: Option<Instant>,
    got: Vec<bool>,
    got_now: usize,
    last: Duration,
    hist: Histogram,
    failed: u64,
    dropped: u64,
    first_error: Option<String>,
}

impl FanoutHandler {
    fn make_ready(&mut self, id: usize, out: &mut Writer) {
        if self.ready.len() <= id {
            self.ready.resize(id + 1, false);
            self.got.resize(id + 1, false);
        }
        if self.ready[id] {
            return;
        }
        self.ready[id] = true;
        if Some(id) == self.trigger_id {
            self.trigger_ready = true;
        } else {
            self.members_ready += 1;
            if let Some(join) = &self.join {
                out.text(join);
            }
        }
    }
}

impl Handler for FanoutHandler {
    fn on_open(&mut self, id: usize, out: &mut Writer, _now: Instant) -> Action {
        if !self.first_message {
            self.make_ready(id, out);
        }
        Action::Keep
    }

    fn on_message(
        &mut self,
        id: usize,
        msg: Message<'_>,
        out: &mut Writer,
        now: Instant,
    ) -> Action {
        if !self.ready.get(id).copied().unwrap_or(false) {
            self.make_ready(id, out);
            return Action::Keep;
        }
        let Some(armed) = self.armed else {
            return Action::Keep;
        };
        if Some(id) != self.trigger_id
            && !self.got[id]
            && !msg.binary
            && self.expect.find(msg.data).is_some()
        {
            self.got[id] = true;
            self.got_now += 1;
            let d = now - armed;
            self.hist.record(d);
            self.last = self.last.max(d);
        }
        Action::Keep
    }

    fn on_closed(&mut self, id: usize, why: Closed, _now: Instant) {
        if self.ready.get(id).copied().unwrap_or(false) {
            self.ready[id] = false;
            self.dropped += 1;
            if Some(id) == self.trigger_id {
                self.trigger_ready = false;
            } else {
                self.members_ready -= 1;
            }
        } else {
            self.failed += 1;
        }
        note_error(&mut self.first_error, &why);
    }
}

/// Opens `want` connections (counted as members or trigger by `h`) until `done`.
fn open_all(
    client: &mut crate::client::Client,
    h: &mut FanoutHandler,
    want: usize,
    in_flight: usize,
    done: impl Fn(&FanoutHandler) -> bool,
    progress: &mut Progress,
) -> crate::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    let start_failed = h.failed;
    while !done(h) {
        if Instant::now() > deadline || h.failed - start_failed > 100 {
            let why = h.first_error.as_deref().unwrap_or("timeout");
            return Err(format!("fanout: could not open connections: {why}").into());
        }
        let ready = h.members_ready + usize::from(h.trigger_ready);
        let mut connecting = client.len().saturating_sub(ready);
        while client.len() < want && connecting < in_flight {
            client.connect()?;
            connecting += 1;
        }
        client.poll(h, Duration::from_millis(20))?;
        if progress.due(Instant::now()) {
            progress.say(format_args!("fanout: {} members ready", h.members_ready));
        }
    }
    Ok(())
}

/// Runs the benchmark and returns its report.
pub fn run(common: &Common, o: &FanoutOpts) -> crate::Result<Report> {
    let mut client = common.client()?;
    let mut h = FanoutHandler {
        first_message: o.first_message,
        join: o.join.clone().map(String::into_bytes),
        expect: Finder::new(o.expect.as_bytes()).into_owned(),
        trigger_id: None,
        ready: Vec::new(),
        members_ready: 0,
        trigger_ready: false,
        armed: None,
        got: Vec::new(),
        got_now: 0,
        last: Duration::ZERO,
        hist: Histogram::new(),
        failed: 0,
        dropped: 0,
        first_error: None,
    };
    let mut progress = Progress::new(common.quiet);
    let n = o.conns;
    open_all(
        &mut client,
        &mut h,
        n,
        o.in_flight,
        |h| h.members_ready >= n,
        &mut progress,
    )?;
    h.trigger_id = Some(client.connect()?);
    open_all(
        &mut client,
        &mut h,
        n + 1,
        1,
        |h| h.trigger_ready,
        &mut progress,
    )?;
    pump(
        &mut client,
        &mut h,
        Instant::now() + Duration::from_millis(o.settle_ms),
    )?;

    let trigger_id = h.trigger_id.expect("trigger connected");
    let mut lasts = Vec::with_capacity(o.rounds);
    let (mut deliveries, mut missed) = (0u64, 0u64);
    let window = common.start_window()?;
    for round in 1..=o.rounds {
        h.got.fill(false);
        (h.got_now, h.last) = (0, Duration::ZERO);
        let expected = h.members_ready;
        h.armed = Some(Instant::now());
        if !client.send_text(trigger_id, o.trigger.as_bytes(), &mut h) {
            return Err("fanout: trigger connection is gone".into());
        }
        let deadline = Instant::now() + secs(o.timeout);
        while h.got_now < h.members_ready && Instant::now() < deadline {
            client.poll(&mut h, Duration::from_millis(10))?;
        }
        h.armed = None;
        deliveries += h.got_now as u64;
        missed += expected.saturating_sub(h.got_now) as u64;
        lasts.push(h.last);
        progress.say(format_args!(
            "fanout: round {round}: {}/{expected} got it, last after {:.3} ms",
            h.got_now,
            h.last.as_secs_f64() * 1e3
        ));
        if round < o.rounds {
            pump(
                &mut client,
                &mut h,
                Instant::now() + Duration::from_millis(o.settle_ms),
            )?;
        }
    }
    let cpu = window.end()?;
    client.close_all();

    let busy: f64 = lasts.iter().map(Duration::as_secs_f64).sum();
    lasts.sort();
    let mut r = common.report("fanout");
    r.set("conns", n)
        .set("rounds", o.rounds)
        .set("deliveries", deliveries)
        .set("missed", missed)
        .set_f(
            "last_ms_p50",
            Some(lasts[lasts.len() / 2].as_secs_f64() * 1e3),
            3,
        )
        .set_f(
            "last_ms_max",
            lasts.last().map(|d| d.as_secs_f64() * 1e3),
            3,
        )
        .set_f(
            "deliveries_per_s",
            Some(deliveries as f64 / busy.max(1e-9)),
            1,
        )
        .set_f("p50_us", Some(h.hist.quantile_us(0.5)), 1)
        .set_f("p99_us", Some(h.hist.quantile_us(0.99)), 1);
    add_cpu(
        &mut r,
        &cpu,
        deliveries as f64,
        "deliveries_per_server_cpu_s",
    );
    r.set("failed", h.failed).set("dropped", h.dropped);
    if let Some(e) = &h.first_error {
        r.set("first_error", e.as_str());
    }
    Ok(r)
}
