//! Codec micro-benchmarks: frame header parse, unmask (GB/s), whole-frame decode of 64 B
//! and 4 KiB messages, and upgrade request parse. `cargo bench --bench codec`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use postern::http::{parse_request, validate_upgrade, Parsed, MAX_HEADERS};
use postern::wire::{apply_mask, encode_header, header, OpCode, MAX_HEADER_LEN};
use postern::ws::{Decoded, WsConn};
use std::hint::black_box;

const KEY: [u8; 4] = [0x37, 0xFA, 0x21, 0x3D];

/// `count` masked client text frames of `size` bytes each, back to back.
fn frames(size: usize, count: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..count {
        let mut h = [0u8; MAX_HEADER_LEN];
        let n = encode_header(&mut h, true, OpCode::Text, size);
        h[1] |= 0x80;
        out.extend_from_slice(&h[..n]);
        out.extend_from_slice(&KEY);
        let mut body = vec![b'a'; size];
        apply_mask(&mut body, KEY, 0);
        out.extend_from_slice(&body);
    }
    out
}

fn header_parse(c: &mut Criterion) {
    let mut g = c.benchmark_group("header_parse");
    g.throughput(Throughput::Elements(1));
    for (name, bytes) in [("7-bit", frames(64, 1)), ("16-bit", frames(4096, 1))] {
        g.bench_function(name, |b| b.iter(|| header::parse(black_box(&bytes), 4096)));
    }
    g.finish();
}

fn unmask(c: &mut Criterion) {
    let mut g = c.benchmark_group("unmask");
    for size in [64usize, 4096, 65536] {
        let mut buf = vec![0x5Au8; size];
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_with_input(BenchmarkId::from_parameter(size), &size, |b, _| {
            b.iter(|| apply_mask(black_box(&mut buf), KEY, 0))
        });
    }
    g.finish();
}

fn frame_decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("frame_decode");
    for size in [64usize, 4096] {
        let count = 64;
        let stream = frames(size, count);
        g.throughput(Throughput::Elements(count as u64));
        g.bench_with_input(BenchmarkId::from_parameter(size), &size, |b, _| {
            let mut conn = WsConn::new();
            let mut buf = stream.clone();
            b.iter(|| {
                // Re-mask each round: decoding unmasks in place.
                buf.copy_from_slice(&stream);
                let mut pos = 0;
                while let Ok(Decoded::Frame { consumed, event }) =
                    conn.decode(&mut buf[pos..], 4096)
                {
                    black_box(event);
                    pos += consumed;
                }
                pos
            })
        });
    }
    g.finish();
}

fn upgrade_parse(c: &mut Criterion) {
    let req = b"GET /gateway?roomId=1&participantId=2 HTTP/1.1\r\nHost: 127.0.0.1:9004\r\n\
User-Agent: bench\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    let mut g = c.benchmark_group("upgrade");
    g.throughput(Throughput::Elements(1));
    g.bench_function("parse_and_validate", |b| {
        b.iter(|| {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            match parse_request(black_box(req), &mut headers) {
                Ok(Parsed::Complete { request, .. }) => validate_upgrade(&request).is_ok(),
                _ => false,
            }
        })
    });
    g.bench_function("accept_key", |b| {
        b.iter(|| postern::http::accept_key(black_box(b"dGhlIHNhbXBsZSBub25jZQ==")))
    });
    g.finish();
}

criterion_group!(benches, header_parse, unmask, frame_decode, upgrade_parse);
criterion_main!(benches);
