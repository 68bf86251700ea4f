//! Seed 004, the i386chat gateway: `{"f": <function code>, "cnf": ..., "s": n, "t": "EVENT"}`.
//!
//! | f   | direction | meaning |
//! |-----|-----------|---------|
//! | 100 | server    | introduce: `{"hb_int": ms}` |
//! | 110 | client    | present: `{"token"}`, or resume: `{"token","session_id","s"}` |
//! | 120 | both      | heartbeat, echoed as `{"f":120}` |
//! | 130 | both      | execute / event, with `s` (server sequence) and `t` (`e` accepted) |
//! | 140 | server    | ready: `{"v":6,"session_id","enc_key"}` |
//! | 150 | server    | error: `{"c": code, "d": fatal}`, then a close with the same code if fatal |
//!
//! Error codes (see docs/protocols/chat.md): 4001 unknown function code, 4002 decode error,
//! 4003 not authenticated, 4004 authentication failed, 4005 already authenticated,
//! 4006 invalid session, 4008 rate limited, 4009 session timed out, 4014 already connected,
//! 4015 session resumed elsewhere; applications add their own (4010-4013).

use crate::gateway::dialect::{
    write_json_str, Answer, DecodeError, Dialect, GatewayError, Op, Ready,
};
use crate::gateway::session::SessionId;
use crate::time::Millis;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt::Write;

/// Gateway API version announced in READY.
pub const VERSION: u32 = 6;

/// The i386chat dialect.
#[derive(Copy, Clone, Debug, Default)]
pub struct I386;

#[derive(Deserialize)]
struct Envelope<'a> {
    f: i64,
    #[serde(borrow, default)]
    cnf: Option<&'a RawValue>,
    #[serde(borrow, default)]
    s: Option<&'a RawValue>,
    #[serde(borrow, default)]
    t: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    e: Option<Cow<'a, str>>,
}

/// A session id or sequence given as a JSON number or a string of digits.
#[derive(Deserialize)]
#[serde(untagged)]
enum Number<'a> {
    Int(u64),
    #[serde(borrow)]
    Text(Cow<'a, str>),
}

impl Number<'_> {
    fn get(&self) -> Option<u64> {
        match self {
            Number::Int(n) => Some(*n),
            // Digits only: `u64::from_str` would also take a leading `+`.
            Number::Text(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
                s.parse().ok()
            }
            Number::Text(_) => None,
        }
    }
}

#[derive(Deserialize)]
struct Present<'a> {
    #[serde(borrow, default)]
    session_id: Option<Number<'a>>,
    #[serde(borrow, default, alias = "seq")]
    s: Option<Number<'a>>,
}

fn malformed(why: impl std::fmt::Display) -> DecodeError {
    DecodeError::Malformed(why.to_string())
}

/// Error codes of this dialect.
pub mod code {
    use crate::close::CloseCode;

    /// An unknown or client-forbidden function code.
    pub const UNKNOWN_FUNCTION: CloseCode = CloseCode(4001);
    /// Not JSON, or not the payload's shape.
    pub const DECODE_ERROR: CloseCode = CloseCode(4002);
    /// A payload before present (110), or no present in time.
    pub const NOT_AUTHENTICATED: CloseCode = CloseCode(4003);
    /// The token was refused.
    pub const AUTHENTICATION_FAILED: CloseCode = CloseCode(4004);
    /// A second present on an identified connection.
    pub const ALREADY_AUTHENTICATED: CloseCode = CloseCode(4005);
    /// The session cannot be resumed: present afresh (not fatal).
    pub const INVALID_SESSION: CloseCode = CloseCode(4006);
    /// Too many commands (fatal when the client keeps going).
    pub const RATE_LIMITED: CloseCode = CloseCode(4008);
    /// No heartbeat in time.
    pub const SESSION_TIMED_OUT: CloseCode = CloseCode(4009);
    /// The session is live on another connection (resume refused).
    pub const ALREADY_CONNECTED: CloseCode = CloseCode(4014);
    /// The session was resumed on another connection (this one is closed).
    pub const SESSION_REPLACED: CloseCode = CloseCode(4015);
    /// A new session refused: the user holds its quota of sessions, all live, or the
    /// server is full of sessions none of which may be ended for it.
    pub const TOO_MANY_SESSIONS: CloseCode = CloseCode(4017);
}

