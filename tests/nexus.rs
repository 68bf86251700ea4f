//! End-to-end tests of `examples/nexus.rs`, the Nexus gateway (seed 000), against the release
//! binary run as a subprocess (one server per test), with a tungstenite client and plain
//! HTTP/1.1 requests. The protocol is docs/protocols/nexus.md; these tests pin that page.
//! Set `POSTERN_NEXUS_BIN` to a built `nexus` binary to skip the build step.

#[path = "support_music/nexus_helpers.rs"]
mod nexus_helpers;
mod support;
mod support_music;

use nexus_helpers::{binary, join, track, voice_op, voice_ready, CALM};
use serde_json::{json, Value};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support_music::{has, Server, PASSWORD, QUIET};
use tungstenite::Message;

#[test]
fn hello_identify_ready_with_an_unguessable_token_and_ping_pong() {
    let server = Server::start(1500);
    let mut c = server.ws(&[("Authorization", PASSWORD), ("client-id", "1001")]);
    assert_eq!(
        c.recv(),
        json!({"op": 0, "d": {"heartbeat_interval": 1500}})
    );
    c.send(json!({"op": 10}));
    let ready = c.event("READY");
    assert_eq!(ready.as_object().map(|d| d.len()), Some(2), "{ready}");
    assert_eq!(ready["client_id"], "1001");
    let token = ready["access_token"].as_str().expect("token");
    assert!(
        token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit()),
        "{token}"
    );
    c.ping();
    assert_ne!(server.login("1002").1, token);
}

#[test]
fn upgrade_without_client_id_is_4001_and_without_password_4002() {
    let server = Server::start(CALM);
    assert_eq!(
        server.ws(&[("Authorization", PASSWORD)]).expect_close(4001),
        "Missing client-id in request headers"
    );
    server.ws(&[]).expect_close(4001);
    server.ws(&[("client-id", "1")]).expect_close(4002);
    server
        .ws(&[("client-id", "1"), ("Authorization", "wrong")])
        .expect_close(4002);
    server.login("1"); // Refused sockets never held the id.
}

