//! The bus envelope: one message between engines, as bytes, with a codec that refuses
//! anything foreign or malformed.
//!
//! Layout (big-endian, 20 header bytes, then the topic and the body):
//!
//! ```text
//! offset size field
//!      0    2 magic            b"PB"
//!      2    1 version          1 (another version is refused: nodes of two versions
//!                              do not talk on one bus)
//!      3    1 kind             Kind as u8 (an unknown kind is refused)
//!      4    4 origin node      the process (0 for the in-process bus)
//!      8    2 origin reactor   the engine within the node
//!     10    2 topic length T   at most MAX_TOPIC
//!     12    4 body length B    at most MAX_BODY
//!     16    4 reserved         0 (refused otherwise, so it can carry flags later)
//!     20    T topic            UTF-8: a room name, a session id, an event name
//!   20+T    B body             the payload, opaque to the bus (JSON text for dispatches)
//! ```
//!
//! The total length must be exactly `20 + T + B`: trailing bytes are refused too. Checked
//! once by [`Envelope::decode`]; the accessors of a decoded envelope cannot fail.

use super::Origin;
use std::fmt;

/// Magic bytes opening every envelope.
pub const MAGIC: [u8; 2] = *b"PB";
/// The envelope version this code writes and accepts.
pub const VERSION: u8 = 1;
/// Header length in bytes.
pub const HEADER: usize = 20;
/// Longest topic (room names and session ids are far shorter).
pub const MAX_TOPIC: usize = 256;
/// Longest body: 1 MiB, so a full queue of envelopes is bounded in bytes too.
pub const MAX_BODY: usize = 1 << 20;

/// What an envelope asks of the engines that receive it.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Kind {
    /// To a room's home reactor: sequence this dispatch (topic: room, body: event).
    Forward = 1,
    /// From a room's home: a sequenced room dispatch to deliver to local members.
    Dispatch = 2,
    /// Presence: a member joined or left a room (topic: room).
    Presence = 3,
    /// A ban: end the user's sessions everywhere (topic: user).
    Ban = 4,
    /// An application event, opaque to the engine (topic: event name).
    Event = 5,
    /// Who holds this session? (topic: session id; for resume on another reactor).
    SessionQuery = 6,
    /// A session handed over: its state and missed events (topic: session id).
    SessionHandover = 7,
    /// No reactor holds this session (topic: session id).
    SessionUnknown = 8,
}

impl Kind {
    fn from_u8(value: u8) -> Option<Kind> {
        Some(match value {
            1 => Kind::Forward,
            2 => Kind::Dispatch,
            3 => Kind::Presence,
            4 => Kind::Ban,
            5 => Kind::Event,
            6 => Kind::SessionQuery,
            7 => Kind::SessionHandover,
            8 => Kind::SessionUnknown,
            _ => return None,
        })
    }
}

/// Why bytes are not an envelope.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum EnvelopeError {
    /// Shorter than the header, or than the lengths it announces.
    Truncated,
    /// Not our magic: not a postern bus message.
    Foreign,
    /// Another envelope version.
    Version(u8),
    /// An unknown kind.
    Kind(u8),
    /// The reserved bytes are not zero.
    Reserved,
    /// The topic or the body is longer than allowed.
    TooLong,
    /// The topic is not UTF-8.
    Topic,
    /// Bytes after the body.
    Trailing,
}

impl fmt::Display for EnvelopeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EnvelopeError::Truncated => f.write_str("truncated envelope"),
            EnvelopeError::Foreign => f.write_str("not a bus envelope"),
            EnvelopeError::Version(v) => write!(f, "envelope version {v}"),
            EnvelopeError::Kind(k) => write!(f, "unknown envelope kind {k}"),
            EnvelopeError::Reserved => f.write_str("reserved envelope bytes set"),
            EnvelopeError::TooLong => f.write_str("envelope topic or body too long"),
            EnvelopeError::Topic => f.write_str("envelope topic not UTF-8"),
            EnvelopeError::Trailing => f.write_str("bytes after the envelope"),
        }
    }
}

impl std::error::Error for EnvelopeError {}

/// A checked envelope, borrowing its topic and body from the bytes it was decoded from.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Envelope<'a> {
    /// What the receivers are asked to do.
    pub kind: Kind,
    /// Who published it.
    pub origin: Origin,
    /// A room name, a session id, a user, an event name: per [`Kind`].
    pub topic: &'a str,
    /// The payload, opaque to the bus.
    pub body: &'a [u8],
}

impl<'a> Envelope<'a> {
    /// Appends the envelope's bytes to `out`. Fails (writing nothing) when the topic or
    /// the body is longer than [`MAX_TOPIC`] / [`MAX_BODY`].
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EnvelopeError> {
        if self.topic.len() > MAX_TOPIC || self.body.len() > MAX_BODY {
            return Err(EnvelopeError::TooLong);
        }
        out.reserve(HEADER + self.topic.len() + self.body.len());
        out.extend_from_slice(&MAGIC);
        out.push(VERSION);
        out.push(self.kind as u8);
        out.extend_from_slice(&self.origin.node.to_be_bytes());
        out.extend_from_slice(&self.origin.reactor.to_be_bytes());
        // Both fit: checked against MAX_TOPIC and MAX_BODY above.
        out.extend_from_slice(&(self.topic.len() as u16).to_be_bytes());
        out.extend_from_slice(&(self.body.len() as u32).to_be_bytes());
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(self.topic.as_bytes());
        out.extend_from_slice(self.body);
        Ok(())
    }

