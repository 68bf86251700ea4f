//! Frame encoding (client frames are always masked) and header decoding.

/// Opcodes of RFC 6455 section 5.2.
pub mod opcode {
    /// Continuation of a fragmented message.
    pub const CONTINUATION: u8 = 0x0;
    /// UTF-8 text message.
    pub const TEXT: u8 = 0x1;
    /// Binary message.
    pub const BINARY: u8 = 0x2;
    /// Close control frame.
    pub const CLOSE: u8 = 0x8;
    /// Ping control frame.
    pub const PING: u8 = 0x9;
    /// Pong control frame.
    pub const PONG: u8 = 0xA;
}

/// Largest frame payload the client accepts from a server (guards against garbage).
pub const MAX_PAYLOAD: usize = 64 << 20;

/// A decoded frame header; the payload follows `header_len` bytes in the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// FIN bit.
    pub fin: bool,
    /// Opcode (low 4 bits of the first byte).
    pub opcode: u8,
    /// Mask key, if the frame was masked (servers must not mask; we tolerate it).
    pub mask: Option<[u8; 4]>,
    /// Bytes taken by the header itself.
    pub header_len: usize,
    /// Payload length.
    pub payload_len: usize,
}

impl Header {
    /// Header plus payload length.
    pub fn frame_len(&self) -> usize {
        self.header_len + self.payload_len
    }
}

/// Decodes a frame header from the start of `buf`: `Ok(None)` if more bytes are needed.
pub fn decode_header(buf: &[u8]) -> Result<Option<Header>, String> {
    if buf.len() < 2 {
        return Ok(None);
    }
    let (b0, b1) = (buf[0], buf[1]);
    if b0 & 0x70 != 0 {
        return Err(format!("reserved bits set in frame header {b0:#04x}"));
    }
    let opcode = b0 & 0x0F;
    let masked = b1 & 0x80 != 0;
    let (len, mut pos) = match b1 & 0x7F {
        126 if buf.len() < 4 => return Ok(None),
        126 => (u64::from(u16::from_be_bytes([buf[2], buf[3]])), 4),
        127 if buf.len() < 10 => return Ok(None),
        127 => (
            u64::from_be_bytes(buf[2..10].try_into().expect("8 bytes")),
            10,
        ),
        n => (u64::from(n), 2),
    };
    if len > MAX_PAYLOAD as u64 {
        return Err(format!(
            "frame payload of {len} bytes exceeds {MAX_PAYLOAD}"
        ));
    }
    let mask = if masked {
        if buf.len() < pos + 4 {
            return Ok(None);
        }
        let key = [buf[pos], buf[pos + 1], buf[pos + 2], buf[pos + 3]];
        pos += 4;
        Some(key)
    } else {
        None
    };
    Ok(Some(Header {
        fin: b0 & 0x80 != 0,
        opcode,
        mask,
        header_len: pos,
        payload_len: len as usize,
    }))
}

/// Appends one final (FIN) masked frame carrying `payload` to `out`.
pub fn encode_masked(out: &mut Vec<u8>, opcode: u8, payload: &[u8], mask: [u8; 4]) {
    let len = payload.len();
    out.reserve(14 + len);
    out.push(0x80 | opcode);
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len <= usize::from(u16::MAX) {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(&mask);
    let start = out.len();
    out.extend_from_slice(payload);
    apply_mask(&mut out[start..], mask);
}

/// XORs `data` with the repeating 4-byte `mask`, 8 bytes at a time.
pub fn apply_mask(data: &mut [u8], mask: [u8; 4]) {
    let [a, b, c, d] = mask;
    let wide = u64::from_ne_bytes([a, b, c, d, a, b, c, d]);
    let mut chunks = data.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let v = u64::from_ne_bytes((&*chunk).try_into().expect("8 bytes")) ^ wide;
        chunk.copy_from_slice(&v.to_ne_bytes());
    }
    // Chunks are multiples of 8, so the remainder starts at mask index 0.
    for (i, byte) in chunks.into_remainder().iter_mut().enumerate() {
        *byte ^= mask[i & 3];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(len: usize) {
        let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let mut out = Vec::new();
        encode_masked(&mut out, opcode::BINARY, &payload, [1, 2, 3, 4]);
        let h = decode_header(&out).unwrap().unwrap();
        assert!(h.fin);
        assert_eq!((h.opcode, h.payload_len), (opcode::BINARY, len));
        assert_eq!(h.frame_len(), out.len());
        let mut body = out[h.header_len..].to_vec();
        apply_mask(&mut body, h.mask.unwrap());
        assert_eq!(body, payload);
        assert_eq!(decode_header(&out[..h.header_len - 1]).unwrap(), None);
    }

    #[test]
    fn roundtrips_all_length_forms() {
        for len in [0, 1, 7, 125, 126, 1000, 65535, 65536, 100_000] {
            roundtrip(len);
        }
    }

    #[test]
    fn decodes_unmasked_server_frame() {
        let h = decode_header(&[0x81, 0x03, b'a', b'b', b'c'])
            .unwrap()
            .unwrap();
        assert_eq!(
            (h.opcode, h.header_len, h.payload_len, h.mask),
            (1, 2, 3, None)
        );
        assert!(decode_header(&[0xF1, 0]).is_err());
    }
}
