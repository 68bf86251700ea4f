//! Frame header: parse (from the first bytes of a read buffer) and encode.
//!
//! Parsing is incremental and fails as early as the offending byte arrives: a reserved bit
//! or opcode is rejected from the first byte, a fragmented or oversized control frame from
//! the second, and a payload over the limit as soon as the length field is complete.

use crate::close::CloseCode;
use std::fmt;

/// The longest header a frame can have: 2 + 8 (64-bit length) + 4 (mask).
pub const MAX_HEADER_LEN: usize = 14;

/// A frame's opcode (RFC 6455 §5.2). Reserved opcodes never get this far.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum OpCode {
    /// 0x0: the continuation of a fragmented message.
    Continuation,
    /// 0x1: a text message (or its first fragment).
    Text,
    /// 0x2: a binary message (or its first fragment).
    Binary,
    /// 0x8: close.
    Close,
    /// 0x9: ping.
    Ping,
    /// 0xA: pong.
    Pong,
}

impl OpCode {
    /// Decodes the low nibble of the first header byte; `None` for reserved opcodes.
    pub const fn from_u8(bits: u8) -> Option<OpCode> {
        match bits {
            0x0 => Some(OpCode::Continuation),
            0x1 => Some(OpCode::Text),
            0x2 => Some(OpCode::Binary),
            0x8 => Some(OpCode::Close),
            0x9 => Some(OpCode::Ping),
            0xA => Some(OpCode::Pong),
            _ => None,
        }
    }

    /// The opcode's wire value.
    pub const fn as_u8(self) -> u8 {
        match self {
            OpCode::Continuation => 0x0,
            OpCode::Text => 0x1,
            OpCode::Binary => 0x2,
            OpCode::Close => 0x8,
            OpCode::Ping => 0x9,
            OpCode::Pong => 0xA,
        }
    }

    /// Close, ping and pong are control frames: never fragmented, at most 125 bytes.
    pub const fn is_control(self) -> bool {
        matches!(self, OpCode::Close | OpCode::Ping | OpCode::Pong)
    }
}

/// A parsed frame header. `header_len + payload_len` bytes make the whole frame.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// The final fragment of a message.
    pub fin: bool,
    /// RSV1: the first frame of a compressed message (only where permessage-deflate was
    /// negotiated; see [`parse_with`]).
    pub rsv1: bool,
    /// What the frame carries.
    pub opcode: OpCode,
    /// The client's masking key; `None` for an unmasked frame (which a server must refuse).
    pub mask: Option<[u8; 4]>,
    /// Payload length in bytes, already checked against the caller's limit.
    pub payload_len: usize,
    /// Header length in bytes (2-14).
    pub header_len: usize,
}

impl FrameHeader {
    /// Header plus payload: the bytes this frame occupies.
    pub fn frame_len(&self) -> usize {
        self.header_len + self.payload_len
    }
}

/// Why a header was refused. Each variant knows its close code.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum HeaderError {
    /// RSV1-3 set with no extension negotiated (1002).
    ReservedBits,
    /// RSV1 on a control frame or a continuation frame with permessage-deflate (1002).
    CompressedControl,
    /// Opcode 0x3-0x7 or 0xB-0xF (1002).
    ReservedOpcode(u8),
    /// A control frame without FIN (1002).
    FragmentedControl,
    /// A control frame with more than 125 bytes of payload (1002).
    ControlTooLong,
    /// A 64-bit length with its most significant bit set (1002).
    InvalidLength,
    /// A payload longer than the limit (1009), refused from the header alone.
    TooLarge {
        /// The announced payload length (saturated to `u64`).
        len: u64,
        /// The limit in force.
        limit: usize,
    },
}

impl HeaderError {
    /// The close code this refusal is answered with.
    pub const fn close_code(&self) -> CloseCode {
        match self {
            HeaderError::TooLarge { .. } => CloseCode::TOO_BIG,
            _ => CloseCode::PROTOCOL_ERROR,
        }
    }

    /// A short reason for the Close frame.
    pub const fn reason(&self) -> &'static str {
        match self {
            HeaderError::ReservedBits => "reserved bits set",
            HeaderError::CompressedControl => "RSV1 on a control or continuation frame",
            HeaderError::ReservedOpcode(_) => "reserved opcode",
            HeaderError::FragmentedControl => "fragmented control frame",
            HeaderError::ControlTooLong => "control frame over 125 bytes",
            HeaderError::InvalidLength => "invalid payload length",
            HeaderError::TooLarge { .. } => "message too big",
        }
    }
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderError::ReservedOpcode(op) => write!(f, "reserved opcode {op:#x}"),
            HeaderError::TooLarge { len, limit } => {
                write!(f, "payload of {len} bytes over the {limit}-byte limit")
            }
            other => f.write_str(other.reason()),
        }
    }
}

impl std::error::Error for HeaderError {}

