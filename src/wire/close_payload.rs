//! The payload of a Close frame: an optional 2-byte code and a UTF-8 reason.

use crate::close::CloseCode;
use std::fmt;

/// The longest reason that fits a control frame beside its code.
pub const MAX_REASON_LEN: usize = 123;

/// A decoded Close frame, borrowing its reason from the frame.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct CloseFrame<'a> {
    /// The code, or `None` for an empty close payload (reported locally as 1005).
    pub code: Option<CloseCode>,
    /// The reason text (may be empty).
    pub reason: &'a str,
}

/// Why a received Close frame was refused.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum CloseError {
    /// A 1-byte payload (1002).
    Truncated,
    /// A code that may not appear on the wire (1002).
    InvalidCode(u16),
    /// A reason that is not UTF-8 (1007).
    InvalidReason,
}

impl CloseError {
    /// The close code this refusal is answered with.
    pub const fn close_code(&self) -> CloseCode {
        match self {
            CloseError::InvalidReason => CloseCode::INVALID_PAYLOAD,
            _ => CloseCode::PROTOCOL_ERROR,
        }
    }

    /// A short reason for the answering Close frame.
    pub const fn reason(&self) -> &'static str {
        match self {
            CloseError::Truncated => "close payload of 1 byte",
            CloseError::InvalidCode(_) => "invalid close code",
            CloseError::InvalidReason => "close reason is not UTF-8",
        }
    }
}

impl fmt::Display for CloseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseError::InvalidCode(code) => write!(f, "invalid close code {code}"),
            other => f.write_str(other.reason()),
        }
    }
}

impl std::error::Error for CloseError {}

/// Decodes and checks a received Close payload (already unmasked).
pub fn decode_close(payload: &[u8]) -> Result<CloseFrame<'_>, CloseError> {
    match payload {
        [] => Ok(CloseFrame {
            code: None,
            reason: "",
        }),
        [_] => Err(CloseError::Truncated),
        [hi, lo, reason @ ..] => {
            let code = CloseCode(u16::from_be_bytes([*hi, *lo]));
            if !code.is_valid_on_wire() {
                return Err(CloseError::InvalidCode(code.0));
            }
            let reason = std::str::from_utf8(reason).map_err(|_| CloseError::InvalidReason)?;
            Ok(CloseFrame {
                code: Some(code),
                reason,
            })
        }
    }
}

/// Encodes a Close payload into `out`, returning its length. The reason is cut to 123
/// bytes at a character boundary so the frame stays a valid control frame. A code that may
/// not be sent (1005, 1006, 1015, out of range) is replaced by 1000 rather than put on the
/// wire.
pub fn encode_close(out: &mut [u8; 125], code: CloseCode, reason: &str) -> usize {
    let code = if code.is_sendable() {
        code
    } else {
        CloseCode::NORMAL
    };
    out[..2].copy_from_slice(&code.0.to_be_bytes());
    let mut end = reason.len().min(MAX_REASON_LEN);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    out[2..2 + end].copy_from_slice(&reason.as_bytes()[..end]);
    2 + end
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_and_refuses_exactly() {
        assert_eq!(decode_close(&[]).unwrap().code, None);
        assert_eq!(decode_close(&[3]), Err(CloseError::Truncated));
        let ok = decode_close(&[0x03, 0xE8, b'b', b'y', b'e']).unwrap();
        assert_eq!((ok.code, ok.reason), (Some(CloseCode::NORMAL), "bye"));
        assert_eq!(
            decode_close(&[0x03, 0xED]),
            Err(CloseError::InvalidCode(1005))
        );
        assert_eq!(decode_close(&[0x00, 0x00]), Err(CloseError::InvalidCode(0)));
        let bad = decode_close(&[0x03, 0xE8, 0xFF]).unwrap_err();
        assert_eq!(bad.close_code(), CloseCode::INVALID_PAYLOAD);
        assert_eq!(
            CloseError::Truncated.close_code(),
            CloseCode::PROTOCOL_ERROR
        );
    }

    #[test]
    fn encode_cuts_long_reasons_at_a_char_boundary() {
        let mut out = [0u8; 125];
        let reason = "é".repeat(100); // 200 bytes
        let n = encode_close(&mut out, CloseCode::NORMAL, &reason);
        assert!(n <= 125);
        let back = decode_close(&out[..n]).unwrap();
        assert_eq!(back.reason.len(), 122);
        let n = encode_close(&mut out, CloseCode::ABNORMAL, "");
        assert_eq!(&out[..n], &[0x03, 0xE8]);
    }
}
