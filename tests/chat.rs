//! End-to-end tests of `examples/chat.rs`, the i386chat gateway (seed 004), against the
//! release binary run as a subprocess (one server per test). The protocol is described in
//! docs/protocols/chat.md; these tests pin what that page says.
//!
//! Tests that do not exercise heartbeats run with `--heartbeat-ms 2000` (silence allowed:
//! 5 s), so that a loaded machine cannot time out an idle listener mid-test; the heartbeat
//! tests run at 500 ms.

mod support_chat;

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support_chat::{Client, Incoming, Server, ALICE, BOB, EXPECT, ROOT};

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
fn hello_then_present_gives_ready_with_its_fields() {
    let server = Server::start(500, &[]);
    let mut c = server.connect_raw("/any/path?at=all");
    assert_eq!(c.recv(), json!({"f": 100, "cnf": {"hb_int": 500}}));
    c.send(json!({"f": 110, "cnf": {"token": ALICE}}));
    let ready = c.recv();
    let cnf = ready["cnf"].as_object().expect("READY cnf is an object");
    let mut keys: Vec<&str> = cnf.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["channel", "enc_key", "session_id", "user", "v"],
        "{ready}"
    );
    assert_eq!(ready["f"], 140);
    assert_eq!(ready["cnf"]["v"], 6);
    assert!(session_id(&ready["cnf"]) > 0);
    let key = ready["cnf"]["enc_key"].as_str().unwrap();
    assert!(
        key.len() == 32 && key.bytes().all(|b| b.is_ascii_hexdigit()),
        "enc_key: {key}"
    );
    assert_eq!(ready["cnf"]["user"], "alice");
    assert_eq!(ready["cnf"]["channel"], "general");
    // The new session is in `general` and hears its own arrival as its first event.
    assert_eq!(
        c.recv(),
        json!({"f": 130, "s": 1, "t": "ROOM_USER_ADD", "cnf": {"user": "alice", "channel": "general"}})
    );

    // Another session of the same user gets another id and key.
    let (_c2, again) = server.login(ALICE);
    assert_ne!(session_id(&again), session_id(&ready["cnf"]));
    assert_ne!(again["enc_key"], ready["cnf"]["enc_key"]);
}

#[test]
fn wrong_token_is_refused_with_4004() {
    let server = Server::start(CALM, &[]);
    let mut c = server.connect();
    c.send(json!({"f": 110, "cnf": {"token": "not-a-token"}}));
    c.expect_fatal(4004);
}

#[test]
fn anything_but_present_first_is_refused_with_4003() {
    let server = Server::start(CALM, &[]);
    let mut c = server.connect();
    c.execute("MESSAGE_CREATE", json!({"content": "too early"}));
    c.expect_fatal(4003);

    // Heartbeats are not accepted before present either.
    let mut c = server.connect();
    c.send(json!({"f": 120}));
    c.expect_fatal(4003);
}

