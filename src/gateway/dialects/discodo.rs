//! Seed 002, Discodo: payloads `{"op": "NAME", "d": ...}`.
//!
//! | op | direction | d |
//! |----|-----------|---|
//! | `HELLO` | server | `{"heartbeat_interval": seconds}` (a JSON number, `15.0`) |
//! | `FORBIDDEN` | server | why the connection is refused (a string), then a close |
//! | `HEARTBEAT` | client | anything; echoed |
//! | `HEARTBEAT_ACK` | server | the heartbeat's `d`, as sent |
//! | `IDENTIFY` | client | `{"user_id", "shard_id"}` |
//! | `RESUMED` | server | `{"voice_clients": [[guild_id, channel_id], ...]}` |
//!
//! Errors are payloads of the same shape as the seed's `FORBIDDEN`: `{"op": "<ERROR NAME>",
//! "d": "<why>"}` ([`code`] and [`error_name`]), followed by a close with the error's code
//! when it is fatal.
//!
//! Every op reaches the handler as an [`Op::Dispatch`] (HEARTBEAT and IDENTIFY included):
//! Discodo's identify binds an audio manager that outlives connections and is resumed by
//! `user_id` + `shard_id` rather than by a session id, so a connection's engine session
//! starts at the upgrade ([`Admit::Identified`](crate::gateway::Admit)) and IDENTIFY is an
//! application op; HEARTBEAT is echoed by the handler ([`write_heartbeat_ack`]), which puts
//! heartbeats under the command rate limit (a burst of 1,000) rather than the engine's
//! heartbeat allowance ([`GatewayConfig::heartbeat_burst`](crate::gateway::GatewayConfig)),
//! since Discodo clients may echo-test several heartbeats back to back.
//! [`Dialect::heartbeat_ack`] spells the same payload for engines that decode heartbeats
//! themselves.
//!
//! The full protocol as served by `examples/discodo.rs`: docs/protocols/discodo.md.

use crate::close::CloseCode;
use crate::gateway::dialect::{
    write_json_str, Answer, DecodeError, Dialect, GatewayError, Op, Ready,
};
use crate::time::Millis;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;

/// The Discodo dialect.
#[derive(Copy, Clone, Debug, Default)]
pub struct Discodo;

/// Error codes: the close code when the error is fatal, and the key of [`error_name`].
pub mod code {
    use crate::close::CloseCode;

    /// `FORBIDDEN`: the `Authorization` header is missing or wrong (fatal).
    pub const FORBIDDEN: CloseCode = CloseCode(4001);
    /// `DECODE_ERROR`: not JSON, not `{"op": string, ...}`, or binary (not fatal).
    pub const DECODE_ERROR: CloseCode = CloseCode(4002);
    /// `NOT_IDENTIFIED`: an op other than HEARTBEAT or IDENTIFY before IDENTIFY (fatal).
    pub const NOT_IDENTIFIED: CloseCode = CloseCode(4003);
    /// `ALREADY_IDENTIFIED`: a second IDENTIFY on a connection (not fatal).
    pub const ALREADY_IDENTIFIED: CloseCode = CloseCode(4005);
    /// `UNKNOWN_OP`: an op this server does not know (not fatal).
    pub const UNKNOWN_OP: CloseCode = CloseCode(4006);
    /// `BAD_REQUEST`: an op's `d` lacks a field or has one of the wrong type (not fatal).
    pub const BAD_REQUEST: CloseCode = CloseCode(4007);
    /// `RATE_LIMITED`: too many payloads (fatal when the client keeps going).
    pub const RATE_LIMITED: CloseCode = CloseCode(4008);
    /// `HEARTBEAT_TIMEOUT`: silent past the heartbeat interval plus grace (fatal).
    pub const HEARTBEAT_TIMEOUT: CloseCode = CloseCode(4009);
    /// `SESSION_REPLACED`: the same user_id and shard_id identified on another connection,
    /// which took the audio manager over (fatal).
    pub const SESSION_REPLACED: CloseCode = CloseCode(4010);
    /// `VOICE_CLIENT_NOT_FOUND`: no voice client for that guild (not fatal).
    pub const VOICE_CLIENT_NOT_FOUND: CloseCode = CloseCode(4011);
    /// `LIMIT_REACHED`: the node holds as many audio managers or voice clients as it may,
    /// or the audio manager as many voice clients; nothing was created (not fatal).
    pub const LIMIT_REACHED: CloseCode = CloseCode(4012);
    /// `TOO_MANY_SESSIONS`: a new session refused for the session bounds (fatal; the
    /// example refuses at the upgrade with 429 or 503 instead).
    pub const TOO_MANY_SESSIONS: CloseCode = CloseCode(4013);
    /// `INTERNAL_ERROR`: the server could not go on (fatal).
    pub const INTERNAL_ERROR: CloseCode = CloseCode(4000);
}

