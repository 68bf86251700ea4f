//! permessage-deflate (RFC 7692) as plain state machines: no sockets, no clock.
//!
//! - [`Inflater`]: the receive side of one connection. It inflates a compressed message
//!   frame by frame into the caller's buffer and refuses it as soon as the output would pass
//!   the payload limit: at most `limit + 1` bytes are ever written, so a decompression bomb
//!   costs no more memory than an honest message of the limit's size. Without context
//!   takeover its zlib state exists only while a message is being received.
//! - [`Deflater`]: compresses one whole message (a sync flush, the 4-byte tail removed).
//!   Without context takeover one deflater serves every connection of a reactor (the
//!   message can be compressed once and the bytes shared); with it, each connection has
//!   its own (see [`DeflateConn`]).
//! - [`DeflateConn`]: what one connection negotiated, and its receive (and, with server
//!   context takeover, send) state.
//!
//! Memory, measured with flate2 over zlib-rs (memory level 8; `tests/deflate_memory.rs`):
//! a deflater holds 371 KiB with a 15-bit window and still 245 KiB with 9 bits (the hash
//! table and pending buffer dominate); an inflater 47 KiB whatever its window bits (zlib-rs
//! allocates a 32 KiB window).

use crate::http::DeflateParams;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// The 4 bytes a sync flush ends with, removed by the sender and appended by the receiver
/// (RFC 7692 §7.2.1).
pub const TAIL: [u8; 4] = [0x00, 0x00, 0xFF, 0xFF];

/// Inflated bytes produced per step: output grows by at most this much past what is held.
const CHUNK: usize = 16 * 1024;

/// The most a compressed frame may exceed the payload limit on the wire: deflate's
/// overhead on incompressible data (a 5-byte stored-block header per block of at least
/// 2 KiB of input for zlib at memory level 5 or more, as browsers, Node's `ws` and Python's
/// `websockets` use) plus the closing empty block.
pub const fn wire_slack(limit: usize) -> usize {
    limit / 256 + 16
}

/// Heap bytes of a zlib-rs inflater (measured: `tests/deflate_memory.rs`).
#[cfg(any(test, feature = "testing"))]
const INFLATER_BYTES: usize = 47 * 1024;
/// Heap bytes of a zlib-rs deflater with a 15-bit window (measured likewise).
#[cfg(any(test, feature = "testing"))]
const DEFLATER_BYTES: usize = 371 * 1024;

/// Why a compressed message was refused.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum InflateError {
    /// It inflates past the payload limit (1009).
    TooBig,
    /// It is not valid deflate data, or refers back further than the window (1007).
    Corrupt,
}

/// The receive side of permessage-deflate for one connection.
#[derive(Debug)]
pub struct Inflater {
    window_bits: u8,
    keep_context: bool,
    state: Option<Box<Decompress>>,
}

impl Inflater {
    /// An inflater for a peer compressing with at most `window_bits` (8-15; zlib inflates
    /// 8 with a 9-bit window), keeping its window between messages when `keep_context`.
    /// Without it, the zlib state is borrowed from a small per-thread pool for the length
    /// of one message (a reactor is one thread): no allocation per message, and an idle
    /// connection holds none.
    pub fn new(window_bits: u8, keep_context: bool) -> Inflater {
        Inflater {
            // A pooled state serves any peer: a 15-bit window inflates any smaller one.
            window_bits: if keep_context {
                window_bits.clamp(9, 15)
            } else {
                15
            },
            keep_context,
            state: None,
        }
    }

