//! End-to-end tests of the bounds of `examples/nexus.rs` (docs/protocols/nexus.md): liveness
//! (an identified client is never expired for silence; a new socket replaces the old one and
//! keeps its players, which outlive the last socket for a window), the queue and per-client
//! caps, paged listings and events proportional to the change.
//! Set `POSTERN_NEXUS_BIN` to a built `nexus` binary to skip the build step.

#[path = "support_music/nexus_helpers.rs"]
mod nexus_helpers;
mod support;
mod support_music;

use nexus_helpers::{binary, join, track, CALM};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support_music::{has, Incoming, Server, PASSWORD, QUIET};

#[test]
fn a_new_socket_for_a_client_id_replaces_the_old_one_with_4006_and_keeps_its_players() {
    let server = Server::start(CALM);
    let (mut old, old_token) = server.login("7");
    join(&server, &mut old, &old_token, "10", "20");
    let queued = json!([track("a", 60_000), track("b", 60_000)]);
    let (status, _) = server.http(
        "POST",
        "/api/player/10/queue",
        Some(&old_token),
        Some(queued),
    );
    assert_eq!(status, 200);
    // The old socket stays open and silent (half-open, as after a dead link): the new one
    // is served at once.
    let started = Instant::now();
    let (mut new, token) = server.login("7");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    let closed = loop {
        match old.next(support_music::EXPECT) {
            Some(Incoming::Json(_)) => continue, // the events before the takeover
            Some(Incoming::Close(code, reason)) => break (code, reason),
            other => panic!("expected close 4006, got {other:?}"),
        }
    };
    assert_eq!(closed, (4006, "Session expired".to_owned()));
    assert_eq!(
        server.status("GET", "/api/player/10", Some(&old_token), None),
        401
    );
    let (status, state) = server.http("GET", "/api/player/10", Some(&token), None);
    assert_eq!(status, 200, "{state}");
    has(
        &state,
        &json!({"current": {"title": "a"}, "queue_length": 1}),
    );
    // The player's events now go to the new socket.
    assert_eq!(
        server.status("POST", "/api/player/10/skip", Some(&token), None),
        200
    );
    has(
        &new.event("TRACK_FINISH"),
        &json!({"track": {"title": "a"}}),
    );
    // Two sockets that have not identified yet may share an id: the later IDENTIFY wins.
    let mut first = server.connect("8");
    let mut second = server.connect("8");
    first.send(json!({"op": 10}));
    first.event("READY");
    second.send(json!({"op": 10}));
    second.event("READY");
    first.expect_close(4006);
}

#[test]
fn an_identified_client_that_sends_nothing_is_kept_for_ten_intervals() {
    // Heartbeat interval 200 ms; the reactor pings after 300 ms of silence and closes after
    // 1 s: this client answers the Pings (its WebSocket layer does) and sends nothing else.
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--password",
        PASSWORD,
        "--heartbeat-ms",
        "200",
        "--ping-interval-ms",
        "300",
        "--idle-timeout-ms",
        "1000",
    ];
    let server = Server::spawn(binary(), &args).expect("listening");
    let (mut silent, token) = server.login("1");
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(10 * 200 + 200) {
        silent.expect_silence(Duration::from_millis(100)); // Reads (and answers Pings) only.
    }
    assert_eq!(
        server.status("GET", "/api/player/1", Some(&token), None),
        404
    );
    silent.ping();
}

#[test]
fn a_closed_socket_revokes_its_token_and_its_players_wait_the_window() {
    let server = Server::start_with(&["--player-window-ms", "600"]);
    let (mut a, token_a) = server.login("1");
    join(&server, &mut a, &token_a, "10", "20");
    drop(a);
    std::thread::sleep(QUIET);
    assert_eq!(
        server.status("GET", "/api/player/10", Some(&token_a), None),
        401
    );
    // Within the window the player is still the client's: another client cannot take it,
    // and the client's next socket finds it.
    let (_b, token_b) = server.login("2");
    let join_10 = |token: &str| server.status("POST", "/api/subscription/10/20", Some(token), None);
    assert_eq!(join_10(&token_b), 403);
    let (again, token) = server.login("1");
    assert_eq!(
        server.status("GET", "/api/player/10", Some(&token), None),
        200
    );
    // Gone for good once the window passes without a socket.
    drop(again);
    std::thread::sleep(Duration::from_millis(600) + 2 * QUIET);
    assert_eq!(join_10(&token_b), 200);
}

