//! End-to-end tests of resume in `examples/chat.rs` (seed 004): replay of exactly what was
//! missed, refusals (4006), the replay buffer's bounds, a resume of a live session (4015) and
//! an expired session. The release binary runs as a subprocess, one server per test; the
//! protocol is in docs/protocols/chat.md.

mod support;
mod support_chat;

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support_chat::{Incoming, Server, ALICE, BOB, EXPECT};

/// Heartbeat interval of the tests that do not test heartbeats.
const CALM: u64 = 2000;
/// A short wait for "nothing else arrives".
const QUIET: Duration = Duration::from_millis(250);

fn session_id(ready: &Value) -> u64 {
    ready["session_id"]
        .as_u64()
        .expect("session_id is an unsigned 64-bit integer")
}

#[test]
fn resume_replays_exactly_what_was_missed_then_goes_live() {
    let server = Server::start(CALM, &[]);
    let (mut alice, ready) = server.login(ALICE);
    let (mut bob, _) = server.login(BOB);
    alice.expect_event("ROOM_USER_ADD");
    let sid = session_id(&ready);
    let seen = alice.seq.unwrap();
    assert_eq!(seen, 2);
    alice.close();

    // What alice misses: bob's messages, his typing, a new channel.
    let mut missed = Vec::new();
    for text in ["while you were out", "second"] {
        bob.execute("MESSAGE_CREATE", json!({"content": text}));
        missed.push(bob.expect_event("MESSAGE_CREATE")["cnf"].clone());
    }
    bob.execute("START_TYPING", json!({}));
    missed.push(json!({"user": "bob", "channel": "general"}));
    bob.execute("CHANNEL_ADD", json!({"channel": "later"}));
    missed.push(bob.expect_event("CHANNEL_ADD")["cnf"].clone());

    let mut back = server.connect();
    let again = back.resume(ALICE, json!(sid), seen);
    assert_eq!(session_id(&again), sid);
    assert_eq!(again["enc_key"], ready["enc_key"]);
    assert_eq!(
        (&again["user"], &again["channel"]),
        (&json!("alice"), &json!("general"))
    );
    let names = [
        "MESSAGE_CREATE",
        "MESSAGE_CREATE",
        "START_TYPING",
        "CHANNEL_ADD",
    ];
    for (i, (name, cnf)) in names.iter().zip(&missed).enumerate() {
        let got = back.expect_event(name);
        assert_eq!(got["s"], seen + 1 + i as u64);
        assert_eq!(&got["cnf"], cnf);
    }
    back.expect_silence(QUIET);
    // A resume announces nothing to the others.
    bob.expect_silence(QUIET);

    // Then live, continuing the sequence.
    bob.execute("MESSAGE_CREATE", json!({"content": "live"}));
    bob.expect_event("MESSAGE_CREATE");
    let live = back.expect_event("MESSAGE_CREATE");
    assert_eq!(live["s"], seen + 5);
    assert_eq!(live["cnf"]["content"], "live");
}

#[test]
fn resume_accepts_the_session_id_as_a_string_of_digits() {
    let server = Server::start(CALM, &[]);
    let (alice, ready) = server.login(ALICE);
    alice.close();
    let mut back = server.connect();
    let again = back.resume(ALICE, json!(session_id(&ready).to_string()), 1);
    assert_eq!(session_id(&again), session_id(&ready));
    back.expect_silence(QUIET);
}

#[test]
fn resume_with_another_users_token_is_4006_then_present_works() {
    let server = Server::start(CALM, &[]);
    let (alice, ready) = server.login(ALICE);
    alice.close();
    let mut c = server.connect();
    c.send_resume(BOB, ready["session_id"].clone(), 1);
    c.expect_error(4006, false);
    // Unknown session, wrong token: 4006 too; the connection stays open throughout.
    c.send_resume(ALICE, json!(12345), 0);
    c.expect_error(4006, false);
    c.send_resume("nobody", ready["session_id"].clone(), 1);
    c.expect_error(4006, false);
    // A fresh present on the same connection.
    let fresh = c.present(BOB);
    assert_eq!(fresh["user"], "bob");
    assert_ne!(session_id(&fresh), session_id(&ready));
    c.expect_event("ROOM_USER_ADD");
    // alice's session is still resumable by alice.
    let mut back = server.connect();
    back.resume(ALICE, ready["session_id"].clone(), 1);
    assert_eq!(back.expect_event("ROOM_USER_ADD")["cnf"]["user"], "bob");
}

