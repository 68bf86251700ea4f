//! Registry tests: rooms, and the session quotas (who gives up a session for whom).

use super::*;

fn conn(n: u64) -> ConnId {
    ConnId::from_u64(n)
}

fn addr(n: u8) -> Owner {
    Owner::from_ip(std::net::IpAddr::from([10, 0, 0, n]))
}

/// `n` sessions of `owner` with ids from `first`, the first `detached` of them detached
/// (in id order).
fn hold(reg: &mut Registry<()>, owner: &Owner, first: u64, n: u64, detached: u64) {
    for i in first..first + n {
        reg.insert(SessionId::new(i), (), conn(i), owner.clone());
    }
    for i in first..first + detached {
        reg.detach(SessionId::new(i));
    }
}

#[test]
fn rooms_follow_sessions() {
    let mut reg: Registry<()> = Registry::default();
    let (a, b) = (SessionId::new(1), SessionId::new(2));
    reg.insert(a, (), conn(1), addr(1));
    reg.insert(b, (), conn(2), addr(1));
    assert!(reg.join(a, "general") && reg.join(b, "general") && reg.join(a, "x"));
    assert!(!reg.join(SessionId::new(3), "general"));
    let mut m = reg.members_vec("general");
    m.sort();
    assert_eq!(m, vec![a, b]);
    reg.leave(b, "general");
    assert_eq!(reg.members_vec("general"), vec![a]);
    reg.remove(a);
    assert_eq!(reg.rooms().count(), 0, "empty rooms disappear");
    reg.detach(b);
    assert_eq!(reg.oldest_detached_of(&addr(1)), Some(b));
}

#[test]
fn owner_counts_follow_insert_detach_attach_remove() {
    let mut reg: Registry<()> = Registry::default();
    let (a, b) = (addr(1), Owner::user("bob"));
    hold(&mut reg, &a, 1, 3, 2);
    hold(&mut reg, &b, 10, 1, 0);
    assert_eq!((reg.owner_sessions(&a), reg.owner_sessions(&b)), (3, 1));
    assert_eq!(reg.owner_count(), 2);
    assert_eq!(reg.oldest_detached_of(&a), Some(SessionId::new(1)));
    reg.attach(SessionId::new(1), conn(99)); // resumed: no longer evictable
    assert_eq!(reg.oldest_detached_of(&a), Some(SessionId::new(2)));
    reg.detach(SessionId::new(1)); // detached again: now the newest
    reg.remove(SessionId::new(2));
    assert_eq!(reg.oldest_detached_of(&a), Some(SessionId::new(1)));
    for id in [1, 3, 10] {
        reg.remove(SessionId::new(id));
    }
    assert_eq!(
        reg.owner_count(),
        0,
        "owners without sessions are forgotten"
    );
    assert!(reg.evictable.is_empty() && reg.is_empty());
}

#[test]
fn repeated_detach_and_resume_holds_one_entry() {
    let mut reg: Registry<()> = Registry::default();
    hold(&mut reg, &addr(1), 1, 1, 0);
    for _ in 0..1000 {
        reg.detach(SessionId::new(1));
        reg.attach(SessionId::new(1), conn(1));
    }
    reg.detach(SessionId::new(1));
    assert_eq!(reg.owners[&addr(1)].detached.len(), 1);
    assert_eq!(reg.evictable.len(), 1);
}

const ROOMY: Quota = Quota {
    max_sessions: 100,
    per_owner: 3,
};

#[test]
fn an_owner_over_its_quota_gives_up_its_own_oldest_detached_session() {
    let mut reg: Registry<()> = Registry::default();
    let (attacker, victim) = (addr(1), addr(2));
    hold(&mut reg, &victim, 100, 1, 1);
    hold(&mut reg, &attacker, 1, 3, 2);
    assert_eq!(reg.room_for(&attacker, ROOMY), Ok(vec![SessionId::new(1)]));
    assert_eq!(reg.room_for(&victim, ROOMY), Ok(vec![]));
    // All of its sessions live: refused, and nobody else's is touched.
    let mut reg: Registry<()> = Registry::default();
    hold(&mut reg, &victim, 100, 1, 1);
    hold(&mut reg, &attacker, 1, 3, 0);
    assert_eq!(reg.room_for(&attacker, ROOMY), Err(Refusal::OwnerFull));
}

#[test]
fn at_the_global_bound_only_an_owner_over_its_fair_share_gives_up_a_session() {
    let quota = Quota {
        max_sessions: 10,
        per_owner: 100,
    };
    let (attacker, victim, newcomer) = (addr(1), addr(2), addr(3));
    let mut reg: Registry<()> = Registry::default();
    hold(&mut reg, &victim, 100, 1, 1); // the victim's detached session, the oldest
    hold(&mut reg, &attacker, 1, 9, 9);
    // The attacker (9 of 10, share 5 between two owners) gives up its own oldest.
    assert_eq!(reg.room_for(&attacker, quota), Ok(vec![SessionId::new(1)]));
    // So it does for a third owner (share 4), never the victim's older session.
    assert_eq!(reg.room_for(&newcomer, quota), Ok(vec![SessionId::new(1)]));
    assert_eq!(reg.room_for(&victim, quota), Ok(vec![SessionId::new(1)]));
}

#[test]
fn at_the_global_bound_with_nobody_over_share_the_newcomer_gives_up_its_own_or_is_refused() {
    let quota = Quota {
        max_sessions: 4,
        per_owner: 100,
    };
    let (a, b) = (addr(1), addr(2));
    let mut reg: Registry<()> = Registry::default();
    hold(&mut reg, &a, 1, 2, 1);
    hold(&mut reg, &b, 10, 2, 1);
    // Two owners at 2 each, share 2: nobody is over. Each may trade its own detached one.
    assert_eq!(reg.room_for(&a, quota), Ok(vec![SessionId::new(1)]));
    assert_eq!(reg.room_for(&b, quota), Ok(vec![SessionId::new(10)]));
    // A third owner (share 2 of 4 rounded up over 3 owners) has nothing to trade.
    assert_eq!(reg.room_for(&addr(3), quota), Err(Refusal::Full));
    // The attacker holding everything live: a newcomer is refused, not served by eviction.
    let mut reg: Registry<()> = Registry::default();
    hold(&mut reg, &a, 1, 4, 0);
    assert_eq!(reg.room_for(&b, quota), Err(Refusal::Full));
    assert_eq!(reg.room_for(&a, quota), Err(Refusal::Full));
}

#[test]
fn the_largest_owner_with_a_detached_session_is_asked_first() {
    let quota = Quota {
        max_sessions: 9,
        per_owner: 100,
    };
    let (big, mid, small) = (addr(1), addr(2), addr(3));
    let mut reg: Registry<()> = Registry::default();
    hold(&mut reg, &small, 100, 1, 1);
    hold(&mut reg, &mid, 10, 3, 1);
    // Big is the largest, but all its sessions are live.
    hold(&mut reg, &big, 1, 5, 0);
    // Share is 3 (9 over 3 owners): mid holds 3, not over; small holds 1. The newcomer
    // (small) trades its own.
    assert_eq!(reg.room_for(&small, quota), Ok(vec![SessionId::new(100)]));
    reg.detach(SessionId::new(1));
    // Now big (5 > 3) has a detached session: it goes, whoever asks.
    assert_eq!(reg.room_for(&small, quota), Ok(vec![SessionId::new(1)]));
    assert_eq!(reg.room_for(&mid, quota), Ok(vec![SessionId::new(1)]));
}