/// The op name an error code is reported with.
pub fn error_name(c: CloseCode) -> &'static str {
    match c {
        code::FORBIDDEN => "FORBIDDEN",
        code::DECODE_ERROR => "DECODE_ERROR",
        code::NOT_IDENTIFIED => "NOT_IDENTIFIED",
        code::ALREADY_IDENTIFIED => "ALREADY_IDENTIFIED",
        code::UNKNOWN_OP => "UNKNOWN_OP",
        code::BAD_REQUEST => "BAD_REQUEST",
        code::RATE_LIMITED => "RATE_LIMITED",
        code::HEARTBEAT_TIMEOUT => "HEARTBEAT_TIMEOUT",
        code::SESSION_REPLACED => "SESSION_REPLACED",
        code::VOICE_CLIENT_NOT_FOUND => "VOICE_CLIENT_NOT_FOUND",
        code::LIMIT_REACHED => "LIMIT_REACHED",
        code::INTERNAL_ERROR => "INTERNAL_ERROR",
        code::TOO_MANY_SESSIONS => "TOO_MANY_SESSIONS",
        _ => "ERROR",
    }
}

/// Writes a payload `{"op":<op>,"d":<data>}` (`data` is JSON text).
pub fn write_payload(out: &mut String, op: &str, data: &str) {
    out.push_str("{\"op\":");
    write_json_str(out, op);
    out.push_str(",\"d\":");
    out.push_str(data);
    out.push('}');
}

/// Writes `HEARTBEAT_ACK` echoing `echo` exactly as received (`null` when absent).
pub fn write_heartbeat_ack(out: &mut String, echo: Option<&RawValue>) {
    write_payload(out, "HEARTBEAT_ACK", echo.map_or("null", RawValue::get));
}

/// Writes the error payload `{"op":"<NAME>","d":"<reason>"}` for an error code.
pub fn write_error(out: &mut String, c: CloseCode, reason: &str) {
    out.push_str("{\"op\":");
    write_json_str(out, error_name(c));
    out.push_str(",\"d\":");
    write_json_str(out, reason);
    out.push('}');
}

/// Seconds as a JSON number with a fractional part: 15000 ms → `15.0`, 500 ms → `0.5`.
pub fn seconds(ms: Millis) -> String {
    let whole = ms.0 / 1000;
    let frac = ms.0 % 1000;
    if frac == 0 {
        format!("{whole}.0")
    } else {
        let digits = format!("{frac:03}");
        format!("{whole}.{}", digits.trim_end_matches('0'))
    }
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    op: Cow<'a, str>,
    #[serde(borrow, default)]
    d: Option<&'a RawValue>,
}

impl Dialect for Discodo {
    fn decode<'a>(&self, text: &'a str) -> Result<Op<'a>, DecodeError> {
        let env: Envelope<'a> =
            serde_json::from_str(text).map_err(|e| DecodeError::Malformed(e.to_string()))?;
        Ok(Op::Dispatch {
            event: env.op,
            data: env.d,
        })
    }

    fn hello(&self, out: &mut String, heartbeat_interval: Millis) {
        out.push_str("{\"op\":\"HELLO\",\"d\":{\"heartbeat_interval\":");
        out.push_str(&seconds(heartbeat_interval));
        out.push_str("}}");
    }

    fn ready(&self, _out: &mut String, _ready: &Ready<'_>) {}

    fn heartbeat_ack(&self, out: &mut String, echo: Option<&RawValue>) {
        write_heartbeat_ack(out, echo);
    }

    fn dispatch_prefix(&self) -> Option<&'static [u8]> {
        None
    }

    fn dispatch_tail(&self, out: &mut String, event: &str, data: &str) {
        write_payload(out, event, data);
    }

    fn answer(&self, error: &GatewayError) -> Answer {
        let (c, fatal) = match error {
            GatewayError::Decode(_) => (code::DECODE_ERROR, false),
            GatewayError::NotIdentified | GatewayError::IdentifyTimeout => {
                (code::NOT_IDENTIFIED, true)
            }
            GatewayError::AuthenticationFailed => (code::FORBIDDEN, true),
            GatewayError::AlreadyIdentified => (code::ALREADY_IDENTIFIED, false),
            GatewayError::InvalidSession => (code::BAD_REQUEST, false),
            GatewayError::AlreadyConnected | GatewayError::SessionReplaced => {
                (code::SESSION_REPLACED, true)
            }
            GatewayError::RateLimited { fatal } => (code::RATE_LIMITED, *fatal),
            GatewayError::HeartbeatTimeout => (code::HEARTBEAT_TIMEOUT, true),
            GatewayError::TooManySessions { .. } => (code::TOO_MANY_SESSIONS, true),
            GatewayError::App { code, fatal, .. } => (*code, *fatal),
        };
        let why = match error {
            GatewayError::Decode(e) => Cow::Owned(e.to_string()),
            other => other.reason(),
        };
        let mut payload = String::with_capacity(why.len() + 32);
        write_error(&mut payload, c, &why);
        Answer {
            payload: Some(payload),
            close: fatal.then(|| (c, truncate(&why, 120).to_owned())),
        }
    }
}

