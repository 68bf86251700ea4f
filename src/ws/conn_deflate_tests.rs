//! [`WsConn`] with permessage-deflate: RSV1 rules, the limit on the inflated size (bombs),
//! the wire slack, corrupt data.

use super::*;
use crate::http::DeflateParams;
use crate::wire::{encode_header_with, MAX_HEADER_LEN};
use crate::ws::deflate::{wire_slack, Deflater};

const KEY: [u8; 4] = [0x11, 0x22, 0x33, 0x44];
const LIMIT: usize = 4096;

fn params() -> DeflateParams {
    DeflateParams {
        server_no_context_takeover: true,
        client_no_context_takeover: true,
        server_max_window_bits: 15,
        client_max_window_bits: 15,
        answer_server_bits: false,
        answer_client_bits: false,
    }
}

fn deflate_conn() -> WsConn {
    let mut conn = WsConn::new();
    conn.enable_deflate(DeflateConn::new(params(), 6));
    conn
}

/// A masked client frame with the given RSV1 bit.
fn frame(fin: bool, rsv1: bool, opcode: OpCode, payload: &[u8]) -> Vec<u8> {
    let mut h = [0u8; MAX_HEADER_LEN];
    let n = encode_header_with(&mut h, fin, rsv1, opcode, payload.len());
    h[1] |= 0x80;
    let mut out = h[..n].to_vec();
    out.extend_from_slice(&KEY);
    let mut body = payload.to_vec();
    apply_mask(&mut body, KEY, 0);
    out.extend_from_slice(&body);
    out
}

fn compress(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    Deflater::new(9, 15, false)
        .compress(input, &mut out)
        .unwrap();
    out
}

/// Decodes `frames` one after the other; the assembled messages, or the first error.
fn decode_all(conn: &mut WsConn, frames: &[Vec<u8>]) -> Result<Vec<Vec<u8>>, ProtocolError> {
    let mut messages = Vec::new();
    for f in frames {
        let mut buf = f.clone();
        match conn.decode(&mut buf, LIMIT)? {
            Decoded::Frame { consumed, event } => {
                assert_eq!(consumed, f.len());
                match event {
                    Event::Assembled(_) => messages.push(conn.take_message()),
                    Event::Text(t) => messages.push(t.as_bytes().to_vec()),
                    Event::Binary(b) => messages.push(b.to_vec()),
                    _ => {}
                }
            }
            Decoded::NeedMore { .. } => panic!("whole frame given"),
        }
    }
    Ok(messages)
}

#[test]
fn compressed_and_plain_messages_both_arrive() {
    let mut conn = deflate_conn();
    let text = "hello hello hello hello".repeat(20);
    let z = compress(text.as_bytes());
    let half = z.len() / 2;
    let frames = [
        frame(true, true, OpCode::Text, &z),
        frame(true, false, OpCode::Text, b"plain"),
        frame(false, true, OpCode::Binary, &z[..half]),
        frame(true, false, OpCode::Continuation, &z[half..]),
    ];
    let got = decode_all(&mut conn, &frames).unwrap();
    assert_eq!(got, [text.as_bytes(), b"plain", text.as_bytes()]);
    assert_eq!(conn.heap_bytes(), std::mem::size_of::<DeflateConn>());
}

#[test]
fn rsv1_rules_give_1002() {
    let z = compress(b"some text to squeeze");
    // Not negotiated.
    let err = decode_all(&mut WsConn::new(), &[frame(true, true, OpCode::Text, &z)]).unwrap_err();
    assert_eq!(err.close_code(), CloseCode::PROTOCOL_ERROR);
    // On a control frame, on a continuation.
    let err = decode_all(&mut deflate_conn(), &[frame(true, true, OpCode::Ping, b"")]).unwrap_err();
    assert_eq!(err.close_code(), CloseCode::PROTOCOL_ERROR);
    let err = decode_all(
        &mut deflate_conn(),
        &[
            frame(false, true, OpCode::Text, &z[..3]),
            frame(true, true, OpCode::Continuation, &z[3..]),
        ],
    )
    .unwrap_err();
    assert_eq!(err, ProtocolError::Header(HeaderError::CompressedControl));
}

