//! Seed 003, the chat-rooms gateway: packets `{"e": <event id>, "d": {...}}`.
//!
//! | e | name | direction | data |
//! |---|------|-----------|------|
//! | 0 | hello | server | `{"heartbeatInterval": ms}` |
//! | 1 | heartbeat | both | `{}` |
//! | 2 | heartbeat_ack | both | `{}`: "are you alive?", answered at once with a heartbeat |
//! | 3 | message_create | server | `{"authorId","content","sentAt"}` |
//! | 4 | room_update | server | `{"chatLocked"?,"roomLocked"?,"maxParticipants"?,"discordWebhookLink"?}` |
//! | 5 | participant_kick | server | `{"userId"}` |
//! | 6 | participant_update | server | `{"userId","banned"?,"color"?,"admin"?}` |
//! | 7 | room_close | server | `{}` |
//!
//! The protocol has no identify (the participant is named by the upgrade's query), no
//! READY, no sequence numbers and no error payload: failures are told by close codes
//! ([`code`]). How the engine's operations map onto it:
//!
//! - A client heartbeat (`e` 1) decodes to [`Op::Heartbeat`]`(None)` and is not answered
//!   (an answer could start a ping-pong with a client that answers heartbeats).
//! - A client heartbeat_ack (`e` 2, the client asking whether the server is alive) decodes
//!   to [`Op::Heartbeat`]`(Some(_))`, which [`Dialect::heartbeat_ack`] answers with a
//!   heartbeat, as the seed asks of whoever receives a heartbeat_ack.
//! - The server's probe ([`Dialect::heartbeat_request`]) is a heartbeat_ack; the client's
//!   heartbeat answers it.
//! - Dispatches are written `{"e":<id>,"d":<data>}` where the event name is a seed name
//!   (`"message_create"`, ...) or a decimal id ([`event_id`]).
//!
//! The full protocol as served by `examples/rooms.rs`: docs/protocols/rooms.md.

use crate::gateway::dialect::{
    write_json_str, Answer, DecodeError, Dialect, GatewayError, Op, Ready,
};
use crate::time::Millis;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt::Write;

/// The chat-rooms dialect.
#[derive(Copy, Clone, Debug, Default)]
pub struct Rooms;

/// Event ids of the seed's table.
pub mod event {
    /// hello (server): `{"heartbeatInterval": ms}`.
    pub const HELLO: u8 = 0;
    /// heartbeat (both): `{}`.
    pub const HEARTBEAT: u8 = 1;
    /// heartbeat_ack (both): `{}`, to be answered at once with a heartbeat.
    pub const HEARTBEAT_ACK: u8 = 2;
    /// message_create (server): `{"authorId","content","sentAt"}`.
    pub const MESSAGE_CREATE: u8 = 3;
    /// room_update (server): the room settings that changed.
    pub const ROOM_UPDATE: u8 = 4;
    /// participant_kick (server): `{"userId"}`.
    pub const PARTICIPANT_KICK: u8 = 5;
    /// participant_update (server): `{"userId", ...}` with the properties that changed.
    pub const PARTICIPANT_UPDATE: u8 = 6;
    /// room_close (server): `{}`.
    pub const ROOM_CLOSE: u8 = 7;
}

/// Close codes of this dialect (the protocol has no error payload).
pub mod code {
    use crate::close::CloseCode;

    /// A packet with an event id clients may not send (0, 3-7) or an unknown one.
    pub const UNKNOWN_EVENT: CloseCode = CloseCode(4001);
    /// Not JSON, not a `{"e": integer, ...}` object, or a binary message.
    pub const DECODE_ERROR: CloseCode = CloseCode(4002);
    /// Not identified (unused by the example: the upgrade identifies).
    pub const NOT_IDENTIFIED: CloseCode = CloseCode(4003);
    /// Credentials refused (unused by the example).
    pub const AUTHENTICATION_FAILED: CloseCode = CloseCode(4004);
    /// Identified twice (unused by the example).
    pub const ALREADY_IDENTIFIED: CloseCode = CloseCode(4005);
    /// Invalid session (unused by the example: there is no resume).
    pub const INVALID_SESSION: CloseCode = CloseCode(4006);
    /// Heartbeats far beyond one per interval, kept up after being ignored.
    pub const RATE_LIMITED: CloseCode = CloseCode(4008);
    /// No heartbeat within the interval (plus grace), or a probe left unanswered.
    pub const HEARTBEAT_TIMEOUT: CloseCode = CloseCode(4009);
    /// The participant was kicked from the room.
    pub const KICKED: CloseCode = CloseCode(4010);
    /// The participant was banned from the room.
    pub const BANNED: CloseCode = CloseCode(4011);
    /// The room was closed.
    pub const ROOM_CLOSED: CloseCode = CloseCode(4012);
    /// A new session refused for the session bounds (the example refuses at the upgrade
    /// with 429 or 503 instead).
    pub const TOO_MANY_SESSIONS: CloseCode = CloseCode(4013);
    /// The session is live elsewhere (unused by the example).
    pub const ALREADY_CONNECTED: CloseCode = CloseCode(4014);
    /// The session was taken over elsewhere (unused by the example).
    pub const SESSION_REPLACED: CloseCode = CloseCode(4015);
}

