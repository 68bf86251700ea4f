//! Pure WebSocket wire codecs over byte slices: no state, no clock, no allocation.
//!
//! - [`header`]: the 2-14 byte frame header, parsed in place with the payload limit checked
//!   from the header (before a single payload byte is buffered), and encoded for server frames.
//! - [`mask`]: in-place unmasking, a machine word at a time, in safe Rust.
//! - [`utf8`]: an incremental UTF-8 validator that fails on the first invalid byte, even when
//!   a code point is split across frames or reads.
//! - [`close_payload`]: the body of a Close frame (code + reason), checked and encoded.

pub mod close_payload;
pub mod header;
pub mod mask;
pub mod utf8;

#[cfg(feature = "testing")]
pub use close_payload::CloseFrame;
pub use close_payload::{decode_close, encode_close, CloseError};
#[cfg(feature = "testing")]
pub use header::encode_header;
#[cfg(feature = "testing")]
pub use header::FrameHeader;
pub use header::{encode_header_with, HeaderError, OpCode, MAX_HEADER_LEN};
pub use mask::apply_mask;
pub use utf8::{Utf8Error, Utf8Validator};