#[test]
fn anything_before_identify_is_4013_and_silence_too() {
    let server = Server::start(200);
    for early in [
        json!({"op": 11}),
        json!({"t": "VOICE_STATE_UPDATE", "d": {}}),
    ] {
        let mut c = server.connect("1");
        c.send(early);
        c.expect_close(4013);
    }
    // No IDENTIFY within interval + grace (200 + 300 ms).
    let mut c = server.connect("1");
    let start = Instant::now();
    c.expect_close(4013);
    assert!(
        start.elapsed() >= Duration::from_millis(400),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn undecodable_payloads_are_4004() {
    let server = Server::start(CALM);
    for bad in ["not json", "[1,2]", "{}", r#"{"op":"10"}"#, r#"{"t":7}"#] {
        let (mut c, _) = server.login("1");
        c.send_text(bad);
        c.expect_close(4004);
    }
    let (mut c, _) = server.login("1");
    c.ws.send(Message::binary(vec![1, 2, 3])).expect("send");
    c.expect_close(4004);
    let unattributable = [
        json!(null),
        json!("x"),
        json!({"channel_id": "1"}),
        json!({"guild_id": "g"}),
    ];
    for d in unattributable {
        let (mut c, _) = server.login("1");
        c.send(json!({"t": "VOICE_SERVER_UPDATE", "d": d}));
        c.expect_close(4004);
    }
}

#[test]
fn unknown_opcodes_and_events_are_4005() {
    let server = Server::start(CALM);
    for bad in [
        json!({"op": 5}),
        json!({"op": 0}),
        json!({"op": 12}),
        json!({"t": "TRACK_START"}),
    ] {
        let (mut c, _) = server.login("1");
        c.send(bad);
        c.expect_close(4005);
    }
}

#[test]
fn a_second_identify_is_4011() {
    let server = Server::start(CALM);
    let (mut c, _) = server.login("1");
    c.send(json!({"op": 10}));
    c.expect_close(4011);
}

#[test]
fn rest_needs_the_access_token_and_the_guilds_owner() {
    let server = Server::start(CALM);
    let (mut a, token_a) = server.login("1");
    let (_b, token_b) = server.login("2");
    let (a_tok, b_tok) = (Some(token_a.as_str()), Some(token_b.as_str()));
    assert_eq!(server.status("GET", "/api/player/10", None, None), 401);
    assert_eq!(
        server.status("GET", "/api/player/10", Some("nope"), None),
        401
    );
    assert_eq!(server.status("GET", "/api/player/10", a_tok, None), 404);
    join(&server, &mut a, &token_a, "10", "20");
    let bearer = format!("Bearer {token_a}");
    assert_eq!(
        server.status("GET", "/api/player/10", Some(&bearer), None),
        200
    );
    for (method, path) in [
        ("GET", "/api/player/10"),
        ("GET", "/api/player/10/queue"),
        ("POST", "/api/player/10/queue"),
        ("POST", "/api/player/10/skip"),
        ("POST", "/api/player/10/pause"),
        ("POST", "/api/subscription/10/21"),
        ("DELETE", "/api/subscription/10"),
    ] {
        let status = server.status(method, path, b_tok, Some(track("x", 100)));
        assert_eq!(status, 403, "{method} {path}");
    }
    assert_eq!(server.status("GET", "/api/nothing/10", a_tok, None), 404);
    assert_eq!(server.status("GET", "/elsewhere", None, None), 404);
    assert_eq!(
        server.status("PUT", "/api/player/10/skip", a_tok, None),
        405
    );
    assert_eq!(server.status("GET", "/api/player/abc", a_tok, None), 400);
    assert_eq!(
        server.status("POST", "/api/subscription/10", a_tok, None),
        400
    );
    let join_body = Some(json!({"self_deaf": "yes"}));
    assert_eq!(
        server.status("POST", "/api/subscription/10/20", a_tok, join_body),
        400
    );
    let no_duration = json!({"title": "no duration"});
    for bad in [
        no_duration,
        json!([]),
        json!("x"),
        json!({"duration_ms": -1}),
        json!({"duration_ms": 86_400_001}),
    ] {
        let (status, body) = server.http("POST", "/api/player/10/queue", a_tok, Some(bad));
        assert_eq!(status, 400, "{body}");
        assert!(body["error"].is_string());
    }
    let (status, body) = server.http("POST", "/api/player/10/skip", a_tok, None);
    assert_eq!(
        (status, body),
        (409, json!({"error": "nothing is playing"}))
    );
    a.expect_silence(QUIET);
}

#[test]
fn voice_join_ready_error_and_disconnect() {
    let server = Server::start(CALM);
    let (mut c, token) = server.login("555");
    // A voice update for a guild without a player is 4003.
    let (mut stray, _) = server.login("556");
    let voice = json!({"guild_id": "10", "token": "t", "endpoint": "e"});
    stray.send(json!({"t": "VOICE_SERVER_UPDATE", "d": voice}));
    assert_eq!(stray.expect_close(4003), "No guild available");

    join(&server, &mut c, &token, "10", "20");
    // Another member's voice state is not ours: ignored.
    let theirs = json!({"guild_id": "10", "channel_id": "20", "user_id": "999", "session_id": "x"});
    c.send(json!({"t": "VOICE_STATE_UPDATE", "d": theirs}));
    c.send(json!({"t": "VOICE_SERVER_UPDATE", "d": {"guild_id": "10", "endpoint": "e"}}));
    let error = "VOICE_SERVER_UPDATE needs a token and an endpoint";
    assert_eq!(
        c.event("VOICE_CONNECTION_ERROR"),
        json!({"guild_id": "10", "error": error})
    );
    c.send(json!({"t": "VOICE_STATE_UPDATE", "d": {"guild_id": "10", "user_id": "555"}}));
    has(
        &c.event("VOICE_CONNECTION_ERROR"),
        &json!({"guild_id": "10"}),
    );
    voice_ready(&mut c, "555", "10", "20");
    let (_, state) = server.http("GET", "/api/player/10", Some(&token), None);
    assert_eq!(state["connected"], true);

    // The bot is moved out of voice on Discord's side, then comes back.
    let gone = json!({"guild_id": "10", "channel_id": null, "user_id": "555", "session_id": "abc"});
    c.send(json!({"t": "VOICE_STATE_UPDATE", "d": gone}));
    let disconnect = json!({"guild_id": "10", "channel_id": "20"});
    assert_eq!(c.event("VOICE_CONNECTION_DISCONNECT"), disconnect);
    voice_ready(&mut c, "555", "10", "20");

    // Leaving over REST: the payload to forward, then the disconnect; the player is gone.
    let (status, body) = server.http("DELETE", "/api/subscription/10/20", Some(&token), None);
    assert_eq!(status, 200);
    has(&body, &json!({"channel_id": null, "connected": false}));
    assert_eq!(c.recv(), voice_op("10", None));
    assert_eq!(c.event("VOICE_CONNECTION_DISCONNECT"), disconnect);
    assert_eq!(
        server.status("GET", "/api/player/10", Some(&token), None),
        404
    );
    c.send(json!({"t": "VOICE_SERVER_UPDATE", "d": voice}));
    c.expect_close(4003);
}

#[test]
fn a_queue_of_short_tracks_starts_and_finishes_in_order_on_time() {
    let server = Server::start(CALM);
    let (mut c, token) = server.login("1");
    join(&server, &mut c, &token, "10", "20");
    voice_ready(&mut c, "1", "10", "20");
    let body = json!({"tracks": [track("a", 200), track("b", 150), track("c", 100)]});
    let (status, state) = server.http("POST", "/api/player/10/queue", Some(&token), Some(body));
    assert_eq!(status, 200, "{state}");
    has(&state, &json!({"current": {"title": "a"}, "paused": false}));
    assert_eq!(state["tracks"].as_array().map(Vec::len), Some(2));
    for (title, ms) in [("a", 200), ("b", 150), ("c", 100)] {
        let on_track = json!({"guild_id": "10", "track": {"title": title, "duration_ms": ms}});
        has(&c.event("TRACK_START"), &on_track);
        let started = Instant::now();
        has(
            &c.event("QUEUE_STATE_UPDATE"),
            &json!({"new_state": {"guild_id": "10", "current": {"title": title}}}),
        );
        let finish = c.event("TRACK_FINISH");
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(ms - 30),
            "{title} finished after {took:?}"
        );
        has(&finish, &on_track);
        assert_eq!(finish["reason"], "finished");
    }
    has(
        &c.event("QUEUE_STATE_UPDATE"),
        &json!({"old_state": {"current": {"title": "c"}}, "new_state": {"current": null, "queue_length": 0}, "added": []}),
    );
    c.expect_silence(QUIET);
}

#[test]
fn skip_stop_pause_and_resume() {
    let server = Server::start(CALM);
    let (mut c, token) = server.login("1");
    join(&server, &mut c, &token, "10", "20");
    let post = |path: &str, body: Option<Value>| {
        server.status(
            "POST",
            &format!("/api/player/10/{path}"),
            Some(&token),
            body,
        )
    };
    let tracks = json!([track("a", 5000), track("b", 5000), track("c", 5000)]);
    assert_eq!(post("queue", Some(tracks)), 200);
    has(&c.event("TRACK_START"), &json!({"track": {"title": "a"}}));
    c.event("QUEUE_STATE_UPDATE");
    assert_eq!(post("skip", None), 200);
    has(
        &c.event("TRACK_FINISH"),
        &json!({"track": {"title": "a"}, "reason": "skipped"}),
    );
    has(&c.event("TRACK_START"), &json!({"track": {"title": "b"}}));
    has(
        &c.event("QUEUE_STATE_UPDATE"),
        &json!({"old_state": {"queue_length": 2}, "new_state": {"queue_length": 1}}),
    );

    assert_eq!(post("pause", None), 200);
    has(
        &c.event("AUDIO_PLAYER_STATUS"),
        &json!({"guild_id": "10", "paused": true, "track": {"title": "b"}}),
    );
    assert_eq!(post("pause", None), 200); // Already paused: no event.
    let (_, state) = server.http("GET", "/api/player/10/queue", Some(&token), None);
    assert_eq!(state["paused"], true);
    assert_eq!(post("resume", None), 200);
    has(&c.event("AUDIO_PLAYER_STATUS"), &json!({"paused": false}));

    assert_eq!(post("stop", None), 200);
    has(
        &c.event("TRACK_FINISH"),
        &json!({"track": {"title": "b"}, "reason": "stopped"}),
    );
    has(
        &c.event("QUEUE_STATE_UPDATE"),
        &json!({"new_state": {"current": null, "queue_length": 0}}),
    );
    assert_eq!(post("pause", None), 409);
    assert_eq!(post("stop", None), 200);
    c.expect_silence(QUIET);
}

#[test]
fn a_paused_track_finishes_later_by_the_pause() {
    let server = Server::start(CALM);
    let (mut c, token) = server.login("1");
    join(&server, &mut c, &token, "10", "20");
    let post = |path: &str, body: Option<Value>| {
        server.status(
            "POST",
            &format!("/api/player/10/{path}"),
            Some(&token),
            body,
        )
    };
    post("queue", Some(track("a", 300)));
    c.event("TRACK_START");
    let started = Instant::now();
    c.event("QUEUE_STATE_UPDATE");
    std::thread::sleep(Duration::from_millis(100));
    post("pause", None);
    c.event("AUDIO_PLAYER_STATUS");
    c.expect_silence(Duration::from_millis(400));
    post("resume", None);
    c.event("AUDIO_PLAYER_STATUS");
    c.event("TRACK_FINISH");
    assert!(
        started.elapsed() >= Duration::from_millis(650),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn refused_tracks_are_track_error_and_broken_ones_audio_player_error() {
    let server = Server::start(CALM);
    let (mut c, token) = server.login("1");
    join(&server, &mut c, &token, "10", "20");
    let tracks = json!([
        {"title": "bad", "duration_ms": 100, "error": "unsupported source"},
        {"title": "empty", "duration_ms": 0},
        {"title": "broken", "duration_ms": 1000, "fail_after_ms": 50},
    ]);
    server.http("POST", "/api/player/10/queue", Some(&token), Some(tracks));
    let bad = json!({"guild_id": "10", "track": {"title": "bad"}, "error": "unsupported source"});
    has(&c.event("TRACK_ERROR"), &bad);
    has(
        &c.event("TRACK_ERROR"),
        &json!({"track": {"title": "empty"}}),
    );
    has(
        &c.event("TRACK_START"),
        &json!({"track": {"title": "broken"}}),
    );
    c.event("QUEUE_STATE_UPDATE");
    let broken = json!({"track": {"title": "broken"}, "error": "playback failed after 50 ms"});
    has(&c.event("AUDIO_PLAYER_ERROR"), &broken);
    has(
        &c.event("TRACK_FINISH"),
        &json!({"track": {"title": "broken"}, "reason": "error"}),
    );
    has(
        &c.event("QUEUE_STATE_UPDATE"),
        &json!({"new_state": {"current": null}}),
    );
}

#[test]
fn sigterm_and_sigint_close_with_4010_and_exit_0() {
    for sig in ["-TERM", "-INT"] {
        let mut server = Server::start(CALM);
        let (mut a, _) = server.login("1");
        let mut pending = server.connect("2");
        server.signal(sig);
        assert_eq!(a.expect_close(4010), "Server Closed");
        pending.expect_close(4010);
        let status = server.wait_exit(Duration::from_secs(5)).expect("exits");
        assert!(status.success(), "{status:?}");
    }
}

#[test]
fn options_defaults_and_errors() {
    let run = |args: &[&str]| {
        Command::new(binary())
            .args(args)
            .stderr(Stdio::null())
            .status()
    };
    assert_eq!(run(&["--bogus", "1"]).expect("run").code(), Some(2));
    assert_eq!(run(&["--heartbeat-ms"]).expect("run").code(), Some(2));
    assert_eq!(run(&["--listen", "nowhere"]).expect("run").code(), Some(2));
    // The default address (unless something else holds the port).
    match Server::spawn(binary(), &["--password", "x"]) {
        Ok(server) => assert_eq!(server.addr, "127.0.0.1:9000".parse().expect("addr")),
        Err(stderr) => assert!(stderr.contains("in use"), "{stderr}"),
    }
}

#[test]
fn a_generated_password_is_printed_and_works() {
    let server = Server::spawn(binary(), &["--listen", "127.0.0.1:0"]).expect("listening");
    // The password is printed first, then the address.
    let log = server.process.log();
    let mut lines = log.lines();
    let password = lines
        .next()
        .unwrap_or_default()
        .strip_prefix("no --password given: the password is ")
        .unwrap_or_default();
    assert!(
        lines.next().is_some_and(|l| l.starts_with("listening on ")),
        "{log}"
    );
    let mut c = server.ws(&[("Authorization", password), ("client-id", "1")]);
    has(&c.recv(), &json!({"op": 0}));
}