/// Parses a frame header from the start of `buf`.
///
/// `Ok(None)` means more bytes are needed (and nothing seen so far is wrong). Every check
/// runs as soon as the bytes it needs are present, so an invalid first byte is refused even
/// when it arrives alone. `max_payload` bounds data frames; control frames are bound to 125.
#[cfg_attr(not(feature = "deflate"), allow(dead_code))]
pub fn parse(buf: &[u8], max_payload: usize) -> Result<Option<FrameHeader>, HeaderError> {
    parse_with(buf, max_payload, false)
}

/// [`parse`] on a connection where permessage-deflate was negotiated when `rsv1_allowed`:
/// RSV1 may then be set on the first frame of a text or binary message (it is
/// [`HeaderError::CompressedControl`] on a control or continuation frame).
pub fn parse_with(
    buf: &[u8],
    max_payload: usize,
    rsv1_allowed: bool,
) -> Result<Option<FrameHeader>, HeaderError> {
    let Some(&b0) = buf.first() else {
        return Ok(None);
    };
    let rsv1 = b0 & 0x40 != 0;
    if b0 & 0x30 != 0 || (rsv1 && !rsv1_allowed) {
        return Err(HeaderError::ReservedBits);
    }
    let opcode = OpCode::from_u8(b0 & 0x0F).ok_or(HeaderError::ReservedOpcode(b0 & 0x0F))?;
    if rsv1 && (opcode.is_control() || opcode == OpCode::Continuation) {
        return Err(HeaderError::CompressedControl);
    }
    let fin = b0 & 0x80 != 0;
    if opcode.is_control() && !fin {
        return Err(HeaderError::FragmentedControl);
    }
    let Some(&b1) = buf.get(1) else {
        return Ok(None);
    };
    let masked = b1 & 0x80 != 0;
    let len7 = b1 & 0x7F;
    if opcode.is_control() && len7 > 125 {
        return Err(HeaderError::ControlTooLong);
    }
    let (len, mut pos) = match len7 {
        126 => match buf.get(2..4) {
            Some(&[a, b]) => (u64::from(u16::from_be_bytes([a, b])), 4),
            _ => return Ok(None),
        },
        127 => match buf.get(2..10) {
            Some(bytes) => {
                let mut be = [0u8; 8];
                be.copy_from_slice(bytes);
                let len = u64::from_be_bytes(be);
                if len >> 63 != 0 {
                    return Err(HeaderError::InvalidLength);
                }
                (len, 10)
            }
            None => return Ok(None),
        },
        short => (u64::from(short), 2),
    };
    let limit = if opcode.is_control() {
        125
    } else {
        max_payload
    };
    let payload_len = match usize::try_from(len) {
        Ok(n) if n <= limit => n,
        _ => return Err(HeaderError::TooLarge { len, limit }),
    };
    let mask = if masked {
        match buf.get(pos..pos + 4) {
            Some(&[a, b, c, d]) => {
                pos += 4;
                Some([a, b, c, d])
            }
            _ => return Ok(None),
        }
    } else {
        None
    };
    Ok(Some(FrameHeader {
        fin,
        rsv1,
        opcode,
        mask,
        payload_len,
        header_len: pos,
    }))
}

/// Encodes an unmasked (server) frame header into `out`, returning its length (2, 4 or 10).
#[cfg(any(test, feature = "testing"))]
pub fn encode_header(
    out: &mut [u8; MAX_HEADER_LEN],
    fin: bool,
    opcode: OpCode,
    len: usize,
) -> usize {
    encode_header_with(out, fin, false, opcode, len)
}

