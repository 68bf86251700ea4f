//! The bounded queue of bytes waiting for one connection's socket.
//!
//! Frames sent to a single connection are appended to an owned buffer borrowed from a
//! reactor-wide [`BufPool`], so a busy connection allocates nothing per frame and an idle one
//! holds nothing (the buffer goes back to the pool once written). Broadcast frames are queued
//! as shared references ([`SharedFrame`]) and written with vectored I/O beside owned bytes.

use super::frame::{write_frame, write_frame_with, SharedFrame, SharedPayload};
use crate::wire::OpCode;
use crate::wire::{encode_header_with, MAX_HEADER_LEN};
use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};
use std::rc::Rc;

/// Reusable output buffers shared by all connections of a reactor.
#[derive(Debug)]
pub struct BufPool {
    free: Vec<Vec<u8>>,
    buf_size: usize,
    max_free: usize,
}

impl BufPool {
    /// A pool handing out buffers of `buf_size` bytes and keeping at most `max_free` spares.
    pub fn new(buf_size: usize, max_free: usize) -> BufPool {
        BufPool {
            free: Vec::new(),
            buf_size: buf_size.max(64),
            max_free,
        }
    }

    /// An empty buffer able to take at least `need` bytes.
    pub fn get(&mut self, need: usize) -> Vec<u8> {
        if need <= self.buf_size {
            if let Some(buf) = self.free.pop() {
                return buf;
            }
            return Vec::with_capacity(self.buf_size);
        }
        Vec::with_capacity(need)
    }

    /// Returns a buffer for reuse (only standard-sized ones are kept).
    pub fn put(&mut self, mut buf: Vec<u8>) {
        if buf.capacity() == self.buf_size && self.free.len() < self.max_free {
            buf.clear();
            self.free.push(buf);
        }
    }

    /// Bytes held by spare buffers.
    pub fn heap_bytes(&self) -> usize {
        self.free.len() * self.buf_size
    }
}

/// Bytes a small chunk keeps inline (a frame header and a sequence prefix).
const INLINE: usize = 38;

#[derive(Debug)]
enum Chunk {
    Owned(Vec<u8>),
    Shared(Rc<[u8]>),
    /// A few bytes stored in the queue itself: no buffer for a broadcast member's prefix.
    Inline([u8; INLINE], u8),
}

impl Chunk {
    fn bytes(&self) -> &[u8] {
        match self {
            Chunk::Owned(v) => v,
            Chunk::Shared(r) => r,
            Chunk::Inline(b, n) => &b[..usize::from(*n)],
        }
    }
}

/// Bytes queued for one connection, in order. Empty costs 40 bytes and no heap.
#[derive(Debug, Default)]
pub struct Outbox {
    chunks: VecDeque<Chunk>,
    /// Bytes of the front chunk already written.
    head: usize,
    /// Bytes queued and not yet written.
    len: usize,
}

/// At most this many chunks go into one `writev`.
const MAX_IOVECS: usize = 64;

impl Outbox {
    /// Bytes waiting to be written.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Queues one final frame (header and payload), encoded straight into an owned buffer.
    pub fn push_frame(&mut self, pool: &mut BufPool, opcode: OpCode, payload: &[u8]) {
        let need = payload.len() + crate::wire::MAX_HEADER_LEN;
        let buf = self.tail_with_room(pool, need);
        let before = buf.len();
        write_frame(buf, opcode, payload);
        self.len += buf.len() - before;
    }

    /// Queues one final frame with RSV1 set: `payload` is a compressed message.
    #[cfg_attr(not(feature = "deflate"), allow(dead_code))]
    pub fn push_compressed(&mut self, pool: &mut BufPool, opcode: OpCode, payload: &[u8]) {
        let need = payload.len() + crate::wire::MAX_HEADER_LEN;
        let buf = self.tail_with_room(pool, need);
        let before = buf.len();
        write_frame_with(buf, true, opcode, payload);
        self.len += buf.len() - before;
    }

    /// Queues raw bytes (an HTTP response).
    pub fn push_bytes(&mut self, pool: &mut BufPool, bytes: &[u8]) {
        let buf = self.tail_with_room(pool, bytes.len());
        buf.extend_from_slice(bytes);
        self.len += bytes.len();
    }

    /// Queues a shared frame by reference.
    pub fn push_shared(&mut self, frame: &SharedFrame) {
        self.len += frame.len();
        self.chunks.push_back(Chunk::Shared(Rc::clone(frame.rc())));
    }

