//! [`ProtocolError`]: how a peer broke RFC 6455, and the Close frame that answers it.

use crate::close::CloseCode;
use crate::wire::{self, CloseError, HeaderError};
use std::fmt;

/// A violation of RFC 6455 by the peer; each knows its close code.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ProtocolError {
    /// The frame header was refused (reserved bits/opcode, control frame rules, size).
    Header(HeaderError),
    /// A client frame without a mask (1002).
    Unmasked,
    /// A continuation frame with no message in progress (1002).
    UnexpectedContinuation,
    /// A new text/binary frame while a fragmented message is in progress (1002).
    ExpectedContinuation,
    /// The fragments of a message add up to more than the limit (1009).
    MessageTooBig,
    /// A fragmented message with more frames than the limit (1008): empty continuation
    /// frames would otherwise never reach the size limit.
    TooManyFragments,
    /// A text message that is not UTF-8 (1007).
    InvalidUtf8,
    /// A compressed message that does not inflate (1007).
    #[cfg_attr(not(feature = "deflate"), allow(dead_code))]
    CorruptCompressed,
    /// A malformed Close frame (1002 or 1007).
    Close(CloseError),
}

impl ProtocolError {
    /// The code of the Close frame that answers this error.
    pub const fn close_code(&self) -> CloseCode {
        match self {
            ProtocolError::Header(e) => e.close_code(),
            ProtocolError::Close(e) => e.close_code(),
            ProtocolError::MessageTooBig => CloseCode::TOO_BIG,
            ProtocolError::TooManyFragments => CloseCode::POLICY,
            ProtocolError::InvalidUtf8 | ProtocolError::CorruptCompressed => {
                CloseCode::INVALID_PAYLOAD
            }
            _ => CloseCode::PROTOCOL_ERROR,
        }
    }

    /// The reason text of the Close frame that answers this error.
    pub const fn reason(&self) -> &'static str {
        match self {
            ProtocolError::Header(e) => e.reason(),
            ProtocolError::Close(e) => e.reason(),
            ProtocolError::Unmasked => "client frame not masked",
            ProtocolError::UnexpectedContinuation => "continuation without a message",
            ProtocolError::ExpectedContinuation => "new message inside a fragmented one",
            ProtocolError::MessageTooBig => "message too big",
            ProtocolError::TooManyFragments => "too many fragments",
            ProtocolError::InvalidUtf8 => "invalid UTF-8 in text",
            ProtocolError::CorruptCompressed => "invalid compressed data",
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::Header(e) => e.fmt(f),
            ProtocolError::Close(e) => e.fmt(f),
            other => f.write_str(other.reason()),
        }
    }
}

impl std::error::Error for ProtocolError {}

impl From<HeaderError> for ProtocolError {
    fn from(e: HeaderError) -> Self {
        ProtocolError::Header(e)
    }
}

impl From<wire::Utf8Error> for ProtocolError {
    fn from(_: wire::Utf8Error) -> Self {
        ProtocolError::InvalidUtf8
    }
}