#[test]
fn resume_from_a_sequence_the_server_never_sent_is_4006() {
    let server = Server::start(CALM, &[]);
    let (alice, ready) = server.login(ALICE);
    alice.close();
    let mut c = server.connect();
    c.send_resume(ALICE, ready["session_id"].clone(), 2);
    c.expect_error(4006, false);
    // The right sequence then works on the same connection.
    c.resume(ALICE, ready["session_id"].clone(), 1);
    c.expect_silence(QUIET);
}

/// Events a session keeps for replay (GatewayConfig's default; chat.rs does not change it).
const REPLAY_EVENTS: u64 = 256;
/// Bytes of events a session keeps for replay (likewise).
const REPLAY_BYTES: u64 = 256 * 1024;

/// Logs bob in, has him send `n` START_TYPING, waits until the server has handled them
/// (a heartbeat's echo comes after), and closes.
fn typing_burst(server: &Server, n: usize) {
    let (mut bob, _) = server.login(BOB);
    for _ in 0..n {
        bob.execute("START_TYPING", json!({}));
    }
    bob.send(json!({"f": 120}));
    loop {
        match bob.next(EXPECT) {
            Some(Incoming::Json(v)) if v == json!({"f": 120}) => break,
            Some(Incoming::Json(v)) => assert_eq!(v["f"], 130, "{v}"),
            other => panic!("bob's burst: {other:?}"),
        }
    }
    bob.close();
}

#[test]
fn resume_older_than_the_replay_buffer_events_is_4006() {
    let server = Server::start(CALM, &[]);
    let (alice, ready) = server.login(ALICE);
    alice.close();
    // Each burst: bob's ROOM_USER_ADD + 119 typing = 120 events for alice (present took one
    // of bob's 120 commands per 60 s).
    let bursts = REPLAY_EVENTS / 120 + 1;
    for _ in 0..bursts {
        typing_burst(&server, 119);
    }
    let last = 1 + bursts * 120;
    let oldest_kept = last - (REPLAY_EVENTS - 1);
    let mut c = server.connect();
    c.send_resume(ALICE, ready["session_id"].clone(), oldest_kept - 2);
    c.expect_error(4006, false);
    c.resume(ALICE, ready["session_id"].clone(), oldest_kept - 1);
    for _ in 0..REPLAY_EVENTS {
        c.recv();
    }
    assert_eq!(c.seq, Some(last));
    c.expect_silence(QUIET);
}

#[test]
fn resume_older_than_the_replay_buffer_bytes_is_4006() {
    let server = Server::start(CALM, &[]);
    let (alice, ready) = server.login(ALICE);
    alice.close();
    // 2000 × "é" is 4000 bytes of content (the most a 4096-byte payload can carry); each
    // event is about 4.1 kB.
    let big = "é".repeat(2000);
    let (mut bob, _) = server.login(BOB);
    let n = REPLAY_BYTES / 4000 + 20;
    for _ in 0..n {
        bob.execute("MESSAGE_CREATE", json!({"content": big}));
        bob.expect_event("MESSAGE_CREATE");
    }
    // alice: her join (1), bob's join, n messages.
    let last = 2 + n;
    let mut c = server.connect();
    c.send_resume(ALICE, ready["session_id"].clone(), 2);
    c.expect_error(4006, false);
    // Not all of the events a count bound would keep are held...
    assert!(n > 10 && n + 1 < REPLAY_EVENTS);
    c.send_resume(
        ALICE,
        ready["session_id"].clone(),
        last - (REPLAY_BYTES / 4000 + 10),
    );
    c.expect_error(4006, false);
    // ...but the most recent ones that fit in the bytes bound are.
    let fit = REPLAY_BYTES / 4200;
    c.resume(ALICE, ready["session_id"].clone(), last - fit);
    for _ in 0..fit {
        assert_eq!(c.expect_event("MESSAGE_CREATE")["cnf"]["content"], big);
    }
    assert_eq!(c.seq, Some(last));
}

#[test]
fn resume_of_a_live_session_closes_the_old_connection_with_4015() {
    let server = Server::start(CALM, &[]);
    let (mut old, ready) = server.login(ALICE);
    let mut new = server.connect();
    new.resume(ALICE, ready["session_id"].clone(), 1);
    old.expect_fatal(4015);
    new.expect_silence(QUIET);
    let (_bob, _) = server.login(BOB);
    new.expect_event("ROOM_USER_ADD");
}

