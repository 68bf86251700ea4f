//! `fanout`: time for one broadcast to reach every member of a room.
//!
//! The room protocol is left to options: N member connections open (and, with
//! `--first-message`, wait for the server's first message), each sends
//! `--join-message` if given; after `--settle-ms`, one extra connection sends
//! `--trigger-message`. Every member counts the first text message received after
//! the trigger that contains `--expect`. Repeated `--rounds` times.
//!
//! With `--chat TOKEN` the chat gateway's protocol is spoken instead: every member and
//! the trigger connection present with the token (HELLO, `110`, READY) and so join the
//! channel `general`; each round the trigger sends a MESSAGE_CREATE whose content is
//! unique to the round, and a member counts when a message carrying that content
//! arrives (everything else, ROOM_USER_ADD events and heartbeat echoes, is read and
//! discarded). Members heartbeat every `--heartbeat-ms` (default: the HELLO's
//! `hb_int`), spread evenly and never while a round runs, so a long setup does not
//! time sessions out.
//!
//! `--burst B` (chat mode only): each round, one member sends B MESSAGE_CREATEs in a single
//! write (a different member each round, so no session meets the command rate limit), and a
//! member counts once it has all B; deliveries are members × B. The server then broadcasts
//! B messages in one turn and can hand each member all of them in one `writev`: this
//! measures a busy room, where the default (B = 1, from a connection outside the room)
//! measures a single message.
//!
//! With `--pid`, the server's CPU is read just before each trigger and again once the
//! last member has the message (nanoseconds from `/proc/PID/task/*/schedstat`):
//! `deliveries_per_server_cpu_s` divides by the sum of these round windows;
//! `window_deliveries_per_server_cpu_s` by the whole measured span, pauses between
//! rounds (and their heartbeats) included.

use std::time::{Duration, Instant};

use memchr::memmem::Finder;

use super::chat::{self, Heartbeats};
use super::{add_cpu, note_error, secs, Common};
use crate::cli::Args;
use crate::client::{Action, Client, Closed, Handler, Message, Writer};
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
    /// Sent by the extra connection to cause the broadcast (not with `--chat`).
    pub trigger: String,
    /// Substring identifying the broadcast (not with `--chat`).
    pub expect: String,
    /// Chat gateway mode: the token every connection presents.
    pub chat: Option<String>,
    /// Chat mode: heartbeat interval in ms (default: the HELLO's `hb_int`).
    pub heartbeat_ms: Option<u64>,
    /// Broadcasts to measure.
    pub rounds: usize,
    /// Milliseconds to wait after all joined, and between rounds.
    pub settle_ms: u64,
    /// Seconds a round may take before the missing members are given up.
    pub timeout: f64,
    /// Chat mode: messages per round, sent together by one member.
    pub burst: usize,
}

impl FanoutOpts {
    /// Parses the `fanout` options.
    pub fn parse(args: &mut Args) -> crate::Result<Self> {
        let chat = args.opt_str("--chat")?;
        let (trigger, expect) = match chat {
            Some(_) => (String::new(), String::new()),
            None => (
                args.required("--trigger-message")?,
                args.required("--expect")?,
            ),
        };
        Ok(Self {
            conns: args.get("--conns", 1000)?,
            in_flight: args.get::<usize>("--conns-in-flight", 256)?.max(1),
            first_message: args.flag("--first-message"),
            join: args.opt_str("--join-message")?,
            trigger,
            expect,
            chat,
            heartbeat_ms: args.opt("--heartbeat-ms")?,
            rounds: args.get::<usize>("--rounds", 5)?.max(1),
            settle_ms: args.get("--settle-ms", 500)?,
            timeout: args.get("--timeout", 10.0)?,
            burst: args.get::<usize>("--burst", 1)?.clamp(1, 100),
        })
    }
}

struct FanoutHandler {
    first_message: bool,
    /// Chat mode: the present message.
    present: Option<Vec<u8>>,
    /// Chat mode: heartbeats (created at the first HELLO, or from `--heartbeat-ms`).
    beats: Option<Heartbeats>,
    slots: usize,
    anchor: Instant,
    join: Option<Vec<u8>>,
    expect: Finder<'static>,
    trigger_id: Option<usize>,
    ready: Vec<bool>,
    members_ready: usize,
    trigger_ready: bool,
    /// Send time of the current trigger, while a round runs.
    armed: Option<Instant>,
    got: Vec<bool>,
    /// Messages of the current round each member has (for `--burst`).
    counts: Vec<u32>,
    /// Messages per round a member must have.
    burst: u32,
    got_now: usize,
    last: Duration,
    hist: Histogram,
    failed: u64,
    dropped: u64,
    first_error: Option<String>,
}

