//! Timer wheel benchmarks: insert, cancel, reschedule and insert+expire with 20,000 live
//! timers (a gateway's worth of heartbeat and idle timeouts).
//!
//! Run with `cargo bench --bench timer`.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use postern::timer::{TimerId, TimerWheel};
use postern::Millis;
use std::hint::black_box;

/// Timers live throughout each benchmark.
const LIVE: usize = 20_000;
/// Deadlines are spread over the next 60 s (heartbeat-like), so they land on levels 0–2.
const SPREAD_MS: u64 = 60_000;

/// xorshift64*: deterministic deadlines without a dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

/// A wheel at time 0 holding `LIVE` timers, with room for `extra` more, and their ids.
fn loaded_wheel(extra: usize) -> (TimerWheel<u64>, Vec<TimerId>) {
    let mut rng = Rng(0x1234_5678_9ABC_DEF1);
    let mut wheel = TimerWheel::with_capacity(Millis(0), LIVE + extra);
    let ids = (0..LIVE as u64)
        .map(|i| wheel.insert(Millis(1 + rng.below(SPREAD_MS)), i))
        .collect();
    (wheel, ids)
}

fn bench_timer(c: &mut Criterion) {
    let mut group = c.benchmark_group("timer_wheel");
    group.throughput(Throughput::Elements(LIVE as u64));

    // Insert 20,000 timers into a wheel already holding 20,000 (slab pre-sized, so this
    // measures filing, not Vec growth).
    group.bench_function("insert_20k_into_20k", |b| {
        b.iter_batched_ref(
            || (loaded_wheel(LIVE).0, Rng(0xFEED_FACE_CAFE_BEEF)),
            |(wheel, rng)| {
                for i in 0..LIVE as u64 {
                    black_box(wheel.insert(Millis(1 + rng.below(SPREAD_MS)), i));
                }
            },
            BatchSize::LargeInput,
        )
    });

    // Cancel all 20,000 live timers, in an order unrelated to their deadlines.
    group.bench_function("cancel_20k", |b| {
        b.iter_batched_ref(
            || {
                let (wheel, mut ids) = loaded_wheel(0);
                let mut rng = Rng(0xC0FF_EE00_1234_5678);
                for i in (1..ids.len()).rev() {
                    ids.swap(i, rng.below(i as u64 + 1) as usize);
                }
                (wheel, ids)
            },
            |(wheel, ids)| {
                for &id in ids.iter() {
                    black_box(wheel.cancel(id));
                }
            },
            BatchSize::LargeInput,
        )
    });

    // Move each of 20,000 live timers to a new deadline (a heartbeat being pushed back).
    group.bench_function("reschedule_20k_live", |b| {
        let (mut wheel, ids) = loaded_wheel(0);
        let mut rng = Rng(0xABCD_EF01_2345_6789);
        b.iter(|| {
            for &id in &ids {
                black_box(wheel.reschedule(id, Millis(1 + rng.below(SPREAD_MS))));
            }
        })
    });

    // Steady state with 20,000 live timers: advance the clock 1 ms at a time, fire what is
    // due and re-arm each fired timer; one iteration is 20,000 expirations + insertions.
    group.bench_function("insert_expire_20k_live", |b| {
        let (mut wheel, _) = loaded_wheel(0);
        let mut rng = Rng(0x0DDB_A11C_AFEB_ABE5);
        let mut now = 0u64;
        b.iter(|| {
            let mut fired = 0;
            while fired < LIVE {
                now += 1;
                while let Some((_, value)) = wheel.poll(Millis(now)) {
                    wheel.insert(Millis(now + 1 + rng.below(SPREAD_MS)), black_box(value));
                    fired += 1;
                }
            }
        })
    });

    group.finish();
}

criterion_group!(benches, bench_timer);
criterion_main!(benches);
