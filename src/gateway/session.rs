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
pub use super::secret::{os_random, random_session_id, random_u64, SessionId, MAX_SAFE_INTEGER};
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
#[path = "session_tests.rs"]
mod tests;
