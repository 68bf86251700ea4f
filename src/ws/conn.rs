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

pub use super::error::ProtocolError;

use super::assembler::{Assembler, Kind};
use super::deflate::{self, DeflateConn};
use crate::close::CloseCode;
use crate::wire::{self, apply_mask, decode_close, HeaderError, OpCode};

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
    #[cfg_attr(not(feature = "deflate"), allow(dead_code))]
    pub fn enable_deflate(&mut self, deflate: DeflateConn) {
        self.deflate = Some(Box::new(deflate));
    }

    /// The permessage-deflate state, when negotiated.
    #[cfg_attr(not(feature = "deflate"), allow(dead_code))]
    pub fn deflate_mut(&mut self) -> Option<&mut DeflateConn> {
        self.deflate.as_deref_mut()
    }

    /// Whether the message being received is compressed.
    fn rx_compressed(&self) -> bool {
        self.deflate.as_ref().is_some_and(|d| d.rx_compressed())
    }

    /// Where the closing handshake stands.
    #[cfg(any(test, feature = "testing"))]
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

    /// Heap bytes held (the assembly buffer of a fragmented message in progress, and the
    /// permessage-deflate state).
    #[cfg(any(test, feature = "testing"))]
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
mod tests {
    // Unit tests for `WsConn`: every bad input with its exact close code, fragmentation, and
    // byte-at-a-time delivery.

    use super::*;
    use crate::wire::{encode_header, MAX_HEADER_LEN};

    const KEY: [u8; 4] = [0x11, 0x22, 0x33, 0x44];
    const LIMIT: usize = 4096;

