//! Seed 001, the Nightingale music-player gateway: every server payload is
//! `{"op": "name", "data": ...}`, with no sequence numbers and no heartbeats; the client sends
//! nothing (everything it asks for goes through the REST API).
//!
//! | op | meaning |
//! |----|---------|
//! | `ready` | `{"session": "<uuid>", "resumed": bool}`, first on every connection |
//! | `forward` | a Discord gateway payload the client must forward (`{"op": 4, "d": ...}`) |
//! | `update_state` | `{"type": "connect_gateway" \| "reconnect_gateway" \| "disconnect_gateway", "data": ...}` |
//! | `event` | `{"type": "track_start" \| "track_end" \| "track_errored", "data": ...}` |
//!
//! The application dispatches the last three with the op as the event name and the `data`
//! member as the data. The session id of READY is the application's (a UUID): it passes it
//! as READY's extra fields (`"session":"<uuid>"`, see [`Handler::ready_fields`]); without
//! them the engine's id is written in UUID form ([`session_uuid`]).
//!
//! Close codes (the seed has none; see docs/protocols/nightingale.md): 1003 for any client
//! message, 1000 for a session resumed on another connection, 4000 for a resume the replay
//! buffer can no longer serve, 1001 at shutdown, 1011 for an internal error.
//!
//! [`Handler::ready_fields`]: crate::gateway::Handler::ready_fields

use crate::gateway::dialect::{
    write_json_str, Answer, DecodeError, Dialect, GatewayError, Op, Ready,
};
use crate::gateway::session::SessionId;
use crate::time::Millis;
use serde_json::value::RawValue;

/// The Nightingale dialect.
#[derive(Copy, Clone, Debug, Default)]
pub struct Nightingale;

/// Close codes this dialect uses.
pub mod code {
    use crate::close::CloseCode;

    /// The session was resumed on another connection (this one is done: do not resume it).
    pub const SESSION_REPLACED: CloseCode = CloseCode(1000);
    /// The client sent a message: Nightingale clients send none.
    pub const CLIENT_MESSAGE: CloseCode = CloseCode(1003);
    /// The session can no longer be resumed (its replay buffer overflowed): open a new one.
    pub const CANNOT_RESUME: CloseCode = CloseCode(4000);
    /// Any other refusal (not produced by the bundled example).
    pub const POLICY: CloseCode = CloseCode(1008);
    /// A new session refused for the session bounds (the example refuses at the upgrade
    /// with 429 or 503 instead).
    pub const TRY_AGAIN_LATER: CloseCode = CloseCode(1013);
}

/// `id` written as a UUID (`00000000-0000-0000-XXXX-XXXXXXXXXXXX`, the id's 16 hex digits
/// last): READY's session when the application gives none of its own.
pub fn session_uuid(id: SessionId) -> String {
    let hex = format!("{:016x}", id.get());
    format!("00000000-0000-0000-{}-{}", &hex[..4], &hex[4..])
}

