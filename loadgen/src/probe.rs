//! Reads the server's CPU time and memory from `/proc/PID`, and turns two CPU readings
//! into the figures reported: server CPU share and work per server CPU-second.

use std::time::{Duration, Instant};

use crate::sys::clock_ticks_per_second;

/// Access to the server process's counters.
#[derive(Debug, Clone)]
pub struct ServerProbe {
    pid: u32,
}

impl ServerProbe {
    /// A probe for `pid`; fails now if `/proc/PID/stat` cannot be read.
    pub fn new(pid: u32) -> crate::Result<Self> {
        let probe = Self { pid };
        probe.cpu_s()?;
        Ok(probe)
    }

    /// CPU seconds (user + system) used by the process so far: the sum of its threads'
    /// `sum_exec_runtime` from `/proc/PID/task/*/schedstat` (nanoseconds), or, where
    /// schedstat is missing, utime + stime from `/proc/PID/stat` (clock ticks, 10 ms).
    /// The two count the same time; schedstat only rounds less, which matters for short
    /// windows (a fan-out round) and small shares (idle sessions).
    pub fn cpu_s(&self) -> crate::Result<f64> {
        if let Some(ns) = self.schedstat_ns() {
            return Ok(ns as f64 / 1e9);
        }
        Ok(self.cpu_ticks()? as f64 / clock_ticks_per_second() as f64)
    }

    /// Sum of `sum_exec_runtime` over the process's live threads, if readable.
    fn schedstat_ns(&self) -> Option<u64> {
        let mut total = 0u64;
        for entry in std::fs::read_dir(format!("/proc/{}/task", self.pid)).ok()? {
            let path = entry.ok()?.path().join("schedstat");
            let text = std::fs::read_to_string(path).ok()?;
            total += text.split_whitespace().next()?.parse::<u64>().ok()?;
        }
        (total > 0).then_some(total)
    }

    /// utime + stime of the process, in clock ticks.
    pub fn cpu_ticks(&self) -> crate::Result<u64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid))?;
        parse_cpu_ticks(&stat).ok_or_else(|| format!("unparsable /proc/{}/stat", self.pid).into())
    }

    /// Resident set size (`VmRSS`) in bytes.
    pub fn rss_bytes(&self) -> crate::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))?;
        parse_vm_rss_kib(&status)
            .map(|kib| kib * 1024)
            .ok_or_else(|| format!("no VmRSS in /proc/{}/status", self.pid).into())
    }
}

/// Readings at the start of a measured window: the server's CPU (with `--pid`), the
/// load generator's own CPU and the whole machine's busy time, so a report shows who
/// was saturated and whether other processes competed for the cores.
#[derive(Debug, Clone)]
pub struct Window {
    server: Option<(ServerProbe, f64)>,
    own_s: f64,
    host_busy_ticks: u64,
    at: Instant,
}

impl Window {
    /// Starts a window now.
    pub fn start(server: Option<&ServerProbe>) -> crate::Result<Self> {
        let server = match server {
            Some(p) => Some((p.clone(), p.cpu_s()?)),
            None => None,
        };
        Ok(Self {
            server,
            own_s: own_cpu_s(),
            host_busy_ticks: host_busy_ticks().unwrap_or(0),
            at: Instant::now(),
        })
    }

    /// CPU use since the start.
    pub fn end(&self) -> crate::Result<CpuUse> {
        let ticks_per_s = clock_ticks_per_second() as f64;
        let server_s = match &self.server {
            Some((p, s0)) => Some((p.cpu_s()? - s0).max(0.0)),
            None => None,
        };
        let host =
            host_busy_ticks().map(|t| t.saturating_sub(self.host_busy_ticks) as f64 / ticks_per_s);
        Ok(CpuUse {
            server_s,
            client_s: own_cpu_s() - self.own_s,
            host_busy_s: host,
            wall: self.at.elapsed(),
        })
    }
}

/// CPU used over a window.
#[derive(Debug, Clone, Copy)]
pub struct CpuUse {
    /// Server CPU seconds (user + system), with `--pid`.
    pub server_s: Option<f64>,
    /// The load generator's CPU seconds.
    pub client_s: f64,
    /// Busy CPU seconds of the whole machine (all cores, from `/proc/stat`).
    pub host_busy_s: Option<f64>,
    /// Wall time of the window.
    pub wall: Duration,
}

impl CpuUse {
    fn share(&self, s: f64) -> f64 {
        s / self.wall.as_secs_f64().max(1e-9)
    }

    /// Server CPU as a share of one core (1.0 = one core busy all along).
    pub fn server_share(&self) -> Option<f64> {
        self.server_s.map(|s| self.share(s))
    }

    /// Load generator CPU as a share of one core.
    pub fn client_share(&self) -> f64 {
        self.share(self.client_s)
    }

    /// CPU used by everything else on the machine, as a share of one core.
    pub fn other_share(&self) -> Option<f64> {
        let host = self.host_busy_s?;
        let other = host - self.client_s - self.server_s.unwrap_or(0.0);
        Some(self.share(other.max(0.0)))
    }

    /// `work` per server CPU-second (None without `--pid` or if no tick was measured).
    pub fn per_server_cpu_s(&self, work: f64) -> Option<f64> {
        self.server_s.filter(|&s| s > 0.0).map(|s| work / s)
    }
}

/// The calling process's user + system CPU seconds.
pub fn own_cpu_s() -> f64 {
    // SAFETY: getrusage fills the zeroed struct we own.
    let usage = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut u);
        u
    };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// Busy ticks of all cores: the `cpu` line of `/proc/stat` minus idle and iowait.
fn host_busy_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    parse_host_busy(stat.lines().next()?)
}

fn parse_host_busy(cpu_line: &str) -> Option<u64> {
    let fields: Vec<u64> = cpu_line
        .split_whitespace()
        .skip(1)
        .take(8) // user nice system idle iowait irq softirq steal
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    let total: u64 = fields.iter().sum();
    Some(total - fields.get(3)? - fields.get(4)?)
}

/// utime (field 14) + stime (field 15) from a `/proc/PID/stat` line. The command
/// name (field 2) may contain spaces, so fields are counted after the last `)`.
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace(); // starts at field 3 (state)
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// The `VmRSS:` value in KiB from `/proc/PID/status`.
fn parse_vm_rss_kib(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_spaces_in_name() {
        let stat = "1234 (my (weird) srv) S 1 2 3 4 5 6 7 8 9 10 250 31 0 0 20 0 1 0";
        assert_eq!(parse_cpu_ticks(stat), Some(281));
    }

    #[test]
    fn parses_vm_rss() {
        let status = "Name:\tx\nVmPeak:\t 100 kB\nVmRSS:\t    4321 kB\n";
        assert_eq!(parse_vm_rss_kib(status), Some(4321));
    }

    #[test]
    fn parses_host_busy() {
        assert_eq!(parse_host_busy("cpu  100 1 50 1000 7 2 3 4 0 0"), Some(160));
    }

    #[test]
    fn reads_own_process() {
        let probe = ServerProbe::new(std::process::id()).unwrap();
        assert!(probe.rss_bytes().unwrap() > 0);
        let w = Window::start(Some(&probe)).unwrap();
        let used = w.end().unwrap();
        assert!(used.server_s.unwrap() >= 0.0 && used.client_s >= 0.0);
    }
}