#[test]
fn not_json_and_binary_are_decode_errors_4002() {
    let server = Server::start(CALM, &[]);
    let mut c = server.connect();
    c.send_text("hello?");
    c.expect_fatal(4002);

    let mut c = server.connect();
    c.send(json!({"f": "110", "cnf": {"token": ALICE}}));
    c.expect_fatal(4002);

    let mut c = server.connect();
    c.send(json!({"f": 110}));
    c.expect_fatal(4002);

    let (mut c, _) = server.login(ALICE);
    c.send_binary(br#"{"f":120}"#);
    c.expect_fatal(4002);

    // 130 without an event name.
    let (mut c, _) = server.login(ALICE);
    c.send(json!({"f": 130, "cnf": {"content": "x"}}));
    c.expect_fatal(4002);
}

#[test]
fn unknown_or_server_only_function_codes_are_4001() {
    let server = Server::start(CALM, &[]);
    for f in [999, 100, 140, 150] {
        let mut c = server.connect();
        c.send(json!({"f": f}));
        c.expect_fatal(4001);
    }
    // Also once identified.
    let (mut c, _) = server.login(ALICE);
    c.send(json!({"f": 7, "cnf": {}}));
    c.expect_fatal(4001);
}

#[test]
fn second_present_is_4005() {
    let server = Server::start(CALM, &[]);
    let (mut c, _) = server.login(ALICE);
    c.send(json!({"f": 110, "cnf": {"token": ALICE}}));
    c.expect_fatal(4005);

    // A resume on an identified connection too.
    let (mut c, ready) = server.login(BOB);
    c.send_resume(BOB, ready["session_id"].clone(), 1);
    c.expect_fatal(4005);
}

#[test]
fn two_users_exchange_messages_with_increasing_sequence_numbers() {
    let server = Server::start(CALM, &[]);
    let (mut alice, _) = server.login(ALICE);
    let (mut bob, _) = server.login(BOB);
    let joined = alice.expect_event("ROOM_USER_ADD");
    assert_eq!(
        joined,
        json!({"f": 130, "s": 2, "t": "ROOM_USER_ADD", "cnf": {"user": "bob", "channel": "general"}})
    );

    let mut last_id = 0;
    for round in 0..5 {
        let (speaker, listener, author) = if round % 2 == 0 {
            (&mut alice, &mut bob, "alice")
        } else {
            (&mut bob, &mut alice, "bob")
        };
        let text = format!("message {round} from {author} \"quoted\" é");
        speaker.execute("MESSAGE_CREATE", json!({"content": text}));
        // Both hear it (the author too), with the same body and their own sequence.
        let mine = speaker.expect_event("MESSAGE_CREATE");
        let theirs = listener.expect_event("MESSAGE_CREATE");
        assert_eq!(mine["cnf"], theirs["cnf"]);
        let cnf = &mine["cnf"];
        assert_eq!(cnf["channel"], "general");
        assert_eq!(cnf["author"], author);
        assert_eq!(cnf["content"], text);
        assert!(
            cnf["timestamp"]
                .as_u64()
                .is_some_and(|t| t > 1_600_000_000_000),
            "unix ms: {cnf}"
        );
        let id = cnf["id"].as_u64().expect("numeric message id");
        assert!(id > last_id, "message ids increase");
        last_id = id;
    }
    // Client::check_seq asserted s = previous + 1 on every 130; where they ended:
    assert_eq!(alice.seq, Some(2 + 5));
    assert_eq!(bob.seq, Some(1 + 5));

    // START_TYPING goes to the others in the channel, not to the typist.
    bob.execute("START_TYPING", json!({}));
    assert_eq!(
        alice.expect_event("START_TYPING")["cnf"],
        json!({"user": "bob", "channel": "general"})
    );
    bob.expect_silence(QUIET);

    // Bad payloads are non-fatal 4011; unknown events 4010; the connection stays usable.
    alice.execute("MESSAGE_CREATE", json!({"content": ""}));
    alice.expect_error(4011, false);
    alice.execute("MESSAGE_CREATE", json!({"content": "x".repeat(2001)}));
    alice.expect_error(4011, false);
    alice.execute("MESSAGE_CREATE", json!({"text": "wrong field"}));
    alice.expect_error(4011, false);
    alice.execute("NO_SUCH_EVENT", json!({}));
    alice.expect_error(4010, false);
    // The seed's `e` is accepted in place of `t`.
    alice.send(json!({"f": 130, "e": "MESSAGE_CREATE", "cnf": {"content": "x".repeat(2000)}}));
    alice.expect_event("MESSAGE_CREATE");
    bob.expect_event("MESSAGE_CREATE");
}

#[test]
fn channel_add_and_move_notify_the_right_sessions() {
    let server = Server::start(CALM, &[]);
    let (mut alice, _) = server.login(ALICE);
    let (mut bob, _) = server.login(BOB);
    alice.expect_event("ROOM_USER_ADD");
    let (mut root, _) = server.login(ROOT);
    alice.expect_event("ROOM_USER_ADD");
    bob.expect_event("ROOM_USER_ADD");

    // CHANNEL_ADD: anyone; every session hears it; nobody moves.
    alice.execute("CHANNEL_ADD", json!({"channel": "dev-talk_2"}));
    for c in [&mut alice, &mut bob, &mut root] {
        assert_eq!(
            c.expect_event("CHANNEL_ADD")["cnf"],
            json!({"channel": "dev-talk_2", "by": "alice"})
        );
    }
    alice.execute("CHANNEL_ADD", json!({"channel": "dev-talk_2"}));
    alice.expect_error(4011, false); // exists
    for bad in ["", "Upper", "has space", &"x".repeat(33)] {
        alice.execute("CHANNEL_ADD", json!({"channel": bad}));
        alice.expect_error(4011, false);
    }
    bob.execute("CHANNEL_ADD", json!({"name": &"y".repeat(32)})); // `name` is accepted too
    for c in [&mut alice, &mut bob, &mut root] {
        assert_eq!(
            c.expect_event("CHANNEL_ADD")["cnf"]["channel"],
            "y".repeat(32)
        );
    }

    // CHANNEL_MOVE: the old channel's remaining members hear ROOM_USER_REMOVE, the new
    // channel's members (the mover included) ROOM_USER_ADD.
    alice.execute("CHANNEL_MOVE", json!({"channel": "dev-talk_2"}));
    assert_eq!(
        alice.expect_event("ROOM_USER_ADD")["cnf"],
        json!({"user": "alice", "channel": "dev-talk_2"})
    );
    for c in [&mut bob, &mut root] {
        assert_eq!(
            c.expect_event("ROOM_USER_REMOVE")["cnf"],
            json!({"user": "alice", "channel": "general"})
        );
    }
    bob.execute("CHANNEL_MOVE", json!({"channel": "dev-talk_2"}));
    for c in [&mut alice, &mut bob] {
        assert_eq!(
            c.expect_event("ROOM_USER_ADD")["cnf"],
            json!({"user": "bob", "channel": "dev-talk_2"})
        );
    }
    assert_eq!(
        root.expect_event("ROOM_USER_REMOVE")["cnf"],
        json!({"user": "bob", "channel": "general"})
    );

    // Messages stay in their channel.
    root.execute("MESSAGE_CREATE", json!({"content": "anyone?"}));
    assert_eq!(
        root.expect_event("MESSAGE_CREATE")["cnf"]["channel"],
        "general"
    );
    bob.execute("MESSAGE_CREATE", json!({"content": "in dev"}));
    for c in [&mut alice, &mut bob] {
        assert_eq!(
            c.expect_event("MESSAGE_CREATE")["cnf"]["channel"],
            "dev-talk_2"
        );
    }

    // Moving to the channel one is in does nothing; to an unknown one is 4016.
    bob.execute("CHANNEL_MOVE", json!({"channel": "dev-talk_2"}));
    bob.execute("CHANNEL_MOVE", json!({"channel": "nowhere"}));
    bob.expect_error(4016, false);
    for c in [&mut alice, &mut root] {
        c.expect_silence(QUIET);
    }
}

#[test]
fn message_delete_by_author_or_admin_only() {
    let server = Server::start(CALM, &[]);
    let (mut alice, _) = server.login(ALICE);
    let (mut bob, _) = server.login(BOB);
    alice.expect_event("ROOM_USER_ADD");
    let (mut root, _) = server.login(ROOT);
    alice.expect_event("ROOM_USER_ADD");
    bob.expect_event("ROOM_USER_ADD");
    let post = |text: &str, alice: &mut Client, bob: &mut Client, root: &mut Client| -> u64 {
        alice.execute("MESSAGE_CREATE", json!({"content": text}));
        let id = alice.expect_event("MESSAGE_CREATE")["cnf"]["id"]
            .as_u64()
            .unwrap();
        bob.expect_event("MESSAGE_CREATE");
        root.expect_event("MESSAGE_CREATE");
        id
    };
    let first = post("one", &mut alice, &mut bob, &mut root);
    let second = post("two", &mut alice, &mut bob, &mut root);

    // Another non-admin: 4012, not fatal; the connection stays open.
    bob.execute("MESSAGE_DELETE", json!({"id": first}));
    bob.expect_error(4012, false);
    bob.heartbeat();
    alice.expect_silence(QUIET);

    // The author.
    alice.execute("MESSAGE_DELETE", json!({"id": first}));
    for c in [&mut alice, &mut bob, &mut root] {
        assert_eq!(
            c.expect_event("MESSAGE_DELETE")["cnf"],
            json!({"id": first, "channel": "general"})
        );
    }
    // Gone now: 4016.
    alice.execute("MESSAGE_DELETE", json!({"id": first}));
    alice.expect_error(4016, false);
    // Not a number: 4011.
    alice.execute("MESSAGE_DELETE", json!({"id": "1"}));
    alice.expect_error(4011, false);

    // An admin may delete anyone's.
    root.execute("MESSAGE_DELETE", json!({"id": second}));
    for c in [&mut alice, &mut bob, &mut root] {
        assert_eq!(
            c.expect_event("MESSAGE_DELETE")["cnf"],
            json!({"id": second, "channel": "general"})
        );
    }
    bob.execute("MESSAGE_DELETE", json!({"id": 999_999}));
    bob.expect_error(4016, false);
}

#[test]
fn admin_ban_ends_the_users_sessions_and_refuses_them() {
    let server = Server::start(CALM, &[]);
    let (mut alice, _) = server.login(ALICE);
    let (mut bob, bob_ready) = server.login(BOB);
    alice.expect_event("ROOM_USER_ADD");
    let (mut root, _) = server.login(ROOT);
    alice.expect_event("ROOM_USER_ADD");
    bob.expect_event("ROOM_USER_ADD");

    // A non-admin may not ban: 4012, not fatal.
    alice.execute("SYSTEM_BAN_ADD", json!({"user": "bob"}));
    alice.expect_error(4012, false);
    alice.heartbeat();

    root.execute("SYSTEM_BAN_ADD", json!({"user": "bob"}));
    // Everyone hears the ban, bob too, before bob is cut off.
    for c in [&mut root, &mut alice, &mut bob] {
        assert_eq!(
            c.expect_event("SYSTEM_BAN_ADD")["cnf"],
            json!({"user": "bob", "by": "root"})
        );
    }
    bob.expect_fatal(4013);
    for c in [&mut root, &mut alice] {
        assert_eq!(
            c.expect_event("ROOM_USER_REMOVE")["cnf"],
            json!({"user": "bob", "channel": "general"})
        );
    }

    // Presenting again: 4013.
    let mut again = server.connect();
    again.send(json!({"f": 110, "cnf": {"token": BOB}}));
    again.expect_fatal(4013);
    // The banned session cannot be resumed either.
    let mut again = server.connect();
    again.send_resume(BOB, bob_ready["session_id"].clone(), 3);
    again.expect_error(4006, false);
    // Others are unaffected.
    alice.execute("MESSAGE_CREATE", json!({"content": "still here"}));
    alice.expect_event("MESSAGE_CREATE");
    root.expect_event("MESSAGE_CREATE");
}

#[test]
fn heartbeats_are_echoed_and_keep_the_connection_alive() {
    let server = Server::start(500, &[]);
    let (mut c, _) = server.login(ALICE);
    // 10 heartbeats 250 ms apart (2.5 s: twice the 1.25 s allowed silence).
    for _ in 0..10 {
        c.send(json!({"f": 120}));
        assert_eq!(c.recv(), json!({"f": 120}));
        std::thread::sleep(Duration::from_millis(250));
    }
    // Data in a heartbeat is ignored; the echo is always bare.
    c.send(json!({"f": 120, "cnf": {"x": 1}, "s": 9}));
    assert_eq!(c.recv(), json!({"f": 120}));
}

#[test]
fn silence_after_present_times_out_with_4009() {
    let server = Server::start(500, &[]);
    let (mut c, _) = server.login(ALICE);
    c.heartbeat();
    let since = Instant::now();
    let v = c.next(Duration::from_millis(2500));
    let waited = since.elapsed();
    match v {
        Some(Incoming::Json(v)) => assert_eq!(v, json!({"f": 150, "cnf": {"c": 4009, "d": true}})),
        other => panic!("expected 150 4009 within 2.5 s, got {other:?}"),
    }
    // 2.5 × 500 ms = 1.25 s after the last heartbeat.
    assert!(
        waited >= Duration::from_millis(1100),
        "closed too early: {waited:?}"
    );
    c.expect_close(4009);
}

#[test]
fn no_present_within_ten_seconds_is_4003() {
    // Before present only the identify deadline runs, even when the heartbeat timeout
    // (1.25 s at hb_int 500) is shorter.
    let server = Server::start(500, &[]);
    let mut c = server.connect();
    let since = Instant::now();
    match c.next(Duration::from_secs(12)) {
        Some(Incoming::Json(v)) => assert_eq!(v, json!({"f": 150, "cnf": {"c": 4003, "d": true}})),
        other => panic!("expected 150 4003, got {other:?}"),
    }
    assert!(
        since.elapsed() >= Duration::from_millis(9500),
        "{:?}",
        since.elapsed()
    );
    c.expect_close(4003);
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
fn rate_limit_refuses_then_closes_with_4008() {
    let server = Server::start(CALM, &[]);
    let (mut c, _) = server.login(ALICE);
    // present took 1 of 120 commands; 119 more are answered (here: 4010, unknown event),
    // then 10 refusals in a row are answered 4008 non-fatal, and the 11th is fatal.
    for _ in 0..130 {
        c.execute("NOPE", json!({}));
    }
    for _ in 0..119 {
        c.expect_error(4010, false);
    }
    for _ in 0..10 {
        c.expect_error(4008, false);
    }
    c.expect_fatal(4008);
}

#[test]
fn heartbeats_beyond_four_per_interval_are_4008() {
    let server = Server::start(CALM, &[]);
    let (mut c, _) = server.login(ALICE);
    for _ in 0..5 {
        c.send(json!({"f": 120}));
    }
    for _ in 0..4 {
        assert_eq!(c.recv(), json!({"f": 120}));
    }
    c.expect_error(4008, false);
    // Commands have their own budget.
    c.execute("MESSAGE_CREATE", json!({"content": "ok"}));
    c.expect_event("MESSAGE_CREATE");
}

#[test]
fn payload_over_4096_bytes_is_closed_with_1009() {
    let server = Server::start(CALM, &[]);
    let (mut c, _) = server.login(ALICE);
    // Exactly 4096 bytes is accepted.
    let pad = 4096 - r#"{"f":120,"cnf":""}"#.len();
    let exact = format!(r#"{{"f":120,"cnf":"{}"}}"#, "x".repeat(pad));
    assert_eq!(exact.len(), 4096);
    c.send_text(&exact);
    assert_eq!(c.recv(), json!({"f": 120}));
    // One more byte: close 1009 with no 150 first.
    let over = format!(r#"{{"f":120,"cnf":"{}"}}"#, "x".repeat(pad + 1));
    assert_eq!(over.len(), 4097);
    c.send_text(&over);
    c.expect_close(1009);
}

#[test]
fn sigterm_sends_gateway_down_then_1001_and_exits_0() {
    let mut server = Server::start(CALM, &[]);
    let (mut alice, _) = server.login(ALICE);
    let (mut bob, _) = server.login(BOB);
    alice.expect_event("ROOM_USER_ADD");
    let mut stranger = server.connect(); // not presented
    server.sigterm();
    let since = Instant::now();
    for (c, s) in [(&mut alice, 3), (&mut bob, 2)] {
        assert_eq!(
            c.recv(),
            json!({"f": 130, "s": s, "t": "GATEWAY_DOWN", "cnf": {}})
        );
        assert_eq!(c.expect_close(1001), "server shutting down");
    }
    // A connection without a session gets the close alone.
    stranger.expect_close(1001);
    let status = server
        .wait_exit(Duration::from_secs(4))
        .expect("exited within 4 s");
    assert!(status.success(), "exit status {status}");
    assert!(since.elapsed() < Duration::from_secs(4));
}
