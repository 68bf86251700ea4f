//! Seed 000, the Nexus music-player gateway: operations `{"op": n, "d": ...}` and events
//! `{"t": "NAME", "d": ...}`, without sequence numbers.
//!
//! | op | direction | meaning |
//! |----|-----------|---------|
//! | 0  | server    | HELLO: `{"heartbeat_interval": ms}` |
//! | 1  | server    | VOICE_STATE_UPDATE: `d` is a Discord gateway payload to forward (sent raw by the application) |
//! | 10 | client    | IDENTIFY (`d` optional, any JSON) |
//! | 11 | client    | PING |
//! | 12 | server    | PONG |
//!
//! Events (`t`) go both ways: the server's READY and player events, the client's
//! `VOICE_SERVER_UPDATE` / `VOICE_STATE_UPDATE`. The protocol has no error payloads: every
//! error is a close code ([`code`]); a non-fatal error is dropped silently. Graceful shutdown
//! closes with 4010 SERVER_CLOSED. See docs/protocols/nexus.md.

use crate::close::CloseCode;
use crate::gateway::dialect::{
    write_json_str, Answer, DecodeError, Dialect, GatewayError, Op, Ready,
};
use crate::time::Millis;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt::Write;

/// The Nexus dialect.
#[derive(Copy, Clone, Debug, Default)]
pub struct Nexus;

/// Operation codes.
pub mod op {
    /// Server: HELLO with the heartbeat interval.
    pub const HELLO: i64 = 0;
    /// Server: a Discord gateway payload the client must forward (join/leave voice).
    pub const VOICE_STATE_UPDATE: i64 = 1;
    /// Client: identify (after HELLO).
    pub const IDENTIFY: i64 = 10;
    /// Client: ping (the heartbeat).
    pub const PING: i64 = 11;
    /// Server: the answer to a ping.
    pub const PONG: i64 = 12;
}

/// Close codes of the seed.
pub mod code {
    use crate::close::CloseCode;

    /// An internal error.
    pub const UNKNOWN: CloseCode = CloseCode(4000);
    /// The upgrade had no `client-id` header.
    pub const NO_CLIENT_ID: CloseCode = CloseCode(4001);
    /// The upgrade had no `Authorization` header, or the wrong password.
    pub const NO_AUTH: CloseCode = CloseCode(4002);
    /// An operation on a guild the client has no player for.
    pub const NO_GUILD: CloseCode = CloseCode(4003);
    /// A payload that is not JSON, or not the shape of a payload.
    pub const DECODE_ERROR: CloseCode = CloseCode(4004);
    /// An operation code (or client event name) the server does not know.
    pub const UNKNOWN_OPCODE: CloseCode = CloseCode(4005);
    /// This socket was replaced by another with the same client id (the seed's own server
    /// sends it so); also a silence past the heartbeat deadline, where an embedder requires
    /// heartbeats (the nexus example does not: it finds dead sockets by WebSocket Ping).
    pub const SESSION_EXPIRED: CloseCode = CloseCode(4006);
    /// The server is shutting down.
    pub const SERVER_CLOSED: CloseCode = CloseCode(4010);
    /// An operation the client may not do (a second IDENTIFY, flooding).
    pub const NOT_ALLOWED: CloseCode = CloseCode(4011);
    /// Another socket with the same client id is live, for an embedder that refuses the
    /// newcomer ([`DuplicatePolicy::RefuseNew`](crate::gateway::DuplicatePolicy)); the nexus
    /// example replaces the old socket instead and never sends it.
    pub const ALREADY_CONNECTED: CloseCode = CloseCode(4012);
    /// Anything but IDENTIFY before IDENTIFY, or no IDENTIFY in time.
    pub const NOT_IDENTIFIED: CloseCode = CloseCode(4013);
    /// A new session (IDENTIFY) refused: this address holds its quota of sessions, all
    /// live, or the server is full of sessions none of which may be ended for it.
    pub const TOO_MANY_SESSIONS: CloseCode = CloseCode(4014);
}