    /// Inflates one frame's payload of a compressed message onto `out`; `last` for the
    /// final frame (the sync-flush tail is then fed too). Fails as soon as `out` would pass
    /// `limit` bytes: `out` never grows past `limit + 1`.
    pub fn inflate(
        &mut self,
        input: &[u8],
        last: bool,
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<(), InflateError> {
        let state = match &mut self.state {
            Some(state) => state,
            empty => empty.insert(match self.keep_context {
                true => Box::new(Decompress::new_with_window_bits(false, self.window_bits)),
                false => take_spare(),
            }),
        };
        let result = feed(state, input, out, limit).and_then(|()| {
            if last {
                feed(state, &TAIL, out, limit)
            } else {
                Ok(())
            }
        });
        if result.is_err() || (last && !self.keep_context) {
            // Without context takeover nothing is kept between messages; after an error
            // the connection is failed and the state is never used again.
            if let Some(state) = self.state.take() {
                if !self.keep_context {
                    give_spare(state);
                }
            }
        }
        result
    }

    /// Heap bytes held between messages (an estimate: zlib's state and window).
    #[cfg(any(test, feature = "testing"))]
    pub fn heap_bytes(&self) -> usize {
        self.state.as_ref().map_or(0, |_| INFLATER_BYTES)
    }
}

/// Inflaters without context takeover kept for reuse, per thread.
const MAX_SPARE: usize = 4;

thread_local! {
    // Boxed: a state moves between a connection's `Inflater` (one pointer) and the pool.
    #[allow(clippy::vec_box)]
    static SPARE: std::cell::RefCell<Vec<Box<Decompress>>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// A reset 15-bit inflater from the pool, or a new one.
fn take_spare() -> Box<Decompress> {
    SPARE
        .with(|spare| spare.borrow_mut().pop())
        .unwrap_or_else(|| Box::new(Decompress::new_with_window_bits(false, 15)))
}

/// Returns an inflater to the pool (reset), or frees it when the pool is full.
fn give_spare(mut state: Box<Decompress>) {
    state.reset(false);
    SPARE.with(|spare| {
        let mut spare = spare.borrow_mut();
        if spare.len() < MAX_SPARE {
            spare.push(state);
        }
    });
}

/// Feeds `input` to `d`, appending output to `out` without ever letting it pass `limit + 1`.
fn feed(
    d: &mut Decompress,
    mut input: &[u8],
    out: &mut Vec<u8>,
    limit: usize,
) -> Result<(), InflateError> {
    loop {
        if out.len() > limit {
            return Err(InflateError::TooBig);
        }
        if out.len() == out.capacity() {
            // Grow by doubling from a guess (4x the input), at most a chunk at a time and
            // never past limit + 1: small messages take small buffers.
            let step = out.len().max(input.len() * 4).clamp(256, CHUNK);
            out.reserve_exact((limit + 1 - out.len()).min(step));
        }
        let (in_before, out_before) = (d.total_in(), d.total_out());
        let status = d
            .decompress_vec(input, out, FlushDecompress::Sync)
            .map_err(|_| InflateError::Corrupt)?;
        let used = usize::try_from(d.total_in() - in_before).unwrap_or(usize::MAX);
        let produced = d.total_out() - out_before;
        input = input.get(used..).unwrap_or_default();
        if out.len() > limit {
            return Err(InflateError::TooBig);
        }
        if status == Status::StreamEnd {
            // A block with BFINAL set ends the deflate stream; what follows starts anew.
            d.reset(false);
        }
        let room_left = out.len() < out.capacity();
        if input.is_empty() && room_left {
            return Ok(());
        }
        if used == 0 && produced == 0 && room_left && status != Status::StreamEnd {
            // Neither input taken nor output made, with room to spare: a stuck stream.
            return Err(InflateError::Corrupt);
        }
    }
}

/// zlib failed while compressing (an internal error: the deflater is not used again).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct DeflateFailed;

/// Compresses whole messages (the send side of permessage-deflate).
#[derive(Debug)]
pub struct Deflater {
    compress: Box<Compress>,
    keep_context: bool,
}

impl Deflater {
    /// A deflater at `level` (0-9) with a window of `window_bits` (8-15: zlib cannot
    /// compress with 8, so 8 uses 9, whose matches never reach back more than 250 bytes,
    /// inside an 8-bit window). Without `keep_context` each message is compressed alone.
    pub fn new(level: u32, window_bits: u8, keep_context: bool) -> Deflater {
        Deflater {
            compress: Box::new(Compress::new_with_window_bits(
                Compression::new(level.min(9)),
                false,
                window_bits.clamp(9, 15),
            )),
            keep_context,
        }
    }

    /// Replaces `out` with `input` compressed as one message (sync flush, tail removed).
    /// Fails only on an internal zlib error (then the deflater must not be used again).
    pub fn compress(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), DeflateFailed> {
        self.compress_parts(&[input], out)
    }

    /// [`Deflater::compress`] of the concatenation of `parts`, without copying them.
    pub fn compress_parts(
        &mut self,
        parts: &[&[u8]],
        out: &mut Vec<u8>,
    ) -> Result<(), DeflateFailed> {
        out.clear();
        let total: usize = parts.iter().map(|p| p.len()).sum();
        for (i, part) in parts.iter().enumerate() {
            let last = i + 1 == parts.len();
            let flush = if last {
                FlushCompress::Sync
            } else {
                FlushCompress::None
            };
            let mut rest = *part;
            loop {
                if out.capacity() - out.len() < 64 {
                    out.reserve(total / 2 + 256);
                }
                let before = self.compress.total_in();
                self.compress
                    .compress_vec(rest, out, flush)
                    .map_err(|_| DeflateFailed)?;
                let used = usize::try_from(self.compress.total_in() - before).unwrap_or(usize::MAX);
                rest = rest.get(used..).unwrap_or_default();
                // Done with this part once it is all taken (and, for the sync flush of the
                // last one, once the output had room left: nothing is pending).
                if rest.is_empty() && (!last || out.len() < out.capacity()) {
                    break;
                }
            }
        }
        if out.ends_with(&TAIL) {
            out.truncate(out.len() - TAIL.len());
        }
        if !self.keep_context {
            self.compress.reset();
        }
        Ok(())
    }
}

/// Writes a stored (uncompressed) deflate block holding `bytes` (at most 65,535), not
/// final, to `out`: put before an independently compressed body, it makes one valid
/// message of `bytes` followed by the body (how a broadcast shares one compressed body
/// behind a per-member prefix). Returns the length written (5 + `bytes.len()`).
pub fn stored_block(out: &mut [u8], bytes: &[u8]) -> Option<usize> {
    let len = u16::try_from(bytes.len()).ok()?;
    let total = 5 + bytes.len();
    let dest = out.get_mut(..total)?;
    dest[0] = 0x00; // BFINAL 0, BTYPE 00 (stored), padded to the byte
    dest[1..3].copy_from_slice(&len.to_le_bytes());
    dest[3..5].copy_from_slice(&(!len).to_le_bytes());
    dest[5..].copy_from_slice(bytes);
    Some(total)
}

/// What one connection negotiated, with its receive state and (with server context
/// takeover) its own deflater. Boxed in the connection: a connection without
/// permessage-deflate pays one pointer.
#[derive(Debug)]
pub struct DeflateConn {
    params: DeflateParams,
    level: u32,
    inflater: Inflater,
    deflater: Option<Deflater>,
    /// The message being received is compressed (its first frame had RSV1).
    rx_compressed: bool,
}

impl DeflateConn {
    /// The state for a connection that agreed on `params`, compressing at `level`.
    pub fn new(params: DeflateParams, level: u32) -> DeflateConn {
        DeflateConn {
            params,
            level,
            inflater: Inflater::new(
                params.client_max_window_bits,
                !params.client_no_context_takeover,
            ),
            deflater: None,
            rx_compressed: false,
        }
    }

    /// What was agreed.
    pub fn params(&self) -> &DeflateParams {
        &self.params
    }

    /// Whether the message being received is compressed.
    pub fn rx_compressed(&self) -> bool {
        self.rx_compressed
    }

    /// Marks the start (true) or end (false) of a compressed message being received.
    pub fn set_rx_compressed(&mut self, on: bool) {
        self.rx_compressed = on;
    }

    /// The receive side.
    pub fn inflater(&mut self) -> &mut Inflater {
        &mut self.inflater
    }

    /// This connection's own deflater when the server keeps its context between messages
    /// (created on first use); `None` without server context takeover: then any deflater
    /// with the same window serves (see [`DeflateParams::server_max_window_bits`]).
    pub fn own_deflater(&mut self) -> Option<&mut Deflater> {
        if self.params.server_no_context_takeover {
            return None;
        }
        let (level, bits) = (self.level, self.params.server_max_window_bits);
        Some(
            self.deflater
                .get_or_insert_with(|| Deflater::new(level, bits, true)),
        )
    }

    /// Heap bytes held (estimates of the zlib states).
    #[cfg(any(test, feature = "testing"))]
    pub fn heap_bytes(&self) -> usize {
        std::mem::size_of::<DeflateConn>()
            + self.inflater.heap_bytes()
            + self.deflater.as_ref().map_or(0, |_| DEFLATER_BYTES)
    }
}

#[cfg(test)]
#[path = "deflate_tests.rs"]
mod tests;
