//! The per-connection session machine, sans-IO: what a connection may send when, its
//! identify and heartbeat deadlines, server probes, and its rate limits.
//!
//! Liveness: every message the client sends is proof of life ([`ConnSession::heard`]), so
//! the heartbeat deadline runs from the last message of any kind; a probe (where the
//! protocol has them) goes out only after [`ProbePolicy::after_silence`] with nothing heard,
//! and any message within [`ProbePolicy::answer_within`] answers it.
//!
//! [`ProbePolicy::after_silence`]: super::config::ProbePolicy::after_silence
//! [`ProbePolicy::answer_within`]: super::config::ProbePolicy::answer_within
//!
//! Fed with decoded operations and `now`; answers with verdicts. The engine applies them
//! (sends, closes, timers); the tests drive it with a fake clock.

use super::config::GatewayConfig;
use super::dialect::{GatewayError, Op};
pub use super::secret::SessionId;
pub use crate::rate::TokenBucket;
use crate::time::Millis;

/// Where a connection stands in the gateway lifecycle.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Stage {
    /// HELLO sent; only identify, resume (and nothing else) are accepted until `deadline`.
    AwaitIdentify {
        /// The identify deadline.
        deadline: Millis,
    },
    /// Identified: attached to this session.
    Ready(SessionId),
}

/// What a deadline check found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tick {
    /// Nothing due.
    Idle,
    /// Send a heartbeat request (probe) now; the client must answer in time.
    Probe,
    /// The connection has failed this deadline.
    Expired(GatewayError),
}

/// The session machine of one connection (about 72 bytes, no heap).
#[derive(Clone, Debug)]
pub struct ConnSession {
    stage: Stage,
    /// When the client last sent anything (any message, admitted or not).
    last_heard: Millis,
    /// When the outstanding probe was sent (cleared by any message).
    probe_sent: Option<Millis>,
    commands: TokenBucket,
    heartbeats: TokenBucket,
    refused_in_a_row: u32,
}

impl ConnSession {
    /// A connection that has just been sent HELLO at `now`.
    pub fn new(now: Millis, config: &GatewayConfig) -> ConnSession {
        ConnSession {
            stage: Stage::AwaitIdentify {
                deadline: now + config.identify_timeout,
            },
            last_heard: now,
            probe_sent: None,
            commands: TokenBucket::full(now, config.rate_limit.commands, config.rate_limit.window),
            heartbeats: TokenBucket::full(now, config.heartbeat_burst, config.heartbeat_interval),
            refused_in_a_row: 0,
        }
    }

    /// The current stage.
    #[cfg(any(test, feature = "testing"))]
    pub fn stage(&self) -> Stage {
        self.stage
    }

    /// The attached session, once identified.
    pub fn session(&self) -> Option<SessionId> {
        match self.stage {
            Stage::Ready(id) => Some(id),
            Stage::AwaitIdentify { .. } => None,
        }
    }

    /// The client sent a message at `now` (any message: admitted, refused, undecodable):
    /// proof of life, which also answers an outstanding probe.
    pub fn heard(&mut self, now: Millis) {
        self.last_heard = self.last_heard.max(now);
        self.probe_sent = None;
    }

    /// Checks one decoded operation against the lifecycle order and the rate limits.
    /// `Ok` means the engine should carry it out. (Liveness is [`heard`](Self::heard)'s.)
    pub fn admit(
        &mut self,
        now: Millis,
        op: &Op<'_>,
        config: &GatewayConfig,
    ) -> Result<(), GatewayError> {
        let allowed = match op {
            Op::Heartbeat(_) => {
                self.heartbeats
                    .take(now, config.heartbeat_burst, config.heartbeat_interval)
            }
            _ => self
                .commands
                .take(now, config.rate_limit.commands, config.rate_limit.window),
        };
        if !allowed {
            self.refused_in_a_row += 1;
            let fatal = self.refused_in_a_row > config.rate_limit_slack;
            return Err(GatewayError::RateLimited { fatal });
        }
        self.refused_in_a_row = 0;
        match (&self.stage, op) {
            (Stage::AwaitIdentify { .. }, Op::Identify(_) | Op::Resume { .. }) => {}
            (Stage::AwaitIdentify { .. }, Op::Heartbeat(_)) if config.heartbeat_before_identify => {
            }
            (Stage::AwaitIdentify { .. }, _) => return Err(GatewayError::NotIdentified),
            (Stage::Ready(_), Op::Identify(_) | Op::Resume { .. }) => {
                return Err(GatewayError::AlreadyIdentified)
            }
            (Stage::Ready(_), _) => {}
        }
        Ok(())
    }

    /// Attaches the connection to `session` (identify or resume succeeded).
    pub fn identified(&mut self, now: Millis, session: SessionId) {
        self.stage = Stage::Ready(session);
        self.heard(now);
    }