/// The server's own heartbeat packet.
pub const SERVER_HEARTBEAT: &str = "{\"e\":1,\"d\":{}}";

/// The id of an event given by its seed name (`"message_create"`) or as decimal digits.
pub fn event_id(name: &str) -> Option<u8> {
    Some(match name {
        "hello" => event::HELLO,
        "heartbeat" => event::HEARTBEAT,
        "heartbeat_ack" => event::HEARTBEAT_ACK,
        "message_create" => event::MESSAGE_CREATE,
        "room_update" => event::ROOM_UPDATE,
        "participant_kick" => event::PARTICIPANT_KICK,
        "participant_update" => event::PARTICIPANT_UPDATE,
        "room_close" => event::ROOM_CLOSE,
        digits => return digits.parse().ok(),
    })
}

/// Writes a whole packet `{"e":<id>,"d":<data>}` (`data` is JSON text).
pub fn write_packet(out: &mut String, id: u8, data: &str) {
    let _ = write!(out, "{{\"e\":{id},\"d\":");
    out.push_str(data);
    out.push('}');
}

#[derive(Deserialize)]
struct Envelope<'a> {
    e: i64,
    #[serde(borrow, default)]
    d: Option<&'a RawValue>,
}

impl Dialect for Rooms {
    fn decode<'a>(&self, text: &'a str) -> Result<Op<'a>, DecodeError> {
        let env: Envelope<'a> =
            serde_json::from_str(text).map_err(|e| DecodeError::Malformed(e.to_string()))?;
        match env.e {
            1 => Ok(Op::Heartbeat(None)),
            2 => Ok(Op::Heartbeat(Some(env.d.unwrap_or(RawValue::NULL)))),
            other => Err(DecodeError::UnknownOp(other.to_string())),
        }
    }

    fn hello(&self, out: &mut String, heartbeat_interval: Millis) {
        let _ = write!(
            out,
            "{{\"e\":0,\"d\":{{\"heartbeatInterval\":{}}}}}",
            heartbeat_interval.0
        );
    }

    fn ready(&self, _out: &mut String, _ready: &Ready<'_>) {}

    fn heartbeat_ack(&self, out: &mut String, echo: Option<&RawValue>) {
        if echo.is_some() {
            out.push_str(SERVER_HEARTBEAT);
        }
    }

    fn heartbeat_request(&self, out: &mut String) {
        out.push_str("{\"e\":2,\"d\":{}}");
    }

    fn dispatch_prefix(&self) -> Option<&'static [u8]> {
        None
    }

    fn dispatch_tail(&self, out: &mut String, event: &str, data: &str) {
        match event_id(event) {
            Some(id) => write_packet(out, id, data),
            None => {
                // Not a seed event: spelled as a string so that the packet stays JSON.
                out.push_str("{\"e\":");
                write_json_str(out, event);
                out.push_str(",\"d\":");
                out.push_str(data);
                out.push('}');
            }
        }
    }

    fn answer(&self, error: &GatewayError) -> Answer {
        let close = match error {
            GatewayError::Decode(DecodeError::UnknownOp(_)) => Some(code::UNKNOWN_EVENT),
            GatewayError::Decode(_) => Some(code::DECODE_ERROR),
            GatewayError::NotIdentified | GatewayError::IdentifyTimeout => {
                Some(code::NOT_IDENTIFIED)
            }
            GatewayError::AuthenticationFailed => Some(code::AUTHENTICATION_FAILED),
            GatewayError::AlreadyIdentified => Some(code::ALREADY_IDENTIFIED),
            GatewayError::InvalidSession => Some(code::INVALID_SESSION),
            GatewayError::AlreadyConnected => Some(code::ALREADY_CONNECTED),
            GatewayError::SessionReplaced => Some(code::SESSION_REPLACED),
            GatewayError::RateLimited { fatal } => fatal.then_some(code::RATE_LIMITED),
            GatewayError::HeartbeatTimeout => Some(code::HEARTBEAT_TIMEOUT),
            GatewayError::TooManySessions { .. } => Some(code::TOO_MANY_SESSIONS),
            GatewayError::App { code, fatal, .. } => fatal.then_some(*code),
        };
        Answer {
            payload: None,
            close: close.map(|c| (c, reason(error).into_owned())),
        }
    }
}

