//! Every limit and interval of the reactor, each with its default and what happens past it.

use crate::time::Millis;
use std::fmt;

/// The largest payload limit accepted: 16 MiB.
pub const MAX_PAYLOAD_LIMIT: usize = 16 * 1024 * 1024;

/// Reactor settings. Build with `Config::default()` and change fields; [`Config::validate`]
/// is called by the reactor on start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Upgraded WebSocket connections served at once (default 65,536). An upgrade beyond it
    /// is answered `503 Service Unavailable` and closed.
    pub max_connections: usize,
    /// Sockets still in their HTTP phase at once (default 32,768). A connection accepted
    /// beyond it is answered `503` at once and closed, without a slot.
    pub max_pending_handshakes: usize,
    /// The listen backlog passed to the OS (default 4,096; Linux caps it at
    /// `net.core.somaxconn`). A connect storm beyond it waits in SYN retries.
    pub listen_backlog: i32,
    /// Sockets one source address may hold at once (default 256). A connection beyond it
    /// is answered `429 Too Many Requests` at its request and closed. See `limit_loopback`.
    pub max_connections_per_ip: usize,
    /// New connections one source address may open per second (default 32, as a bucket of
    /// 32 refilled continuously). Excess connections are answered `429` (with
    /// `Retry-After: 1`) at their request and closed.
    pub new_connections_per_ip: u32,
    /// Whether the per-address limits apply to loopback clients too (default false: a
    /// gateway behind a local proxy sees every client as loopback, and local load tests
    /// open tens of thousands of sockets from it).
    pub limit_loopback: bool,
    /// Largest frame payload and largest reassembled message, in bytes (default 4,096; at
    /// most 16 MiB). Refused from the frame header with close 1009.
    pub max_payload: usize,
    /// Bytes queued for one connection that it has not read yet (default 1 MiB). Past it the
    /// connection is a slow reader: its unsent data is dropped and it is closed with 1008.
    /// Before that verdict the backlog is offered to the socket, so only bytes the kernel
    /// will not take count (a busy turn may queue more than this to a healthy reader). An
    /// empty outbox always accepts one frame, so a single message may exceed it.
    pub outbox_limit: usize,
    /// Largest HTTP request head (default 8 KiB); past it `431`.
    pub max_request_head: usize,
    /// Largest body of a plain HTTP request (default 64 KiB); past it `413`.
    pub max_http_body: usize,
    /// Time from accept until the request head is complete (default 10 s), and the idle
    /// time allowed between keep-alive requests. Past it the socket is closed (slowloris).
    pub handshake_timeout: Millis,
    /// Time we wait for the peer's Close frame (or EOF) after sending ours (default 5 s).
    pub close_timeout: Millis,
    /// With `Some(t)`: a WebSocket that receives nothing for `t` is closed with 1001
    /// "idle timeout" (default `None`: the application, e.g. the gateway, decides).
    pub idle_timeout: Option<Millis>,
    /// With `Some(t)` and an idle timeout: the server pings a connection silent for `t`
    /// (default `None`).
    pub ping_interval: Option<Millis>,
    /// Connections accepted per reactor turn (default 128), so that a connect storm cannot
    /// starve reads; the rest are accepted on the next turn.
    pub accepts_per_turn: usize,
    /// Bytes read from one connection per turn before moving on (default 256 KiB); the
    /// rest is read on the next turn, so a flood cannot starve other connections.
    pub read_budget: usize,
    /// Time a graceful shutdown may take to flush before the reactor drops what is left
    /// (default 5 s).
    pub shutdown_timeout: Millis,
    /// Commands the cross-thread [`Remote`](crate::Remote) may queue before `send` fails
    /// (default 65,536).
    pub remote_queue: usize,
    /// Size of the reactor's one shared read buffer (default 64 KiB).
    pub read_buffer: usize,
    /// Readiness events taken per poll (default 1,024).
    pub events_per_poll: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_connections: 65_536,
            max_pending_handshakes: 32_768,
            listen_backlog: 4_096,
            max_connections_per_ip: 256,
            new_connections_per_ip: 32,
            limit_loopback: false,
            max_payload: 4_096,
            outbox_limit: 1024 * 1024,
            max_request_head: 8 * 1024,
            max_http_body: 64 * 1024,
            handshake_timeout: Millis(10_000),
            close_timeout: Millis(5_000),
            idle_timeout: None,
            ping_interval: None,
            accepts_per_turn: 128,
            read_budget: 256 * 1024,
            shutdown_timeout: Millis(5_000),
            remote_queue: 65_536,
            read_buffer: 64 * 1024,
            events_per_poll: 1024,
        }
    }
}

/// A setting out of its allowed range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError(pub &'static str);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid configuration: {}", self.0)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Checks every setting's range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_payload == 0 || self.max_payload > MAX_PAYLOAD_LIMIT {
            return Err(ConfigError("max_payload must be 1..=16 MiB"));
        }
        if self.max_connections == 0 || self.max_connections > (u32::MAX as usize) / 2 {
            return Err(ConfigError("max_connections out of range"));
        }
        if self.outbox_limit < 1024 {
            return Err(ConfigError("outbox_limit must be at least 1 KiB"));
        }
        if self.max_request_head < 256 || self.read_buffer < self.max_request_head {
            return Err(ConfigError("max_request_head must be 256..=read_buffer"));
        }
        if self.accepts_per_turn == 0 || self.read_budget == 0 || self.events_per_poll == 0 {
            return Err(ConfigError("per-turn budgets must be positive"));
        }
        if self.ping_interval.is_some() && self.idle_timeout.is_none() {
            return Err(ConfigError("ping_interval needs idle_timeout"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_ranges_checked() {
        assert_eq!(Config::default().validate(), Ok(()));
        let c = Config {
            max_payload: MAX_PAYLOAD_LIMIT + 1,
            ..Config::default()
        };
        assert!(c.validate().is_err());
        let c = Config {
            max_payload: MAX_PAYLOAD_LIMIT,
            ..Config::default()
        };
        assert!(c.validate().is_ok());
    }
}