impl Dialect for I386 {
    fn decode<'a>(&self, text: &'a str) -> Result<Op<'a>, DecodeError> {
        let env: Envelope<'a> = serde_json::from_str(text).map_err(malformed)?;
        match env.f {
            110 => {
                let cnf = env.cnf.ok_or_else(|| malformed("present needs cnf"))?;
                let present: Present<'_> = serde_json::from_str(cnf.get()).map_err(malformed)?;
                let Some(sid) = present.session_id else {
                    return Ok(Op::Identify(cnf));
                };
                let session = sid.get().ok_or_else(|| malformed("session_id"))?;
                // The seed ignores a top-level `s` outside 130; accept it as a fallback.
                let seq = match (present.s, env.s) {
                    (Some(s), _) => s.get().ok_or_else(|| malformed("s"))?,
                    (None, Some(raw)) => serde_json::from_str::<Number<'_>>(raw.get())
                        .ok()
                        .and_then(|n| n.get())
                        .ok_or_else(|| malformed("s"))?,
                    (None, None) => 0,
                };
                Ok(Op::Resume {
                    session: SessionId::new(session),
                    seq,
                    payload: cnf,
                })
            }
            120 => Ok(Op::Heartbeat(None)),
            130 => {
                let event = env
                    .t
                    .or(env.e)
                    .ok_or_else(|| malformed("execute needs t"))?;
                Ok(Op::Dispatch {
                    event,
                    data: env.cnf,
                })
            }
            other => Err(DecodeError::UnknownOp(other.to_string())),
        }
    }

    fn hello(&self, out: &mut String, heartbeat_interval: Millis) {
        let _ = write!(
            out,
            "{{\"f\":100,\"cnf\":{{\"hb_int\":{}}}}}",
            heartbeat_interval.0
        );
    }

    fn ready(&self, out: &mut String, ready: &Ready<'_>) {
        let _ = write!(
            out,
            "{{\"f\":140,\"cnf\":{{\"v\":{VERSION},\"session_id\":{}",
            ready.session.get()
        );
        if ready.resumed {
            out.push_str(",\"resumed\":true");
        }
        if !ready.extra.is_empty() {
            out.push(',');
            out.push_str(ready.extra);
        }
        out.push_str("}}");
    }

    fn heartbeat_ack(&self, out: &mut String, _echo: Option<&RawValue>) {
        out.push_str("{\"f\":120}");
    }

    fn dispatch_prefix(&self) -> Option<&'static [u8]> {
        Some(b"{\"f\":130,\"s\":")
    }

    fn dispatch_tail(&self, out: &mut String, event: &str, data: &str) {
        out.push_str(",\"t\":");
        write_json_str(out, event);
        out.push_str(",\"cnf\":");
        out.push_str(data);
        out.push('}');
    }

    fn answer(&self, error: &GatewayError) -> Answer {
        let (c, fatal) = match error {
            GatewayError::Decode(DecodeError::UnknownOp(_)) => (code::UNKNOWN_FUNCTION, true),
            GatewayError::Decode(_) => (code::DECODE_ERROR, true),
            GatewayError::NotIdentified | GatewayError::IdentifyTimeout => {
                (code::NOT_AUTHENTICATED, true)
            }
            GatewayError::AuthenticationFailed => (code::AUTHENTICATION_FAILED, true),
            GatewayError::AlreadyIdentified => (code::ALREADY_AUTHENTICATED, true),
            GatewayError::InvalidSession => (code::INVALID_SESSION, false),
            GatewayError::AlreadyConnected => (code::ALREADY_CONNECTED, true),
            GatewayError::SessionReplaced => (code::SESSION_REPLACED, true),
            GatewayError::RateLimited { fatal } => (code::RATE_LIMITED, *fatal),
            GatewayError::HeartbeatTimeout => (code::SESSION_TIMED_OUT, true),
            GatewayError::TooManySessions { .. } => (code::TOO_MANY_SESSIONS, true),
            GatewayError::App { code, fatal, .. } => (*code, *fatal),
        };
        Answer {
            payload: Some(format!("{{\"f\":150,\"cnf\":{{\"c\":{c},\"d\":{fatal}}}}}")),
            close: fatal.then(|| (c, error.reason().into_owned())),
        }
    }

    fn going_down_event(&self) -> Option<&'static str> {
        Some("GATEWAY_DOWN")
    }
}

#[cfg(test)]
#[path = "i386_tests.rs"]
mod tests;
