//! Broadcast to a room: one encode shared by every member versus one encode per member,
//! and the gateway's sequenced form (a per-member prefix before a shared body).
//! `cargo bench --bench broadcast`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use postern::wire::OpCode;
use postern::ws::{BufPool, Outbox, SharedFrame, SharedPayload};
use std::hint::black_box;
use std::io::{self, Write};

/// A socket that takes everything (so outboxes drain between rounds).
struct Sink;

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        Ok(bufs.iter().map(|b| b.len()).sum())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

const MESSAGE: &str = r#"{"id":123456,"channel":"general","author":"alice","content":"hello everyone, this is a chat message of typical size","timestamp":1795521891891}"#;

/// `{"f":130,"s":<seq>` on the stack, as the engine writes it.
fn write_prefix(buf: &mut [u8; 40], seq: u64) -> usize {
    const HEAD: &[u8] = b"{\"f\":130,\"s\":";
    buf[..HEAD.len()].copy_from_slice(HEAD);
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut v = seq;
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    let d = &digits[i..];
    buf[HEAD.len()..HEAD.len() + d.len()].copy_from_slice(d);
    HEAD.len() + d.len()
}

fn drain(outboxes: &mut [Outbox], pool: &mut BufPool) {
    for ob in outboxes.iter_mut() {
        let _ = ob.write_to(&mut Sink, pool);
    }
}

fn broadcast(c: &mut Criterion) {
    let mut g = c.benchmark_group("broadcast");
    g.sample_size(20);
    for members in [1_000usize, 10_000] {
        let mut pool = BufPool::new(16 * 1024, 256);
        let mut outboxes: Vec<Outbox> = (0..members).map(|_| Outbox::default()).collect();
        g.throughput(Throughput::Elements(members as u64));
        g.bench_with_input(
            BenchmarkId::new("encode_once_shared", members),
            &members,
            |b, _| {
                b.iter(|| {
                    let frame = SharedFrame::text(black_box(MESSAGE));
                    for ob in outboxes.iter_mut() {
                        ob.push_shared(&frame);
                    }
                    drain(&mut outboxes, &mut pool);
                })
            },
        );
        g.bench_with_input(BenchmarkId::new("serialize_per_member", members), &members, |b, _| {
            let event: serde_json::Value = serde_json::from_str(MESSAGE).unwrap_or_default();
            let mut seq = 0u64;
            b.iter(|| {
                for ob in outboxes.iter_mut() {
                    // What a server without shared bodies does: serialise each member's
                    // sequenced event on its own.
                    seq += 1;
                    let text = serde_json::json!({"f": 130, "s": seq, "t": "MESSAGE_CREATE", "cnf": &event}).to_string();
                    ob.push_frame(&mut pool, OpCode::Text, text.as_bytes());
                }
                drain(&mut outboxes, &mut pool);
            })
        });
        g.bench_with_input(
            BenchmarkId::new("sequenced_prefix_shared_body", members),
            &members,
            |b, _| {
                let mut seq = 0u64;
                b.iter(|| {
                    // postern's gateway: the body once, then a stack-built prefix per member.
                    let body = SharedPayload::new(
                        format!(",\"t\":\"MESSAGE_CREATE\",\"cnf\":{}}}", black_box(MESSAGE))
                            .into_bytes(),
                    );
                    for ob in outboxes.iter_mut() {
                        seq += 1;
                        let mut prefix = [0u8; 40];
                        let n = write_prefix(&mut prefix, seq);
                        ob.push_prefixed(&mut pool, OpCode::Text, &prefix[..n], &body);
                    }
                    drain(&mut outboxes, &mut pool);
                })
            },
        );
    }
    g.finish();
}

criterion_group!(benches, broadcast);
criterion_main!(benches);
