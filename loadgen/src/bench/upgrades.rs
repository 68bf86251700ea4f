//! `upgrades`: complete upgrades (or chat-gateway handshakes) per second with K
//! connections in flight: connect, upgrade, optionally wait for the first server
//! message or do the chat identify exchange, then close per `--close`.

use std::time::{Duration, Instant};

use super::{add_cpu, chat, note_error, secs, Common};
use crate::cli::Args;
use crate::client::{Action, CloseMode, Closed, Handler, Message, Writer};
use crate::histogram::Histogram;
use crate::progress::Progress;
use crate::report::Report;

/// When a connection counts as done.
#[derive(Debug, Clone)]
pub enum Goal {
    /// At the `101` (with a valid accept key).
    Upgrade,
    /// At the first server message (`--first-message`).
    FirstMessage,
    /// Chat handshake (`--chat TOKEN`): receive `"f":100`, send
    /// `{"f":110,"cnf":{"token":TOKEN}}`, receive a message containing `"f":140`.
    Chat(String),
}

/// `upgrades` options.
#[derive(Debug, Clone)]
pub struct UpgradeOpts {
    /// Connections in flight.
    pub in_flight: usize,
    /// Measured seconds.
    pub duration: f64,
    /// Unmeasured seconds before the window.
    pub warmup: f64,
    /// Completion criterion.
    pub goal: Goal,
    /// How finished connections are closed.
    pub close: CloseMode,
}

impl UpgradeOpts {
    /// Parses `--conns-in-flight --duration --warmup --first-message --chat --close`.
    pub fn parse(args: &mut Args) -> crate::Result<Self> {
        let first = args.flag("--first-message");
        let goal = match args.opt_str("--chat")? {
            Some(token) => Goal::Chat(token),
            None if first => Goal::FirstMessage,
            None => Goal::Upgrade,
        };
        Ok(Self {
            in_flight: args.get::<usize>("--conns-in-flight", 64)?.max(1),
            duration: args.get("--duration", 10.0)?,
            warmup: args.get("--warmup", 1.0)?,
            goal,
            close: args.get("--close", CloseMode::Wait)?,
        })
    }
}

/// Progress of one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Pending,
    /// Chat: identify sent, waiting for `"f":140`.
    Identified,
    Done,
}

struct UpgradeHandler {
    goal: Goal,
    close: CloseMode,
    identify: Vec<u8>,
    /// (start time, stage) per connection id.
    slots: Vec<(Instant, Stage)>,
    hist: Histogram,
    done: u64,
    failed: u64,
    first_error: Option<String>,
}

impl UpgradeHandler {
    fn start(&mut self, id: usize, now: Instant) {
        if self.slots.len() <= id {
            self.slots.resize(id + 1, (now, Stage::Pending));
        }
        self.slots[id] = (now, Stage::Pending);
    }

    fn complete(&mut self, id: usize, now: Instant) -> Action {
        let slot = &mut self.slots[id];
        self.hist.record(now - slot.0);
        slot.1 = Stage::Done;
        self.done += 1;
        Action::Close(self.close)
    }
}

impl Handler for UpgradeHandler {
    fn on_open(&mut self, id: usize, _out: &mut Writer, now: Instant) -> Action {
        match self.goal {
            Goal::Upgrade => self.complete(id, now),
            _ => Action::Keep,
        }
    }

    fn on_message(
        &mut self,
        id: usize,
        msg: Message<'_>,
        out: &mut Writer,
        now: Instant,
    ) -> Action {
        match (&self.goal, self.slots[id].1) {
            (Goal::FirstMessage, Stage::Pending) => self.complete(id, now),
            (Goal::Chat(_), Stage::Pending) if chat::has_f(msg.data, 100) => {
                out.text(&self.identify);
                self.slots[id].1 = Stage::Identified;
                Action::Keep
            }
            (Goal::Chat(_), Stage::Identified) if chat::has_f(msg.data, 140) => {
                self.complete(id, now)
            }
            _ => Action::Keep,
        }
    }

