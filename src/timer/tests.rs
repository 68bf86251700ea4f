//! Tests of the timer wheel, including a randomized comparison against a simple model.

use super::*;
use std::collections::{BTreeSet, HashMap};

const HOUR: u64 = 3_600_000;
const YEAR: u64 = 365 * 24 * HOUR;

/// xorshift64*: a tiny deterministic PRNG, so the tests need no dependency.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform-ish in `0..n` (`n > 0`).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Drives a wheel holding one timer by polling at `next_deadline()` only, and returns the
/// time it fired at, checking that `next_deadline` is never after the deadline and that
/// every poll before the deadline fires nothing.
fn fire_time_by_next_deadline(wheel: &mut TimerWheel<u32>, deadline: u64) -> u64 {
    for _ in 0..10_000 {
        let nd = wheel.next_deadline().map(|m| m.0);
        let Some(nd) = nd else {
            panic!("timer lost (deadline {deadline})")
        };
        assert!(
            nd <= deadline,
            "next_deadline {nd} after deadline {deadline}"
        );
        let before = wheel.now();
        match wheel.poll(Millis(nd)) {
            Some((_, v)) => {
                assert_eq!(v, 7);
                assert!(wheel.is_empty());
                return nd.max(before.0);
            }
            None => assert!(wheel.now() > before || nd > before.0, "no progress at {nd}"),
        }
    }
    panic!("did not fire (deadline {deadline})");
}

/// Deltas covering every level boundary, hours, years, and beyond the wheel's span.
fn interesting_deltas() -> Vec<u64> {
    let mut d = vec![
        1, 2, 62, 63, 64, 65, 127, 128, 4095, 4096, 4097, 262_143, 262_144, 262_145,
    ];
    d.extend([
        1 << 24,
        (1 << 24) + 1,
        (1 << 30) - 1,
        1 << 30,
        (1 << 30) + 1,
    ]);
    d.extend([(1 << 36) - 1, 1 << 36, (1 << 36) + 1, 63 << 30, 64 << 30]);
    d.extend([
        HOUR,
        5 * HOUR + 17,
        24 * HOUR,
        YEAR,
        2 * YEAR + 3,
        3 * YEAR,
        20 * YEAR + 9,
    ]);
    d
}

#[test]
fn fires_at_exact_ms_on_every_level() {
    for start in [0, 1, 63, 12_345, (1 << 36) - 5, 0xDEAD_BEEF_1234] {
        for delta in interesting_deltas() {
            let deadline = start + delta;
            // Stepping through next_deadline.
            let mut wheel = TimerWheel::new(Millis(start));
            let id = wheel.insert(Millis(deadline), 7u32);
            assert_eq!(wheel.deadline(id), Some(Millis(deadline)));
            assert_eq!(
                fire_time_by_next_deadline(&mut wheel, deadline),
                deadline,
                "start {start}"
            );
            // Jumping straight to the deadline, after a poll just before it.
            let mut wheel = TimerWheel::new(Millis(start));
            wheel.insert(Millis(deadline), 7u32);
            assert!(
                wheel.poll(Millis(deadline - 1)).is_none(),
                "early: start {start} delta {delta}"
            );
            assert_eq!(wheel.len(), 1);
            assert!(
                wheel.poll(Millis(deadline)).is_some(),
                "late: start {start} delta {delta}"
            );
            assert!(wheel.poll(Millis(deadline)).is_none());
        }
    }
}

