//! Session machine tests: every transition with a fake clock, no sockets, no sleeps.

use super::*;
use crate::gateway::config::{ProbePolicy, RateLimit};
use serde_json::value::RawValue;
use std::borrow::Cow;

fn config() -> GatewayConfig {
    GatewayConfig::with_heartbeat(Millis(1_000))
}

fn raw() -> &'static RawValue {
    Box::leak(RawValue::from_string("{}".into()).unwrap())
}

fn dispatch() -> Op<'static> {
    Op::Dispatch {
        event: Cow::Borrowed("X"),
        data: None,
    }
}

#[test]
fn identify_first_then_anything() {
    let c = config();
    let mut s = ConnSession::new(Millis(0), &c);
    assert_eq!(
        s.admit(Millis(1), &dispatch(), &c),
        Err(GatewayError::NotIdentified)
    );
    assert_eq!(
        s.admit(Millis(1), &Op::Heartbeat(None), &c),
        Err(GatewayError::NotIdentified)
    );
    assert_eq!(s.admit(Millis(2), &Op::Identify(raw()), &c), Ok(()));
    s.identified(Millis(2), SessionId::new(7));
    assert_eq!(s.session(), Some(SessionId::new(7)));
    assert_eq!(s.admit(Millis(3), &dispatch(), &c), Ok(()));
    assert_eq!(s.admit(Millis(3), &Op::Heartbeat(None), &c), Ok(()));
    assert_eq!(
        s.admit(Millis(4), &Op::Identify(raw()), &c),
        Err(GatewayError::AlreadyIdentified)
    );
}

#[test]
fn heartbeat_before_identify_when_allowed() {
    let c = GatewayConfig {
        heartbeat_before_identify: true,
        ..config()
    };
    let mut s = ConnSession::new(Millis(0), &c);
    assert_eq!(s.admit(Millis(1), &Op::Heartbeat(None), &c), Ok(()));
}

#[test]
fn identify_deadline() {
    let c = config();
    let mut s = ConnSession::new(Millis(0), &c);
    // Heartbeats are refused before identify, so only the identify deadline runs then,
    // even when it is longer than the heartbeat timeout (2.5 s here).
    assert_eq!(s.next_deadline(&c), Millis(10_000));
    assert_eq!(s.tick(Millis(9_999), &c), Tick::Idle);
    assert_eq!(
        s.tick(Millis(10_000), &c),
        Tick::Expired(GatewayError::IdentifyTimeout)
    );
    let c = GatewayConfig {
        identify_timeout: Millis(500),
        ..config()
    };
    let mut s2 = ConnSession::new(Millis(0), &c);
    assert_eq!(s2.next_deadline(&c), Millis(500));
    assert_eq!(s2.tick(Millis(499), &c), Tick::Idle);
    assert_eq!(
        s2.tick(Millis(500), &c),
        Tick::Expired(GatewayError::IdentifyTimeout)
    );
    s.identified(Millis(100), SessionId::new(1));
    assert_eq!(
        s.tick(Millis(10_000), &config()),
        Tick::Expired(GatewayError::HeartbeatTimeout)
    );
}

/// A message from the client, as the engine handles one: proof of life, then admission.
fn message(
    s: &mut ConnSession,
    now: u64,
    op: &Op<'_>,
    c: &GatewayConfig,
) -> Result<(), GatewayError> {
    s.heard(Millis(now));
    s.admit(Millis(now), op, c)
}

#[test]
fn heartbeat_timeout_is_interval_plus_grace_after_last_message() {
    let c = config(); // 1000 + 1500
    let mut s = ConnSession::new(Millis(0), &c);
    s.identified(Millis(0), SessionId::new(1));
    assert_eq!(message(&mut s, 900, &Op::Heartbeat(None), &c), Ok(()));
    assert_eq!(s.next_deadline(&c), Millis(3_400));
    assert_eq!(s.tick(Millis(3_399), &c), Tick::Idle);
    assert_eq!(
        s.tick(Millis(3_400), &c),
        Tick::Expired(GatewayError::HeartbeatTimeout)
    );
}

#[test]
fn any_message_is_proof_of_life_even_refused_or_undecodable() {
    let c = GatewayConfig {
        rate_limit: RateLimit::new(1, Millis(60_000)),
        ..config()
    };
    let mut s = ConnSession::new(Millis(0), &c);
    s.identified(Millis(0), SessionId::new(1));
    assert_eq!(message(&mut s, 1, &dispatch(), &c), Ok(()));
    // Over the rate limit: refused, yet the client is plainly alive.
    assert_eq!(
        message(&mut s, 2_000, &dispatch(), &c),
        Err(GatewayError::RateLimited { fatal: false })
    );
    assert_eq!(s.next_deadline(&c), Millis(4_500));
    // A message that does not even decode is heard too (the engine calls heard alone).
    s.heard(Millis(4_000));
    assert_eq!(s.tick(Millis(4_500), &c), Tick::Idle);
    assert_eq!(s.next_deadline(&c), Millis(6_500));
    // A late-delivered older time never moves liveness back.
    s.heard(Millis(3_000));
    assert_eq!(s.next_deadline(&c), Millis(6_500));
}

/// Rooms' policy: a probe after one interval of silence, answered within one more; the
/// heartbeat deadline at the same two intervals.
fn probing() -> GatewayConfig {
    GatewayConfig {
        probe: Some(ProbePolicy::per_interval(Millis(1_000))),
        heartbeat_grace: Millis(1_000),
        ..config()
    }
}