    /// A masked client frame.
    fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut h = [0u8; MAX_HEADER_LEN];
        let op = OpCode::from_u8(opcode).unwrap_or(OpCode::Binary);
        let n = encode_header(&mut h, fin, op, payload.len());
        h[0] = (h[0] & 0xF0) | opcode;
        h[1] |= 0x80;
        let mut out = h[..n].to_vec();
        out.extend_from_slice(&KEY);
        let mut body = payload.to_vec();
        apply_mask(&mut body, KEY, 0);
        out.extend_from_slice(&body);
        out
    }

    /// Owned copy of an event, so a test can collect several.
    #[derive(Debug, PartialEq, Eq)]
    enum Got {
        Text(String),
        Binary(Vec<u8>),
        Ping(Vec<u8>),
        Pong(Vec<u8>),
        Close(Option<u16>, String, bool),
    }

    /// Feeds `bytes` as a stream split into `chunk`-sized reads, keeping unconsumed bytes the
    /// way the reactor does, and returns what was delivered and the error, if any.
    fn run(bytes: &[u8], chunk: usize) -> (Vec<Got>, Option<ProtocolError>) {
        let mut conn = WsConn::new();
        let mut pending: Vec<u8> = Vec::new();
        let mut got = Vec::new();
        for piece in bytes.chunks(chunk.max(1)) {
            pending.extend_from_slice(piece);
            loop {
                match conn.decode(&mut pending, LIMIT) {
                    Err(e) => return (got, Some(e)),
                    Ok(Decoded::NeedMore { .. }) => break,
                    Ok(Decoded::Frame { consumed, event }) => {
                        let item = match event {
                            Event::Text(t) => Some(Got::Text(t.to_owned())),
                            Event::Binary(b) => Some(Got::Binary(b.to_vec())),
                            Event::Ping(p) => Some(Got::Ping(p.to_vec())),
                            Event::Pong(p) => Some(Got::Pong(p.to_vec())),
                            Event::Close {
                                code,
                                reason,
                                reply,
                            } => Some(Got::Close(code.map(|c| c.0), reason.to_owned(), reply)),
                            Event::Fragment => None,
                            Event::Assembled(kind) => {
                                let m = conn.take_message();
                                Some(match kind {
                                    Kind::Text => Got::Text(String::from_utf8(m).unwrap()),
                                    Kind::Binary => Got::Binary(m),
                                })
                            }
                        };
                        got.extend(item);
                        pending.drain(..consumed);
                    }
                }
            }
        }
        (got, None)
    }

    fn all_splits(bytes: &[u8]) -> Vec<(Vec<Got>, Option<ProtocolError>)> {
        [1, 2, 3, 5, 7, 64, bytes.len().max(1)]
            .iter()
            .map(|&c| run(bytes, c))
            .collect()
    }

    #[test]
    fn single_frames_of_every_size_class() {
        for len in [0usize, 1, 125, 126, 127, 4095, 4096] {
            let text = "x".repeat(len);
            let bin = vec![0xA5u8; len];
            let mut stream = frame(true, 1, text.as_bytes());
            stream.extend(frame(true, 2, &bin));
            for (got, err) in all_splits(&stream) {
                assert_eq!(err, None);
                assert_eq!(got, vec![Got::Text(text.clone()), Got::Binary(bin.clone())]);
            }
        }
    }

    #[test]
    fn fragmented_message_with_interleaved_ping() {
        let mut s = frame(false, 1, "Hello, ".as_bytes());
        s.extend(frame(true, 9, b"ping!"));
        s.extend(frame(false, 0, "wörld".as_bytes()));
        s.extend(frame(true, 0, b"!"));
        for (got, err) in all_splits(&s) {
            assert_eq!(err, None);
            assert_eq!(
                got,
                vec![
                    Got::Ping(b"ping!".to_vec()),
                    Got::Text("Hello, wörld!".into())
                ]
            );
        }
    }

    #[test]
    fn utf8_split_inside_a_code_point_across_fragments() {
        let bytes = "κόσμε".as_bytes();
        let mut s = Vec::new();
        for (i, b) in bytes.iter().enumerate() {
            let op = if i == 0 { 1 } else { 0 };
            s.extend(frame(i + 1 == bytes.len(), op, std::slice::from_ref(b)));
        }
        let (got, err) = run(&s, 1);
        assert_eq!(err, None);
        assert_eq!(got, vec![Got::Text("κόσμε".into())]);
    }

    fn error_of(stream: &[u8]) -> ProtocolError {
        let mut seen = None;
        for (_, err) in all_splits(stream) {
            let err = err.expect("stream must be refused");
            if let Some(prev) = seen {
                assert_eq!(prev, err, "same answer however the bytes are split");
            }
            seen = Some(err);
        }
        seen.unwrap()
    }

    #[test]
    fn every_bad_input_gets_its_exact_close_code() {
        let cases: Vec<(Vec<u8>, u16)> = vec![
            // Unmasked client frame.
            (vec![0x81, 0x02, b'h', b'i'], 1002),
            // Reserved bits, reserved opcodes.
            (
                {
                    let mut f = frame(true, 1, b"x");
                    f[0] |= 0x40;
                    f
                },
                1002,
            ),
            (
                {
                    let mut f = frame(true, 1, b"x");
                    f[0] |= 0x10;
                    f
                },
                1002,
            ),
            (frame(true, 3, b""), 1002),
            (frame(true, 0xB, b""), 1002),
            // Fragmented ping; control frame over 125 bytes.
            (frame(false, 9, b"x"), 1002),
            (frame(true, 9, &[0u8; 126]), 1002),
            // Continuation without start; new message inside a fragmented one.
            (frame(true, 0, b"x"), 1002),
            (
                {
                    let mut s = frame(false, 1, b"a");
                    s.extend(frame(true, 1, b"b"));
                    s
                },
                1002,
            ),
            // Over the limit, single frame and fragmented.
            (frame(true, 2, &[0u8; 4097]), 1009),
            (
                {
                    let mut s = frame(false, 2, &[0u8; 4000]);
                    s.extend(frame(true, 0, &[0u8; 97]));
                    s
                },
                1009,
            ),
            // Invalid UTF-8: single frame, across fragments, truncated at message end.
            (frame(true, 1, b"\xce\xba\xed\xa0\x80"), 1007),
            (
                {
                    let mut s = frame(false, 1, b"\xce");
                    s.extend(frame(true, 0, b"\xff"));
                    s
                },
                1007,
            ),
            (
                {
                    let mut s = frame(false, 1, b"ok");
                    s.extend(frame(true, 0, b"\xe2\x82"));
                    s
                },
                1007,
            ),
            // Close frames: 1 byte, invalid code, invalid reason.
            (frame(true, 8, &[0x03]), 1002),
            (frame(true, 8, &[0x03, 0xED]), 1002),
            (frame(true, 8, &[0x03, 0xE8, 0xC0]), 1007),
        ];
        for (stream, code) in cases {
            let err = error_of(&stream);
            assert_eq!(err.close_code().0, code, "{err:?} for {stream:02x?}");
        }
    }

    #[test]
    fn oversize_is_refused_before_the_payload_arrives() {
        let mut conn = WsConn::new();
        let mut header_only = vec![0x82, 0xFE, 0x10, 0x01]; // 4097 bytes announced
        let err = conn.decode(&mut header_only, LIMIT).unwrap_err();
        assert_eq!(err.close_code(), CloseCode::TOO_BIG);
    }

    #[test]
    fn invalid_utf8_fails_before_the_frame_is_complete() {
        let f = frame(true, 1, b"\xce\xba\xed\xa0\x80 and much more text after it");
        let mut conn = WsConn::new();
        let mut head = f[..6 + 4].to_vec(); // header, mask and the first 4 payload bytes
        assert_eq!(
            conn.decode(&mut head, LIMIT),
            Err(ProtocolError::InvalidUtf8)
        );
    }

    #[test]
    fn partial_frame_reports_its_length() {
        let f = frame(true, 2, &[1u8; 300]);
        let mut conn = WsConn::new();
        let mut part = f[..10].to_vec();
        assert_eq!(
            conn.decode(&mut part, LIMIT),
            Ok(Decoded::NeedMore {
                frame_len: Some(308)
            })
        );
    }

    #[test]
    fn close_handshake_both_ways() {
        let (got, err) = run(&frame(true, 8, &[0x03, 0xE8, b'o', b'k']), 3);
        assert_eq!(err, None);
        assert_eq!(got, vec![Got::Close(Some(1000), "ok".into(), true)]);
        let (got, _) = run(&frame(true, 8, &[]), 1);
        assert_eq!(got, vec![Got::Close(None, String::new(), true)]);

        let mut conn = WsConn::new();
        assert!(conn.start_close());
        assert!(!conn.start_close());
        let mut reply = frame(true, 8, &[0x03, 0xE8]);
        match conn.decode(&mut reply, LIMIT) {
            Ok(Decoded::Frame {
                event: Event::Close { reply, .. },
                ..
            }) => assert!(!reply),
            other => panic!("{other:?}"),
        }
        assert_eq!(conn.close_state(), CloseState::Closed);
    }

    #[test]
    fn fragments_per_message_are_bounded_and_counted_per_message() {
        // 1 first frame + 1,023 empty continuations is the most a message may have.
        let mut ok = frame(false, 2, b"a");
        for _ in 0..1022 {
            ok.extend(frame(false, 0, b""));
        }
        ok.extend(frame(true, 0, b"b"));
        // The count starts again with the next message.
        ok.extend(frame(false, 1, b"c"));
        ok.extend(frame(true, 0, b""));
        let (got, err) = run(&ok, ok.len());
        assert_eq!(err, None);
        assert_eq!(
            got,
            vec![Got::Binary(b"ab".to_vec()), Got::Text("c".into())]
        );

        // Zero-byte continuations never reach the size limit: the 1,025th frame is refused.
        let mut flood = frame(false, 1, b"");
        for _ in 0..2000 {
            flood.extend(frame(false, 0, b""));
        }
        for chunk in [1, 7, flood.len()] {
            let (got, err) = run(&flood, chunk);
            assert_eq!(got, vec![]);
            assert_eq!(err, Some(ProtocolError::TooManyFragments));
            assert_eq!(err.unwrap().close_code(), CloseCode::POLICY);
        }
        let mut conn = WsConn::with_max_fragments(2);
        let mut two = frame(false, 2, b"x");
        two.extend(frame(false, 0, b""));
        two.extend(frame(true, 0, b""));
        let (first, rest) = two.split_at_mut(7);
        assert!(matches!(
            conn.decode(first, LIMIT),
            Ok(Decoded::Frame { .. })
        ));
        let (second, third) = rest.split_at_mut(6);
        assert!(matches!(
            conn.decode(second, LIMIT),
            Ok(Decoded::Frame { .. })
        ));
        assert_eq!(
            conn.decode(third, LIMIT),
            Err(ProtocolError::TooManyFragments)
        );
    }
}

#[cfg(all(test, feature = "deflate"))]
#[path = "conn_deflate_tests.rs"]
mod deflate_tests;