#[test]
fn far_deadlines_near_u64_max_are_clamped_but_fire() {
    let start = u64::MAX - 5 * YEAR;
    for deadline in [u64::MAX - (1 << 36), u64::MAX - 64, u64::MAX - 1, u64::MAX] {
        let mut wheel = TimerWheel::new(Millis(start));
        wheel.insert(Millis(deadline), 7u32);
        assert_eq!(fire_time_by_next_deadline(&mut wheel, deadline), deadline);
        let mut wheel = TimerWheel::new(Millis(start));
        wheel.insert(Millis(deadline), 7u32);
        assert!(wheel.poll(Millis(deadline - 1)).is_none());
        assert!(wheel.poll(Millis(deadline)).is_some());
    }
    // From the epoch, Millis::NEVER is clamped and re-filed forever, never lost or fired.
    let mut wheel = TimerWheel::new(Millis(0));
    let id = wheel.insert(Millis::NEVER, 7u32);
    for step in 1..=60 {
        assert!(wheel.poll(Millis(step * 2 * YEAR)).is_none());
        let nd = wheel.next_deadline().map(|m| m.0);
        assert!(nd.is_some_and(|nd| nd > step * 2 * YEAR), "{nd:?}");
    }
    assert_eq!(wheel.deadline(id), Some(Millis::NEVER));
    assert_eq!(wheel.cancel(id), Some(7));
    // A poll at the end of time fires it and does not overflow.
    let mut wheel = TimerWheel::new(Millis(u64::MAX - 3));
    wheel.insert(Millis::NEVER, 7u32);
    assert!(wheel.poll(Millis(u64::MAX - 1)).is_none());
    assert!(wheel.poll(Millis::NEVER).is_some());
    assert!(wheel.poll(Millis::NEVER).is_none());
    assert_eq!(wheel.next_deadline(), None);
}

#[test]
fn fires_in_deadline_order() {
    let mut rng = Rng::new(1);
    let mut wheel = TimerWheel::new(Millis(1000));
    for i in 0..5000u64 {
        let deadline = 1000 + rng.below(1 << (4 + i % 30));
        wheel.insert(Millis(deadline), deadline);
    }
    let mut last = 0;
    let mut fired = 0;
    let mut now = 1000;
    while !wheel.is_empty() {
        now += rng.below(1 << 30);
        while let Some((id, deadline)) = wheel.poll(Millis(now)) {
            assert!(
                deadline >= last && deadline <= now,
                "{deadline} after {last}, now {now}"
            );
            assert_eq!(wheel.deadline(id), None);
            last = deadline;
            fired += 1;
        }
    }
    assert_eq!(fired, 5000);
}

#[test]
fn cancel_before_fire() {
    let mut wheel = TimerWheel::new(Millis(0));
    let a = wheel.insert(Millis(10), "a");
    let b = wheel.insert(Millis(10), "b");
    let c = wheel.insert(Millis(5000), "c");
    assert_eq!(wheel.len(), 3);
    assert_eq!(wheel.cancel(a), Some("a"));
    assert_eq!(wheel.cancel(a), None);
    assert_eq!(wheel.cancel(c), Some("c"));
    assert_eq!(wheel.len(), 1);
    assert_eq!(wheel.next_deadline(), Some(Millis(10)));
    assert_eq!(wheel.poll(Millis(100_000)), Some((b, "b")));
    assert_eq!(wheel.poll(Millis(100_000)), None);
    assert_eq!(wheel.cancel(b), None);
    assert!(wheel.is_empty());
    assert_eq!(wheel.next_deadline(), None);
}

#[test]
fn stale_ids_after_slot_reuse() {
    let mut wheel = TimerWheel::new(Millis(0));
    let old = wheel.insert(Millis(10), 1);
    assert_eq!(wheel.cancel(old), Some(1));
    let new = wheel.insert(Millis(20), 2);
    assert_eq!(new.index, old.index, "the freed cell is reused");
    assert_ne!(new, old);
    assert_eq!(wheel.cancel(old), None);
    assert!(!wheel.reschedule(old, Millis(5)));
    assert_eq!(wheel.deadline(old), None);
    assert_eq!(wheel.deadline(new), Some(Millis(20)));
    // Fired ids go stale too.
    assert_eq!(wheel.poll(Millis(20)), Some((new, 2)));
    let newer = wheel.insert(Millis(30), 3);
    assert_eq!(newer.index, new.index);
    assert_eq!(wheel.cancel(new), None);
    assert_eq!(wheel.len(), 1);
    assert_eq!(wheel.cancel(newer), Some(3));
}

