//! End-to-end tests of the bounds of `examples/nightingale.rs` (docs/protocols/nightingale.md):
//! liveness by WebSocket Ping/Pong (a peer that answers nothing is closed within the bound,
//! one whose WebSocket layer answers Pings is kept however silent), the session credential in
//! the `session` header, the queue and per-session caps, and paged listings.
//! Set `POSTERN_NIGHTINGALE_BIN` to a built `nightingale` binary to skip the build step.

mod support;
mod support_music;

use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use support_music::{has, Client, Server, PASSWORD};

/// The reactor's Ping interval and idle bound in these tests (the defaults are 20 s, 60 s).
const PING_MS: u64 = 200;
const IDLE_MS: u64 = 800;
/// The reactor's wait for the peer's Close after sending its own (`Config::close_timeout`).
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

fn binary() -> PathBuf {
    support_music::example_binary("nightingale", "POSTERN_NIGHTINGALE_BIN")
}

fn start(more: &[&str]) -> Server {
    let (ping, idle) = (PING_MS.to_string(), IDLE_MS.to_string());
    let mut args = vec![
        "--listen",
        "127.0.0.1:0",
        "--password",
        PASSWORD,
        "--ping-interval-ms",
        &ping,
        "--idle-timeout-ms",
        &idle,
    ];
    args.extend_from_slice(more);
    Server::spawn(binary(), &args).expect("listening")
}

/// Opens `/ws` as bot 7: the client and its session.
fn open(server: &Server) -> (Client, String) {
    let mut c = server
        .try_ws("/ws?shards=1&user_id=7", &[])
        .expect("upgrade");
    let ready = c.recv();
    let session = ready["data"]["session"].as_str().expect("session");
    (c, session.to_owned())
}

/// A REST request with the password and the session in its header.
fn rest(
    server: &Server,
    method: &str,
    route: &str,
    session: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let headers = [("Authorization", PASSWORD), ("session", session)];
    server.http_with(method, &format!("/api/v1/{route}"), &headers, body)
}

fn tracks(n: usize) -> Value {
    let all: Vec<Value> = (0..n)
        .map(|i| json!({"title": i.to_string(), "duration_ms": 60_000}))
        .collect();
    json!(all)
}

#[test]
fn a_peer_that_answers_nothing_is_closed_within_the_bound() {
    let server = start(&[]);
    let mut raw = TcpStream::connect(server.addr).expect("connect");
    let upgrade = "GET /ws?shards=1&user_id=7 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\
                   Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                   Sec-WebSocket-Version: 13\r\n\r\n";
    raw.write_all(upgrade.as_bytes()).expect("upgrade");
    let opened = Instant::now();
    // The peer now reads nothing and answers nothing. After the bound, what the server sent
    // is waiting in our receive buffer: the 101, `ready`, the Pings, and a Close 1001.
    std::thread::sleep(Duration::from_millis(IDLE_MS + 400));
    raw.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n @ 1..) = raw.read(&mut buf) {
        got.extend_from_slice(&buf[..n]);
    }
    let close = [0x88, 0x0e, 0x03, 0xe9]; // FIN+Close, 14 bytes: 1001 "idle timeout"
    let at = got.windows(4).position(|w| w == close);
    let at = at.unwrap_or_else(|| panic!("no Close 1001 in {:?}", String::from_utf8_lossy(&got)));
    assert_eq!(&got[at + 4..at + 16], b"idle timeout");
    assert!(
        got.windows(2).any(|w| w == [0x89, 0x00]),
        "no Ping before the close"
    );
    // Without our Close the server drops the TCP connection after its close timeout.
    raw.set_read_timeout(Some(CLOSE_TIMEOUT + Duration::from_secs(3)))
        .expect("timeout");
    let rest = raw.read(&mut buf);
    assert!(matches!(rest, Ok(0)) || rest.is_err(), "{rest:?}");
    let took = opened.elapsed();
    let bound = Duration::from_millis(IDLE_MS) + CLOSE_TIMEOUT + Duration::from_secs(2);
    assert!(took < bound, "the connection ended after {took:?}");
}

#[test]
fn a_silent_client_that_answers_pings_is_kept() {
    let server = start(&[]);
    let (mut c, session) = open(&server);
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(4 * IDLE_MS) {
        c.expect_silence(Duration::from_millis(100)); // Reads (and answers Pings) only.
    }
    assert_eq!(
        rest(&server, "GET", "player?guild_id=1", &session, None).0,
        404
    );
    let connect = "connect?guild_id=1&channel_id=2";
    assert_eq!(rest(&server, "PUT", connect, &session, None).0, 200);
    has(&c.recv(), &json!({"op": "forward"}));
}

