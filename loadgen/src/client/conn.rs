//! One client connection's state machine: TCP connect, upgrade, frames, close.

use std::io::{self, Read, Write};
use std::time::Instant;

use mio::net::TcpStream;

use super::recv_buf::RecvBuf;
use super::writer::Writer;
use super::{Action, CloseMode, Closed, Handler, Message};
use crate::rng::Rng;
use crate::ws::frame::{apply_mask, decode_header, opcode};
use crate::ws::handshake;

/// Initial receive buffer size (grows adaptively for bulk traffic).
const INITIAL_RECV: usize = 16 * 1024;

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// TCP connect in progress; the upgrade request is queued.
    Connecting,
    /// Request sent, waiting for the `101`.
    Handshaking,
    /// Upgraded: frames flow.
    Open,
    /// We sent a close frame and wait for the server's (or EOF).
    Closing,
}

/// What the reactor must do with a connection after driving it.
pub(crate) enum Step {
    /// Keep it registered.
    Keep,
    /// Drop it (with `SO_LINGER 0` if `reset`) and report `Closed`.
    Remove(Closed, bool),
}

/// A client connection.
pub(crate) struct Conn {
    pub(crate) stream: TcpStream,
    phase: Phase,
    key: [u8; 24],
    rx: RecvBuf,
    /// Total length of a frame that is only partly received (0 if none).
    need: usize,
    tx: Writer,
    /// A fragmented message being reassembled: (binary, bytes so far).
    frag: Option<(bool, Vec<u8>)>,
}

impl Conn {
    /// Wraps a connecting stream and queues the upgrade request.
    pub(crate) fn new(stream: TcpStream, host: &str, path: &str, mut rng: Rng) -> Self {
        let key = handshake::random_key(&mut rng);
        let mut tx = Writer::new(rng);
        let mut req = Vec::with_capacity(160 + path.len() + host.len());
        handshake::write_request(&mut req, host, path, &key);
        tx.raw(&req);
        Self {
            stream,
            phase: Phase::Connecting,
            key,
            rx: RecvBuf::new(),
            need: 0,
            tx,
            frag: None,
        }
    }

    /// The write queue, for frames sent outside of a handler callback.
    pub(crate) fn writer(&mut self) -> &mut Writer {
        &mut self.tx
    }

    /// True once upgraded (and not closing).
    pub(crate) fn is_open(&self) -> bool {
        self.phase == Phase::Open
    }

    /// Handles a readiness event. `readable`: data may be waiting; `drain`: read until
    /// `WouldBlock` even after a short read (the peer closed or errored, so no further
    /// edge will come).
    pub(crate) fn drive<H: Handler>(
        &mut self,
        id: usize,
        readable: bool,
        drain: bool,
        h: &mut H,
        now: Instant,
    ) -> Step {
        if self.phase == Phase::Connecting {
            match self.check_connected() {
                Ok(true) => self.phase = Phase::Handshaking,
                Ok(false) => return Step::Keep,
                Err(e) => return Step::Remove(Closed::Error(e), false),
            }
        }
        if readable {
            if let Some(step) = self.read_all(id, drain, h, now) {
                return step;
            }
        }
        self.flush_step()
    }

    /// Flushes queued bytes, turning a write error into a removal.
    pub(crate) fn flush_step(&mut self) -> Step {
        if self.phase == Phase::Connecting {
            return Step::Keep;
        }
        match self.flush() {
            Ok(()) => Step::Keep,
            Err(e) => Step::Remove(Closed::Error(e), false),
        }
    }

