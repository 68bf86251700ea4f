//! A connection's byte stream fed to [`WsConn::decode`] the way the reactor feeds it, and
//! the split-invariance check: however the bytes are cut into reads, the frames, events and
//! error must be the same as when the stream arrives whole.
//!
//! The reactor's contract (src/reactor/input.rs): decode from the start of the unconsumed
//! bytes until `NeedMore` or an error; keep the unconsumed bytes *as `decode` left them*
//! (an incomplete frame is unmasked in place as it arrives), append the next read, and
//! present the same frame again from its first byte. After an error, or after the peer's
//! Close, it reads nothing more.
//!
//! This file has no dependency but `postern`: the fuzz crate uses it as a module and
//! `tests/properties.rs` includes it with `#[path]`, so both drive the same harness.

use postern::wire::MAX_HEADER_LEN;
use postern::ws::{Decoded, Event, Kind, ProtocolError, WsConn};

/// An owned copy of one decoded frame's meaning, so runs can be compared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Got {
    /// A single-frame text message.
    Text(String),
    /// A single-frame binary message.
    Binary(Vec<u8>),
    /// A fragment stored by the assembler.
    Fragment,
    /// A fragmented message completed (`true` for text) and taken.
    Assembled(bool, Vec<u8>),
    /// A ping and its payload.
    Ping(Vec<u8>),
    /// A pong and its payload.
    Pong(Vec<u8>),
    /// The peer's Close: code, reason, whether we must answer.
    Close(Option<u16>, String, bool),
}

/// What one run over a stream produced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Each frame: the bytes it occupied and what it meant.
    pub frames: Vec<(usize, Got)>,
    /// The error that failed the connection, if any.
    pub error: Option<ProtocolError>,
    /// Bytes still unconsumed at the end (an incomplete frame), when no error and no Close.
    pub leftover: usize,
    /// Whether the peer's Close ended the stream.
    pub closed: bool,
}

/// Payload limits worth trying: none, tiny, the control-frame bounds, the default, large.
pub const LIMITS: [usize; 8] = [0, 1, 2, 125, 126, 1000, 4096, 65_536];

/// Converts one event to its owned form, taking an assembled message from `conn`.
fn own(conn: &mut WsConn, event: Event<'_>) -> Got {
    match event {
        Event::Text(t) => Got::Text(t.to_owned()),
        Event::Binary(b) => Got::Binary(b.to_vec()),
        Event::Fragment => Got::Fragment,
        Event::Ping(p) => Got::Ping(p.to_vec()),
        Event::Pong(p) => Got::Pong(p.to_vec()),
        Event::Close {
            code,
            reason,
            reply,
        } => Got::Close(code.map(|c| c.0), reason.to_owned(), reply),
        Event::Assembled(kind) => {
            let message = conn.take_message();
            if kind == Kind::Text {
                // The assembler checked every byte as it arrived: the reactor answers a
                // failure here with 1007 and calls it a bug.
                assert!(
                    std::str::from_utf8(&message).is_ok(),
                    "assembled text is not UTF-8: {message:?}"
                );
            }
            Got::Assembled(kind == Kind::Text, message)
        }
    }
}

/// Feeds `stream` in reads of the given sizes (cycled; a size of 0 counts as 1; no sizes
/// means one read of everything), checking the per-call invariants on the way.
pub fn feed(stream: &[u8], sizes: &[usize], limit: usize) -> Outcome {
    let mut conn = WsConn::new();
    let mut out = Outcome::default();
    let mut pending: Vec<u8> = Vec::new();
    let mut rest = stream;
    let mut size = sizes.iter().copied().cycle();
    while !rest.is_empty() {
        let n = size.next().unwrap_or(rest.len()).clamp(1, rest.len());
        pending.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
        let mut pos = 0;
        loop {
            let buf = &mut pending[pos..];
            let len = buf.len();
            match conn.decode(buf, limit) {
                Err(e) => {
                    out.error = Some(e);
                    return out;
                }
                Ok(Decoded::NeedMore { frame_len }) => {
                    if let Some(total) = frame_len {
                        assert!(total > len, "NeedMore({total}) with {len} bytes present");
                        assert!(
                            total <= MAX_HEADER_LEN + limit.max(125),
                            "frame of {total} bytes announced under a {limit}-byte limit"
                        );
                    }
                    break;
                }
                Ok(Decoded::Frame { consumed, event }) => {
                    assert!(
                        (2..=len).contains(&consumed),
                        "consumed {consumed} of {len}"
                    );
                    let got = own(&mut conn, event);
                    if let Got::Ping(p) | Got::Pong(p) = &got {
                        assert!(p.len() <= 125, "control payload of {}", p.len());
                    }
                    let closed = matches!(got, Got::Close(..));
                    out.frames.push((consumed, got));
                    pos += consumed;
                    if closed {
                        out.closed = true;
                        return out;
                    }
                }
            }
            assert!(
                conn.heap_bytes() <= limit,
                "assembler holds {} bytes over a {limit}-byte limit",
                conn.heap_bytes()
            );
        }
        pending.drain(..pos);
    }
    out.leftover = pending.len();
    out
}

/// Feeds `stream` whole, in reads of `sizes`, and (when short enough) a byte at a time,
/// and asserts that the three runs agree exactly.
pub fn check_split_invariance(stream: &[u8], sizes: &[usize], limit: usize) -> Outcome {
    let whole = feed(stream, &[], limit);
    let split = feed(stream, sizes, limit);
    assert_eq!(
        whole, split,
        "split into reads of {sizes:?} differs from whole"
    );
    if stream.len() <= 2048 {
        let bytewise = feed(stream, &[1], limit);
        assert_eq!(whole, bytewise, "byte-at-a-time differs from whole");
    }
    whole
}

/// The fuzz input format: byte 0 picks the limit (low 3 bits, [`LIMITS`]) and the number
/// of read sizes (bits 3-5, 0-7); that many bytes follow, each a read size; the rest is
/// the stream.
pub fn fuzz(data: &[u8]) {
    let Some((&head, rest)) = data.split_first() else {
        return;
    };
    let limit = LIMITS[usize::from(head & 7)];
    let count = usize::from((head >> 3) & 7).min(rest.len());
    let (sizes, stream) = rest.split_at(count);
    let sizes: Vec<usize> = sizes.iter().map(|&s| usize::from(s)).collect();
    check_split_invariance(stream, &sizes, limit);
}

/// Encodes a masked client frame with raw first-byte bits (`b0`: FIN, RSV, opcode), so
/// tests and seeds can build valid and invalid frames alike.
pub fn client_frame(b0: u8, key: [u8; 4], payload: &[u8]) -> Vec<u8> {
    let mut out = vec![b0];
    let len = payload.len();
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if let Ok(short) = u16::try_from(len) {
        out.push(0x80 | 126);
        out.extend_from_slice(&short.to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(&key);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    out
}