/// `s` cut to at most `max` bytes on a character boundary (close reasons are short).
fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_op_is_a_dispatch_with_raw_data() {
        match Discodo.decode(r#"{"op":"HEARTBEAT","d":{"a": [1, 2.50]}}"#) {
            Ok(Op::Dispatch { event, data }) => {
                assert_eq!(event, "HEARTBEAT");
                assert_eq!(data.map(RawValue::get), Some(r#"{"a": [1, 2.50]}"#));
            }
            other => panic!("{other:?}"),
        }
        match Discodo.decode(r#"{"op":"IDENTIFY"}"#) {
            Ok(Op::Dispatch { event, data }) => assert!(event == "IDENTIFY" && data.is_none()),
            other => panic!("{other:?}"),
        }
        for bad in [
            "",
            "nope",
            "[]",
            r#"{"d":1}"#,
            r#"{"op":1}"#,
            r#"{"op":null}"#,
        ] {
            assert!(
                matches!(Discodo.decode(bad), Err(DecodeError::Malformed(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn hello_carries_seconds_as_a_number() {
        let mut out = String::new();
        Discodo.hello(&mut out, Millis(15_000));
        assert_eq!(out, r#"{"op":"HELLO","d":{"heartbeat_interval":15.0}}"#);
        assert_eq!(seconds(Millis(500)), "0.5");
        assert_eq!(seconds(Millis(41_250)), "41.25");
        assert_eq!(seconds(Millis(1_001)), "1.001");
        assert_eq!(seconds(Millis(0)), "0.0");
    }

    #[test]
    fn heartbeat_ack_echoes_raw_json() {
        let raw: &RawValue = serde_json::from_str(r#"{"t": 1.50}"#).unwrap();
        let mut out = String::new();
        write_heartbeat_ack(&mut out, Some(raw));
        assert_eq!(out, r#"{"op":"HEARTBEAT_ACK","d":{"t": 1.50}}"#);
        out.clear();
        Discodo.heartbeat_ack(&mut out, None);
        assert_eq!(out, r#"{"op":"HEARTBEAT_ACK","d":null}"#);
    }

    #[test]
    fn errors_are_named_payloads_then_closes_when_fatal() {
        let a = Discodo.answer(&GatewayError::app(
            code::FORBIDDEN,
            true,
            "password mismatch",
        ));
        assert_eq!(
            a.payload.as_deref(),
            Some(r#"{"op":"FORBIDDEN","d":"password mismatch"}"#)
        );
        assert_eq!(a.close, Some((CloseCode(4001), "password mismatch".into())));
        let a = Discodo.answer(&GatewayError::Decode(DecodeError::Malformed("eof".into())));
        assert_eq!(
            a.payload.as_deref(),
            Some(r#"{"op":"DECODE_ERROR","d":"malformed payload: eof"}"#)
        );
        assert_eq!(a.close, None);
        let a = Discodo.answer(&GatewayError::HeartbeatTimeout);
        assert_eq!(a.close.map(|c| c.0), Some(CloseCode(4009)));
        let long = "é".repeat(200);
        let a = Discodo.answer(&GatewayError::app(code::NOT_IDENTIFIED, true, long));
        assert!(a.close.is_some_and(|(_, r)| r.len() <= 120));
    }
}
