//! What permessage-deflate's zlib states cost, measured with a counting allocator: the
//! figures quoted in `DeflateConfig`'s and `ws::deflate`'s documentation and BENCHMARKS.md.
//! Run with `cargo test --test deflate_memory -- --nocapture` to see them.
#![cfg(feature = "deflate")]

use postern::ws::deflate::{Deflater, Inflater};
use postern::ws::WsConn;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static CALLS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator, only counting bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::SeqCst);
        CALLS.fetch_add(1, Ordering::SeqCst);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::SeqCst);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Heap bytes still held after `make` (what it returns is kept alive until measured).
fn held<T>(make: impl FnOnce() -> T) -> (usize, T) {
    let before = LIVE.load(Ordering::SeqCst);
    let value = make();
    (LIVE.load(Ordering::SeqCst).saturating_sub(before), value)
}

fn text(n: usize) -> Vec<u8> {
    b"a gateway event with some json in it, "
        .iter()
        .copied()
        .cycle()
        .take(n)
        .collect()
}

// One test only: the counter is global, and tests run on threads in parallel.
#[test]
fn zlib_state_sizes() {
    let msg = text(4096);
    let mut figures = Vec::new();
    for bits in [9u8, 12, 15] {
        let (deflater, mut d) = held(|| Deflater::new(6, bits, true));
        let mut out = Vec::new();
        d.compress(&msg, &mut out).unwrap();
        let (inflater, i) = held(|| {
            let mut i = Inflater::new(bits, true);
            let mut back = Vec::new();
            i.inflate(&out, true, &mut back, 1 << 20).unwrap();
            drop(back);
            i
        });
        figures.push((bits, deflater, inflater));
        drop((d, i));
    }
    for (bits, deflater, inflater) in &figures {
        println!("window {bits}: deflater {deflater} B, inflater (window kept) {inflater} B");
    }
    // Memory level 8 (flate2's) fixes the hash table and pending buffer: a deflater is
    // about 245 KiB even at 9 bits, 371 KiB at 15. zlib-rs's inflater allocates a full
    // 32 KiB window whatever the window bits: about 47 KiB.
    let (_, d15, i15) = figures[2];
    let (_, d9, i9) = figures[0];
    assert!(d15 > 300 * 1024 && d15 < 450 * 1024, "{d15}");
    assert!(d9 > 200 * 1024 && d9 < d15, "{d9}");
    assert!(i15 > 32 * 1024 && i15 < 64 * 1024, "{i15}");
    assert!(i9 <= i15, "{i9}");
    // Without context takeover an inflater holds nothing between messages: its state
    // goes back to the thread's pool (the first message fills it).
    let mut out = Vec::new();
    Deflater::new(6, 15, false)
        .compress(&msg, &mut out)
        .unwrap();
    let inflate_one = |out: &[u8]| {
        let mut i = Inflater::new(15, false);
        let mut back = Vec::new();
        i.inflate(out, true, &mut back, 1 << 20).unwrap();
        i
    };
    let (pooled, first) = held(|| inflate_one(&out));
    let calls = CALLS.load(Ordering::SeqCst);
    let (idle, second) = held(|| inflate_one(&out));
    let calls = CALLS.load(Ordering::SeqCst) - calls;
    println!("allocations to inflate a message with a pooled state: {calls}");
    // The output buffer growing by doubling (400, 800, 1,600, 3,200, 4,097 bytes); the
    // zlib state allocates nothing.
    assert!(calls <= 6, "{calls}");
    println!("inflater without context takeover: {idle} B held between messages, {pooled} B pooled per thread");
    assert_eq!(idle, 0);
    assert_eq!((first.heap_bytes(), second.heap_bytes()), (0, 0));
    drop((first, second));
    println!(
        "size_of: WsConn {} B, DeflateConn {} B (boxed, only where negotiated)",
        std::mem::size_of::<WsConn>(),
        std::mem::size_of::<postern::ws::deflate::DeflateConn>()
    );
}