    /// Writes as much of the queue as the socket takes.
    fn flush(&mut self) -> io::Result<()> {
        while self.tx.pending() > 0 {
            match self.stream.write(self.tx.unwritten()) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.tx.advance(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Whether the non-blocking connect finished: `Ok(false)` while still pending.
    fn check_connected(&mut self) -> io::Result<bool> {
        if let Some(e) = self.stream.take_error()? {
            return Err(e);
        }
        match self.stream.peer_addr() {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Reads and parses until `WouldBlock` or, unless `drain`, a short read: with
    /// edge-triggered epoll a short read means the socket was emptied, and any later
    /// data raises a new event, so the extra `read` returning `EAGAIN` is skipped.
    fn read_all<H: Handler>(
        &mut self,
        id: usize,
        drain: bool,
        h: &mut H,
        now: Instant,
    ) -> Option<Step> {
        loop {
            let spare = self.rx.spare(self.need, INITIAL_RECV);
            let room = spare.len();
            match self.stream.read(spare) {
                Ok(0) => {
                    let why = if self.phase == Phase::Closing {
                        Closed::Local
                    } else {
                        Closed::Eof
                    };
                    return Some(Step::Remove(why, false));
                }
                Ok(n) => {
                    self.rx.filled(n, n == room);
                    if let Some(step) = self.parse(id, h, now) {
                        return Some(step);
                    }
                    if n < room && !drain {
                        return None;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Some(Step::Remove(Closed::Error(e), false)),
            }
        }
    }

    /// Parses the upgrade answer and then every complete frame in the buffer.
    fn parse<H: Handler>(&mut self, id: usize, h: &mut H, now: Instant) -> Option<Step> {
        if self.phase == Phase::Handshaking {
            match handshake::parse_response(self.rx.data(), &self.key) {
                Ok(None) => return None,
                Ok(Some(n)) => {
                    self.rx.consume(n);
                    self.phase = Phase::Open;
                    let action = h.on_open(id, &mut self.tx, now);
                    if let Some(step) = self.apply(action) {
                        return Some(step);
                    }
                }
                Err(e) => return Some(protocol_error(e)),
            }
        }
        loop {
            let header = match decode_header(self.rx.data()) {
                Ok(Some(header)) => header,
                Ok(None) => return None,
                Err(e) => return Some(protocol_error(e)),
            };
            if self.rx.len() < header.frame_len() {
                self.need = header.frame_len();
                return None;
            }
            self.need = 0;
            let start = self.rx.head + header.header_len;
            let end = start + header.payload_len;
            if let Some(mask) = header.mask {
                apply_mask(&mut self.rx.buf[start..end], mask);
            }
            // Only indices move: the payload stays valid until the next read.
            self.rx.consume(header.frame_len());
            let payload = &self.rx.buf[start..end];
            let action = match header.opcode {
                opcode::TEXT | opcode::BINARY if self.frag.is_some() => {
                    return Some(protocol_error("new message inside a fragmented one"));
                }
                op @ (opcode::TEXT | opcode::BINARY) if header.fin => {
                    let msg = Message {
                        binary: op == opcode::BINARY,
                        data: payload,
                    };
                    if self.phase == Phase::Open {
                        h.on_message(id, msg, &mut self.tx, now)
                    } else {
                        Action::Keep
                    }
                }
                op @ (opcode::TEXT | opcode::BINARY) => {
                    self.frag = Some((op == opcode::BINARY, payload.to_vec()));
                    Action::Keep
                }
                opcode::CONTINUATION => {
                    let Some((binary, mut data)) = self.frag.take() else {
                        return Some(protocol_error("continuation without a message"));
                    };
                    data.extend_from_slice(payload);
                    if header.fin {
                        let msg = Message {
                            binary,
                            data: &data,
                        };
                        if self.phase == Phase::Open {
                            h.on_message(id, msg, &mut self.tx, now)
                        } else {
                            Action::Keep
                        }
                    } else {
                        self.frag = Some((binary, data));
                        Action::Keep
                    }
                }
                opcode::PING => {
                    if self.phase == Phase::Open {
                        self.tx.frame(opcode::PONG, payload);
                    }
                    Action::Keep
                }
                opcode::PONG => Action::Keep,
                opcode::CLOSE => {
                    let code =
                        (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]));
                    return Some(self.on_close_frame(code));
                }
                op => return Some(protocol_error(format!("unknown opcode {op:#x}"))),
            };
            if let Some(step) = self.apply(action) {
                return Some(step);
            }
        }
    }

    /// A close frame arrived: answer it unless we started the close, then drop.
    fn on_close_frame(&mut self, code: Option<u16>) -> Step {
        if self.phase == Phase::Closing {
            return Step::Remove(Closed::Local, false);
        }
        self.tx.close(code);
        let _ = self.flush();
        Step::Remove(Closed::Remote(code), false)
    }

    /// Carries out a handler's decision.
    fn apply(&mut self, action: Action) -> Option<Step> {
        match action {
            Action::Keep => None,
            Action::Close(mode) => self.begin_close(mode),
        }
    }

    /// Starts closing per `mode`; `None` if the connection stays (waiting for the peer).
    pub(crate) fn begin_close(&mut self, mode: CloseMode) -> Option<Step> {
        match mode {
            CloseMode::Drop => Some(Step::Remove(Closed::Local, false)),
            CloseMode::Reset => Some(Step::Remove(Closed::Local, true)),
            CloseMode::Frame => {
                self.tx.close(Some(1000));
                let _ = self.flush();
                Some(Step::Remove(Closed::Local, false))
            }
            CloseMode::Wait => {
                self.tx.close(Some(1000));
                self.phase = Phase::Closing;
                None
            }
        }
    }
}

/// A removal caused by a protocol violation of the server.
fn protocol_error(msg: impl Into<String>) -> Step {
    Step::Remove(
        Closed::Error(io::Error::new(io::ErrorKind::InvalidData, msg.into())),
        false,
    )
}
