//! Outgoing side of a client connection: queues masked frames until flushed.

use crate::rng::Rng;
use crate::ws::frame::{encode_masked, opcode};

/// Write queue of one connection. Handlers queue frames here; the reactor flushes.
#[derive(Debug)]
pub struct Writer {
    buf: Vec<u8>,
    pos: usize,
    rng: Rng,
    close_sent: bool,
}

impl Writer {
    pub(crate) fn new(rng: Rng) -> Self {
        Self {
            buf: Vec::new(),
            pos: 0,
            rng,
            close_sent: false,
        }
    }

    /// Queues a text message (the caller guarantees UTF-8).
    pub fn text(&mut self, data: &[u8]) {
        self.frame(opcode::TEXT, data);
    }

    /// Queues a binary message.
    pub fn binary(&mut self, data: &[u8]) {
        self.frame(opcode::BINARY, data);
    }

    /// Queues one masked final frame; ignored once a close frame was queued.
    pub fn frame(&mut self, op: u8, data: &[u8]) {
        if self.close_sent {
            return;
        }
        let mask = self.rng.mask();
        encode_masked(&mut self.buf, op, data, mask);
    }

    /// Queues a close frame with `code` (once).
    pub fn close(&mut self, code: Option<u16>) {
        if self.close_sent {
            return;
        }
        let payload = code.map(u16::to_be_bytes);
        self.frame(opcode::CLOSE, payload.as_ref().map_or(&[][..], |p| &p[..]));
        self.close_sent = true;
    }

    /// Queues raw bytes (the upgrade request).
    pub(crate) fn raw(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Bytes queued and not yet written.
    pub fn pending(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The unwritten bytes.
    pub(crate) fn unwritten(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    /// Marks `n` bytes as written; resets the buffer when drained.
    pub(crate) fn advance(&mut self, n: usize) {
        self.pos += n;
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
    }
}