    /// Queues one final frame whose payload is `prefix` followed by a shared `body`: the
    /// header and prefix are written into an owned buffer, the body is queued by reference.
    pub fn push_prefixed(
        &mut self,
        pool: &mut BufPool,
        opcode: OpCode,
        prefix: &[u8],
        body: &SharedPayload,
    ) {
        self.push_prefixed_with(pool, false, opcode, prefix, body.rc());
    }

    /// [`Outbox::push_prefixed`] with RSV1 set when `compressed`, and any shared body.
    pub fn push_prefixed_with(
        &mut self,
        pool: &mut BufPool,
        compressed: bool,
        opcode: OpCode,
        prefix: &[u8],
        body: &Rc<[u8]>,
    ) {
        let mut header = [0u8; MAX_HEADER_LEN];
        let n = encode_header_with(
            &mut header,
            true,
            compressed,
            opcode,
            prefix.len() + body.len(),
        );
        let small = n + prefix.len();
        let tail_has_room = matches!(self.chunks.back(), Some(Chunk::Owned(v)) if v.capacity() - v.len() >= small)
            && !(self.chunks.len() == 1 && self.head > 0);
        if small <= INLINE && !tail_has_room {
            let mut inline = [0u8; INLINE];
            inline[..n].copy_from_slice(&header[..n]);
            inline[n..small].copy_from_slice(prefix);
            self.chunks.push_back(Chunk::Inline(inline, small as u8));
        } else {
            let buf = self.tail_with_room(pool, small);
            buf.extend_from_slice(&header[..n]);
            buf.extend_from_slice(prefix);
        }
        self.len += small + body.len();
        if !body.is_empty() {
            self.chunks.push_back(Chunk::Shared(Rc::clone(body)));
        }
    }

    fn tail_with_room(&mut self, pool: &mut BufPool, need: usize) -> &mut Vec<u8> {
        let fits = matches!(self.chunks.back(), Some(Chunk::Owned(v)) if v.capacity() - v.len() >= need
            // never append behind bytes already partly written
            && !(self.chunks.len() == 1 && self.head > 0));
        if !fits {
            self.chunks.push_back(Chunk::Owned(pool.get(need)));
        }
        match self.chunks.back_mut() {
            Some(Chunk::Owned(v)) => v,
            // Unreachable: an owned chunk was pushed just above when the tail was not one.
            _ => unreachable_owned(),
        }
    }

    /// Drops every queued byte that has not started going out, keeping the rest of a
    /// partly written chunk so the peer never sees half a frame. Used when a slow reader
    /// overflows its cap: what remains is followed only by a Close frame.
    pub fn drop_unsent(&mut self, pool: &mut BufPool) {
        let keep = if self.head > 0 { 1 } else { 0 };
        while self.chunks.len() > keep {
            if let Some(Chunk::Owned(v)) = self.chunks.pop_back() {
                pool.put(v);
            }
        }
        self.len = self
            .chunks
            .front()
            .map_or(0, |c| c.bytes().len() - self.head);
    }

