//! The load generator's subcommands, one module each, and the options they share.

pub mod chat;
pub mod echo;
pub mod fanout;
pub mod idle;
pub mod sessions;
pub mod soak;
pub mod upgrades;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::cli::Args;
use crate::client::{Client, Handler};
use crate::probe::{CpuUse, ServerProbe, Window};
use crate::report::Report;
use crate::url::WsUrl;

/// Options every subcommand takes.
pub struct Common {
    /// Target (`--url ws://HOST:PORT/path`).
    pub url: WsUrl,
    /// Server process to measure (`--pid PID`).
    pub probe: Option<ServerProbe>,
    /// Source addresses to bind, round-robin (`--sources 127.0.0.1,127.0.0.2`).
    pub sources: Vec<IpAddr>,
    /// Free-form tag copied into the report (`--label NAME`), e.g. the server's name.
    pub label: Option<String>,
    /// Extra `key=value` fields copied into the report (`--tag case=echo64`, repeatable).
    pub tags: Vec<(String, String)>,
    /// No progress lines (`--quiet`).
    pub quiet: bool,
}

impl Common {
    /// Parses the shared options.
    pub fn parse(args: &mut Args) -> crate::Result<Self> {
        let url = WsUrl::parse(&args.required::<String>("--url")?)?;
        let probe = args
            .opt::<u32>("--pid")?
            .map(ServerProbe::new)
            .transpose()?;
        let sources = match args.opt_str("--sources")? {
            Some(list) => list
                .split(',')
                .filter(|s| !s.is_empty())
                .map(|s| {
                    s.trim()
                        .parse()
                        .map_err(|e| format!("bad source {s:?}: {e}"))
                })
                .collect::<Result<Vec<IpAddr>, _>>()?,
            None => Vec::new(),
        };
        let mut tags = Vec::new();
        while let Some(tag) = args.opt_str("--tag")? {
            let (k, v) = tag.split_once('=').ok_or("--tag wants KEY=VALUE")?;
            tags.push((k.to_string(), v.to_string()));
        }
        Ok(Self {
            url,
            probe,
            sources,
            tags,
            label: args.opt_str("--label")?,
            quiet: args.flag("--quiet"),
        })
    }

    /// A fresh client for the target.
    pub fn client(&self) -> crate::Result<Client> {
        Ok(Client::new(self.url.clone(), self.sources.clone())?)
    }

    /// A report for `bench`, tagged with the label and URL.
    pub fn report(&self, bench: &str) -> Report {
        let mut r = Report::new(bench);
        if let Some(label) = &self.label {
            r.set("label", label.as_str());
        }
        for (k, v) in &self.tags {
            r.set(k, v.as_str());
        }
        r.set("url", format!("ws://{}{}", self.url.host, self.url.path));
        r
    }

    /// Starts a measured CPU window (server CPU only with `--pid`).
    pub fn start_window(&self) -> crate::Result<Window> {
        Window::start(self.probe.as_ref())
    }
}

/// Adds `server_cpu` (share of one core; `null` without `--pid`), `server_cpu_s`,
/// `<key>` (work per server CPU-second), `client_cpu` (the load generator's share of
/// one core) and `other_cpu` (all other busy CPU on the machine, share of one core:
/// other processes plus interrupt/softirq time charged to no process, part of which is
/// the loopback traffic itself; well above ~0.2 means the figures were disturbed).
pub fn add_cpu(r: &mut Report, cpu: &CpuUse, work: f64, key: &str) {
    r.set_f("server_cpu", cpu.server_share(), 3);
    r.set_f("server_cpu_s", cpu.server_s, 2);
    r.set_f(key, cpu.per_server_cpu_s(work), 1);
    r.set_f("client_cpu", Some(cpu.client_share()), 3);
    r.set_f("other_cpu", cpu.other_share(), 3);
}

/// Polls `client` until `until`, in slices of at most 100 ms.
pub fn pump<H: Handler>(client: &mut Client, h: &mut H, until: Instant) -> crate::Result<()> {
    loop {
        let now = Instant::now();
        if now >= until {
            return Ok(());
        }
        client.poll(h, (until - now).min(Duration::from_millis(100)))?;
    }
}

/// Seconds as a `Duration` (for `--duration 2.5`).
pub fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.max(0.0))
}

/// Text of the first error seen, kept for the failure message.
pub fn note_error(slot: &mut Option<String>, why: &crate::client::Closed) {
    if slot.is_none() {
        *slot = Some(format!("{why:?}"));
    }
}
