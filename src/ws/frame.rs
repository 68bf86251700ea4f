//! Server frames: encoded once, then queued by reference as often as needed.

use crate::close::CloseCode;
use crate::wire::{encode_close, encode_header_with, OpCode, MAX_HEADER_LEN};
use std::rc::Rc;

/// Appends one unmasked, final frame (header and payload) to `out`.
pub fn write_frame(out: &mut Vec<u8>, opcode: OpCode, payload: &[u8]) {
    write_frame_with(out, false, opcode, payload);
}

/// [`write_frame`] with RSV1 set when `compressed` (a permessage-deflate payload).
pub fn write_frame_with(out: &mut Vec<u8>, compressed: bool, opcode: OpCode, payload: &[u8]) {
    let mut header = [0u8; MAX_HEADER_LEN];
    let n = encode_header_with(&mut header, true, compressed, opcode, payload.len());
    out.extend_from_slice(&header[..n]);
    out.extend_from_slice(payload);
}

/// A complete frame encoded once and shared: a broadcast to 10,000 connections queues the
/// same bytes 10,000 times (one reference count each), never 10,000 encodings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SharedFrame(Rc<[u8]>);

impl SharedFrame {
    /// A frame of any opcode (control payloads over 125 bytes are the caller's error).
    pub(crate) fn new(opcode: OpCode, payload: &[u8]) -> SharedFrame {
        let mut out = Vec::with_capacity(payload.len() + MAX_HEADER_LEN);
        write_frame(&mut out, opcode, payload);
        SharedFrame(out.into())
    }

    /// A final frame with RSV1 set: `payload` is a compressed (permessage-deflate) message.
    #[cfg(feature = "deflate")]
    pub(crate) fn compressed(opcode: OpCode, payload: &[u8]) -> SharedFrame {
        let mut out = Vec::with_capacity(payload.len() + MAX_HEADER_LEN);
        write_frame_with(&mut out, true, opcode, payload);
        SharedFrame(out.into())
    }

    /// A text frame.
    pub fn text(text: &str) -> SharedFrame {
        SharedFrame::new(OpCode::Text, text.as_bytes())
    }

    /// A binary frame.
    pub fn binary(bytes: &[u8]) -> SharedFrame {
        SharedFrame::new(OpCode::Binary, bytes)
    }

    /// A Close frame with a code and a reason (cut to fit).
    pub fn close(code: CloseCode, reason: &str) -> SharedFrame {
        let mut body = [0u8; 125];
        let n = encode_close(&mut body, code, reason);
        SharedFrame::new(OpCode::Close, &body[..n])
    }
}

/// A message body encoded once and shared, sent behind a small per-connection prefix
/// (a gateway's per-session sequence number): the expensive part of a broadcast (serialising
/// the event) happens once, and each member costs only its prefix and a frame header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SharedPayload(Rc<[u8]>);

impl SharedPayload {
    /// Wraps encoded bytes.
    pub fn new(bytes: Vec<u8>) -> SharedPayload {
        SharedPayload(bytes.into())
    }
}

/// The accessors of a shared byte string ([`SharedFrame`], [`SharedPayload`]).
macro_rules! shared_bytes {
    ($shared:ident) => {
        impl $shared {
            /// The bytes (of a frame: its header and payload, as sent).
            pub fn bytes(&self) -> &[u8] {
                &self.0
            }

            /// Length in bytes.
            pub fn len(&self) -> usize {
                self.0.len()
            }

            /// Whether there are no bytes (never true of a frame: it has at least a
            /// 2-byte header).
            pub fn is_empty(&self) -> bool {
                self.0.is_empty()
            }

            /// The shared bytes, for queueing by reference.
            pub(crate) fn rc(&self) -> &Rc<[u8]> {
                &self.0
            }
        }
    };
}

shared_bytes!(SharedFrame);
shared_bytes!(SharedPayload);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_rfc_example_and_close() {
        assert_eq!(SharedFrame::text("Hello").bytes(), b"\x81\x05Hello");
        let close = SharedFrame::close(CloseCode::TOO_BIG, "too big");
        assert_eq!(&close.bytes()[..4], &[0x88, 9, 0x03, 0xF1]);
        let big = SharedFrame::binary(&[7u8; 300]);
        assert_eq!(&big.bytes()[..4], &[0x82, 126, 1, 44]);
        assert_eq!(big.len(), 304);
    }
}
