//! End-to-end tests of the chat example's per-user bounds (docs/protocols/chat.md,
//! "Limits"): the token length cap, and the rate and quota on channel creation that keep
//! one user from filling the channel table or flushing everyone's replay buffer.

mod support;
mod support_chat;

use serde_json::{json, Value};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support_chat::{chat_binary, Client, Server, ALICE, BOB};

/// Heartbeat interval: calm, so that a loaded machine times out nobody mid-test.
const CALM: u64 = 2000;
/// The documented cap on a token's length, in bytes.
const MAX_TOKEN_BYTES: usize = 256;

fn session_id(ready: &Value) -> u64 {
    ready["session_id"].as_u64().expect("an integer session_id")
}

/// Reads until the echo of a heartbeat sent now: everything sent before it has been handled.
fn sync(c: &mut Client) {
    c.send(json!({"f": 120}));
    loop {
        let v = c.recv();
        if v == json!({"f": 120}) {
            return;
        }
    }
}

#[test]
fn a_token_at_the_cap_presents_and_one_byte_more_is_4004() {
    let long = "t".repeat(MAX_TOKEN_BYTES);
    let carol = format!("carol:{long}");
    let server = Server::start(CALM, &["--user", &carol]);
    let (_, ready) = server.login(&long);
    assert_eq!(ready["user"], "carol");
    let mut c = server.connect();
    c.send(json!({"f": 110, "cnf": {"token": format!("{long}t")}}));
    c.expect_fatal(4004);
    // A resume with an over-long token is refused like a wrong token.
    let mut c = server.connect();
    c.send(json!({"f": 110, "cnf": {"token": "x".repeat(4000), "session_id": session_id(&ready), "s": 0}}));
    c.expect_error(4006, false);
}

#[test]
fn a_configured_token_over_the_cap_is_a_usage_error() {
    let user = format!("carol:{}", "t".repeat(MAX_TOKEN_BYTES + 1));
    let mut child = Command::new(chat_binary())
        .args(["--listen", "127.0.0.1:0", "--user", &user])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run the chat example");
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the chat example") {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(2),
        "a usage error exits 2 at once"
    );
}

#[test]
fn channel_creation_over_the_users_rate_is_4008_and_others_still_create() {
    let server = Server::start(CALM, &["--channel-adds-per-minute", "3"]);
    let (mut alice, _) = server.login(ALICE);
    for name in ["a1", "a2", "a3"] {
        alice.execute("CHANNEL_ADD", json!({"channel": name}));
        alice.expect_event("CHANNEL_ADD");
    }
    alice.execute("CHANNEL_ADD", json!({"channel": "a4"}));
    alice.expect_error(4008, false);
    // The bucket is the user's, not the connection's: a second session of alice is refused too.
    let (mut alice2, _) = server.login(ALICE);
    alice.expect_event("ROOM_USER_ADD");
    alice2.execute("CHANNEL_ADD", json!({"channel": "a4"}));
    alice2.expect_error(4008, false);
    // Not fatal, and not bob's budget: bob creates one, and everyone hears of it.
    let (mut bob, _) = server.login(BOB);
    alice.expect_event("ROOM_USER_ADD");
    alice2.expect_event("ROOM_USER_ADD");
    bob.execute("CHANNEL_ADD", json!({"channel": "b1"}));
    assert_eq!(
        bob.expect_event("CHANNEL_ADD")["cnf"],
        json!({"channel": "b1", "by": "bob"})
    );
    alice.expect_event("CHANNEL_ADD");
}

#[test]
fn channel_creation_over_the_users_quota_is_4011_and_others_still_create() {
    let server = Server::start(CALM, &["--channels-per-user", "2"]);
    let (mut alice, _) = server.login(ALICE);
    for name in ["a1", "a2"] {
        alice.execute("CHANNEL_ADD", json!({"channel": name}));
        alice.expect_event("CHANNEL_ADD");
    }
    alice.execute("CHANNEL_ADD", json!({"channel": "a3"}));
    alice.expect_error(4011, false);
    let (mut bob, _) = server.login(BOB);
    alice.expect_event("ROOM_USER_ADD");
    bob.execute("CHANNEL_ADD", json!({"channel": "a3"}));
    bob.expect_event("CHANNEL_ADD");
    // Alice's channels are still hers to move into.
    alice.expect_event("CHANNEL_ADD");
    alice.execute("CHANNEL_MOVE", json!({"channel": "a3"}));
    alice.expect_event("ROOM_USER_ADD");
}

#[test]
fn one_users_channel_spam_does_not_flush_a_detached_users_replay() {
    let server = Server::start(CALM, &[]);
    let (bob, ready) = server.login(BOB);
    let bob_id = session_id(&ready);
    bob.close();
    // 300 CHANNEL_ADDs from three connections of alice (100 each, within each connection's
    // command budget): more than the 256 events a detached session's replay holds.
    let mut spammers: Vec<Client> = (0..3).map(|_| server.login(ALICE).0).collect();
    for (i, c) in spammers.iter_mut().enumerate() {
        for n in 0..100 {
            c.execute("CHANNEL_ADD", json!({"channel": format!("spam-{i}-{n}")}));
        }
    }
    for c in &mut spammers {
        sync(c);
    }
    let mut bob = server.connect();
    let again = bob.resume(BOB, json!(bob_id), 1);
    assert_eq!(session_id(&again), bob_id);
    // The replay: alice's three joins, then the CHANNEL_ADDs her budget allowed.
    for _ in 0..3 {
        bob.expect_event("ROOM_USER_ADD");
    }
    bob.expect_event("CHANNEL_ADD");
}
