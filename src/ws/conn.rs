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
use super::deflate::{self, DeflateConn};
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
    /// A compressed message that does not inflate (1007).
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

/// The receive state of one WebSocket connection (72 bytes when idle, no heap
/// without permessage-deflate).
#[derive(Debug)]
pub struct WsConn {
    /// permessage-deflate, when negotiated (boxed: one pointer when it is not).
    deflate: Option<Box<DeflateConn>>,
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
            deflate: None,
            state: CloseState::Open,
            partial_done: 0,
            fragments: 0,
            max_fragments: max.max(1),
            assembler: Assembler::default(),
        }
    }

    /// Turns on permessage-deflate (after negotiating it in the upgrade): frames with RSV1
    /// are then inflated, under the same payload limit applied to the inflated size.
    pub fn enable_deflate(&mut self, deflate: DeflateConn) {
        self.deflate = Some(Box::new(deflate));
    }

    /// The permessage-deflate state, when negotiated.
    pub fn deflate_mut(&mut self) -> Option<&mut DeflateConn> {
        self.deflate.as_deref_mut()
    }

    /// Whether the message being received is compressed.
    fn rx_compressed(&self) -> bool {
        self.deflate.as_ref().is_some_and(|d| d.rx_compressed())
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
    pub fn start_close(&mut self) -> bool {
        if self.state == CloseState::Open {
            self.state = CloseState::CloseSent;
            true
        } else {
            false
        }
    }

    /// Marks the handshake over (e.g. after answering a peer's Close ourselves, or on error).
    pub fn set_closed(&mut self) {
        self.state = CloseState::Closed;
    }

    /// Hands over the message completed by the last [`Event::Assembled`].
    pub fn take_message(&mut self) -> Vec<u8> {
        self.assembler.take()
    }

    /// Heap bytes held (the assembly buffer of a fragmented message in progress, and the
    /// permessage-deflate state).
    pub fn heap_bytes(&self) -> usize {
        self.assembler.len() + self.deflate.as_ref().map_or(0, |d| d.heap_bytes())
    }

    /// Decodes the frame at the start of `buf`. See the module documentation.
    /// `max_message` bounds a frame's payload and a fragmented message's total; with
    /// permessage-deflate, a compressed message's inflated size (a compressed frame may
    /// exceed it on the wire by [`deflate::wire_slack`]).
    pub fn decode<'b>(
        &mut self,
        buf: &'b mut [u8],
        max_message: usize,
    ) -> Result<Decoded<'b>, ProtocolError> {
        let deflate_on = self.deflate.is_some();
        let wire_max = match deflate_on {
            true => max_message.saturating_add(deflate::wire_slack(max_message)),
            false => max_message,
        };
        let Some(header) = wire::header::parse_with(buf, wire_max, deflate_on)? else {
            return Ok(Decoded::NeedMore { frame_len: None });
        };
        let key = header.mask.ok_or(ProtocolError::Unmasked)?;
        let compressed =
            header.rsv1 || (header.opcode == OpCode::Continuation && self.rx_compressed());
        if !compressed && header.payload_len > max_message {
            return Err(ProtocolError::Header(HeaderError::TooLarge {
                len: header.payload_len as u64,
                limit: max_message,
            }));
        }
        let text_continuation = self.assembler.kind() == Some(Kind::Text);
        match header.opcode {
            OpCode::Continuation if !self.assembler.in_progress() => {
                return Err(ProtocolError::UnexpectedContinuation)
            }
            OpCode::Continuation
                if !compressed && self.assembler.len() + header.payload_len > max_message =>
            {
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
            if texty && !compressed {
                self.assembler.check_utf8(&payload[done..])?;
            }
            self.partial_done = payload.len();
            return Ok(Decoded::NeedMore {
                frame_len: Some(total),
            });
        }
        self.partial_done = 0;
        let payload: &'b [u8] = &buf[header.header_len..total];
        if compressed {
            let event = self.inflate_frame(header.opcode, header.fin, payload, max_message)?;
            return Ok(Decoded::Frame {
                consumed: total,
                event,
            });
        }
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

impl WsConn {
    /// Inflates a complete frame of a compressed message into the assembly buffer, under
    /// `max` for the inflated size. The message is always delivered as
    /// [`Event::Assembled`] (its bytes are not in the read buffer).
    #[cfg(feature = "deflate")]
    fn inflate_frame(
        &mut self,
        opcode: OpCode,
        fin: bool,
        payload: &[u8],
        max: usize,
    ) -> Result<Event<'static>, ProtocolError> {
        let Some(d) = self.deflate.as_deref_mut() else {
            return Err(ProtocolError::Header(HeaderError::ReservedBits));
        };
        if opcode == OpCode::Continuation {
            self.fragments += 1;
        } else {
            let kind = if opcode == OpCode::Text {
                Kind::Text
            } else {
                Kind::Binary
            };
            self.assembler.start(kind);
            d.set_rx_compressed(true);
            self.fragments = 1;
        }
        let before = self.assembler.len();
        d.inflater()
            .inflate(payload, fin, self.assembler.buffer_mut(), max)
            .map_err(|e| match e {
                deflate::InflateError::TooBig => ProtocolError::MessageTooBig,
                deflate::InflateError::Corrupt => ProtocolError::CorruptCompressed,
            })?;
        let kind = self.assembler.kind().unwrap_or(Kind::Binary);
        if kind == Kind::Text {
            self.assembler.check_utf8_from(before)?;
        }
        if !fin {
            return Ok(Event::Fragment);
        }
        d.set_rx_compressed(false);
        self.fragments = 0;
        if kind == Kind::Text {
            self.assembler.finish_utf8()?;
        }
        Ok(Event::Assembled(kind))
    }

    /// Without the `deflate` feature no frame is ever compressed (RSV1 is refused).
    #[cfg(not(feature = "deflate"))]
    fn inflate_frame(
        &mut self,
        _: OpCode,
        _: bool,
        _: &[u8],
        _: usize,
    ) -> Result<Event<'static>, ProtocolError> {
        Err(ProtocolError::Header(HeaderError::ReservedBits))
    }
}

#[cfg(test)]
#[path = "conn_tests.rs"]
mod tests;

#[cfg(all(test, feature = "deflate"))]
#[path = "conn_deflate_tests.rs"]
mod deflate_tests;
