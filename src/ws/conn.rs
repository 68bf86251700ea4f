//! [`WsConn`]: the receive side of one WebSocket connection, decoding in place.
//!
//! The caller owns the bytes. It passes a buffer that starts at a frame boundary to
//! [`WsConn::decode`], which parses the header (refusing an oversized frame from the header
//! alone), unmasks the payload in place and returns an [`Event`] borrowing the payload: a
//! complete single-frame message costs no copy. When the buffer ends mid-frame, `decode`
//! unmasks and UTF-8-checks what it has, remembers how far it got, and asks for more
//! ([`Decoded::NeedMore`], with the whole frame's length so the caller can size its buffer);
//! the caller must present the same frame again, from its first byte, with more bytes.
//!
//! Order of calls: `decode` until it returns `NeedMore` or an error; after
//! [`Event::Assembled`], take the message with [`WsConn::take_message`]. On an error, the
//! connection is failed: send a Close frame with [`ProtocolError::close_code`] and stop
//! decoding.

use super::assembler::{Assembler, Kind};
use crate::close::CloseCode;
use crate::wire::{self, apply_mask, decode_close, CloseError, HeaderError, OpCode};
use std::fmt;

/// What one decoded frame means to the caller.
#[derive(Debug, PartialEq, Eq)]
pub enum Event<'b> {
    /// A whole text message in a single frame, borrowed from the read buffer.
    Text(&'b str),
    /// A whole binary message in a single frame, borrowed from the read buffer.
    Binary(&'b [u8]),
    /// A fragmented message completed: take it with [`WsConn::take_message`].
    Assembled(Kind),
    /// A fragment was stored; nothing to deliver yet.
    Fragment,
    /// A ping: answer with a pong carrying the same payload.
    Ping(&'b [u8]),
    /// A pong (an answer to our ping, or unsolicited).
    Pong(&'b [u8]),
    /// The peer's Close frame. `reply` is true when the peer started the closing handshake
    /// and expects our Close in return; false when it answers ours.
    Close {
        /// The peer's code (`None` for an empty Close payload).
        code: Option<CloseCode>,
        /// The peer's reason.
        reason: &'b str,
        /// Whether we must answer with a Close frame.
        reply: bool,
    },
}

/// Result of one [`WsConn::decode`] call.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded<'b> {
    /// More bytes are needed. `frame_len` is the whole frame's length once its header is
    /// known, so the caller can reserve exactly what the frame needs (never past the limit).
    NeedMore {
        /// Header plus payload of the frame being received, if known.
        frame_len: Option<usize>,
    },
    /// A frame was consumed (`consumed` bytes from the start of the buffer).
    Frame {
        /// Bytes of the buffer this frame occupied.
        consumed: usize,
        /// What it means.
        event: Event<'b>,
    },
}

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
            ProtocolError::InvalidUtf8 => CloseCode::INVALID_PAYLOAD,
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

/// Where the closing handshake stands.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum CloseState {
    /// Messages flow both ways.
    Open,
    /// We sent a Close frame and wait for the peer's.
    CloseSent,
    /// Both sides have sent Close (or we answered the peer's): only TCP teardown is left.
    Closed,
}

/// Frames a fragmented message may have unless [`WsConn::with_max_fragments`] says
/// otherwise.
pub const DEFAULT_MAX_FRAGMENTS: usize = 1024;

/// The receive state of one WebSocket connection (about 56 bytes when idle, no heap).
#[derive(Debug)]
pub struct WsConn {
    state: CloseState,
    /// Payload bytes of the current partial frame already unmasked (and UTF-8 checked).
    partial_done: usize,
    /// Frames of the fragmented message in progress (0 between messages).
    fragments: usize,
    /// The most frames a fragmented message may have.
    max_fragments: usize,
    assembler: Assembler,
}

impl Default for WsConn {
    fn default() -> Self {
        WsConn::new()
    }
}

impl WsConn {
    /// A freshly upgraded connection, allowing [`DEFAULT_MAX_FRAGMENTS`] frames per message.
    pub fn new() -> WsConn {
        WsConn::with_max_fragments(DEFAULT_MAX_FRAGMENTS)
    }

    /// A freshly upgraded connection whose fragmented messages may have at most `max`
    /// frames (at least 1); the frame beyond is [`ProtocolError::TooManyFragments`].
    pub fn with_max_fragments(max: usize) -> WsConn {
        WsConn {
            state: CloseState::Open,
            partial_done: 0,
            fragments: 0,
            max_fragments: max.max(1),
            assembler: Assembler::default(),
        }
    }

    /// Where the closing handshake stands.
    pub fn close_state(&self) -> CloseState {
        self.state
    }

    /// Whether application messages may still be sent and delivered.
    pub fn is_open(&self) -> bool {
        self.state == CloseState::Open
    }

    /// Records that we are sending a Close frame. Returns false (send nothing) when a Close
    /// was already sent or the handshake is over.
    #[must_use = "false: a Close was already sent, send nothing"]
    pub fn start_close(&mut self) -> bool {
        if self.state == CloseState::Open {
            self.state = CloseState::CloseSent;
            true
        } else {
            false
        }
    }

    /// Hands over the message completed by the last [`Event::Assembled`].
    pub fn take_message(&mut self) -> Vec<u8> {
        self.assembler.take()
    }

    /// Heap bytes held (the assembly buffer of a fragmented message in progress).
    pub fn heap_bytes(&self) -> usize {
        self.assembler.len()
    }

    /// Decodes the frame at the start of `buf`. See the module documentation.
    /// `max_message` bounds a frame's payload and a fragmented message's total.
    pub fn decode<'b>(
        &mut self,
        buf: &'b mut [u8],
        max_message: usize,
    ) -> Result<Decoded<'b>, ProtocolError> {
        let Some(header) = wire::header::parse(buf, max_message)? else {
            return Ok(Decoded::NeedMore { frame_len: None });
        };
        let key = header.mask.ok_or(ProtocolError::Unmasked)?;
        let text_continuation = self.assembler.kind() == Some(Kind::Text);
        match header.opcode {
            OpCode::Continuation if !self.assembler.in_progress() => {
                return Err(ProtocolError::UnexpectedContinuation)
            }
            OpCode::Continuation if self.assembler.len() + header.payload_len > max_message => {
                return Err(ProtocolError::MessageTooBig)
            }
            OpCode::Continuation if self.fragments >= self.max_fragments => {
                return Err(ProtocolError::TooManyFragments)
            }
            OpCode::Text | OpCode::Binary if self.assembler.in_progress() => {
                return Err(ProtocolError::ExpectedContinuation)
            }
            _ => {}
        }
        let texty = header.opcode == OpCode::Text
            || (header.opcode == OpCode::Continuation && text_continuation);
        let total = header.frame_len();
        let end = buf.len().min(total);
        let payload = &mut buf[header.header_len..end];
        let done = self.partial_done.min(payload.len());
        apply_mask(&mut payload[done..], key, done);
        if end < total {
            if texty {
                self.assembler.check_utf8(&payload[done..])?;
            }
            self.partial_done = payload.len();
            return Ok(Decoded::NeedMore {
                frame_len: Some(total),
            });
        }
        self.partial_done = 0;
        let payload: &'b [u8] = &buf[header.header_len..total];
        let event = match header.opcode {
            OpCode::Text if header.fin => {
                if done > 0 {
                    // Part of it was checked as it arrived; finish the incremental check.
                    self.assembler.check_utf8(&payload[done..])?;
                    self.assembler.finish_utf8()?;
                }
                Event::Text(std::str::from_utf8(payload).map_err(|_| ProtocolError::InvalidUtf8)?)
            }
            OpCode::Binary if header.fin => Event::Binary(payload),
            OpCode::Text | OpCode::Binary => {
                let kind = if texty { Kind::Text } else { Kind::Binary };
                if texty {
                    self.assembler.check_utf8(&payload[done..])?;
                }
                self.assembler.start(kind);
                self.assembler.push(payload);
                self.fragments = 1;
                Event::Fragment
            }
            OpCode::Continuation => {
                if texty {
                    self.assembler.check_utf8(&payload[done..])?;
                }
                self.assembler.push(payload);
                self.fragments += 1;
                if header.fin {
                    self.fragments = 0;
                    let kind = self.assembler.kind().unwrap_or(Kind::Binary);
                    if kind == Kind::Text {
                        self.assembler.finish_utf8()?;
                    }
                    Event::Assembled(kind)
                } else {
                    Event::Fragment
                }
            }
            OpCode::Ping => Event::Ping(payload),
            OpCode::Pong => Event::Pong(payload),
            OpCode::Close => {
                let close = decode_close(payload).map_err(ProtocolError::Close)?;
                let reply = self.state == CloseState::Open;
                self.state = CloseState::Closed;
                Event::Close {
                    code: close.code,
                    reason: close.reason,
                    reply,
                }
            }
        };
        Ok(Decoded::Frame {
            consumed: total,
            event,
        })
    }
}

#[cfg(test)]
#[path = "conn_tests.rs"]
mod tests;