    /// Writes as much as `w` accepts, until it would block or the queue is empty.
    /// Returns `Ok(true)` when everything was written. Written owned buffers go back to
    /// `pool`. `Interrupted` is retried; `WouldBlock` ends the call with `Ok(false)`.
    pub fn write_to<W: Write>(&mut self, w: &mut W, pool: &mut BufPool) -> io::Result<bool> {
        while self.len > 0 {
            let written = {
                let mut slices: [IoSlice<'_>; MAX_IOVECS] = [IoSlice::new(&[]); MAX_IOVECS];
                let mut n = 0;
                for (i, chunk) in self.chunks.iter().take(MAX_IOVECS).enumerate() {
                    let bytes = chunk.bytes();
                    slices[i] = IoSlice::new(if i == 0 { &bytes[self.head..] } else { bytes });
                    n += 1;
                }
                let result = if n == 1 {
                    w.write(&slices[0])
                } else {
                    w.write_vectored(&slices[..n])
                };
                match result {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(written) => written,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                    Err(e) => return Err(e),
                }
            };
            self.consume(written, pool);
        }
        Ok(true)
    }

    fn consume(&mut self, mut written: usize, pool: &mut BufPool) {
        self.len -= written.min(self.len);
        while written > 0 {
            let Some(front) = self.chunks.front() else {
                break;
            };
            let left = front.bytes().len() - self.head;
            if written < left {
                self.head += written;
                return;
            }
            written -= left;
            self.head = 0;
            if let Some(Chunk::Owned(v)) = self.chunks.pop_front() {
                pool.put(v);
            }
        }
        if self.chunks.is_empty() {
            // An idle connection keeps no queue memory (a small allocation per busy batch
            // is the price; buffers themselves come from the pool).
            self.chunks = VecDeque::new();
        }
    }

    /// Heap bytes held by this outbox (owned buffers and the queue itself).
    #[cfg(any(test, feature = "testing"))]
    pub fn heap_bytes(&self) -> usize {
        let owned: usize = self
            .chunks
            .iter()
            .map(|c| match c {
                Chunk::Owned(v) => v.capacity(),
                Chunk::Shared(_) | Chunk::Inline(..) => 0,
            })
            .sum();
        owned + self.chunks.capacity() * std::mem::size_of::<Chunk>()
    }
}

#[cold]
fn unreachable_owned() -> ! {
    unreachable!("outbox tail is an owned buffer")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that accepts at most `budget` bytes per call and then blocks once.
    struct Trickle {
        out: Vec<u8>,
        budget: usize,
        block_next: bool,
    }

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.block_next {
                self.block_next = false;
                return Err(io::ErrorKind::WouldBlock.into());
            }
            self.block_next = true;
            let n = buf.len().min(self.budget);
            self.out.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn owned_and_shared_bytes_leave_in_order_through_partial_writes() {
        let mut pool = BufPool::new(256, 8);
        let mut ob = Outbox::default();
        let shared = SharedFrame::text("broadcast");
        ob.push_frame(&mut pool, OpCode::Text, b"one");
        ob.push_shared(&shared);
        ob.push_frame(&mut pool, OpCode::Binary, &[9u8; 300]);
        ob.push_frame(&mut pool, OpCode::Text, b"two");
        let mut expect = Vec::new();
        write_frame(&mut expect, OpCode::Text, b"one");
        expect.extend_from_slice(shared.bytes());
        write_frame(&mut expect, OpCode::Binary, &[9u8; 300]);
        write_frame(&mut expect, OpCode::Text, b"two");
        assert_eq!(ob.len(), expect.len());

        let mut w = Trickle {
            out: Vec::new(),
            budget: 7,
            block_next: false,
        };
        let mut rounds = 0;
        while !ob.write_to(&mut w, &mut pool).unwrap() {
            // Queue more while partly written: must land after, never inside, a frame.
            if rounds == 3 {
                ob.push_frame(&mut pool, OpCode::Text, b"late");
                write_frame(&mut expect, OpCode::Text, b"late");
            }
            rounds += 1;
        }
        assert_eq!(w.out, expect);
        assert!(ob.is_empty());
        assert_eq!(ob.heap_bytes(), 0, "an emptied outbox holds nothing");
    }

    #[test]
    fn prefixed_frames_share_their_body() {
        let mut pool = BufPool::new(256, 8);
        let mut ob = Outbox::default();
        let body = SharedPayload::new(b",\"t\":\"X\"}".to_vec());
        ob.push_prefixed(&mut pool, OpCode::Text, b"{\"s\":1", &body);
        ob.push_prefixed(&mut pool, OpCode::Text, b"{\"s\":10", &body);
        let mut expect = Vec::new();
        write_frame(&mut expect, OpCode::Text, b"{\"s\":1,\"t\":\"X\"}");
        write_frame(&mut expect, OpCode::Text, b"{\"s\":10,\"t\":\"X\"}");
        let mut w = Trickle {
            out: Vec::new(),
            budget: 5,
            block_next: false,
        };
        while !ob.write_to(&mut w, &mut pool).unwrap() {}
        assert_eq!(w.out, expect);
    }

    #[test]
    fn drop_unsent_keeps_the_partly_written_frame() {
        let mut pool = BufPool::new(64, 8);
        let mut ob = Outbox::default();
        ob.push_frame(&mut pool, OpCode::Binary, &[1u8; 40]);
        ob.push_frame(&mut pool, OpCode::Binary, &[2u8; 40]);
        let mut w = Trickle {
            out: Vec::new(),
            budget: 10,
            block_next: false,
        };
        assert!(!ob.write_to(&mut w, &mut pool).unwrap());
        ob.drop_unsent(&mut pool);
        assert_eq!(ob.len(), 42 - 10);
        ob.push_shared(&SharedFrame::close(crate::close::CloseCode::POLICY, "slow"));
        while !ob.write_to(&mut w, &mut pool).unwrap() {}
        assert_eq!(w.out.len(), 42 + 8);
        assert_eq!(&w.out[42..44], &[0x88, 6]);
    }
}
