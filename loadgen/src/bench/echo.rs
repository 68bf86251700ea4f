//! `echo`: C connections each keep P messages of N bytes in flight to an echo server.
//!
//! Send times are kept per connection in a FIFO (echo servers answer in order), so
//! payloads stay fixed. Reported: msgs/s, MB/s of echoed payload (10^6 bytes, one
//! direction), latency p50/p99/p999, and msgs per server CPU-second.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::{add_cpu, note_error, pump, secs, Common};
use crate::cli::Args;
use crate::client::{Action, Closed, Handler, Message, Writer};
use crate::histogram::Histogram;
use crate::progress::Progress;
use crate::report::Report;
use crate::rng::Rng;

/// `echo` options.
#[derive(Debug, Clone)]
pub struct EchoOpts {
    /// Connections.
    pub conns: usize,
    /// Messages in flight per connection.
    pub pipeline: usize,
    /// Payload bytes per message.
    pub size: usize,
    /// Measured seconds.
    pub duration: f64,
    /// Unmeasured seconds before the window.
    pub warmup: f64,
    /// Binary instead of printable-ASCII text messages.
    pub binary: bool,
}

impl EchoOpts {
    /// Parses `--conns --pipeline --size --duration --warmup --binary`.
    pub fn parse(args: &mut Args) -> crate::Result<Self> {
        Ok(Self {
            conns: args.get("--conns", 100)?,
            pipeline: args.get::<usize>("--pipeline", 16)?.max(1),
            size: args.get("--size", 64)?,
            duration: args.get("--duration", 10.0)?,
            warmup: args.get("--warmup", 1.0)?,
            binary: args.flag("--binary"),
        })
    }
}

/// Per-run state shared by all connections.
struct EchoHandler {
    payload: Vec<u8>,
    binary: bool,
    pipeline: usize,
    /// Send times of the messages in flight, per connection id.
    in_flight: Vec<VecDeque<Instant>>,
    sending: bool,
    opened: usize,
    hist: Histogram,
    msgs: u64,
    bad: u64,
    closed: u64,
    first_error: Option<String>,
}

impl EchoHandler {
    fn send(&mut self, id: usize, out: &mut Writer, now: Instant) {
        if self.binary {
            out.binary(&self.payload);
        } else {
            out.text(&self.payload);
        }
        self.in_flight[id].push_back(now);
    }

    fn reset_counters(&mut self) {
        self.hist.clear();
        self.msgs = 0;
        self.bad = 0;
    }
}

impl Handler for EchoHandler {
    fn on_open(&mut self, id: usize, out: &mut Writer, now: Instant) -> Action {
        if self.in_flight.len() <= id {
            self.in_flight.resize_with(id + 1, VecDeque::new);
        }
        self.in_flight[id].clear();
        self.opened += 1;
        for _ in 0..self.pipeline {
            self.send(id, out, now);
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
        let Some(sent) = self.in_flight[id].pop_front() else {
            self.bad += 1; // unsolicited message
            return Action::Keep;
        };
        if msg.data.len() != self.payload.len() || msg.binary != self.binary {
            self.bad += 1;
        }
        self.hist.record(now - sent);
        self.msgs += 1;
        if self.sending {
            self.send(id, out, now);
        }
        Action::Keep
    }

    fn on_closed(&mut self, _id: usize, why: Closed, _now: Instant) {
        self.closed += 1;
        note_error(&mut self.first_error, &why);
    }
}

/// Printable ASCII (text) or random bytes (binary).
fn make_payload(size: usize, binary: bool) -> Vec<u8> {
    let mut rng = Rng::from_time();
    let mut payload = vec![0u8; size];
    rng.fill(&mut payload);
    if !binary {
        for b in &mut payload {
            *b = b' ' + *b % 95;
        }
    }
    payload
}

/// Runs the benchmark and returns its report.
pub fn run(common: &Common, o: &EchoOpts) -> crate::Result<Report> {
    let mut client = common.client()?;
    let mut h = EchoHandler {
        payload: make_payload(o.size, o.binary),
        binary: o.binary,
        pipeline: o.pipeline,
        in_flight: Vec::new(),
        sending: true,
        opened: 0,
        hist: Histogram::new(),
        msgs: 0,
        bad: 0,
        closed: 0,
        first_error: None,
    };
    for _ in 0..o.conns {
        client.connect()?;
    }
    let open_deadline = Instant::now() + Duration::from_secs(30);
    while h.opened < o.conns {
        if h.closed > 0 || Instant::now() > open_deadline {
            let why = h.first_error.as_deref().unwrap_or("timeout");
            return Err(
                format!("only {}/{} connections upgraded: {why}", h.opened, o.conns).into(),
            );
        }
        client.poll(&mut h, Duration::from_millis(100))?;
    }
    pump(&mut client, &mut h, Instant::now() + secs(o.warmup))?;
    h.reset_counters();
    let window = common.start_window()?;
    let start = Instant::now();
    let end = start + secs(o.duration);
    let mut progress = Progress::new(common.quiet);
    let (mut last_msgs, mut last_at) = (0, start);
    loop {
        let now = Instant::now();
        if now >= end || client.is_empty() {
            break;
        }
        client.poll(&mut h, (end - now).min(Duration::from_millis(100)))?;
        let now = Instant::now();
        if progress.due(now) {
            let rate = (h.msgs - last_msgs) as f64 / (now - last_at).as_secs_f64();
            progress.say(format_args!(
                "echo: {:>6.1}s {:>10.0} msgs/s  p50 {:.0} us  closed {}",
                (now - start).as_secs_f64(),
                rate,
                h.hist.quantile_us(0.5),
                h.closed
            ));
            (last_msgs, last_at) = (h.msgs, now);
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let cpu = window.end()?;
    h.sending = false;
    client.close_all();

    let mut r = common.report("echo");
    r.set("msg_size", o.size)
        .set("conns", o.conns)
        .set("pipeline", o.pipeline)
        .set("binary", o.binary)
        .set_f("duration_s", Some(elapsed), 2)
        .set("msgs", h.msgs)
        .set_f("msgs_per_s", Some(h.msgs as f64 / elapsed), 1)
        .set_f(
            "mb_per_s",
            Some(h.msgs as f64 * o.size as f64 / 1e6 / elapsed),
            2,
        )
        .set_f("p50_us", Some(h.hist.quantile_us(0.5)), 1)
        .set_f("p99_us", Some(h.hist.quantile_us(0.99)), 1)
        .set_f("p999_us", Some(h.hist.quantile_us(0.999)), 1)
        .set_f("max_us", Some(h.hist.max_us()), 1);
    add_cpu(&mut r, &cpu, h.msgs as f64, "msgs_per_server_cpu_s");
    r.set("bad_msgs", h.bad).set("closed", h.closed);
    if let Some(e) = &h.first_error {
        r.set("first_error", e.as_str());
    }
    Ok(r)
}