#[test]
fn the_session_goes_in_its_header() {
    let server = start(&[]);
    let (_c, session) = open(&server);
    let (status, body) = rest(&server, "GET", "player?guild_id=1", &session, None);
    assert_eq!(
        (status, body),
        (
            404,
            json!({"error": "no player for this guild: connect first"})
        )
    );
    let headers = [("Authorization", PASSWORD)];
    let (status, body) = server.http_with("GET", "/api/v1/player?guild_id=1", &headers, None);
    assert_eq!(
        (status, body),
        (400, json!({"error": "the session header is required"}))
    );
}

#[test]
fn queues_and_sessions_are_bounded_with_exact_answers() {
    let server = start(&[
        "--max-queue",
        "3",
        "--max-client-tracks",
        "4",
        "--max-client-players",
        "1",
    ]);
    let (_c, session) = open(&server);
    assert_eq!(
        rest(
            &server,
            "PUT",
            "connect?guild_id=1&channel_id=2",
            &session,
            None
        )
        .0,
        200
    );
    let (status, body) = rest(
        &server,
        "PUT",
        "connect?guild_id=3&channel_id=2",
        &session,
        None,
    );
    let players = "too many players: one client owns at most 1";
    assert_eq!((status, body), (409, json!({"error": players})));
    let enqueue = |n: usize| {
        rest(
            &server,
            "POST",
            "playback/enqueue?guild_id=1",
            &session,
            Some(tracks(n)),
        )
    };
    let (status, body) = enqueue(4);
    let full = "the queue is full: at most 3 tracks wait in one player";
    assert_eq!((status, body), (409, json!({"error": full})));
    assert_eq!(enqueue(3).0, 200); // One plays, two wait.
    assert_eq!(enqueue(1).0, 200); // Three wait.
    assert_eq!(enqueue(1), (409, json!({"error": full})));
    // A second session's guild shares the server but not the first session's quota.
    let (_d, other) = open(&server);
    assert_eq!(
        rest(
            &server,
            "PUT",
            "connect?guild_id=1&channel_id=2",
            &other,
            None
        )
        .0,
        200
    );
    let (status, _) = rest(
        &server,
        "POST",
        "playback/enqueue?guild_id=1",
        &other,
        Some(tracks(3)),
    );
    assert_eq!(status, 200);
}

#[test]
fn a_per_session_track_quota_applies_across_guilds() {
    let server = start(&["--max-client-tracks", "2"]);
    let (_c, session) = open(&server);
    for guild in [1, 2] {
        let connect = format!("connect?guild_id={guild}&channel_id=5");
        assert_eq!(rest(&server, "PUT", &connect, &session, None).0, 200);
    }
    let enqueue = |guild: u64, n: usize| {
        let route = format!("playback/enqueue?guild_id={guild}");
        rest(&server, "POST", &route, &session, Some(tracks(n)))
    };
    assert_eq!(enqueue(1, 2).0, 200); // One plays, one waits.
    assert_eq!(enqueue(2, 1).0, 200); // It plays at once.
    assert_eq!(enqueue(2, 1).0, 200); // It waits: two wait in all.
    let over = "too many tracks: at most 2 wait in all of one client's players";
    assert_eq!(enqueue(2, 1), (409, json!({"error": over})));
}

#[test]
fn a_listing_is_paged() {
    let server = start(&[]);
    let (_c, session) = open(&server);
    assert_eq!(
        rest(
            &server,
            "PUT",
            "connect?guild_id=1&channel_id=2",
            &session,
            None
        )
        .0,
        200
    );
    let route = "playback/enqueue?guild_id=1&limit=0";
    let (status, state) = rest(&server, "POST", route, &session, Some(tracks(120)));
    assert_eq!(status, 200, "{state}");
    has(
        &state,
        &json!({"queue_length": 119, "offset": 0, "queue": []}),
    );
    let (_, first) = rest(&server, "GET", "player?guild_id=1", &session, None);
    assert_eq!(first["queue"].as_array().map(Vec::len), Some(50));
    let (_, last) = rest(
        &server,
        "GET",
        "player?guild_id=1&offset=100&limit=100",
        &session,
        None,
    );
    assert_eq!(last["queue"].as_array().map(Vec::len), Some(19));
    has(&last["queue"][0], &json!({"title": "101"}));
    let (status, body) = rest(
        &server,
        "GET",
        "player?guild_id=1&limit=101",
        &session,
        None,
    );
    assert_eq!(
        (status, body),
        (400, json!({"error": "`limit` is at most 100"}))
    );
}