    /// Forgets the session (it was ended or moved to another connection); the connection
    /// is closing and accepts nothing more.
    pub fn unhook(&mut self) {
        self.stage = Stage::AwaitIdentify {
            deadline: Millis::ZERO,
        };
    }

    /// Whether identify or resume has succeeded.
    pub fn is_identified(&self) -> bool {
        matches!(self.stage, Stage::Ready(_))
    }

    /// Whether the heartbeat deadline runs: heartbeats are required, and the client may
    /// send them now (before identify, only where the protocol accepts them; otherwise the
    /// identify deadline alone governs that stage).
    fn heartbeat_due(&self, config: &GatewayConfig) -> bool {
        config.heartbeat_required && (self.is_identified() || config.heartbeat_before_identify)
    }

    /// The earliest time something is due.
    pub fn next_deadline(&self, config: &GatewayConfig) -> Millis {
        let mut at = if self.heartbeat_due(config) {
            self.last_heard + config.heartbeat_interval + config.heartbeat_grace
        } else {
            Millis::NEVER
        };
        if let Stage::AwaitIdentify { deadline } = self.stage {
            at = at.min(deadline);
        }
        if let (Some(probe), true) = (config.probe, self.is_identified()) {
            at = at.min(match self.probe_sent {
                Some(sent) => sent + probe.answer_within,
                None => self.last_heard + probe.after_silence,
            });
        }
        at
    }

    /// Evaluates the deadlines at `now`.
    pub fn tick(&mut self, now: Millis, config: &GatewayConfig) -> Tick {
        if let Stage::AwaitIdentify { deadline } = self.stage {
            if now >= deadline {
                return Tick::Expired(GatewayError::IdentifyTimeout);
            }
        }
        if self.heartbeat_due(config)
            && now >= self.last_heard + config.heartbeat_interval + config.heartbeat_grace
        {
            return Tick::Expired(GatewayError::HeartbeatTimeout);
        }
        if let (Some(probe), true) = (config.probe, self.is_identified()) {
            match self.probe_sent {
                Some(sent) if now >= sent + probe.answer_within => {
                    return Tick::Expired(GatewayError::HeartbeatTimeout)
                }
                None if now >= self.last_heard + probe.after_silence => {
                    self.probe_sent = Some(now);
                    return Tick::Probe;
                }
                _ => {}
            }
        }
        Tick::Idle
    }
}

#[cfg(test)]
mod tests {
    //! Session machine tests: every transition with a fake clock, no sockets, no sleeps.

    use super::*;
    use crate::gateway::config::{ProbePolicy, RateLimit};
    use crate::gateway::secret::{random_session_id, MAX_SAFE_INTEGER};
    use serde_json::value::RawValue;
    use std::borrow::Cow;

    fn config() -> GatewayConfig {
        GatewayConfig::with_heartbeat(Millis(1_000))
    }