impl Dialect for Nightingale {
    fn decode<'a>(&self, text: &'a str) -> Result<Op<'a>, DecodeError> {
        // Nothing is accepted from a client; say what it was for the close reason's sake.
        match serde_json::from_str::<&RawValue>(text) {
            Ok(_) => Err(DecodeError::UnknownOp("client message".into())),
            Err(e) => Err(DecodeError::Malformed(e.to_string())),
        }
    }

    fn hello(&self, _out: &mut String, _heartbeat_interval: Millis) {}

    fn ready(&self, out: &mut String, ready: &Ready<'_>) {
        out.push_str("{\"op\":\"ready\",\"data\":{");
        if ready.extra.is_empty() {
            out.push_str("\"session\":");
            write_json_str(out, &session_uuid(ready.session));
        } else {
            out.push_str(ready.extra);
        }
        out.push_str(if ready.resumed {
            ",\"resumed\":true}}"
        } else {
            ",\"resumed\":false}}"
        });
    }

    fn heartbeat_ack(&self, _out: &mut String, _echo: Option<&RawValue>) {}

    fn dispatch_prefix(&self) -> Option<&'static [u8]> {
        None
    }

    fn dispatch_tail(&self, out: &mut String, event: &str, data: &str) {
        out.push_str("{\"op\":");
        write_json_str(out, event);
        out.push_str(",\"data\":");
        out.push_str(data);
        out.push('}');
    }

    fn answer(&self, error: &GatewayError) -> Answer {
        let (c, text) = match error {
            GatewayError::Decode(_) => (
                code::CLIENT_MESSAGE,
                "nightingale clients send no messages".into(),
            ),
            GatewayError::SessionReplaced => (
                code::SESSION_REPLACED,
                "session resumed on another connection".into(),
            ),
            GatewayError::TooManySessions { .. } => (code::TRY_AGAIN_LATER, error.reason()),
            GatewayError::InvalidSession => {
                (code::CANNOT_RESUME, "session cannot be resumed".into())
            }
            GatewayError::App { fatal: false, .. } => {
                return Answer {
                    payload: None,
                    close: None,
                }
            }
            GatewayError::App { code, reason, .. } => (*code, reason.clone()),
            other => (code::POLICY, other.reason()),
        };
        Answer {
            payload: None,
            close: Some((c, text.into_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::close::CloseCode;

    #[test]
    fn nothing_from_a_client_is_accepted() {
        assert!(matches!(
            Nightingale.decode(r#"{"op":"ping"}"#),
            Err(DecodeError::UnknownOp(_))
        ));
        assert!(matches!(
            Nightingale.decode("not json"),
            Err(DecodeError::Malformed(_))
        ));
        let answer = Nightingale.answer(&GatewayError::Decode(DecodeError::Binary));
        assert_eq!(answer.close.map(|(c, _)| c.0), Some(1003));
        assert_eq!(answer.payload, None);
    }

    #[test]
    fn ready_carries_the_applications_session_then_resumed() {
        let mut out = String::new();
        let extra = r#""session":"ad13c35f-7bf4-413b-997d-eef2fe009f98""#;
        Nightingale.ready(
            &mut out,
            &Ready {
                session: SessionId::new(1),
                resumed: false,
                extra,
            },
        );
        assert_eq!(
            out,
            r#"{"op":"ready","data":{"session":"ad13c35f-7bf4-413b-997d-eef2fe009f98","resumed":false}}"#
        );
        out.clear();
        Nightingale.ready(
            &mut out,
            &Ready {
                session: SessionId::new(0xabcd_0123_4567_89ef),
                resumed: true,
                extra: "",
            },
        );
        assert_eq!(
            out,
            r#"{"op":"ready","data":{"session":"00000000-0000-0000-abcd-0123456789ef","resumed":true}}"#
        );
    }

    #[test]
    fn dispatches_are_op_and_data_without_sequence() {
        let mut out = String::new();
        Nightingale.dispatch_tail(&mut out, "forward", r#"{"op":4,"d":{}}"#);
        assert_eq!(out, r#"{"op":"forward","data":{"op":4,"d":{}}}"#);
        assert_eq!(Nightingale.dispatch_prefix(), None);
        Nightingale.hello(&mut out, Millis(1));
        Nightingale.heartbeat_ack(&mut out, None);
        assert_eq!(out, r#"{"op":"forward","data":{"op":4,"d":{}}}"#);
    }

    #[test]
    fn replaced_sessions_close_normally() {
        let close = Nightingale.answer(&GatewayError::SessionReplaced).close;
        assert_eq!(close.map(|(c, _)| c.0), Some(1000));
        let close = Nightingale.answer(&GatewayError::InvalidSession).close;
        assert_eq!(close.map(|(c, _)| c.0), Some(4000));
        assert_eq!(Nightingale.shutdown_close().0, CloseCode::GOING_AWAY);
    }
}