#[test]
fn reschedule_earlier_and_later() {
    let mut wheel = TimerWheel::new(Millis(0));
    let a = wheel.insert(Millis(10 * HOUR), 'a');
    let b = wheel.insert(Millis(50), 'b');
    assert!(wheel.reschedule(a, Millis(20)));
    assert_eq!(wheel.deadline(a), Some(Millis(20)));
    assert!(wheel.reschedule(b, Millis(HOUR)));
    assert_eq!(wheel.next_deadline(), Some(Millis(20)));
    assert_eq!(wheel.poll(Millis(19)), None);
    assert_eq!(wheel.poll(Millis(20)), Some((a, 'a')));
    assert_eq!(wheel.poll(Millis(HOUR - 1)), None);
    // Move it later again, then into the past: fires on the next poll, at the wheel's time.
    assert!(wheel.reschedule(b, Millis(2 * HOUR)));
    assert_eq!(wheel.poll(Millis(HOUR)), None);
    assert!(wheel.reschedule(b, Millis(3)));
    assert!(wheel.next_deadline().is_some_and(|d| d <= Millis(3)));
    assert_eq!(wheel.poll(Millis(0)), Some((b, 'b')));
    assert!(!wheel.reschedule(b, Millis(5)));
}

#[test]
fn insert_in_the_past_fires_on_next_poll() {
    let mut wheel = TimerWheel::new(Millis(1000));
    let a = wheel.insert(Millis(1000), 1);
    let b = wheel.insert(Millis(3), 2);
    let c = wheel.insert(Millis(0), 3);
    assert_eq!(wheel.next_deadline(), Some(Millis(0)));
    // An earlier `now` is treated as the wheel's time.
    assert_eq!(wheel.poll(Millis(5)), Some((a, 1)));
    assert_eq!(wheel.poll(Millis(5)), Some((b, 2)));
    assert_eq!(wheel.poll(Millis(5)), Some((c, 3)));
    assert_eq!(wheel.poll(Millis(5)), None);
    assert_eq!(wheel.now(), Millis(1000));
    // Cancelling a ready timer works too.
    let d = wheel.insert(Millis(1), 4);
    assert_eq!(wheel.cancel(d), Some(4));
    assert_eq!(wheel.poll(Millis(1000)), None);
}

#[test]
fn twenty_thousand_live_timers() {
    const N: usize = 20_000;
    let mut rng = Rng::new(20_000);
    let mut wheel = TimerWheel::with_capacity(Millis(0), N);
    let mut ids = Vec::with_capacity(N);
    for i in 0..N {
        let deadline = 1 + rng.below(HOUR);
        ids.push((wheel.insert(Millis(deadline), i), deadline));
    }
    assert_eq!(wheel.len(), N);
    assert_eq!(wheel.capacity(), N);
    let mut live = HashMap::new();
    for (i, &(id, deadline)) in ids.iter().enumerate() {
        if i % 2 == 0 {
            assert_eq!(wheel.cancel(id), Some(i));
        } else {
            live.insert(i, deadline);
        }
    }
    assert_eq!(wheel.len(), N / 2);
    let (mut now, mut last) = (0, 0);
    while !wheel.is_empty() {
        now += 1 + rng.below(500);
        while let Some((_, i)) = wheel.poll(Millis(now)) {
            let deadline = live.remove(&i);
            assert!(deadline.is_some_and(|d| d >= last && d <= now));
            last = deadline.unwrap_or(0);
        }
        assert!(live.values().all(|&d| d > now));
    }
    assert!(live.is_empty());
    assert_eq!(wheel.capacity(), N, "no growth");
}

#[test]
fn no_allocation_growth_in_steady_state() {
    const LIVE: usize = 1000;
    let mut rng = Rng::new(99);
    let mut wheel = TimerWheel::new(Millis(0));
    let mut ids = Vec::new();
    for _ in 0..LIVE {
        ids.push(wheel.insert(Millis(1 + rng.below(100_000)), ()));
    }
    let (capacity, bytes) = (wheel.capacity(), wheel.heap_bytes());
    let mut now = 0;
    for _ in 0..200_000 {
        let k = rng.below(ids.len() as u64) as usize;
        match rng.below(3) {
            0 => {
                // Cancel and replace.
                let _ = wheel.cancel(ids[k]);
                ids[k] = wheel.insert(Millis(now + rng.below(100_000)), ());
            }
            1 => {
                if !wheel.reschedule(ids[k], Millis(now + rng.below(100_000))) {
                    ids[k] = wheel.insert(Millis(now + rng.below(100_000)), ());
                }
            }
            _ => {
                // Expire, and re-arm what fired.
                now += rng.below(50);
                let mut fired = Vec::new();
                while let Some((id, ())) = wheel.poll(Millis(now)) {
                    fired.push(id);
                }
                for id in fired {
                    if let Some(slot) = ids.iter_mut().find(|i| **i == id) {
                        *slot = wheel.insert(Millis(now + 1 + rng.below(100_000)), ());
                    }
                }
            }
        }
        assert!(wheel.len() <= LIVE);
    }
    assert_eq!(wheel.capacity(), capacity);
    assert_eq!(wheel.heap_bytes(), bytes);
}