    fn raw() -> &'static RawValue {
        Box::leak(RawValue::from_string("{}".into()).unwrap())
    }

    fn dispatch() -> Op<'static> {
        Op::Dispatch {
            event: Cow::Borrowed("X"),
            data: None,
        }
    }

    #[test]
    fn identify_first_then_anything() {
        let c = config();
        let mut s = ConnSession::new(Millis(0), &c);
        assert_eq!(
            s.admit(Millis(1), &dispatch(), &c),
            Err(GatewayError::NotIdentified)
        );
        assert_eq!(
            s.admit(Millis(1), &Op::Heartbeat(None), &c),
            Err(GatewayError::NotIdentified)
        );
        assert_eq!(s.admit(Millis(2), &Op::Identify(raw()), &c), Ok(()));
        s.identified(Millis(2), SessionId::new(7));
        assert_eq!(s.session(), Some(SessionId::new(7)));
        assert_eq!(s.admit(Millis(3), &dispatch(), &c), Ok(()));
        assert_eq!(s.admit(Millis(3), &Op::Heartbeat(None), &c), Ok(()));
        assert_eq!(
            s.admit(Millis(4), &Op::Identify(raw()), &c),
            Err(GatewayError::AlreadyIdentified)
        );
    }

    #[test]
    fn heartbeat_before_identify_when_allowed() {
        let c = GatewayConfig {
            heartbeat_before_identify: true,
            ..config()
        };
        let mut s = ConnSession::new(Millis(0), &c);
        assert_eq!(s.admit(Millis(1), &Op::Heartbeat(None), &c), Ok(()));
    }

    #[test]
    fn identify_deadline() {
        let c = config();
        let mut s = ConnSession::new(Millis(0), &c);
        // Heartbeats are refused before identify, so only the identify deadline runs then,
        // even when it is longer than the heartbeat timeout (2.5 s here).
        assert_eq!(s.next_deadline(&c), Millis(10_000));
        assert_eq!(s.tick(Millis(9_999), &c), Tick::Idle);
        assert_eq!(
            s.tick(Millis(10_000), &c),
            Tick::Expired(GatewayError::IdentifyTimeout)
        );
        let c = GatewayConfig {
            identify_timeout: Millis(500),
            ..config()
        };
        let mut s2 = ConnSession::new(Millis(0), &c);
        assert_eq!(s2.next_deadline(&c), Millis(500));
        assert_eq!(s2.tick(Millis(499), &c), Tick::Idle);
        assert_eq!(
            s2.tick(Millis(500), &c),
            Tick::Expired(GatewayError::IdentifyTimeout)
        );
        s.identified(Millis(100), SessionId::new(1));
        assert_eq!(
            s.tick(Millis(10_000), &config()),
            Tick::Expired(GatewayError::HeartbeatTimeout)
        );
    }

    /// A message from the client, as the engine handles one: proof of life, then admission.
    fn message(
        s: &mut ConnSession,
        now: u64,
        op: &Op<'_>,
        c: &GatewayConfig,
    ) -> Result<(), GatewayError> {
        s.heard(Millis(now));
        s.admit(Millis(now), op, c)
    }

    #[test]
    fn heartbeat_timeout_is_interval_plus_grace_after_last_message() {
        let c = config(); // 1000 + 1500
        let mut s = ConnSession::new(Millis(0), &c);
        s.identified(Millis(0), SessionId::new(1));
        assert_eq!(message(&mut s, 900, &Op::Heartbeat(None), &c), Ok(()));
        assert_eq!(s.next_deadline(&c), Millis(3_400));
        assert_eq!(s.tick(Millis(3_399), &c), Tick::Idle);
        assert_eq!(
            s.tick(Millis(3_400), &c),
            Tick::Expired(GatewayError::HeartbeatTimeout)
        );
    }

    #[test]
    fn any_message_is_proof_of_life_even_refused_or_undecodable() {
        let c = GatewayConfig {
            rate_limit: RateLimit::new(1, Millis(60_000)),
            ..config()
        };
        let mut s = ConnSession::new(Millis(0), &c);
        s.identified(Millis(0), SessionId::new(1));
        assert_eq!(message(&mut s, 1, &dispatch(), &c), Ok(()));
        // Over the rate limit: refused, yet the client is plainly alive.
        assert_eq!(
            message(&mut s, 2_000, &dispatch(), &c),
            Err(GatewayError::RateLimited { fatal: false })
        );
        assert_eq!(s.next_deadline(&c), Millis(4_500));
        // A message that does not even decode is heard too (the engine calls heard alone).
        s.heard(Millis(4_000));
        assert_eq!(s.tick(Millis(4_500), &c), Tick::Idle);
        assert_eq!(s.next_deadline(&c), Millis(6_500));
        // A late-delivered older time never moves liveness back.
        s.heard(Millis(3_000));
        assert_eq!(s.next_deadline(&c), Millis(6_500));
    }

    /// Rooms' policy: a probe after one interval of silence, answered within one more; the
    /// heartbeat deadline at the same two intervals.
    fn probing() -> GatewayConfig {
        GatewayConfig {
            probe: Some(ProbePolicy::per_interval(Millis(1_000))),
            heartbeat_grace: Millis(1_000),
            ..config()
        }
    }

    #[test]
    fn a_probe_goes_out_only_after_a_whole_interval_of_silence() {
        let c = probing();
        let mut s = ConnSession::new(Millis(0), &c);
        s.identified(Millis(0), SessionId::new(1));
        assert_eq!(message(&mut s, 750, &Op::Heartbeat(None), &c), Ok(()));
        // Not 1.25 intervals after the start: one interval after the last message.
        assert_eq!(s.next_deadline(&c), Millis(1_750));
        assert_eq!(s.tick(Millis(1_749), &c), Tick::Idle);
        assert_eq!(s.tick(Millis(1_750), &c), Tick::Probe);
        // Its answer is awaited one more interval; any message answers it.
        assert_eq!(s.next_deadline(&c), Millis(2_750));
        assert_eq!(message(&mut s, 2_700, &dispatch(), &c), Ok(()));
        assert_eq!(s.next_deadline(&c), Millis(3_700));
        assert_eq!(s.tick(Millis(3_700), &c), Tick::Probe);
        assert_eq!(s.tick(Millis(4_699), &c), Tick::Idle);
        assert_eq!(
            s.tick(Millis(4_700), &c),
            Tick::Expired(GatewayError::HeartbeatTimeout)
        );
    }

    #[test]
    fn a_silent_client_is_closed_two_intervals_after_its_last_message() {
        let c = probing();
        let mut s = ConnSession::new(Millis(0), &c);
        s.identified(Millis(0), SessionId::new(1));
        let (verdict, at) = loop {
            let at = s.next_deadline(&c);
            match s.tick(at, &c) {
                Tick::Probe => continue,
                other => break (other, at),
            }
        };
        assert_eq!(
            (verdict, at),
            (Tick::Expired(GatewayError::HeartbeatTimeout), Millis(2_000))
        );
    }

    #[test]
    fn a_client_heartbeating_every_interval_that_never_answers_probes_is_kept() {
        let c = probing();
        let mut s = ConnSession::new(Millis(0), &c);
        s.identified(Millis(0), SessionId::new(1));
        // Heartbeats every interval, each up to 30% late (jitter), probes ignored: the timer
        // fires at every deadline, as the reactor's would.
        let mut probes = 0;
        for beat in 1..=20u64 {
            let when = beat * 1_000 + (beat * 37 % 300);
            while s.next_deadline(&c) <= Millis(when) {
                let due = s.next_deadline(&c);
                match s.tick(due, &c) {
                    Tick::Probe => probes += 1,
                    other => panic!("at {due:?}: {other:?}"),
                }
            }
            assert_eq!(message(&mut s, when, &Op::Heartbeat(None), &c), Ok(()));
        }
        assert!(
            probes > 0,
            "late heartbeats are probed, and a heartbeat answers"
        );
    }
    #[test]
    fn rate_limit_answers_then_closes_on_abuse_and_refills() {
        let c = GatewayConfig {
            rate_limit: RateLimit::new(5, Millis(1_000)),
            rate_limit_slack: 2,
            ..config()
        };
        let mut s = ConnSession::new(Millis(0), &c);
        s.identified(Millis(0), SessionId::new(1));
        for _ in 0..5 {
            assert_eq!(s.admit(Millis(0), &dispatch(), &c), Ok(()));
        }
        assert_eq!(
            s.admit(Millis(0), &dispatch(), &c),
            Err(GatewayError::RateLimited { fatal: false })
        );
        assert_eq!(
            s.admit(Millis(0), &dispatch(), &c),
            Err(GatewayError::RateLimited { fatal: false })
        );
        assert_eq!(
            s.admit(Millis(0), &dispatch(), &c),
            Err(GatewayError::RateLimited { fatal: true })
        );
        // 200 ms refill one token (5 per second).
        assert_eq!(s.admit(Millis(200), &dispatch(), &c), Ok(()));
        assert_eq!(
            s.admit(Millis(200), &dispatch(), &c),
            Err(GatewayError::RateLimited { fatal: false })
        );
        // Heartbeats have their own allowance: not starved by commands.
        assert_eq!(s.admit(Millis(200), &Op::Heartbeat(None), &c), Ok(()));
    }

    #[test]
    fn token_bucket_never_exceeds_capacity() {
        let mut b = TokenBucket::full(Millis(0), 3, Millis(300));
        let taken = (0..10)
            .filter(|_| b.take(Millis(1_000_000), 3, Millis(300)))
            .count();
        assert_eq!(taken, 3);
    }

    #[test]
    fn no_heartbeat_deadline_when_not_required() {
        let c = GatewayConfig {
            heartbeat_required: false,
            ..config()
        };
        let mut s = ConnSession::new(Millis(0), &c);
        s.identified(Millis(0), SessionId::new(1));
        assert_eq!(s.next_deadline(&c), Millis::NEVER);
        assert_eq!(s.tick(Millis(1_000_000), &c), Tick::Idle);
    }

    #[test]
    fn server_heartbeats_go_out_at_0_85_of_the_interval() {
        let period = |ms| GatewayConfig::with_heartbeat(Millis(ms)).server_heartbeat_period();
        assert_eq!(period(30_000), Millis(25_500));
        assert_eq!(period(500), Millis(425));
        assert_eq!(period(41_250), Millis(35_062));
        assert_eq!(period(1), Millis(1));
        assert_eq!(period(7), Millis(5));
        assert_eq!(period(1 << 62), Millis((1 << 62) / 20 * 17 + 3));
    }

    #[test]
    fn session_ids_fit_in_53_bits_and_are_never_zero() {
        // 2,000 draws: with ids of 64 random bits, all but about 1 in 2^11 would be above 2^53.
        for _ in 0..2_000 {
            let id = random_session_id().unwrap().get();
            assert!(
                (1..=MAX_SAFE_INTEGER).contains(&id),
                "{id} is not in 1..=2^53-1"
            );
        }
        assert_eq!(MAX_SAFE_INTEGER, 9_007_199_254_740_991);
    }
}
