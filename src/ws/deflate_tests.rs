use super::*;

/// A compressible text of `n` bytes.
fn text(n: usize) -> Vec<u8> {
    let words = b"the gateway sends events to every session in the room ";
    words.iter().copied().cycle().take(n).collect()
}

/// Pseudo-random (incompressible) bytes.
fn noise(n: usize) -> Vec<u8> {
    let mut x: u32 = 0x9E37_79B9;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

fn compress(d: &mut Deflater, input: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    d.compress(input, &mut out).unwrap();
    out
}

#[test]
fn round_trip_without_context_takeover() {
    let mut d = Deflater::new(6, 15, false);
    let mut i = Inflater::new(15, false);
    for msg in [text(10), text(5000), noise(3000), Vec::new()] {
        let wire = compress(&mut d, &msg);
        assert!(!wire.ends_with(&TAIL));
        let mut out = Vec::new();
        i.inflate(&wire, true, &mut out, 1 << 20).unwrap();
        assert_eq!(out, msg);
        assert_eq!(i.heap_bytes(), 0, "no state kept between messages");
    }
    // Without context takeover the same input gives the same bytes: shareable.
    assert_eq!(compress(&mut d, &text(700)), compress(&mut d, &text(700)));
}

#[test]
fn round_trip_with_context_takeover_and_fragments() {
    let mut d = Deflater::new(6, 10, true);
    let mut i = Inflater::new(10, true);
    let first = compress(&mut d, &text(2000));
    let second = compress(&mut d, &text(2000));
    assert!(
        second.len() < first.len(),
        "the second message refers to the first"
    );
    for wire in [first, second] {
        let mut out = Vec::new();
        // Frame by frame, 7 bytes at a time.
        let chunks: Vec<&[u8]> = wire.chunks(7).collect();
        for (n, chunk) in chunks.iter().enumerate() {
            i.inflate(chunk, n + 1 == chunks.len(), &mut out, 4096)
                .unwrap();
        }
        assert_eq!(out, text(2000));
    }
    assert!(i.heap_bytes() > 0, "the window is kept");
}

#[test]
fn window_8_compresses_within_256_bytes() {
    // Offered server_max_window_bits=8: compressed with zlib's 9-bit window, whose matches
    // must not reach back past 256 bytes. Data whose only repeats lie 300 bytes back: a
    // 9-bit deflater must not find them (a 15-bit one does).
    let block = noise(300);
    let mut msg = block.clone();
    msg.extend_from_slice(&block);
    let mut d = Deflater::new(9, 8, false);
    let wire = compress(&mut d, &msg);
    assert!(
        wire.len() > 590,
        "a 300-byte-back match was used: {}",
        wire.len()
    );
    let mut d15 = Deflater::new(9, 15, false);
    assert!(compress(&mut d15, &msg).len() < 400, "15 bits finds it");
}

#[test]
fn bomb_stops_at_the_limit_plus_one() {
    let mut d = Deflater::new(9, 15, false);
    let bomb = compress(&mut d, &vec![0u8; 3 << 20]);
    assert!(
        bomb.len() < 4 * 1024,
        "3 MiB of zeros is {} bytes",
        bomb.len()
    );
    let mut i = Inflater::new(15, false);
    let mut out = Vec::new();
    assert_eq!(
        i.inflate(&bomb, true, &mut out, 4096),
        Err(InflateError::TooBig)
    );
    assert!(
        out.len() <= 4097 && out.capacity() <= 4097,
        "{}",
        out.capacity()
    );
    // Exactly the limit is fine.
    let exact = compress(&mut d, &vec![b'a'; 4096]);
    let mut out = Vec::new();
    i.inflate(&exact, true, &mut out, 4096).unwrap();
    assert_eq!(out.len(), 4096);
    // A big limit: output never runs past limit + one chunk.
    let mut out = Vec::new();
    assert_eq!(
        i.inflate(&bomb, true, &mut out, 1 << 20),
        Err(InflateError::TooBig)
    );
    assert!(out.capacity() <= (1 << 20) + 1, "{}", out.capacity());
}

#[test]
fn corrupt_data_is_refused() {
    let mut i = Inflater::new(15, false);
    let mut out = Vec::new();
    // BTYPE 11 is reserved.
    assert_eq!(
        i.inflate(&[0xFF, 0xFF, 0xFF], true, &mut out, 4096),
        Err(InflateError::Corrupt)
    );
    // A stored block whose length check (NLEN) is wrong.
    let mut out = Vec::new();
    assert_eq!(
        i.inflate(&[0x00, 0x05, 0x00, 0x00, 0x00, b'h'], true, &mut out, 4096),
        Err(InflateError::Corrupt)
    );
    // After an error the next message starts from a clean state.
    let wire = compress(&mut Deflater::new(6, 15, false), b"fine again");
    let mut out = Vec::new();
    i.inflate(&wire, true, &mut out, 4096).unwrap();
    assert_eq!(out, b"fine again");
}

#[test]
fn final_block_then_more_is_accepted() {
    // A client may end a message with BFINAL set (RFC 7692 §7.2.3.4 allows it); the
    // appended tail then starts a new, empty stream.
    let mut c = flate2::Compress::new_with_window_bits(flate2::Compression::new(6), false, 15);
    let mut wire = Vec::with_capacity(256);
    c.compress_vec(
        b"hello hello hello",
        &mut wire,
        flate2::FlushCompress::Finish,
    )
    .unwrap();
    let mut i = Inflater::new(15, false);
    let mut out = Vec::new();
    i.inflate(&wire, true, &mut out, 4096).unwrap();
    assert_eq!(out, b"hello hello hello");
}

#[test]
fn incompressible_overhead_fits_the_wire_slack() {
    for n in [100usize, 4096, 65536, 1 << 20] {
        let msg = noise(n);
        let wire = compress(&mut Deflater::new(6, 15, false), &msg);
        assert!(
            wire.len() <= n + wire_slack(n),
            "{n}: {} > {}",
            wire.len(),
            n + wire_slack(n)
        );
    }
}
