//! Rooms across engines: which engine is a room's home, and the body of a room dispatch on
//! the bus (used by the engine's `gateway/cluster.rs`).
//!
//! **One order for every member.** A room's events are sequenced by one engine, its
//! *home* ([`home`]): a dispatch made on another engine is sent to the home
//! ([`Kind::Forward`](super::Kind::Forward)), never delivered locally first; the home gives
//! it the room's next sequence number, delivers it to its own members, and publishes it
//! ([`Kind::Dispatch`](super::Kind::Dispatch)) to the engines holding members, each of
//! which encodes it once for all its members. A bus link keeps each publisher's order, so
//! every member sees the home's order. The cost: a dispatch from a non-home engine takes
//! two bus hops (forward, then fan-out) instead of one, and a room's sequencing is one
//! engine's work however many engines its members are on.

use super::Origin;
use std::fmt;

/// The engine that sequences `room` among `engines` (the bus's list, the same on every
/// engine): FNV-1a (64 bits) of the name, modulo their number. Stable across processes,
/// builds and versions (unlike the standard library's randomly keyed hasher), so that the
/// engines of several nodes agree. `None` for no engine.
pub fn home(room: &str, engines: &[Origin]) -> Option<Origin> {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let hash = room
        .bytes()
        .fold(OFFSET, |h, b| (h ^ u64::from(b)).wrapping_mul(PRIME));
    let len = u64::try_from(engines.len()).ok().filter(|&n| n > 0)?;
    // The remainder is below `len`, itself a usize.
    engines.get((hash % len) as usize).copied()
}

/// Why bytes are not a room dispatch body.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum RoomBodyError {
    /// Shorter than its fixed part or than the event name it announces.
    Truncated,
    /// The event name or the data is not UTF-8.
    Utf8,
    /// Unknown flag bits.
    Flags,
}

impl fmt::Display for RoomBodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RoomBodyError::Truncated => "truncated room dispatch",
            RoomBodyError::Utf8 => "room dispatch not UTF-8",
            RoomBodyError::Flags => "room dispatch with unknown flags",
        })
    }
}

impl std::error::Error for RoomBodyError {}

/// The body of a room dispatch envelope (its topic is the room), big-endian:
/// `seq` (u64; reserved for the room's sequence number given by its home, 0 until the home
/// assigns them), a flag byte (bit 0: `except` present; other bits refused), `except`
/// (u64, 0 when absent), the event name's length (u16) and the name, then the data (JSON
/// text) to the end.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct RoomDispatch<'a> {
    /// The room's sequence number given by its home (0: not assigned).
    pub seq: u64,
    /// A session that must not get it (the sender's, on the engine that made it).
    pub except: Option<u64>,
    /// The event name.
    pub event: &'a str,
    /// The event's data, JSON text.
    pub data: &'a str,
}

impl<'a> RoomDispatch<'a> {
    /// Appends the body to `out`. The event name is at most 65,535 bytes (longer: `None`,
    /// nothing written); the envelope bounds the whole body.
    pub fn encode(&self, out: &mut Vec<u8>) -> Option<()> {
        let event_len = u16::try_from(self.event.len()).ok()?;
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.push(u8::from(self.except.is_some()));
        out.extend_from_slice(&self.except.unwrap_or(0).to_be_bytes());
        out.extend_from_slice(&event_len.to_be_bytes());
        out.extend_from_slice(self.event.as_bytes());
        out.extend_from_slice(self.data.as_bytes());
        Some(())
    }