    fn on_closed(&mut self, id: usize, why: Closed, _now: Instant) {
        if self.slots[id].1 != Stage::Done {
            self.failed += 1;
            note_error(&mut self.first_error, &why);
        }
    }
}

/// Runs the benchmark and returns its report.
pub fn run(common: &Common, o: &UpgradeOpts) -> crate::Result<Report> {
    let mut client = common.client()?;
    let identify = match &o.goal {
        Goal::Chat(token) => chat::present(token),
        _ => Vec::new(),
    };
    let mut h = UpgradeHandler {
        goal: o.goal.clone(),
        close: o.close,
        identify,
        slots: Vec::new(),
        hist: Histogram::new(),
        done: 0,
        failed: 0,
        first_error: None,
    };
    let mut connect_errors = 0u64;
    let mut progress = Progress::new(common.quiet);
    let warm_end = Instant::now() + secs(o.warmup);
    let mut measuring: Option<(Instant, crate::probe::Window)> = None;
    let (mut last_done, mut last_at) = (0, Instant::now());
    loop {
        let now = Instant::now();
        match measuring {
            None if now >= warm_end => {
                h.hist.clear();
                (h.done, h.failed, connect_errors, last_done) = (0, 0, 0, 0);
                measuring = Some((now, common.start_window()?));
            }
            Some((start, _)) if now >= start + secs(o.duration) => break,
            _ => {}
        }
        while client.len() < o.in_flight {
            match client.connect() {
                Ok(id) => h.start(id, Instant::now()),
                Err(e) => {
                    connect_errors += 1;
                    h.first_error.get_or_insert_with(|| format!("connect: {e}"));
                    break;
                }
            }
        }
        if h.done == 0 && h.failed + connect_errors > 1000 {
            let why = h.first_error.as_deref().unwrap_or("?");
            return Err(format!("no upgrade succeeded, 1000+ failures: {why}").into());
        }
        client.poll(&mut h, Duration::from_millis(10))?;
        let now = Instant::now();
        if progress.due(now) {
            let rate = (h.done - last_done) as f64 / (now - last_at).as_secs_f64();
            progress.say(format_args!(
                "upgrades: {:>10.0}/s  p50 {:.0} us  failed {}  connect errors {}",
                rate,
                h.hist.quantile_us(0.5),
                h.failed,
                connect_errors
            ));
            (last_done, last_at) = (h.done, now);
        }
    }
    let (start, window) = measuring.expect("window started");
    let elapsed = start.elapsed().as_secs_f64();
    let cpu = window.end()?;
    client.close_all();

    let (bench, work_key) = match o.goal {
        Goal::Chat(_) => ("chat_handshakes", "handshakes_per_server_cpu_s"),
        _ => ("upgrades", "upgrades_per_server_cpu_s"),
    };
    let rate_key = match o.goal {
        Goal::Chat(_) => "handshakes_per_s",
        _ => "upgrades_per_s",
    };
    let until = match o.goal {
        Goal::Upgrade => "101",
        Goal::FirstMessage => "first_message",
        Goal::Chat(_) => "f140",
    };
    let mut r = common.report(bench);
    r.set("conns_in_flight", o.in_flight)
        .set("until", until)
        .set("close", o.close.name())
        .set_f("duration_s", Some(elapsed), 2)
        .set("completed", h.done)
        .set_f(rate_key, Some(h.done as f64 / elapsed), 1)
        .set_f("p50_us", Some(h.hist.quantile_us(0.5)), 1)
        .set_f("p99_us", Some(h.hist.quantile_us(0.99)), 1);
    add_cpu(&mut r, &cpu, h.done as f64, work_key);
    r.set("failed", h.failed)
        .set("connect_errors", connect_errors);
    if let Some(e) = &h.first_error {
        r.set("first_error", e.as_str());
    }
    Ok(r)
}
