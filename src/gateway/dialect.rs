//! [`Dialect`]: how one gateway protocol spells its envelope.
//!
//! The engine speaks in operations (hello, identify, ready, heartbeat, dispatch with a
//! sequence number, resume, error); a dialect turns client text into an [`Op`] and writes
//! the server's payloads. Decoding borrows from the message (`RawValue` for data that passes
//! through untouched) and never panics: malformed input is a [`DecodeError`].

pub use super::error::{Answer, DecodeError, GatewayError};
use super::secret::SessionId;
use crate::close::CloseCode;
use crate::time::Millis;
use serde_json::value::RawValue;
use std::borrow::Cow;

/// A client message, as the engine understands it.
#[derive(Debug)]
pub enum Op<'a> {
    /// Authenticate and open a new session; the payload goes to the handler.
    Identify(&'a RawValue),
    /// Re-attach to a session, replaying what was sent after `seq`; the payload (the
    /// credentials) goes to the handler, which must name the same identity.
    Resume {
        /// The session to resume.
        session: SessionId,
        /// The last sequence number the client saw (0: none).
        seq: u64,
        /// The credentials.
        payload: &'a RawValue,
    },
    /// A heartbeat; `echo` is data the protocol echoes in its acknowledgement.
    Heartbeat(Option<&'a RawValue>),
    /// An application event with its name and data.
    Dispatch {
        /// Event name.
        event: Cow<'a, str>,
        /// Event data, raw.
        data: Option<&'a RawValue>,
    },
}

/// What the engine tells a dialect to put in READY.
#[derive(Debug)]
pub struct Ready<'a> {
    /// The session id.
    pub session: SessionId,
    /// Whether this READY answers a resume.
    pub resumed: bool,
    /// Extra JSON fields from the handler (an object's members without braces, or empty).
    pub extra: &'a str,
}

/// How one protocol spells its envelope. Implementations are stateless and cheap.
pub trait Dialect {
    /// Decodes a client text message.
    fn decode<'a>(&self, text: &'a str) -> Result<Op<'a>, DecodeError>;

    /// Writes HELLO (sent on open) with the heartbeat interval; nothing if the protocol has
    /// no HELLO.
    fn hello(&self, out: &mut String, heartbeat_interval: Millis);

    /// Writes READY (after identify or resume); nothing if the protocol has no READY.
    fn ready(&self, out: &mut String, ready: &Ready<'_>);

    /// Writes the acknowledgement of a heartbeat (`echo` as received); nothing if the
    /// protocol does not acknowledge.
    fn heartbeat_ack(&self, out: &mut String, echo: Option<&RawValue>);

    /// Writes a server-initiated heartbeat request (a probe the client must answer at
    /// once); nothing if the protocol has none.
    fn heartbeat_request(&self, out: &mut String) {
        let _ = out;
    }

    /// The bytes of a dispatch payload before its sequence number, or `None` when the
    /// protocol carries no sequence number (then the payload is the tail alone).
    fn dispatch_prefix(&self) -> Option<&'static [u8]>;

    /// Writes the part of a dispatch payload after its sequence number (or all of it):
    /// event name and data (`data` is JSON text).
    fn dispatch_tail(&self, out: &mut String, event: &str, data: &str);

    /// How an error is answered.
    fn answer(&self, error: &GatewayError) -> Answer;

    /// The close code and reason for a graceful shutdown, after the going-down event.
    fn shutdown_close(&self) -> (CloseCode, &'static str) {
        (CloseCode::GOING_AWAY, "server shutting down")
    }

    /// The event name announcing a shutdown (sent as a dispatch), if the protocol has one.
    fn going_down_event(&self) -> Option<&'static str> {
        None
    }
}

/// Writes `s` as a JSON string literal (with quotes) into `out`.
pub fn write_json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{0}'..='\u{1f}' => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                let b = c as u8;
                out.push_str("\\u00");
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 0xF)]));
            }
            _ => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_are_escaped_and_parse_back() {
        for s in ["plain", "quote\" back\\slash", "ctl\u{1}\n\t", "ünï€ode"] {
            let mut out = String::new();
            write_json_str(&mut out, s);
            let back: String = serde_json::from_str(&out).unwrap();
            assert_eq!(back, s);
        }
    }
}