    /// Checks `body` and views it as a room dispatch.
    pub fn decode(body: &'a [u8]) -> Result<RoomDispatch<'a>, RoomBodyError> {
        let truncated = RoomBodyError::Truncated;
        let (seq, rest) = body.split_first_chunk::<8>().ok_or(truncated)?;
        let (&[flags], rest) = rest.split_first_chunk::<1>().ok_or(truncated)?;
        let (except, rest) = rest.split_first_chunk::<8>().ok_or(truncated)?;
        let except = match flags {
            0 => None,
            1 => Some(u64::from_be_bytes(*except)),
            _ => return Err(RoomBodyError::Flags),
        };
        let (len, rest) = rest
            .split_first_chunk::<2>()
            .ok_or(RoomBodyError::Truncated)?;
        let len = usize::from(u16::from_be_bytes(*len));
        if rest.len() < len {
            return Err(RoomBodyError::Truncated);
        }
        let (event, data) = rest.split_at(len);
        Ok(RoomDispatch {
            seq: u64::from_be_bytes(*seq),
            except,
            event: std::str::from_utf8(event).map_err(|_| RoomBodyError::Utf8)?,
            data: std::str::from_utf8(data).map_err(|_| RoomBodyError::Utf8)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engines(n: u16) -> Vec<Origin> {
        (0..n).map(|reactor| Origin { node: 0, reactor }).collect()
    }

    #[test]
    fn a_rooms_home_is_stable_and_rooms_spread_over_engines() {
        // Fixed values: a change of hash would split a cluster of mixed versions.
        assert_eq!(home("", &engines(2)), Some(engines(2)[1])); // FNV offset is odd
        assert_eq!(home("general", &engines(1)), Some(engines(1)[0]));
        assert_eq!(home("general", &[]), None);
        let first = home("general", &engines(4));
        assert_eq!(
            home("general", &engines(4)),
            first,
            "same answer every time"
        );
        let mut per_engine = [0usize; 4];
        for i in 0..4000 {
            let at = home(&format!("room-{i}"), &engines(4)).unwrap();
            per_engine[usize::from(at.reactor)] += 1;
        }
        assert!(
            per_engine.iter().all(|&n| (800..1200).contains(&n)),
            "{per_engine:?}"
        );
    }

    #[test]
    fn the_fnv_hash_is_the_published_one() {
        // FNV-1a 64 of "a" is 0xaf63dc4c8601ec8c (the reference test vector): its parity
        // and residues decide the home.
        let hash: u64 = 0xaf63_dc4c_8601_ec8c;
        for n in 1..=7u16 {
            let expected = engines(n)[(hash % u64::from(n)) as usize];
            assert_eq!(home("a", &engines(n)), Some(expected), "{n} engines");
        }
    }

    #[test]
    fn a_room_dispatch_round_trips_and_malformed_bodies_are_refused() {
        let dispatch = RoomDispatch {
            seq: 42,
            except: Some(7),
            event: "MESSAGE_CREATE",
            data: r#"{"id":"1","content":"hé"}"#,
        };
        let mut body = Vec::new();
        dispatch.encode(&mut body).unwrap();
        assert_eq!(&body[..8], &[0, 0, 0, 0, 0, 0, 0, 42]);
        assert_eq!(&body[8..19], &[1, 0, 0, 0, 0, 0, 0, 0, 7, 0, 14]);
        assert_eq!(RoomDispatch::decode(&body), Ok(dispatch));
        let mut flags = body.clone();
        flags[8] = 2;
        assert_eq!(RoomDispatch::decode(&flags), Err(RoomBodyError::Flags));
        let mut plain = Vec::new();
        let no_except = RoomDispatch {
            except: None,
            ..dispatch
        };
        no_except.encode(&mut plain).unwrap();
        assert_eq!(RoomDispatch::decode(&plain), Ok(no_except));
        for len in 0..19 + 14 {
            assert_eq!(
                RoomDispatch::decode(&body[..len]),
                Err(RoomBodyError::Truncated),
                "{len} bytes"
            );
        }
        let mut bad = body.clone();
        bad[19] = 0xFF;
        assert_eq!(RoomDispatch::decode(&bad), Err(RoomBodyError::Utf8));
        let cut_in_char = &body[..body.len() - 3];
        assert_eq!(RoomDispatch::decode(cut_in_char), Err(RoomBodyError::Utf8));
        let long = "e".repeat(usize::from(u16::MAX) + 1);
        let too_long = RoomDispatch {
            event: &long,
            ..dispatch
        };
        let mut out = Vec::new();
        assert_eq!(too_long.encode(&mut out), None);
        assert!(out.is_empty());
    }
}
