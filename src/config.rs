//! Every limit and interval of the reactor, each with its default and what happens past it.

use crate::http::{DeflateConfig, OriginPolicy};
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
    /// Sockets one source address may hold at once, counted from accept, whatever their
    /// phase (default 256). A socket beyond it is answered `429 Too Many Requests` (with
    /// `Retry-After: 1`) as soon as it is accepted, and closed: it never holds a slot, so
    /// silent sockets from one address cannot use up the descriptors. See `limit_loopback`
    /// and `ipv6_prefix`.
    pub max_connections_per_ip: usize,
    /// New connections one source address may open per second (default 32, as a bucket of
    /// 32 refilled continuously). Excess connections are answered `429` (with
    /// `Retry-After: 1`) at accept and closed, like the socket cap.
    pub new_connections_per_ip: u32,
    /// Prefix length on which IPv6 peers are keyed for the per-address limits (default 64:
    /// one /64, what a single host or customer is usually given, counts as one address;
    /// 128 keys each address on its own). IPv4-mapped IPv6 peers are keyed as IPv4.
    pub ipv6_prefix: u8,
    /// Descriptors kept free for the process (default 32). The reactor reads the soft
    /// `RLIMIT_NOFILE` from `/proc/self/limits` on start (no limit known: this check is
    /// off) and counts the descriptors already open then; once its sockets would leave
    /// fewer than this many free, each new connection first sheds the oldest socket still
    /// in its HTTP phase (answered `503` and closed). Running out anyway (EMFILE or ENFILE
    /// on accept) sheds the same way, and pauses accepting only when there is nothing to
    /// shed. Upgraded connections are never shed.
    pub descriptor_reserve: usize,
    /// Whether the per-address limits apply to loopback clients too (default false: a
    /// gateway behind a local proxy sees every client as loopback, and local load tests
    /// open tens of thousands of sockets from it).
    pub limit_loopback: bool,
    /// Largest frame payload and largest reassembled message, in bytes (default 4,096; at
    /// most 16 MiB). Refused from the frame header with close 1009.
    pub max_payload: usize,
    /// Frames one fragmented message may have, its first included (default 1,024). The
    /// frame beyond it is answered with close 1008 "too many fragments": empty
    /// continuation frames never reach `max_payload`, and each costs a decode.
    pub max_fragments: usize,
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
    /// time allowed between keep-alive requests. Past it (slowloris) a socket that has sent
    /// part of a request is answered `408 Request Timeout` and closed; one that has sent
    /// nothing (or nothing since its last answered request) is closed without an answer.
    pub handshake_timeout: Millis,
    /// Plain HTTP requests answered on one keep-alive connection (default 100). The answer
    /// to the last one carries `Connection: close`, and the connection ends once it is out.
    pub max_requests_per_connection: u32,
    /// Total life of a keep-alive HTTP connection, from accept (default 60 s). The first
    /// answer given after it carries `Connection: close`; a connection idle at that time
    /// is closed without an answer. With `handshake_timeout`, a socket that never upgrades
    /// is held at most this plus `handshake_timeout`.
    pub http_connection_lifetime: Millis,
    /// Time we wait for the peer's Close frame (or EOF) after sending ours (default 5 s).
    pub close_timeout: Millis,
    /// With `Some(t)`: a WebSocket that receives nothing for `t` is closed with 1001
    /// "idle timeout" (default `None`: the application, e.g. the gateway, decides). Any
    /// frame counts as something (a Pong too), so with `ping_interval` this finds dead
    /// peers: a peer that answers nothing (not even a Ping) is sent its Close 1001 within
    /// `t` of the last bytes it sent (plus the timer's 1 ms granularity and one reactor
    /// turn), and its socket is dropped at most `close_timeout` after that.
    pub idle_timeout: Option<Millis>,
    /// With `Some(t)` and an idle timeout: the server sends a WebSocket Ping to a
    /// connection silent for `t`, and again every `t` while it stays silent, until
    /// `idle_timeout` closes it (default `None`). A live peer answers with a Pong (RFC
    /// 6455 §5.5.2), which resets its silence. Choose `t` below `idle_timeout`.
    pub ping_interval: Option<Millis>,
    /// Connections accepted per reactor turn (default 128), so that a connect storm cannot
    /// starve reads; the rest are accepted on the next turn.
    pub accepts_per_turn: usize,
    /// Bytes read from one connection per turn before moving on (default 256 KiB); the
    /// rest is read on the next turn, so a flood cannot starve other connections. Each
    /// frame counts as 64 bytes at least, so a flood of empty frames is cut off after
    /// 4,096 frames a turn by default.
    pub read_budget: usize,
    /// Time a graceful shutdown may take to flush before the reactor drops what is left
    /// (default 5 s).
    pub shutdown_timeout: Millis,
    /// Commands the cross-thread [`Remote`](crate::Remote) may queue before `send` fails
    /// (default 65,536).
    pub remote_queue: usize,
    /// Size of the reactor's one shared read buffer (default 64 KiB).
    pub read_buffer: usize,
    /// Readiness events taken per poll (default 1,024). A poll that fills them is followed
    /// by another (at most `polls_per_turn` in all) before any deadline is judged, so that
    /// every ready socket is read first.
    pub events_per_poll: usize,
    /// Polls in one turn while each fills `events_per_poll` (default 16): with the
    /// default, 16,384 ready sockets are read before timers fire.
    pub polls_per_turn: usize,
    /// A turn later than this beyond the sleep it asked for is a stall (default 1 s): a
    /// debugger, a stopped or paused process, an overloaded host. The excess over it is
    /// left out of the reactor's clock (the `now` given to timers, deadlines and the
    /// application), so every deadline moves back by it and no peer is judged by time the
    /// process did not see; the clock still advances by up to this much per turn, so a
    /// loop that is always late still expires deadlines, just later. A host driving
    /// [`Reactor::turn`](crate::Reactor::turn) itself should call it without long pauses:
    /// time spent between turns counts as lateness too. Not used once the clock is the
    /// caller's ([`Reactor::turn_at`](crate::Reactor::turn_at)).
    pub stall_threshold: Millis,
    /// permessage-deflate (RFC 7692), negotiated with each client that offers it when
    /// `Some` (default `None`: offers are declined). Needs the `deflate` cargo feature.
    /// [`Config::max_payload`] then bounds the inflated size of a message, enforced while
    /// inflating (1009); see [`DeflateConfig`] for the parameters and their memory.
    pub deflate: Option<DeflateConfig>,
    /// Which `Origin` an upgrade may carry (default [`OriginPolicy::Any`]: not checked, as
    /// before the policy existed; an embedder serving a browser page should choose
    /// [`OriginPolicy::SameOrigin`]). Checked after the request is found a valid RFC 6455
    /// upgrade and before the application sees it; a refused one is answered
    /// `403 Forbidden` and closed. A request without `Origin` (not a browser) always passes.
    pub origin_policy: OriginPolicy,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_connections: 65_536,
            max_pending_handshakes: 32_768,
            listen_backlog: 4_096,
            max_connections_per_ip: 256,
            new_connections_per_ip: 32,
            ipv6_prefix: 64,
            descriptor_reserve: 32,
            limit_loopback: false,
            max_payload: 4_096,
            max_fragments: 1_024,
            outbox_limit: 1024 * 1024,
            max_request_head: 8 * 1024,
            max_http_body: 64 * 1024,
            handshake_timeout: Millis(10_000),
            max_requests_per_connection: 100,
            http_connection_lifetime: Millis(60_000),
            close_timeout: Millis(5_000),
            idle_timeout: None,
            ping_interval: None,
            accepts_per_turn: 128,
            read_budget: 256 * 1024,
            shutdown_timeout: Millis(5_000),
            remote_queue: 65_536,
            read_buffer: 64 * 1024,
            events_per_poll: 1024,
            polls_per_turn: 16,
            stall_threshold: Millis(1_000),
            deflate: None,
            origin_policy: OriginPolicy::Any,
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
        if self.accepts_per_turn == 0
            || self.read_budget == 0
            || self.events_per_poll == 0
            || self.polls_per_turn == 0
        {
            return Err(ConfigError("per-turn budgets must be positive"));
        }
        if self.ping_interval.is_some() && self.idle_timeout.is_none() {
            return Err(ConfigError("ping_interval needs idle_timeout"));
        }
        if self.ipv6_prefix > 128 {
            return Err(ConfigError("ipv6_prefix must be 0..=128"));
        }
        if self.max_fragments == 0 || self.max_requests_per_connection == 0 {
            return Err(ConfigError(
                "max_fragments and max_requests_per_connection must be positive",
            ));
        }
        if let Some(deflate) = &self.deflate {
            if !cfg!(feature = "deflate") {
                return Err(ConfigError("deflate needs the `deflate` cargo feature"));
            }
            let bits = 9..=15;
            if !bits.contains(&deflate.server_max_window_bits)
                || !bits.contains(&deflate.client_max_window_bits)
                || deflate.level > 9
            {
                return Err(ConfigError(
                    "deflate window bits must be 9..=15 and level 0..=9",
                ));
            }
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
        let mut c = Config {
            deflate: Some(DeflateConfig::default()),
            ..Config::default()
        };
        assert_eq!(c.validate().is_ok(), cfg!(feature = "deflate"));
        if let Some(d) = c.deflate.as_mut() {
            d.server_max_window_bits = 8;
        }
        assert!(c.validate().is_err());
    }
}