/// The close reason sent with each of the seed's codes.
pub fn reason(code: CloseCode) -> &'static str {
    match code {
        code::NO_CLIENT_ID => "Missing client-id in request headers",
        code::NO_AUTH => "Missing or invalid authorization in request headers",
        code::NO_GUILD => "No guild available",
        code::DECODE_ERROR => "Invalid payload",
        code::UNKNOWN_OPCODE => "Unknown opcode",
        code::SESSION_EXPIRED => "Session expired",
        code::SERVER_CLOSED => "Server Closed",
        code::NOT_ALLOWED => "Not allowed",
        code::ALREADY_CONNECTED => "Already connected",
        code::NOT_IDENTIFIED => "This client is not identified",
        _ => "Unknown Error",
    }
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(default)]
    op: Option<i64>,
    #[serde(borrow, default)]
    t: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    d: Option<&'a RawValue>,
}

impl Dialect for Nexus {
    fn decode<'a>(&self, text: &'a str) -> Result<Op<'a>, DecodeError> {
        let env: Envelope<'a> =
            serde_json::from_str(text).map_err(|e| DecodeError::Malformed(e.to_string()))?;
        match (env.op, env.t) {
            (Some(op::IDENTIFY), _) => Ok(Op::Identify(env.d.unwrap_or(RawValue::NULL))),
            (Some(op::PING), _) => Ok(Op::Heartbeat(None)),
            (Some(other), _) => Err(DecodeError::UnknownOp(other.to_string())),
            (None, Some(event)) => Ok(Op::Dispatch { event, data: env.d }),
            (None, None) => Err(DecodeError::Malformed("neither op nor t".into())),
        }
    }

    fn hello(&self, out: &mut String, heartbeat_interval: Millis) {
        let _ = write!(
            out,
            "{{\"op\":0,\"d\":{{\"heartbeat_interval\":{}}}}}",
            heartbeat_interval.0
        );
    }

    fn ready(&self, out: &mut String, ready: &Ready<'_>) {
        out.push_str("{\"t\":\"READY\",\"d\":{");
        out.push_str(ready.extra);
        out.push_str("}}");
    }

    fn heartbeat_ack(&self, out: &mut String, _echo: Option<&RawValue>) {
        out.push_str("{\"op\":12}");
    }

    fn dispatch_prefix(&self) -> Option<&'static [u8]> {
        None
    }

    fn dispatch_tail(&self, out: &mut String, event: &str, data: &str) {
        out.push_str("{\"t\":");
        write_json_str(out, event);
        out.push_str(",\"d\":");
        out.push_str(data);
        out.push('}');
    }

    fn answer(&self, error: &GatewayError) -> Answer {
        let (c, fatal) = match error {
            GatewayError::Decode(DecodeError::UnknownOp(_)) => (code::UNKNOWN_OPCODE, true),
            GatewayError::Decode(_) => (code::DECODE_ERROR, true),
            GatewayError::NotIdentified | GatewayError::IdentifyTimeout => {
                (code::NOT_IDENTIFIED, true)
            }
            GatewayError::AuthenticationFailed => (code::NO_AUTH, true),
            GatewayError::AlreadyIdentified => (code::NOT_ALLOWED, true),
            GatewayError::AlreadyConnected => (code::ALREADY_CONNECTED, true),
            // The seed's own server closes a replaced socket with SESSION_EXPIRED.
            GatewayError::InvalidSession
            | GatewayError::SessionReplaced
            | GatewayError::HeartbeatTimeout => (code::SESSION_EXPIRED, true),
            GatewayError::RateLimited { fatal } => (code::NOT_ALLOWED, *fatal),
            GatewayError::TooManySessions { .. } => (code::TOO_MANY_SESSIONS, true),
            GatewayError::App { code, fatal, .. } => (*code, *fatal),
        };
        let text = match error {
            GatewayError::App { reason, .. } => reason.clone(),
            GatewayError::TooManySessions { .. } => error.reason(),
            _ => Cow::Borrowed(reason(c)),
        };
        Answer {
            payload: None,
            close: fatal.then(|| (c, text.into_owned())),
        }
    }

    fn shutdown_close(&self) -> (CloseCode, &'static str) {
        ((code::SERVER_CLOSED), reason(code::SERVER_CLOSED))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::SessionId;

    #[test]
    fn decodes_identify_ping_and_events() {
        assert!(matches!(Nexus.decode(r#"{"op":10}"#), Ok(Op::Identify(d)) if d.get() == "null"));
        assert!(
            matches!(Nexus.decode(r#"{"op":10,"d":{"x":1}}"#), Ok(Op::Identify(d)) if d.get() == r#"{"x":1}"#)
        );
        assert!(matches!(
            Nexus.decode(r#"{"op":11}"#),
            Ok(Op::Heartbeat(None))
        ));
        match Nexus.decode(r#"{"t":"VOICE_SERVER_UPDATE","d":{"guild_id":"1"}}"#) {
            Ok(Op::Dispatch { event, data }) => {
                assert_eq!(event, "VOICE_SERVER_UPDATE");
                assert_eq!(data.map(|d| d.get()), Some(r#"{"guild_id":"1"}"#));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn refuses_bad_shapes_and_unknown_ops() {
        for bad in [
            "",
            "nope",
            "[]",
            "1",
            "{}",
            r#"{"op":"10"}"#,
            r#"{"op":1.5}"#,
            r#"{"t":5}"#,
        ] {
            assert!(
                matches!(Nexus.decode(bad), Err(DecodeError::Malformed(_))),
                "{bad}"
            );
        }
        for unknown in [
            r#"{"op":0}"#,
            r#"{"op":1}"#,
            r#"{"op":12}"#,
            r#"{"op":99,"t":"X"}"#,
        ] {
            assert!(
                matches!(Nexus.decode(unknown), Err(DecodeError::UnknownOp(_))),
                "{unknown}"
            );
        }
    }

    #[test]
    fn writes_hello_ready_pong_and_events() {
        let mut out = String::new();
        Nexus.hello(&mut out, Millis(1500));
        assert_eq!(out, r#"{"op":0,"d":{"heartbeat_interval":1500}}"#);
        out.clear();
        let ready = Ready {
            session: SessionId::new(7),
            resumed: false,
            extra: r#""client_id":"1","access_token":"t""#,
        };
        Nexus.ready(&mut out, &ready);
        assert_eq!(
            out,
            r#"{"t":"READY","d":{"client_id":"1","access_token":"t"}}"#
        );
        out.clear();
        Nexus.heartbeat_ack(&mut out, None);
        assert_eq!(out, r#"{"op":12}"#);
        out.clear();
        Nexus.dispatch_tail(&mut out, "TRACK_START", r#"{"guild_id":"1"}"#);
        assert_eq!(out, r#"{"t":"TRACK_START","d":{"guild_id":"1"}}"#);
        assert_eq!(Nexus.dispatch_prefix(), None);
    }

    #[test]
    fn every_error_is_a_close_code_without_payload() {
        let cases = [
            (
                GatewayError::Decode(DecodeError::Malformed("x".into())),
                Some(4004),
            ),
            (GatewayError::Decode(DecodeError::Binary), Some(4004)),
            (
                GatewayError::Decode(DecodeError::UnknownOp("3".into())),
                Some(4005),
            ),
            (GatewayError::NotIdentified, Some(4013)),
            (GatewayError::IdentifyTimeout, Some(4013)),
            (GatewayError::HeartbeatTimeout, Some(4006)),
            (GatewayError::AlreadyIdentified, Some(4011)),
            (GatewayError::RateLimited { fatal: false }, None),
            (GatewayError::RateLimited { fatal: true }, Some(4011)),
            (
                GatewayError::app(4003, true, "No guild available"),
                Some(4003),
            ),
        ];
        for (error, close) in cases {
            let answer = Nexus.answer(&error);
            assert_eq!(answer.payload, None);
            assert_eq!(answer.close.map(|(c, _)| c.0), close, "{error:?}");
        }
        assert_eq!(Nexus.shutdown_close().0, CloseCode(4010));
    }
}