/// [`encode_header`] with RSV1 (a compressed message's first frame) when `rsv1`.
pub fn encode_header_with(
    out: &mut [u8; MAX_HEADER_LEN],
    fin: bool,
    rsv1: bool,
    opcode: OpCode,
    len: usize,
) -> usize {
    out[0] = (u8::from(fin) << 7) | (u8::from(rsv1) << 6) | opcode.as_u8();
    if len < 126 {
        out[1] = len as u8;
        2
    } else if let Ok(short) = u16::try_from(len) {
        out[1] = 126;
        out[2..4].copy_from_slice(&short.to_be_bytes());
        4
    } else {
        out[1] = 127;
        out[2..10].copy_from_slice(&(len as u64).to_be_bytes());
        10
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(bytes: &[u8]) -> Result<Option<FrameHeader>, HeaderError> {
        parse(bytes, 4096)
    }

    #[test]
    fn parses_short_masked_text() {
        let h = header(&[0x81, 0x85, 1, 2, 3, 4]).unwrap().unwrap();
        assert_eq!(h.opcode, OpCode::Text);
        assert!(h.fin);
        assert_eq!(h.mask, Some([1, 2, 3, 4]));
        assert_eq!(h.payload_len, 5);
        assert_eq!(h.header_len, 6);
    }

    #[test]
    fn every_prefix_of_a_valid_header_asks_for_more() {
        let frames: [&[u8]; 3] = [
            &[0x82, 0x85, 1, 2, 3, 4],
            &[0x82, 0xFE, 0x10, 0x00, 1, 2, 3, 4],
            &[0x82, 0xFF, 0, 0, 0, 0, 0, 0, 0x10, 0x00, 1, 2, 3, 4],
        ];
        for frame in frames {
            for cut in 0..frame.len() {
                assert_eq!(header(&frame[..cut]), Ok(None), "cut at {cut} of {frame:?}");
            }
            assert!(header(frame).unwrap().is_some());
        }
    }

    #[test]
    fn extended_lengths() {
        let h = header(&[0x82, 0xFE, 0x00, 0x7E, 9, 9, 9, 9])
            .unwrap()
            .unwrap();
        assert_eq!((h.payload_len, h.header_len), (126, 8));
        let h = parse(&[0x82, 0xFF, 0, 0, 0, 0, 0, 1, 0, 0, 9, 9, 9, 9], 1 << 24)
            .unwrap()
            .unwrap();
        assert_eq!((h.payload_len, h.header_len), (65536, 14));
        let h = header(&[0x82, 0x7D]).unwrap().unwrap();
        assert_eq!((h.payload_len, h.header_len, h.mask), (125, 2, None));
    }

    #[test]
    fn limit_enforced_from_the_header_alone() {
        // 4097 announced, no payload present: refused with 1009 before any byte arrives.
        let err = header(&[0x81, 0xFE, 0x10, 0x01]).unwrap_err();
        assert_eq!(
            err,
            HeaderError::TooLarge {
                len: 4097,
                limit: 4096
            }
        );
        assert_eq!(err.close_code(), CloseCode::TOO_BIG);
        assert!(header(&[0x81, 0xFE, 0x10, 0x00]).unwrap().is_none()); // 4096 ok, needs mask
        let huge = [0x82, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];
        assert!(matches!(header(&huge), Err(HeaderError::TooLarge { .. })));
    }

    #[test]
    fn refusals_fail_from_the_first_offending_byte() {
        assert_eq!(header(&[0xC1]), Err(HeaderError::ReservedBits)); // RSV1
        assert_eq!(header(&[0xA1]), Err(HeaderError::ReservedBits)); // RSV2
        assert_eq!(header(&[0x91]), Err(HeaderError::ReservedBits)); // RSV3
        for op in [3u8, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF] {
            assert_eq!(header(&[0x80 | op]), Err(HeaderError::ReservedOpcode(op)));
        }
        assert_eq!(header(&[0x09]), Err(HeaderError::FragmentedControl));
        assert_eq!(header(&[0x89, 0xFE]), Err(HeaderError::ControlTooLong));
        assert_eq!(header(&[0x88, 0xFF]), Err(HeaderError::ControlTooLong));
        assert!(header(&[0x89, 0xFD]).unwrap().is_none()); // 125 is fine
        let msb = [0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(header(&msb), Err(HeaderError::InvalidLength));
        for err in [HeaderError::ReservedBits, HeaderError::ControlTooLong] {
            assert_eq!(err.close_code(), CloseCode::PROTOCOL_ERROR);
        }
    }

    #[test]
    fn rsv1_only_where_negotiated_and_only_on_a_first_data_frame() {
        assert_eq!(
            parse_with(&[0xC1], 4096, false),
            Err(HeaderError::ReservedBits)
        );
        let h = parse_with(&[0xC1, 0x80, 1, 2, 3, 4], 4096, true)
            .unwrap()
            .unwrap();
        assert!(h.rsv1 && h.fin && h.opcode == OpCode::Text);
        assert!(parse_with(&[0x42], 4096, true).unwrap().is_none()); // non-final binary
        for b0 in [0xC0, 0xC8, 0xC9, 0xCA, 0x40] {
            assert_eq!(
                parse_with(&[b0], 4096, true),
                Err(HeaderError::CompressedControl),
                "{b0:#x}"
            );
        }
        assert_eq!(
            parse_with(&[0xE1], 4096, true),
            Err(HeaderError::ReservedBits)
        ); // RSV2
        assert_eq!(
            HeaderError::CompressedControl.close_code(),
            CloseCode::PROTOCOL_ERROR
        );
        let mut out = [0u8; MAX_HEADER_LEN];
        assert_eq!(encode_header_with(&mut out, true, true, OpCode::Text, 5), 2);
        assert_eq!(&out[..2], &[0xC1, 5]);
    }

    #[test]
    fn encode_round_trips_through_parse() {
        for len in [0usize, 1, 125, 126, 127, 4096, 65535, 65536, 1 << 24] {
            let mut out = [0u8; MAX_HEADER_LEN];
            let n = encode_header(&mut out, true, OpCode::Binary, len);
            let h = parse(&out[..n], 1 << 24).unwrap().unwrap();
            assert_eq!((h.payload_len, h.header_len, h.mask), (len, n, None));
            assert_eq!(h.opcode, OpCode::Binary);
        }
    }
}