/// The close reason for an error (the engine's, with this protocol's words).
fn reason(error: &GatewayError) -> Cow<'static, str> {
    match error {
        GatewayError::Decode(DecodeError::UnknownOp(_)) => {
            Cow::Borrowed("clients may only send events 1 and 2")
        }
        GatewayError::Decode(DecodeError::Binary) => {
            Cow::Borrowed("binary messages are not accepted")
        }
        GatewayError::Decode(_) => Cow::Borrowed("malformed packet"),
        other => other.reason(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(text: &str) -> Result<Op<'_>, DecodeError> {
        Rooms.decode(text)
    }

    #[test]
    fn client_packets_decode() {
        assert!(matches!(
            decode(r#"{"e":1,"d":{}}"#),
            Ok(Op::Heartbeat(None))
        ));
        assert!(matches!(decode(r#"{"e":1}"#), Ok(Op::Heartbeat(None))));
        assert!(matches!(
            decode(r#"{"d":{},"e":2}"#),
            Ok(Op::Heartbeat(Some(_)))
        ));
        assert!(matches!(decode(r#"{"e":2}"#), Ok(Op::Heartbeat(Some(_)))));
        for server_only in [0, 3, 4, 5, 6, 7, 8, -1] {
            let text = format!("{{\"e\":{server_only},\"d\":{{}}}}");
            assert!(
                matches!(decode(&text), Err(DecodeError::UnknownOp(_))),
                "{text}"
            );
        }
        for bad in [
            "",
            "{",
            "[]",
            "null",
            r#"{"d":{}}"#,
            r#"{"e":"1"}"#,
            r#"{"e":1.5}"#,
        ] {
            assert!(
                matches!(decode(bad), Err(DecodeError::Malformed(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn server_packets_are_spelled_as_the_seed() {
        let mut out = String::new();
        Rooms.hello(&mut out, Millis(30_000));
        assert_eq!(out, r#"{"e":0,"d":{"heartbeatInterval":30000}}"#);
        out.clear();
        Rooms.heartbeat_request(&mut out);
        assert_eq!(out, r#"{"e":2,"d":{}}"#);
        out.clear();
        Rooms.heartbeat_ack(&mut out, None);
        assert_eq!(out, "", "a client heartbeat is not answered");
        Rooms.heartbeat_ack(&mut out, Some(RawValue::NULL));
        assert_eq!(out, SERVER_HEARTBEAT);
        out.clear();
        Rooms.dispatch_tail(&mut out, "message_create", r#"{"authorId":"a"}"#);
        assert_eq!(out, r#"{"e":3,"d":{"authorId":"a"}}"#);
        out.clear();
        Rooms.dispatch_tail(&mut out, "7", "{}");
        assert_eq!(out, r#"{"e":7,"d":{}}"#);
        out.clear();
        Rooms.dispatch_tail(&mut out, "odd\"name", "{}");
        assert!(serde_json::from_str::<serde_json::Value>(&out).is_ok());
        assert_eq!(Rooms.dispatch_prefix(), None);
    }

    #[test]
    fn errors_are_close_codes() {
        let close = |e: GatewayError| Rooms.answer(&e).close.map(|(c, _)| c.0);
        assert_eq!(close(GatewayError::HeartbeatTimeout), Some(4009));
        assert_eq!(
            close(GatewayError::Decode(DecodeError::Malformed("x".into()))),
            Some(4002)
        );
        assert_eq!(
            close(GatewayError::Decode(DecodeError::UnknownOp("3".into()))),
            Some(4001)
        );
        assert_eq!(close(GatewayError::RateLimited { fatal: false }), None);
        assert_eq!(close(GatewayError::RateLimited { fatal: true }), Some(4008));
        assert_eq!(
            close(GatewayError::app(code::KICKED, true, "kicked")),
            Some(4010)
        );
        assert_eq!(close(GatewayError::app(4100, false, "soft")), None);
        assert!(Rooms
            .answer(&GatewayError::HeartbeatTimeout)
            .payload
            .is_none());
    }
}