#[test]
fn a_probe_goes_out_only_after_a_whole_interval_of_silence() {
    let c = probing();
    let mut s = ConnSession::new(Millis(0), &c);
    s.identified(Millis(0), SessionId::new(1));
    assert_eq!(message(&mut s, 750, &Op::Heartbeat(None), &c), Ok(()));
    // Not 1.25 intervals after the start: one interval after the last message.
    assert_eq!(s.next_deadline(&c), Millis(1_750));
    assert_eq!(s.tick(Millis(1_749), &c), Tick::Idle);
    assert_eq!(s.tick(Millis(1_750), &c), Tick::Probe);
    // Its answer is awaited one more interval; any message answers it.
    assert_eq!(s.next_deadline(&c), Millis(2_750));
    assert_eq!(message(&mut s, 2_700, &dispatch(), &c), Ok(()));
    assert_eq!(s.next_deadline(&c), Millis(3_700));
    assert_eq!(s.tick(Millis(3_700), &c), Tick::Probe);
    assert_eq!(s.tick(Millis(4_699), &c), Tick::Idle);
    assert_eq!(
        s.tick(Millis(4_700), &c),
        Tick::Expired(GatewayError::HeartbeatTimeout)
    );
}

#[test]
fn a_silent_client_is_closed_two_intervals_after_its_last_message() {
    let c = probing();
    let mut s = ConnSession::new(Millis(0), &c);
    s.identified(Millis(0), SessionId::new(1));
    let (verdict, at) = loop {
        let at = s.next_deadline(&c);
        match s.tick(at, &c) {
            Tick::Probe => continue,
            other => break (other, at),
        }
    };
    assert_eq!(
        (verdict, at),
        (Tick::Expired(GatewayError::HeartbeatTimeout), Millis(2_000))
    );
}

#[test]
fn a_client_heartbeating_every_interval_that_never_answers_probes_is_kept() {
    let c = probing();
    let mut s = ConnSession::new(Millis(0), &c);
    s.identified(Millis(0), SessionId::new(1));
    // Heartbeats every interval, each up to 30% late (jitter), probes ignored: the timer
    // fires at every deadline, as the reactor's would.
    let mut probes = 0;
    for beat in 1..=20u64 {
        let when = beat * 1_000 + (beat * 37 % 300);
        while s.next_deadline(&c) <= Millis(when) {
            let due = s.next_deadline(&c);
            match s.tick(due, &c) {
                Tick::Probe => probes += 1,
                other => panic!("at {due:?}: {other:?}"),
            }
        }
        assert_eq!(message(&mut s, when, &Op::Heartbeat(None), &c), Ok(()));
    }
    assert!(
        probes > 0,
        "late heartbeats are probed, and a heartbeat answers"
    );
}
#[test]
fn rate_limit_answers_then_closes_on_abuse_and_refills() {
    let c = GatewayConfig {
        rate_limit: RateLimit::new(5, Millis(1_000)),
        rate_limit_slack: 2,
        ..config()
    };
    let mut s = ConnSession::new(Millis(0), &c);
    s.identified(Millis(0), SessionId::new(1));
    for _ in 0..5 {
        assert_eq!(s.admit(Millis(0), &dispatch(), &c), Ok(()));
    }
    assert_eq!(
        s.admit(Millis(0), &dispatch(), &c),
        Err(GatewayError::RateLimited { fatal: false })
    );
    assert_eq!(
        s.admit(Millis(0), &dispatch(), &c),
        Err(GatewayError::RateLimited { fatal: false })
    );
    assert_eq!(
        s.admit(Millis(0), &dispatch(), &c),
        Err(GatewayError::RateLimited { fatal: true })
    );
    // 200 ms refill one token (5 per second).
    assert_eq!(s.admit(Millis(200), &dispatch(), &c), Ok(()));
    assert_eq!(
        s.admit(Millis(200), &dispatch(), &c),
        Err(GatewayError::RateLimited { fatal: false })
    );
    // Heartbeats have their own allowance: not starved by commands.
    assert_eq!(s.admit(Millis(200), &Op::Heartbeat(None), &c), Ok(()));
}

#[test]
fn token_bucket_never_exceeds_capacity() {
    let mut b = TokenBucket::full(Millis(0), 3, Millis(300));
    let taken = (0..10)
        .filter(|_| b.take(Millis(1_000_000), 3, Millis(300)))
        .count();
    assert_eq!(taken, 3);
}

#[test]
fn no_heartbeat_deadline_when_not_required() {
    let c = GatewayConfig {
        heartbeat_required: false,
        ..config()
    };
    let mut s = ConnSession::new(Millis(0), &c);
    s.identified(Millis(0), SessionId::new(1));
    assert_eq!(s.next_deadline(&c), Millis::NEVER);
    assert_eq!(s.tick(Millis(1_000_000), &c), Tick::Idle);
}

#[test]
fn server_heartbeats_go_out_at_0_85_of_the_interval() {
    let period = |ms| GatewayConfig::with_heartbeat(Millis(ms)).server_heartbeat_period();
    assert_eq!(period(30_000), Millis(25_500));
    assert_eq!(period(500), Millis(425));
    assert_eq!(period(41_250), Millis(35_062));
    assert_eq!(period(1), Millis(1));
    assert_eq!(period(7), Millis(5));
    assert_eq!(period(1 << 62), Millis((1 << 62) / 20 * 17 + 3));
}

#[test]
fn session_ids_fit_in_53_bits_and_are_never_zero() {
    // 2,000 draws: with ids of 64 random bits, all but about 1 in 2^11 would be above 2^53.
    for _ in 0..2_000 {
        let id = random_session_id().unwrap().get();
        assert!(
            (1..=MAX_SAFE_INTEGER).contains(&id),
            "{id} is not in 1..=2^53-1"
        );
    }
    assert_eq!(MAX_SAFE_INTEGER, 9_007_199_254_740_991);
}