#[test]
fn queues_and_clients_are_bounded_with_exact_answers() {
    let server = Server::start_with(&[
        "--max-queue",
        "3",
        "--max-client-tracks",
        "5",
        "--max-client-players",
        "2",
    ]);
    let (mut c, token) = server.login("1");
    for guild in ["10", "11"] {
        join(&server, &mut c, &token, guild, "20");
    }
    let (status, body) = server.http("POST", "/api/subscription/12/20", Some(&token), None);
    let players = "too many players: one client owns at most 2";
    assert_eq!((status, body), (409, json!({"error": players})));
    let queue = |guild: &str, n: usize| {
        let tracks: Vec<Value> = (0..n).map(|i| track(&i.to_string(), 60_000)).collect();
        server.http(
            "POST",
            &format!("/api/player/{guild}/queue"),
            Some(&token),
            Some(json!(tracks)),
        )
    };
    // Guild 10: one playing, three waiting (a request counts in full against the queue,
    // the track it starts included); a fourth waiting track is over the queue.
    assert_eq!(queue("10", 3).0, 200);
    assert_eq!(queue("10", 1).0, 200);
    let full = "the queue is full: at most 3 tracks wait in one player";
    assert_eq!(queue("10", 1), (409, json!({"error": full})));
    // Guild 11: one playing, two waiting makes five for the client; a sixth is over.
    assert_eq!(queue("11", 2).0, 200);
    assert_eq!(queue("11", 1).0, 200);
    let client = "too many tracks: at most 5 wait in all of one client's players";
    assert_eq!(queue("11", 1), (409, json!({"error": client})));
    // All or none: nothing of a refused request was queued.
    let (_, state) = server.http("GET", "/api/player/11", Some(&token), None);
    assert_eq!(state["queue_length"], 2);
    // Skipping frees a place.
    assert_eq!(
        server.status("POST", "/api/player/11/skip", Some(&token), None),
        200
    );
    assert_eq!(queue("11", 1).0, 200);
}

#[test]
fn a_listing_is_paged_and_an_event_carries_only_the_change() {
    let server = Server::start(CALM);
    let (mut c, token) = server.login("1");
    join(&server, &mut c, &token, "10", "20");
    let long = "x".repeat(1000);
    let tracks: Vec<Value> = (0..60)
        .map(|i| json!({"title": format!("{i}"), "artist": long, "duration_ms": 60_000}))
        .collect();
    let (status, state) = server.http(
        "POST",
        "/api/player/10/queue?limit=0",
        Some(&token),
        Some(json!(tracks)),
    );
    assert_eq!(status, 200, "{state}");
    has(
        &state,
        &json!({"queue_length": 59, "offset": 0, "tracks": []}),
    );
    c.event("TRACK_START");
    c.event("QUEUE_STATE_UPDATE");
    // The default page is 50 tracks; `offset` and `limit` pick another.
    let (_, first) = server.http("GET", "/api/player/10", Some(&token), None);
    assert_eq!(first["tracks"].as_array().map(Vec::len), Some(50));
    let (_, page) = server.http(
        "GET",
        "/api/player/10?offset=57&limit=10",
        Some(&token),
        None,
    );
    has(
        &page,
        &json!({"offset": 57, "queue_length": 59, "tracks": [{"title": "58"}, {"title": "59"}]}),
    );
    let (status, body) = server.http("GET", "/api/player/10?limit=101", Some(&token), None);
    assert_eq!(
        (status, body),
        (400, json!({"error": "`limit` is at most 100"}))
    );
    let (status, body) = server.http("GET", "/api/player/10?offset=-1", Some(&token), None);
    assert_eq!(
        (status, body),
        (400, json!({"error": "`offset` must be a whole number"}))
    );
    // Adding one track to a queue of 59 long ones: the event is about that track only.
    let (status, _) = server.http(
        "POST",
        "/api/player/10/queue?limit=0",
        Some(&token),
        Some(track("new", 1000)),
    );
    assert_eq!(status, 200);
    let raw = match c.next(support_music::EXPECT) {
        Some(Incoming::Json(v)) => v,
        other => panic!("expected QUEUE_STATE_UPDATE, got {other:?}"),
    };
    assert_eq!(raw["t"], "QUEUE_STATE_UPDATE");
    let size = raw.to_string().len();
    assert!(size < 4 * 1024, "{size} bytes: {raw}");
    has(
        &raw["d"],
        &json!({"old_state": {"queue_length": 59}, "new_state": {"guild_id": "10", "queue_length": 60}, "added": [{"title": "new"}]}),
    );
}
