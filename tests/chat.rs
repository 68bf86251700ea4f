//! End-to-end tests of `examples/chat.rs`, the i386chat gateway (seed 004), against the
//! release binary run as a subprocess (one server per test). The protocol is described in
//! docs/protocols/chat.md; these tests pin what that page says.
//!
//! Tests that do not exercise heartbeats run with `--heartbeat-ms 2000` (silence allowed:
//! 5 s), so that a loaded machine cannot time out an idle listener mid-test; the heartbeat
//! tests run at 500 ms.

mod support;
mod support_chat;

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support_chat::{Client, Incoming, Server, ALICE, BOB, ROOT};

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
        [
            "channel",
            "channels",
            "enc_key",
            "members",
            "session_id",
            "user",
            "v"
        ],
        "{ready}"
    );
    // The extension: every channel, and the channel's members before this session joins.
    assert_eq!(ready["cnf"]["channels"], json!(["general"]));
    assert_eq!(ready["cnf"]["members"], json!([]));
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
    alice.execute("MESSAGE_CREATE", json!({"contents": "wrong field"}));
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
        json!({"user": "alice", "channel": "dev-talk_2", "members": ["alice"]})
    );
    for c in [&mut bob, &mut root] {
        assert_eq!(
            c.expect_event("ROOM_USER_REMOVE")["cnf"],
            json!({"user": "alice", "channel": "general"})
        );
    }
    bob.execute("CHANNEL_MOVE", json!({"channel": "dev-talk_2"}));
    // The mover's own ROOM_USER_ADD carries the new channel's members, itself included.
    assert_eq!(
        alice.expect_event("ROOM_USER_ADD")["cnf"],
        json!({"user": "bob", "channel": "dev-talk_2"})
    );
    assert_eq!(
        bob.expect_event("ROOM_USER_ADD")["cnf"],
        json!({"user": "bob", "channel": "dev-talk_2", "members": ["alice", "bob"]})
    );
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
    // Not a number (nor a string of digits): 4011.
    alice.execute("MESSAGE_DELETE", json!({"id": "one"}));
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

#[test]
fn channels_are_bounded_by_max_channels() {
    let server = Server::start(CALM, &["--max-channels", "3"]);
    let (mut alice, _) = server.login(ALICE);
    for name in ["one", "two"] {
        alice.execute("CHANNEL_ADD", json!({"channel": name}));
        alice.expect_event("CHANNEL_ADD");
    }
    // `general`, `one`, `two`: full. A fourth is refused, not fatal; an existing name is
    // still "exists" (4011 too); moving still works.
    alice.execute("CHANNEL_ADD", json!({"channel": "three"}));
    alice.expect_error(4011, false);
    alice.execute("CHANNEL_ADD", json!({"channel": "one"}));
    alice.expect_error(4011, false);
    alice.execute("CHANNEL_MOVE", json!({"channel": "two"}));
    assert_eq!(
        alice.expect_event("ROOM_USER_ADD")["cnf"],
        json!({"user": "alice", "channel": "two", "members": ["alice"]})
    );
}
