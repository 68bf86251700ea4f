//! Reassembly of fragmented messages.
//!
//! Holds nothing between messages: the buffer is handed to the caller when a message
//! completes, so an idle connection owns no message memory.

use crate::wire::{Utf8Error, Utf8Validator};

/// The fragmented message in progress, if any.
#[derive(Debug, Default)]
pub struct Assembler {
    buf: Vec<u8>,
    kind: Option<Kind>,
    utf8: Utf8Validator,
}

/// What a message carries.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// UTF-8 text.
    Text,
    /// Arbitrary bytes.
    Binary,
}

impl Assembler {
    /// Whether a fragmented message has started and not finished.
    pub fn in_progress(&self) -> bool {
        self.kind.is_some()
    }

    /// The kind of the message in progress.
    pub fn kind(&self) -> Option<Kind> {
        self.kind
    }

    /// Bytes assembled so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether nothing has been assembled.
    #[cfg(any(test, feature = "testing"))]
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Starts a fragmented message with its first fragment's payload.
    pub fn start(&mut self, kind: Kind) {
        self.kind = Some(kind);
        self.buf.clear();
    }

    /// Checks bytes of a text message as they arrive (possibly before the frame is whole).
    pub fn check_utf8(&mut self, bytes: &[u8]) -> Result<(), Utf8Error> {
        self.utf8.feed(bytes)
    }

    /// Ends UTF-8 checking for this message (an unfinished code point is an error).
    pub fn finish_utf8(&mut self) -> Result<(), Utf8Error> {
        self.utf8.finish()
    }

    /// The buffer itself, for inflating a compressed message into it.
    #[cfg_attr(not(feature = "deflate"), allow(dead_code))]
    pub fn buffer_mut(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// Checks the bytes of the buffer from `start` on as text (inflated output).
    #[cfg_attr(not(feature = "deflate"), allow(dead_code))]
    pub fn check_utf8_from(&mut self, start: usize) -> Result<(), Utf8Error> {
        self.utf8.feed(self.buf.get(start..).unwrap_or_default())
    }

    /// Appends a fragment's (unmasked, already checked) payload.
    pub fn push(&mut self, payload: &[u8]) {
        self.buf.extend_from_slice(payload);
    }

    /// Hands over the completed message and resets for the next one.
    pub fn take(&mut self) -> Vec<u8> {
        self.kind = None;
        self.utf8 = Utf8Validator::new();
        std::mem::take(&mut self.buf)
    }
}
