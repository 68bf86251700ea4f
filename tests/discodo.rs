//! The Discodo gateway (seed 002, `examples/discodo.rs`) over real sockets: the example
//! binary and tungstenite clients. Every sentence of issue 5's seed-002 section has a test
//! here; docs/protocols/discodo.md is the contract.

mod support_discodo;

use serde_json::{json, Value};
use std::process::Command;
use std::time::{Duration, Instant};
use support_discodo::*;
use tungstenite::Message;

#[test]
fn hello_gives_the_interval_in_seconds_as_a_number() {
    let s = Server::start();
    let mut ws = connect(s.addr, Some(PASSWORD));
    assert_eq!(
        read(&mut ws, Duration::from_secs(2)),
        Got::Text(r#"{"op":"HELLO","d":{"heartbeat_interval":0.5}}"#.into())
    );
    let default = Server::with(&[]);
    let mut ws = connect(default.addr, Some(PASSWORD));
    assert_eq!(
        recv(&mut ws),
        json!({"op": "HELLO", "d": {"heartbeat_interval": 15.0}})
    );
}

#[test]
fn a_missing_or_wrong_password_is_forbidden_then_closed() {
    let s = Server::start();
    for (password, why) in [
        (None, "missing Authorization header"),
        (Some("wrong"), "password mismatch"),
        (Some(""), "password mismatch"),
    ] {
        let mut ws = connect(s.addr, password);
        let (payload, code) = error_then_close(&mut ws);
        assert_eq!(
            payload,
            json!({"op": "FORBIDDEN", "d": why}),
            "no HELLO first"
        );
        assert_eq!(code, 4001);
    }
}

#[test]
fn heartbeats_are_echoed_exactly_whatever_json_they_carry() {
    let s = Server::start();
    let mut ws = s.client(); // accepted before IDENTIFY too
    for d in [
        "null",
        "0",
        "1700000000.125",
        "-3",
        r#""text""#,
        "true",
        "[1, 2.50, {}]",
        r#"{"a": {"b": [null, "x"]}, "n": 1e3}"#,
    ] {
        send_raw(&mut ws, &format!(r#"{{"op":"HEARTBEAT","d":{d}}}"#));
        let expected = format!(r#"{{"op":"HEARTBEAT_ACK","d":{d}}}"#);
        assert_eq!(read(&mut ws, Duration::from_secs(2)), Got::Text(expected));
    }
    send_raw(&mut ws, r#"{"op":"HEARTBEAT"}"#);
    assert_eq!(recv(&mut ws), json!({"op": "HEARTBEAT_ACK", "d": null}));
}

#[test]
fn heartbeats_keep_a_client_alive_and_silence_closes_4009() {
    let s = Server::start();
    let mut alive = s.bot(json!("1"), json!(null));
    let mut silent = s.bot(json!("2"), json!(null));
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(4 * HB) {
        std::thread::sleep(Duration::from_millis(HB * 4 / 5));
        still_alive(&mut alive);
    }
    // The silent one went past interval + grace (1.5 intervals): 1250 ms.
    let (payload, code) = error_then_close(&mut silent);
    assert_eq!(
        (payload, code),
        (
            json!({"op": "HEARTBEAT_TIMEOUT", "d": "heartbeat timeout"}),
            4009
        )
    );
}

#[test]
fn silence_past_interval_plus_grace_closes_4009() {
    let s = Server::start();
    let mut ws = s.client(); // not even identified
    let start = Instant::now();
    let (_, code) = error_then_close(&mut ws);
    let after = start.elapsed();
    assert_eq!(code, 4009);
    // interval + grace = 2.5 intervals.
    let (min, max) = (Duration::from_millis(HB * 2), Duration::from_millis(HB * 4));
    assert!(after >= min && after < max, "{after:?}");
}

#[test]
fn nothing_but_identify_is_accepted_before_it() {
    let s = Server::start();
    for (op_name, d) in [
        ("VC_DESTROY", json!({"guild_id": 1})),
        ("DISCORD_EVENT", voice_server(json!(1))),
        ("getState", json!({"guild_id": 1})),
        ("PLAY", json!({})),
    ] {
        let mut ws = s.client();
        send(&mut ws, op_name, d);
        let (payload, code) = error_then_close(&mut ws);
        let why = format!("{op_name} before IDENTIFY");
        assert_eq!(payload, json!({"op": "NOT_IDENTIFIED", "d": why}));
        assert_eq!(code, 4003);
    }
}

#[test]
fn identify_is_checked_and_happens_once() {
    let s = Server::start();
    let mut ws = s.client();
    for bad in [
        json!(null),
        json!({}),
        json!({"user_id": ""}),
        json!({"user_id": true}),
        json!({"user_id": "1", "shard_id": "x"}),
    ] {
        send(&mut ws, "IDENTIFY", bad.clone());
        let payload = recv(&mut ws);
        assert_eq!(op(&payload), "BAD_REQUEST", "{bad} gave {payload}");
    }
    send(&mut ws, "IDENTIFY", json!({"user_id": 42, "shard_id": 3}));
    still_alive(&mut ws); // a fresh identify says nothing
    send(&mut ws, "IDENTIFY", json!({"user_id": 42, "shard_id": 3}));
    assert_eq!(
        recv(&mut ws),
        json!({"op": "ALREADY_IDENTIFIED", "d": "this connection is already identified"})
    );
    still_alive(&mut ws);
}

#[test]
fn voice_events_record_voice_clients_and_vc_destroy_removes_one() {
    let s = Server::start();
    let mut ws = s.bot(json!("900"), json!(null));
    send(
        &mut ws,
        "DISCORD_EVENT",
        voice_state(json!("10"), json!("11"), json!("900")),
    );
    let created = recv(&mut ws);
    assert_eq!(op(&created), "VC_CREATED");
    assert_eq!(
        (&created["d"]["guild_id"], &created["d"]["channel_id"]),
        (&json!("10"), &json!("11"))
    );
    let id = created["d"]["id"]
        .as_str()
        .expect("voice client id")
        .to_owned();
    // Another member's voice state, and the server update of the same guild: nothing new.
    send(
        &mut ws,
        "DISCORD_EVENT",
        voice_state(json!("10"), json!("12"), json!("901")),
    );
    send(&mut ws, "DISCORD_EVENT", voice_server(json!("10")));
    send(
        &mut ws,
        "DISCORD_EVENT",
        json!({"t": "READY", "d": {"session_id": "x"}}),
    );
    still_alive(&mut ws);
    send(&mut ws, "getState", json!({"guild_id": "10"}));
    assert_eq!(
        recv(&mut ws),
        json!({"op": "getState", "d": {"id": id, "guild_id": "10", "channel_id": "11"}})
    );
    // A server update alone: a voice client whose channel is not known (null).
    send(&mut ws, "DISCORD_EVENT", voice_server(json!(20)));
    let created = recv(&mut ws);
    assert_eq!(
        (
            op(&created),
            &created["d"]["guild_id"],
            &created["d"]["channel_id"]
        ),
        ("VC_CREATED", &json!(20), &json!(null))
    );
    send(&mut ws, "VC_DESTROY", json!({"guild_id": 10})); // 10 and "10" are the same guild
    assert_eq!(
        recv(&mut ws),
        json!({"op": "VC_DESTROYED", "d": {"guild_id": "10"}})
    );
    send(&mut ws, "VC_DESTROY", json!({"guild_id": "10"}));
    assert_eq!(
        recv(&mut ws),
        json!({"op": "VOICE_CLIENT_NOT_FOUND", "d": "no voice client for guild 10"})
    );
    send(&mut ws, "DISCORD_EVENT", json!({"d": {}}));
    assert_eq!(op(&recv(&mut ws)), "BAD_REQUEST");
    send(&mut ws, "VC_DESTROY", json!({}));
    assert_eq!(op(&recv(&mut ws)), "BAD_REQUEST");
    still_alive(&mut ws);
}

/// Identifies, creates voice clients for guilds 1 (channel 5) and "2" (no channel), closes.
fn session_with_two_voice_clients(s: &Server, user: Value) {
    let mut ws = s.bot(user.clone(), json!(null));
    send(
        &mut ws,
        "DISCORD_EVENT",
        voice_state(json!(1), json!(5), user),
    );
    send(&mut ws, "DISCORD_EVENT", voice_server(json!("2")));
    assert_eq!(
        (op(&recv(&mut ws)), op(&recv(&mut ws))),
        ("VC_CREATED", "VC_CREATED")
    );
    bye(ws);
}

#[test]
fn identify_again_before_vc_timeout_is_resumed_with_the_voice_clients() {
    let s = Server::start();
    session_with_two_voice_clients(&s, json!("7"));
    let mut ws = s.bot(json!(7), json!(null)); // "7" and 7: the same user
    let resumed = json!({"op": "RESUMED", "d": {"voice_clients": [[1, 5], ["2", null]]}});
    assert_eq!(recv(&mut ws), resumed);
    still_alive(&mut ws);
    // Another shard of the same user has a manager of its own.
    let mut shard = s.bot(json!("7"), json!(1));
    still_alive(&mut shard);
    // A connection that identifies as a live manager takes it over.
    let mut again = s.bot(json!("7"), json!(null));
    assert_eq!(recv(&mut again), resumed);
    let (payload, code) = error_then_close(&mut ws);
    assert_eq!((op(&payload), code), ("SESSION_REPLACED", 4010));
}

#[test]
fn after_vc_timeout_the_manager_is_gone_and_identify_starts_fresh() {
    let s = Server::start();
    session_with_two_voice_clients(&s, json!("8"));
    // Resumed at 3/4 of VC_TIMEOUT: the manager is kept, and its timer starts again at the
    // next disconnect.
    std::thread::sleep(Duration::from_millis(VC_TIMEOUT * 3 / 4));
    let mut ws = s.bot(json!("8"), json!(null));
    assert_eq!(op(&recv(&mut ws)), "RESUMED");
    bye(ws);
    std::thread::sleep(Duration::from_millis(VC_TIMEOUT + 400));
    let mut ws = s.bot(json!("8"), json!(null));
    still_alive(&mut ws); // no RESUMED before the ack
    send(&mut ws, "getState", json!({"guild_id": 1}));
    assert_eq!(op(&recv(&mut ws)), "VOICE_CLIENT_NOT_FOUND");
}

#[test]
fn vc_timeout_also_runs_from_an_abrupt_disconnect() {
    let s = Server::start();
    let mut ws = s.bot(json!("9"), json!(null));
    still_alive(&mut ws);
    drop(ws); // TCP FIN, no closing handshake
    std::thread::sleep(Duration::from_millis(VC_TIMEOUT + 400));
    let mut ws = s.bot(json!("9"), json!(null));
    still_alive(&mut ws); // fresh: no RESUMED before the ack
}

#[test]
fn malformed_payloads_are_answered_and_disturb_no_one() {
    let s = Server::start();
    let mut a = s.bot(json!("1"), json!(null));
    let mut b = s.bot(json!("2"), json!(null));
    for bad in ["not json", "{\"op\":", "[]", r#"{"op":1}"#, r#"{"d":{}}"#] {
        send_raw(&mut a, bad);
        assert_eq!(op(&recv(&mut a)), "DECODE_ERROR", "{bad}");
    }
    a.send(Message::binary(vec![1, 2, 3])).unwrap();
    assert_eq!(op(&recv(&mut a)), "DECODE_ERROR");
    send(&mut a, "PLAY", json!({}));
    assert_eq!(
        recv(&mut a),
        json!({"op": "UNKNOWN_OP", "d": "unknown op PLAY"})
    );
    still_alive(&mut a);
    still_alive(&mut b);
}

#[test]
fn sigterm_closes_every_socket_with_1001_and_exits_0() {
    let mut s = Server::start();
    let mut ws = s.bot(json!("1"), json!(null));
    let pid = s.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    assert!(matches!(
        read(&mut ws, Duration::from_secs(3)),
        Got::Closed(1001, _)
    ));
    drop(ws); // the server waits for the client's end of the TCP connection
    let end = Instant::now() + Duration::from_secs(3);
    while Instant::now() < end {
        if let Some(status) = s.child.try_wait().unwrap() {
            assert!(status.success(), "{status:?}");
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("server did not exit");
}
