//! Session machine tests: every transition with a fake clock, no sockets, no sleeps.

use super::*;
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
    s.identified(Millis(2), SessionId(7));
    assert_eq!(s.session(), Some(SessionId(7)));
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
    s.identified(Millis(100), SessionId(1));
    assert_eq!(
        s.tick(Millis(10_000), &config()),
        Tick::Expired(GatewayError::HeartbeatTimeout)
    );
}

#[test]
fn heartbeat_timeout_is_interval_plus_grace_after_last_message() {
    let c = config(); // 1000 + 1500
    let mut s = ConnSession::new(Millis(0), &c);
    s.identified(Millis(0), SessionId(1));
    assert_eq!(s.admit(Millis(900), &Op::Heartbeat(None), &c), Ok(()));
    assert_eq!(s.next_deadline(&c), Millis(3_400));
    assert_eq!(s.tick(Millis(3_399), &c), Tick::Idle);
    assert_eq!(
        s.tick(Millis(3_400), &c),
        Tick::Expired(GatewayError::HeartbeatTimeout)
    );
}

#[test]
fn probes_must_be_answered_in_time() {
    let c = GatewayConfig {
        probe: Some((Millis(300), Millis(100))),
        ..config()
    };
    let mut s = ConnSession::new(Millis(0), &c);
    s.identified(Millis(0), SessionId(1));
    assert_eq!(s.next_deadline(&c), Millis(300));
    assert_eq!(s.tick(Millis(300), &c), Tick::Probe);
    assert_eq!(s.next_deadline(&c), Millis(400));
    assert_eq!(s.admit(Millis(350), &Op::Heartbeat(None), &c), Ok(()));
    assert_eq!(s.next_deadline(&c), Millis(650));
    assert_eq!(s.tick(Millis(650), &c), Tick::Probe);
    assert_eq!(s.tick(Millis(749), &c), Tick::Idle);
    assert_eq!(
        s.tick(Millis(750), &c),
        Tick::Expired(GatewayError::HeartbeatTimeout)
    );
}

#[test]
fn rate_limit_answers_then_closes_on_abuse_and_refills() {
    let c = GatewayConfig {
        rate_limit: (5, Millis(1_000)),
        rate_limit_slack: 2,
        ..config()
    };
    let mut s = ConnSession::new(Millis(0), &c);
    s.identified(Millis(0), SessionId(1));
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
fn os_random_differs() {
    assert_ne!(random_u64().unwrap(), random_u64().unwrap());
}

#[test]
fn no_heartbeat_deadline_when_not_required() {
    let c = GatewayConfig {
        heartbeat_required: false,
        ..config()
    };
    let mut s = ConnSession::new(Millis(0), &c);
    s.identified(Millis(0), SessionId(1));
    assert_eq!(s.next_deadline(&c), Millis::NEVER);
    assert_eq!(s.tick(Millis(1_000_000), &c), Tick::Idle);
}

#[test]
fn session_ids_fit_in_53_bits_and_are_never_zero() {
    // 2,000 draws: with ids of 64 random bits, all but about 1 in 2^11 would be above 2^53.
    for _ in 0..2_000 {
        let SessionId(id) = random_session_id().unwrap();
        assert!(
            (1..=MAX_SAFE_INTEGER).contains(&id),
            "{id} is not in 1..=2^53-1"
        );
    }
    assert_eq!(MAX_SAFE_INTEGER, 9_007_199_254_740_991);
}