#[test]
fn bomb_in_one_frame_is_1009() {
    let bomb = compress(&vec![b'a'; 3 << 20]);
    assert!(bomb.len() <= 3 * 1024 + 100, "{}", bomb.len());
    let mut conn = deflate_conn();
    let err = decode_all(&mut conn, &[frame(true, true, OpCode::Text, &bomb)]).unwrap_err();
    assert_eq!(err, ProtocolError::MessageTooBig);
    assert_eq!(err.close_code(), CloseCode::TOO_BIG);
    assert!(
        conn.heap_bytes() <= LIMIT + 1 + 1024,
        "{}",
        conn.heap_bytes()
    );
}

#[test]
fn bomb_in_fragments_is_1009_at_the_first_fragment_past_the_limit() {
    // 64 MiB of zeros compress to about 64 KiB: sent as 16 fragments of 4 KiB.
    let bomb = compress(&vec![0u8; 64 << 20]);
    let chunks: Vec<&[u8]> = bomb.chunks(LIMIT).collect();
    assert!(chunks.len() >= 16, "{}", chunks.len());
    let mut conn = deflate_conn();
    let mut frames = vec![frame(false, true, OpCode::Binary, chunks[0])];
    for (i, c) in chunks[1..].iter().enumerate() {
        frames.push(frame(i + 2 == chunks.len(), false, OpCode::Continuation, c));
    }
    let mut refused_at = None;
    for (i, f) in frames.iter().enumerate() {
        let mut buf = f.clone();
        if let Err(e) = conn.decode(&mut buf, LIMIT) {
            refused_at = Some((i, e));
            break;
        }
        assert!(conn.heap_bytes() <= 2 * LIMIT, "{}", conn.heap_bytes());
    }
    assert_eq!(refused_at, Some((0, ProtocolError::MessageTooBig)));
}

#[test]
fn corrupt_data_is_1007() {
    let err = decode_all(
        &mut deflate_conn(),
        &[frame(true, true, OpCode::Text, &[0xFF; 8])],
    )
    .unwrap_err();
    assert_eq!(err, ProtocolError::CorruptCompressed);
    assert_eq!(err.close_code(), CloseCode::INVALID_PAYLOAD);
    // Inflated bytes that are not UTF-8 in a text message: 1007 as well.
    let z = compress(&[0xC3, 0x28, 0x41, 0x41]);
    let err = decode_all(&mut deflate_conn(), &[frame(true, true, OpCode::Text, &z)]).unwrap_err();
    assert_eq!(err.close_code(), CloseCode::INVALID_PAYLOAD);
}

#[test]
fn wire_slack_only_for_compressed_frames() {
    let slack = wire_slack(LIMIT);
    let header_only = |rsv1: bool, op: OpCode, len: usize| {
        let mut h = [0u8; MAX_HEADER_LEN];
        let n = encode_header_with(&mut h, true, rsv1, op, len);
        h[1] |= 0x80;
        let mut buf = h[..n].to_vec();
        buf.extend_from_slice(&KEY);
        deflate_conn()
            .decode(&mut buf, LIMIT)
            .map(|d| matches!(d, Decoded::NeedMore { .. }))
    };
    assert_eq!(header_only(true, OpCode::Binary, LIMIT + slack), Ok(true));
    assert_eq!(
        header_only(true, OpCode::Binary, LIMIT + slack + 1)
            .unwrap_err()
            .close_code(),
        CloseCode::TOO_BIG
    );
    assert_eq!(
        header_only(false, OpCode::Binary, LIMIT + 1)
            .unwrap_err()
            .close_code(),
        CloseCode::TOO_BIG
    );
    // An incompressible message of exactly the limit fits on the wire once compressed.
    let mut x: u32 = 7;
    let noise: Vec<u8> = (0..LIMIT)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            (x >> 16) as u8
        })
        .collect();
    let z = compress(&noise);
    assert!(z.len() > LIMIT && z.len() <= LIMIT + slack, "{}", z.len());
    let got = decode_all(
        &mut deflate_conn(),
        &[frame(true, true, OpCode::Binary, &z)],
    )
    .unwrap();
    assert_eq!(got, [noise]);
}
