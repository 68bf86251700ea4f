//! Gateway settings: intervals, deadlines, probes, resume window, replay bounds, session
//! quotas, rate limits.

use crate::time::Millis;

/// Server probes: "are you alive?" requests (the dialect's
/// [`heartbeat_request`](super::Dialect::heartbeat_request)) sent to a client that has gone
/// quiet. Any message from the client answers one: every message is proof of life.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ProbePolicy {
    /// Silence after which a probe is sent: nothing at all heard from the client for this
    /// long (a client that speaks at least this often is never probed).
    pub after_silence: Millis,
    /// How long the answer (any message) is awaited after the probe; past it the connection
    /// gets the protocol's heartbeat-timeout answer.
    pub answer_within: Millis,
}

impl ProbePolicy {
    /// A probe after one whole interval of silence, answered within one more interval: a
    /// silent peer is closed after two intervals.
    #[must_use]
    pub fn per_interval(interval: Millis) -> ProbePolicy {
        ProbePolicy {
            after_silence: interval,
            answer_within: interval,
        }
    }
}

/// The command rate limit: a token bucket of `commands` tokens, refilled over `window`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Commands allowed in one burst, and per `window` in the long run.
    pub commands: u32,
    /// The window over which `commands` tokens refill.
    pub window: Millis,
}

impl RateLimit {
    /// `commands` per `window`.
    #[must_use]
    pub const fn new(commands: u32, window: Millis) -> RateLimit {
        RateLimit { commands, window }
    }
}

/// What happens when a session is resumed while a connection still holds it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum DuplicatePolicy {
    /// The new connection is refused ([`GatewayError::AlreadyConnected`](super::GatewayError)).
    RefuseNew,
    /// The old connection is closed ([`GatewayError::SessionReplaced`](super::GatewayError))
    /// and the new one takes the session: the usual cure for a half-open old socket.
    ReplaceOld,
}

/// Gateway settings, each with its default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewayConfig {
    /// Heartbeat interval announced in HELLO (default 41,250 ms, as Discord).
    pub heartbeat_interval: Millis,
    /// Silence allowed beyond the interval before the connection is closed with the
    /// protocol's heartbeat-timeout answer (default 1.5 × the interval: closed after 2.5
    /// intervals without any message).
    pub heartbeat_grace: Millis,
    /// Whether clients must heartbeat at all (default true). A protocol without client
    /// heartbeats (seed 001) sets it false: the connection then lives until it closes, and
    /// dead peers are found by the reactor's idle timeout or TCP.
    pub heartbeat_required: bool,
    /// Time from HELLO to identify (default 10 s).
    pub identify_timeout: Millis,
    /// Heartbeats allowed per heartbeat interval, as a burst and a refill rate (default 4);
    /// beyond it they are answered as flooding (the rate-limit answer).
    pub heartbeat_burst: u32,
    /// Whether heartbeats are accepted before identify (default false: identify first).
    pub heartbeat_before_identify: bool,
    /// Server probes sent to a quiet identified client (default off).
    pub probe: Option<ProbePolicy>,
    /// How long a session stays resumable after its connection is lost (default 60 s).
    pub resume_window: Millis,
    /// Events kept per session for replay (default 256).
    pub replay_events: usize,
    /// Bytes kept per session for replay (default 256 KiB; payloads are shared with the
    /// frames sent, so a room's broadcast is held once however many members keep it).
    pub replay_bytes: usize,
    /// Sessions held in all, live or resumable (default 100,000). Past it the oldest
    /// detached session of an owner over its fair share (`max_sessions` / owners holding
    /// sessions, rounded up) is dropped (its resume then gets the invalid-session answer),
    /// else the newcomer's own oldest detached session; with neither, the new session is
    /// refused ([`GatewayError::TooManySessions`](super::GatewayError)).
    pub max_sessions: usize,
    /// Sessions held per owner, live or resumable (default 1,000). An owner is what
    /// [`Handler::owner`](super::Handler::owner) names (a user where there is a login),
    /// else the peer address (IPv4, or the IPv6 /64). Past it the owner's own oldest
    /// detached session is dropped; if all of them are live, the new session is refused
    /// ([`GatewayError::TooManySessions`](super::GatewayError)). Never evicts another
    /// owner's session.
    pub max_sessions_per_owner: usize,
    /// Client commands allowed per window (default 120 per 60 s, as Discord). Heartbeats are
    /// counted apart ([`heartbeat_burst`](Self::heartbeat_burst) per interval).
    pub rate_limit: RateLimit,
    /// Refused commands in a row tolerated (answered, not fatal) before the connection is
    /// closed for abuse (default 10).
    pub rate_limit_slack: u32,
    /// What a resume of a live session does (default [`DuplicatePolicy::ReplaceOld`]).
    pub duplicate: DuplicatePolicy,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig::with_heartbeat(Millis(41_250))
    }
}

impl GatewayConfig {
    /// Defaults around a heartbeat interval (grace = 1.5 × interval).
    pub fn with_heartbeat(interval: Millis) -> GatewayConfig {
        GatewayConfig {
            heartbeat_interval: interval,
            heartbeat_grace: Millis(interval.0 / 2 * 3),
            heartbeat_required: true,
            identify_timeout: Millis(10_000),
            heartbeat_burst: 4,
            heartbeat_before_identify: false,
            probe: None,
            resume_window: Millis(60_000),
            replay_events: 256,
            replay_bytes: 256 * 1024,
            max_sessions: 100_000,
            max_sessions_per_owner: 1_000,
            rate_limit: RateLimit::new(120, Millis(60_000)),
            rate_limit_slack: 10,
            duplicate: DuplicatePolicy::ReplaceOld,
        }
    }

    /// How often a server that sends its own heartbeats should send them: 0.85 of the
    /// announced interval (at least 1 ms), so that a client timing out when it hears nothing
    /// for exactly one interval never trips on timer or network jitter.
    #[must_use]
    pub fn server_heartbeat_period(&self) -> Millis {
        Millis(
            (self.heartbeat_interval.0 / 20 * 17 + self.heartbeat_interval.0 % 20 * 17 / 20).max(1),
        )
    }
}