#[test]
fn entry_is_small() {
    // deadline 8 + value 8 + links 8 + generation 4 + home/slot 2, rounded to 32; the
    // Vacant/Occupied tag lives in the `Home` niche.
    assert_eq!(std::mem::size_of::<slab::Entry<u64>>(), 32);
    assert_eq!(std::mem::size_of::<slab::Entry<()>>(), 24);
    let wheel: TimerWheel<u64> = TimerWheel::with_capacity(Millis(0), 100);
    assert_eq!(
        wheel.heap_bytes(),
        100 * 32 + std::mem::size_of::<TimerWheel<u64>>()
    );
}

/// A reference model: pending timers with their effective deadline (the deadline, or the
/// wheel's time when filed if that was later) kept in ordered sets.
#[derive(Default)]
struct Model {
    /// id → (deadline, effective deadline, value)
    timers: HashMap<TimerId, (u64, u64, u64)>,
    by_eff: BTreeSet<(u64, u64)>,
    by_raw: BTreeSet<(u64, u64)>,
}

impl Model {
    fn add(&mut self, id: TimerId, raw: u64, eff: u64, value: u64) {
        self.timers.insert(id, (raw, eff, value));
        self.by_eff.insert((eff, value));
        self.by_raw.insert((raw, value));
    }
    fn remove(&mut self, id: TimerId) -> Option<(u64, u64, u64)> {
        let (raw, eff, value) = self.timers.remove(&id)?;
        self.by_eff.remove(&(eff, value));
        self.by_raw.remove(&(raw, value));
        Some((raw, eff, value))
    }
}

fn random_deadline(rng: &mut Rng, now: u64) -> u64 {
    match rng.below(16) {
        0..=4 => now.saturating_add(rng.below(64)),
        5..=8 => now.saturating_add(rng.below(10_000)),
        9..=10 => now.saturating_add(rng.below(1 << 32)),
        11 => now.saturating_add(rng.below(1 << 40)),
        12 => now.saturating_sub(rng.below(100)),
        13 => now,
        14 => u64::MAX - rng.below(4),
        _ => now.saturating_add(rng.below(1 << 20)),
    }
}