impl FanoutHandler {
    fn make_ready(&mut self, id: usize, out: &mut Writer, now: Instant) {
        if self.ready.len() <= id {
            self.ready.resize(id + 1, false);
            self.got.resize(id + 1, false);
            self.counts.resize(id + 1, 0);
        }
        if self.ready[id] {
            return;
        }
        self.ready[id] = true;
        if let Some(beats) = self.beats.as_mut() {
            beats.add(id, now);
        }
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
    fn on_open(&mut self, id: usize, out: &mut Writer, now: Instant) -> Action {
        if !self.first_message && self.present.is_none() {
            self.make_ready(id, out, now);
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
            match &self.present {
                None => self.make_ready(id, out, now),
                Some(present) => match chat::function_code(msg.data) {
                    Some(100) => {
                        out.text(present);
                        if self.beats.is_none() {
                            let ms = chat::hb_int(msg.data).unwrap_or(20_000);
                            self.beats = Some(Heartbeats::new(
                                Duration::from_millis(ms),
                                self.slots,
                                self.anchor,
                            ));
                        }
                    }
                    Some(140) => self.make_ready(id, out, now),
                    _ => {}
                },
            }
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
            self.counts[id] += 1;
            if self.counts[id] < self.burst {
                return Action::Keep;
            }
            self.got[id] = true;
            self.got_now += 1;
            let d = now - armed;
            self.hist.record(d);
            self.last = self.last.max(d);
        }
        Action::Keep
    }

    fn on_closed(&mut self, id: usize, why: Closed, _now: Instant) {
        if let Some(beats) = self.beats.as_mut() {
            beats.remove(id);
        }
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

/// Sends the chat heartbeats due by now (none while a round runs).
fn beat(client: &mut Client, h: &mut FanoutHandler, due: &mut Vec<usize>) {
    if h.armed.is_some() {
        return;
    }
    let Some(beats) = h.beats.as_mut() else {
        return;
    };
    due.clear();
    beats.take_due(Instant::now(), due);
    for &id in due.iter() {
        client.send_text(id, chat::HEARTBEAT, h);
    }
}

/// How long a poll may wait: at most `max`, less if a heartbeat is due sooner.
fn wait_for(h: &mut FanoutHandler, max: Duration) -> Duration {
    match h.beats.as_mut().and_then(Heartbeats::next_due) {
        Some(next) => max.min(next.saturating_duration_since(Instant::now())),
        None => max,
    }
}

/// Polls until `until`, heartbeating in chat mode.
fn pump(client: &mut Client, h: &mut FanoutHandler, until: Instant) -> crate::Result<()> {
    let mut due = Vec::new();
    loop {
        beat(client, h, &mut due);
        let now = Instant::now();
        if now >= until {
            return Ok(());
        }
        let wait = wait_for(h, (until - now).min(Duration::from_millis(100)));
        client.poll(h, wait)?;
    }
}

/// Opens `want` connections (counted as members or trigger by `h`) until `done`.
fn open_all(
    client: &mut Client,
    h: &mut FanoutHandler,
    want: usize,
    in_flight: usize,
    done: impl Fn(&FanoutHandler) -> bool,
    progress: &mut Progress,
) -> crate::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    let start_failed = h.failed;
    let mut due = Vec::new();
    while !done(h) {
        beat(client, h, &mut due);
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
        let wait = wait_for(h, Duration::from_millis(20));
        client.poll(h, wait)?;
        if progress.due(Instant::now()) {
            progress.say(format_args!("fanout: {} members ready", h.members_ready));
        }
    }
    Ok(())
}

/// Runs the benchmark and returns its report.
pub fn run(common: &Common, o: &FanoutOpts) -> crate::Result<Report> {
    let mut client = common.client()?;
    let anchor = Instant::now();
    let n = o.conns;
    let mut h = FanoutHandler {
        first_message: o.first_message,
        present: o.chat.as_deref().map(chat::present),
        beats: o
            .heartbeat_ms
            .filter(|_| o.chat.is_some())
            .map(|ms| Heartbeats::new(Duration::from_millis(ms), n + 1, anchor)),
        slots: n + 1,
        anchor,
        join: o.join.clone().map(String::into_bytes),
        expect: Finder::new(o.expect.as_bytes()).into_owned(),
        trigger_id: None,
        ready: Vec::new(),
        members_ready: 0,
        trigger_ready: false,
        armed: None,
        got: Vec::new(),
        counts: Vec::new(),
        burst: u32::try_from(o.burst).unwrap_or(1),
        got_now: 0,
        last: Duration::ZERO,
        hist: Histogram::new(),
        failed: 0,
        dropped: 0,
        first_error: None,
    };
    let mut progress = Progress::new(common.quiet);
    let open_start = Instant::now();
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
    let open_s = open_start.elapsed().as_secs_f64();
    pump(
        &mut client,
        &mut h,
        Instant::now() + Duration::from_millis(o.settle_ms),
    )?;

    let trigger_id = h.trigger_id.expect("trigger connected");
    let nonce = crate::rng::Rng::from_time().next_u64() & 0xff_ffff_ffff;
    let mut lasts = Vec::with_capacity(o.rounds);
    let (mut deliveries, mut missed) = (0u64, 0u64);
    let mut round_cpu_s = common.probe.as_ref().map(|_| 0.0);
    let window = common.start_window()?;
    if o.burst > 1 && o.chat.is_none() {
        return Err("fanout: --burst needs --chat".into());
    }
    for round in 1..=o.rounds {
        let (sender, messages) = match o.chat {
            Some(_) if o.burst > 1 => {
                // Unique per round; a member has the round when it has all B of them.
                let tag = format!("fanout-{nonce:x}-{round}-");
                h.expect = Finder::new(format!("\"{tag}").as_bytes()).into_owned();
                let members: Vec<usize> = (0..h.ready.len())
                    .filter(|&id| h.ready[id] && Some(id) != h.trigger_id)
                    .collect();
                let sender = *members
                    .get((round - 1) % members.len().max(1))
                    .ok_or("fanout: no member left to send")?;
                let burst = (1..=o.burst)
                    .map(|k| chat::message_create(&format!("{tag}{k}")))
                    .collect();
                (sender, burst)
            }
            Some(_) => {
                // Unique per round, so a late copy of an earlier round never counts.
                let content = format!("fanout-{nonce:x}-{round}");
                h.expect = Finder::new(format!("\"{content}\"").as_bytes()).into_owned();
                (trigger_id, vec![chat::message_create(&content)])
            }
            None => (trigger_id, vec![o.trigger.clone().into_bytes()]),
        };
        h.got.fill(false);
        h.counts.fill(0);
        (h.got_now, h.last) = (0, Duration::ZERO);
        let expected = h.members_ready;
        let cpu0 = common.probe.as_ref().map(|p| p.cpu_s()).transpose()?;
        h.armed = Some(Instant::now());
        if !client.send_texts(sender, &messages, &mut h) {
            return Err("fanout: the sending connection is gone".into());
        }
        let deadline = Instant::now() + secs(o.timeout);
        while h.got_now < h.members_ready && Instant::now() < deadline {
            client.poll(&mut h, Duration::from_millis(10))?;
        }
        let cpu1 = common.probe.as_ref().map(|p| p.cpu_s()).transpose()?;
        h.armed = None;
        let round_cpu = cpu0.zip(cpu1).map(|(a, b)| (b - a).max(0.0));
        if let (Some(total), Some(c)) = (round_cpu_s.as_mut(), round_cpu) {
            *total += c;
        }
        deliveries += (h.got_now * o.burst) as u64;
        missed += (expected.saturating_sub(h.got_now) * o.burst) as u64;
        lasts.push(h.last);
        progress.say(format_args!(
            "fanout: round {round}: {}/{expected} got it, last after {:.3} ms{}",
            h.got_now,
            h.last.as_secs_f64() * 1e3,
            round_cpu.map_or(String::new(), |c| format!(", server CPU {:.3} ms", c * 1e3))
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
    r.set("protocol", if o.chat.is_some() { "chat" } else { "text" })
        .set("conns", n)
        .set("rounds", o.rounds)
        .set("burst", o.burst)
        .set("deliveries", deliveries)
        .set("missed", missed)
        .set_f(
            "last_ms_p50",
            Some(lasts[lasts.len() / 2].as_secs_f64() * 1e3),
            3,
        )
        .set_f(
            "last_ms_min",
            lasts.first().map(|d| d.as_secs_f64() * 1e3),
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
        .set_f("p99_us", Some(h.hist.quantile_us(0.99)), 1)
        .set_f("round_server_cpu_ms", round_cpu_s.map(|s| s * 1e3), 3)
        .set_f(
            "deliveries_per_server_cpu_s",
            round_cpu_s
                .filter(|&s| s > 0.0)
                .map(|s| deliveries as f64 / s),
            1,
        )
        .set_f(
            "round_server_cpu",
            round_cpu_s.map(|s| s / busy.max(1e-9)),
            3,
        );
    add_cpu(
        &mut r,
        &cpu,
        deliveries as f64,
        "window_deliveries_per_server_cpu_s",
    );
    r.set_f("open_s", Some(open_s), 2)
        .set("failed", h.failed)
        .set("dropped", h.dropped);
    if let Some(e) = &h.first_error {
        r.set("first_error", e.as_str());
    }
    Ok(r)
}
