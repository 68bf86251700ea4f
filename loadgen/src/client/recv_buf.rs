//! Receive buffer of one connection: a byte window that compacts and grows on demand.

/// Smallest free space offered to a `read` call.
const MIN_READ: usize = 4096;
/// Size a buffer may grow to just because reads keep filling it.
const MAX_ADAPTIVE: usize = 256 * 1024;

/// Bytes received and not yet parsed live in `buf[head..tail]`.
#[derive(Debug)]
pub(crate) struct RecvBuf {
    pub(crate) buf: Vec<u8>,
    pub(crate) head: usize,
    tail: usize,
}

impl RecvBuf {
    /// An empty buffer; memory is allocated on the first read.
    pub(crate) fn new() -> Self {
        Self {
            buf: Vec::new(),
            head: 0,
            tail: 0,
        }
    }

    /// Unparsed bytes.
    pub(crate) fn data(&self) -> &[u8] {
        &self.buf[self.head..self.tail]
    }

    /// Number of unparsed bytes.
    pub(crate) fn len(&self) -> usize {
        self.tail - self.head
    }

    /// Drops `n` parsed bytes. The bytes stay in memory until the next [`Self::spare`].
    pub(crate) fn consume(&mut self, n: usize) {
        self.head += n;
        if self.head == self.tail {
            self.head = 0;
            self.tail = 0;
        }
    }

    /// Free space to read into, large enough for a pending frame of `need` bytes.
    pub(crate) fn spare(&mut self, need: usize, initial: usize) -> &mut [u8] {
        let len = self.len();
        let want = need.max(len + MIN_READ);
        if self.buf.len() < want {
            // Grow (doubling), moving unparsed bytes to the front.
            let size = want.max(self.buf.len() * 2).max(initial);
            let mut bigger = vec![0u8; size];
            bigger[..len].copy_from_slice(self.data());
            self.buf = bigger;
            self.head = 0;
            self.tail = len;
        } else if self.buf.len() - self.tail < MIN_READ || self.buf.len() - self.head < want {
            self.buf.copy_within(self.head..self.tail, 0);
            self.head = 0;
            self.tail = len;
        }
        &mut self.buf[self.tail..]
    }

    /// Records `n` bytes read into [`Self::spare`]; grows next time if the read was full.
    pub(crate) fn filled(&mut self, n: usize, was_full: bool) {
        self.tail += n;
        if was_full && self.buf.len() < MAX_ADAPTIVE {
            let len = self.len();
            let mut bigger = vec![0u8; self.buf.len() * 2];
            bigger[..len].copy_from_slice(self.data());
            self.buf = bigger;
            self.head = 0;
            self.tail = len;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RecvBuf;

    #[test]
    fn compacts_and_grows() {
        let mut b = RecvBuf::new();
        let s = b.spare(0, 8192);
        assert!(s.len() >= 8192);
        s[..3].copy_from_slice(b"abc");
        b.filled(3, false);
        b.consume(1);
        assert_eq!(b.data(), b"bc");
        let s = b.spare(100_000, 8192);
        assert!(s.len() >= 100_000 - 2);
        assert_eq!(b.data(), b"bc");
        b.consume(2);
        assert_eq!(b.len(), 0);
    }
}