/// Randomized insert/cancel/reschedule/poll against [`Model`].
fn model_run(seed: u64, start: u64, steps: usize) {
    let mut rng = Rng::new(seed);
    let mut wheel = TimerWheel::new(Millis(start));
    let mut model = Model::default();
    let mut ids: Vec<TimerId> = Vec::new();
    let mut now = start;
    let mut next_value = 0u64;
    let mut fired_total = 0usize;

    // Polls at `at` once, checking the result against the model.
    let poll_once = |wheel: &mut TimerWheel<u64>, model: &mut Model, at: u64| -> bool {
        let effective_now = at.max(wheel.now().0);
        match wheel.poll(Millis(at)) {
            Some((id, value)) => {
                let entry = model.remove(id);
                let Some((_, eff, v)) = entry else {
                    panic!("fired unknown or stale {id:?}")
                };
                assert_eq!(v, value);
                assert!(eff <= effective_now, "fired {eff} early at {effective_now}");
                let min = model.by_eff.first().map_or(u64::MAX, |&(e, _)| e);
                assert!(eff <= min, "fired {eff} before {min}");
                true
            }
            None => {
                let min = model.by_eff.first().map(|&(e, _)| e);
                assert!(
                    min.is_none_or(|m| m > effective_now),
                    "missed {min:?} at {effective_now}"
                );
                assert_eq!(wheel.now().0, effective_now);
                false
            }
        }
    };

    for step in 0..steps {
        let pick =
            |rng: &mut Rng, ids: &[TimerId]| ids.get(rng.below(ids.len() as u64) as usize).copied();
        match rng.below(100) {
            0..=34 => {
                let deadline = random_deadline(&mut rng, now);
                let eff = deadline.max(wheel.now().0);
                next_value += 1;
                let id = wheel.insert(Millis(deadline), next_value);
                model.add(id, deadline, eff, next_value);
                ids.push(id);
            }
            35..=44 => {
                if let Some(id) = pick(&mut rng, &ids) {
                    assert_eq!(wheel.cancel(id), model.remove(id).map(|(_, _, v)| v));
                }
            }
            45..=57 => {
                if let Some(id) = pick(&mut rng, &ids) {
                    let deadline = random_deadline(&mut rng, now);
                    let eff = deadline.max(wheel.now().0);
                    let old = model.remove(id);
                    assert_eq!(wheel.reschedule(id, Millis(deadline)), old.is_some());
                    if let Some((_, _, value)) = old {
                        model.add(id, deadline, eff, value);
                    }
                    assert_eq!(wheel.deadline(id), old.map(|_| Millis(deadline)));
                }
            }
            58..=62 => {
                if let Some(id) = pick(&mut rng, &ids) {
                    let expected = model.timers.get(&id).map(|&(raw, _, _)| Millis(raw));
                    assert_eq!(wheel.deadline(id), expected);
                }
            }
            63..=69 => {
                // Poll exactly at next_deadline: fires or makes progress.
                let before = wheel.now();
                if let Some(nd) = wheel.next_deadline() {
                    let fired = poll_once(&mut wheel, &mut model, nd.0);
                    assert!(fired || wheel.now() > before, "no progress at {nd}");
                    now = now.max(nd.0);
                }
            }
            70..=74 => {
                // Poll a few times without draining (leaves the wheel mid-expiry).
                now = now.saturating_add(rng.below(200));
                for _ in 0..rng.below(4) {
                    fired_total += usize::from(poll_once(&mut wheel, &mut model, now));
                }
            }
            75..=77 => {
                // A `now` earlier than the wheel's time.
                let at = wheel.now().0.saturating_sub(rng.below(1000));
                fired_total += usize::from(poll_once(&mut wheel, &mut model, at));
            }
            _ => {
                let advance = match rng.below(10) {
                    0..=3 => rng.below(8),
                    4..=6 => rng.below(1000),
                    7..=8 => rng.below(1 << 24),
                    _ => rng.below(1 << 34),
                };
                now = now.saturating_add(advance);
                while poll_once(&mut wheel, &mut model, now) {
                    fired_total += 1;
                }
            }
        }
        // Invariants after every step.
        assert_eq!(wheel.len(), model.timers.len(), "step {step}");
        let nd = wheel.next_deadline().map(|m| m.0);
        let min_raw = model.by_raw.first().map(|&(r, _)| r);
        assert_eq!(nd.is_some(), min_raw.is_some());
        if let (Some(nd), Some(min_raw)) = (nd, min_raw) {
            assert!(
                nd <= min_raw,
                "next_deadline {nd} after earliest {min_raw} (step {step})"
            );
        }
        if ids.len() > 4096 {
            ids.drain(..2048);
        }
    }
    assert!(
        fired_total > steps / 20,
        "the run should fire plenty ({fired_total})"
    );
}

#[test]
fn randomized_against_model() {
    for seed in 1..=6 {
        model_run(seed, seed * 7919, 30_000);
    }
}

#[test]
fn randomized_against_model_near_end_of_time() {
    for seed in 7..=9 {
        model_run(seed, u64::MAX - (1 << 40), 30_000);
    }
}

#[test]
fn debug_does_not_need_debug_values() {
    struct Opaque;
    let mut wheel = TimerWheel::new(Millis(5));
    wheel.insert(Millis(9), Opaque);
    let text = format!("{wheel:?}");
    assert!(text.contains("len: 1"), "{text}");
}

#[test]
fn get_sees_pending_timers_only() {
    let mut wheel = TimerWheel::new(Millis(0));
    let a = wheel.insert(Millis(10), "a");
    assert_eq!(wheel.get(a), Some(&"a"));
    assert_eq!(wheel.cancel(a), Some("a"));
    assert_eq!(wheel.get(a), None);
    let b = wheel.insert(Millis(5), "b");
    assert_eq!(wheel.get(a), None, "a stale id misses the cell's new timer");
    assert_eq!(wheel.poll(Millis(5)).map(|(_, v)| v), Some("b"));
    assert_eq!(wheel.get(b), None);
}