    /// The envelope's bytes in a new vector.
    pub fn to_vec(&self) -> Result<Vec<u8>, EnvelopeError> {
        let mut out = Vec::new();
        self.encode(&mut out)?;
        Ok(out)
    }

    /// Checks `bytes` and views them as an envelope.
    pub fn decode(bytes: &'a [u8]) -> Result<Envelope<'a>, EnvelopeError> {
        if bytes.iter().zip(MAGIC).any(|(&byte, magic)| byte != magic) {
            return Err(EnvelopeError::Foreign);
        }
        let header: &[u8; HEADER] = bytes
            .get(..HEADER)
            .and_then(|h| h.try_into().ok())
            .ok_or(EnvelopeError::Truncated)?;
        if header[2] != VERSION {
            return Err(EnvelopeError::Version(header[2]));
        }
        let kind = Kind::from_u8(header[3]).ok_or(EnvelopeError::Kind(header[3]))?;
        if header[16..20] != [0; 4] {
            return Err(EnvelopeError::Reserved);
        }
        let origin = Origin {
            node: u32::from_be_bytes([header[4], header[5], header[6], header[7]]),
            reactor: u16::from_be_bytes([header[8], header[9]]),
        };
        let topic_len = usize::from(u16::from_be_bytes([header[10], header[11]]));
        let body_len = u32::from_be_bytes([header[12], header[13], header[14], header[15]]);
        let body_len = usize::try_from(body_len).map_err(|_| EnvelopeError::TooLong)?;
        if topic_len > MAX_TOPIC || body_len > MAX_BODY {
            return Err(EnvelopeError::TooLong);
        }
        let rest = &bytes[HEADER..];
        let total = topic_len + body_len;
        if rest.len() < total {
            return Err(EnvelopeError::Truncated);
        }
        if rest.len() > total {
            return Err(EnvelopeError::Trailing);
        }
        let (topic, body) = rest.split_at(topic_len);
        let topic = std::str::from_utf8(topic).map_err(|_| EnvelopeError::Topic)?;
        Ok(Envelope {
            kind,
            origin,
            topic,
            body,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Envelope<'static> {
        Envelope {
            kind: Kind::Dispatch,
            origin: Origin {
                node: 0x0102_0304,
                reactor: 7,
            },
            topic: "general",
            body: br#"{"t":"MESSAGE_CREATE"}"#,
        }
    }

    #[test]
    fn an_envelope_round_trips_with_the_documented_layout() {
        let bytes = sample().to_vec().unwrap();
        assert_eq!(bytes.len(), HEADER + 7 + 22);
        assert_eq!(&bytes[..4], b"PB\x01\x02");
        assert_eq!(&bytes[4..10], &[1, 2, 3, 4, 0, 7]);
        assert_eq!(&bytes[10..12], &[0, 7]);
        assert_eq!(&bytes[12..16], &[0, 0, 0, 22]);
        assert_eq!(&bytes[16..20], &[0; 4]);
        assert_eq!(Envelope::decode(&bytes), Ok(sample()));
    }

    #[test]
    fn every_kind_round_trips_and_unknown_kinds_are_refused() {
        for value in 0..=255u8 {
            let mut bytes = sample().to_vec().unwrap();
            bytes[3] = value;
            match Kind::from_u8(value) {
                Some(kind) => assert_eq!(Envelope::decode(&bytes).unwrap().kind, kind),
                None => assert_eq!(Envelope::decode(&bytes), Err(EnvelopeError::Kind(value))),
            }
        }
    }

    #[test]
    fn foreign_and_malformed_bytes_are_refused_precisely() {
        let good = sample().to_vec().unwrap();
        let with = |at: usize, value: u8| {
            let mut bytes = good.clone();
            bytes[at] = value;
            Envelope::decode(&bytes).map(|_| ())
        };
        assert_eq!(with(0, b'{'), Err(EnvelopeError::Foreign));
        assert_eq!(with(2, 2), Err(EnvelopeError::Version(2)));
        assert_eq!(with(19, 1), Err(EnvelopeError::Reserved));
        assert_eq!(with(20, 0xFF), Err(EnvelopeError::Topic));
        assert_eq!(with(13, 0x20), Err(EnvelopeError::TooLong)); // body 2 MiB + 22
        assert_eq!(with(10, 0x01), Err(EnvelopeError::TooLong)); // topic 263
        let mut long = good.clone();
        long.push(0);
        assert_eq!(Envelope::decode(&long), Err(EnvelopeError::Trailing));
        for len in 0..good.len() {
            assert_eq!(
                Envelope::decode(&good[..len]),
                Err(EnvelopeError::Truncated),
                "{len} bytes"
            );
        }
        assert_eq!(
            Envelope::decode(br#"{"op":0,"t":"x"}"#),
            Err(EnvelopeError::Foreign)
        );
    }

    #[test]
    fn an_overlong_topic_or_body_is_not_encoded() {
        let topic = "r".repeat(MAX_TOPIC + 1);
        let body = vec![0; MAX_BODY + 1];
        let mut out = vec![9];
        let too_long_topic = Envelope {
            topic: &topic,
            ..sample()
        };
        assert_eq!(too_long_topic.encode(&mut out), Err(EnvelopeError::TooLong));
        let too_long_body = Envelope {
            body: &body,
            ..sample()
        };
        assert_eq!(too_long_body.encode(&mut out), Err(EnvelopeError::TooLong));
        assert_eq!(out, [9], "nothing written");
        let at_limits = Envelope {
            topic: &topic[1..],
            body: &body[1..],
            ..sample()
        };
        let bytes = at_limits.to_vec().unwrap();
        assert_eq!(Envelope::decode(&bytes), Ok(at_limits));
    }
}