#[test]
fn an_expired_session_leaves_its_channel_and_cannot_be_resumed() {
    let server = Server::start(CALM, &["--resume-window-ms", "800"]);
    let (alice, ready) = server.login(ALICE);
    let (mut bob, _) = server.login(BOB);
    alice.close();
    let since = Instant::now();
    assert_eq!(
        bob.expect_event("ROOM_USER_REMOVE")["cnf"],
        json!({"user": "alice", "channel": "general"})
    );
    assert!(
        since.elapsed() >= Duration::from_millis(600),
        "{:?}",
        since.elapsed()
    );
    let mut c = server.connect();
    c.send_resume(ALICE, ready["session_id"].clone(), 1);
    c.expect_error(4006, false);
    c.present(ALICE);
    c.expect_event("ROOM_USER_ADD");
    bob.expect_event("ROOM_USER_ADD");
}

#[test]
fn a_session_dropped_by_the_session_bound_gets_4006_never_a_gap() {
    let server = Server::start(CALM, &["--max-sessions", "2"]);
    let (alice, ready) = server.login(ALICE);
    alice.close(); // detached: resumable, and the oldest such session
    let (mut bob, _) = server.login(BOB);
    // A third session needs room: alice's detached session is the one dropped (its
    // channel hears it leave), then the new one joins.
    let (_carol, _) = server.login(ALICE);
    assert_eq!(
        bob.expect_event("ROOM_USER_REMOVE")["cnf"],
        json!({"user": "alice", "channel": "general"})
    );
    assert_eq!(bob.expect_event("ROOM_USER_ADD")["cnf"]["user"], "alice");
    let mut c = server.connect();
    c.send_resume(ALICE, ready["session_id"].clone(), 1);
    c.expect_error(4006, false);
    // Live sessions are never dropped for the bound: bob is still served.
    bob.heartbeat();
}

#[test]
fn one_user_opening_sessions_fast_cannot_evict_another_users_detached_session() {
    // Issue 12: at the session bound the oldest detached session went, whoever's it was; a
    // user opening sessions fast ended another user's (whose resume then got 4006).
    let server = Server::start(CALM, &["--max-sessions", "6"]);
    let (alice, ready) = server.login(ALICE);
    // Alice's session is detached: the oldest detached session from here on.
    alice.close();
    // Bob churns through 30 sessions, each dropped at once: only his own are evicted.
    for _ in 0..30 {
        let (bob, _) = server.login(BOB);
        bob.close();
    }
    // Then holds live ones up to the bound: the one beyond it is refused (4017), since
    // nobody over their fair share has a detached session left and bob has none.
    let mut live = Vec::new();
    let refused = loop {
        let mut c = server.connect();
        c.send(json!({"f": 110, "cnf": {"token": BOB}}));
        let first = c.recv();
        if first["f"] == 140 {
            live.push(c);
            assert!(live.len() <= 6, "more sessions than the bound");
            continue;
        }
        assert_eq!(first, json!({"f": 150, "cnf": {"c": 4017, "d": true}}));
        break c;
    };
    let mut refused = refused;
    assert_eq!(refused.expect_close(4017), "too many sessions");
    assert_eq!(live.len(), 5, "bob got every slot but alice's");
    let mut back = server.connect();
    let again = back.resume(ALICE, ready["session_id"].clone(), 1);
    assert_eq!(again["session_id"], ready["session_id"]);
}

#[test]
fn a_user_over_its_session_quota_evicts_its_own_oldest_or_is_refused() {
    let server = Server::start(CALM, &["--max-sessions-per-owner", "3"]);
    let (alice, alice_ready) = server.login(ALICE);
    alice.close();
    let (bob, first) = server.login(BOB);
    bob.close();
    let mut live: Vec<_> = (0..2).map(|_| server.login(BOB).0).collect();
    // Bob holds 3 (one detached): his 4th session ends his own detached one.
    live.push(server.login(BOB).0);
    let mut c = server.connect();
    c.send_resume(BOB, first["session_id"].clone(), 0);
    c.expect_error(4006, false);
    // All 3 live: the 4th is refused with 4017, and alice's detached session is untouched.
    let mut c = server.connect();
    c.send(json!({"f": 110, "cnf": {"token": BOB}}));
    c.expect_error(4017, true);
    assert_eq!(c.expect_close(4017), "too many sessions for this client");
    let mut back = server.connect();
    back.resume(ALICE, alice_ready["session_id"].clone(), 1);
    // Bob's live sessions were never touched: each still answers a heartbeat.
    for mut bob in live {
        bob.send(json!({"f": 120}));
        while bob.recv() != json!({"f": 120}) {}
    }
}
