//! End-to-end tests of `examples/nightingale.rs`, the Nightingale gateway (seed 001), against
//! the release binary run as a subprocess (one server per test), with a tungstenite client and
//! plain HTTP/1.1 requests. The protocol is docs/protocols/nightingale.md; these tests pin it.
//! Set `POSTERN_NIGHTINGALE_BIN` to a built `nightingale` binary to skip the build step.

mod support;
mod support_music;

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support_music::{has, Client, Server, PASSWORD, QUIET};
use tungstenite::Message;

const TRACK_FIELDS: [&str; 8] = [
    "album",
    "artist",
    "channel",
    "duration",
    "source_url",
    "thumbnail",
    "title",
    "track",
];

fn binary() -> PathBuf {
    support_music::example_binary("nightingale", "POSTERN_NIGHTINGALE_BIN")
}

impl Server {
    fn start(resume_window_ms: u64) -> Server {
        let window = resume_window_ms.to_string();
        let args = [
            "--listen",
            "127.0.0.1:0",
            "--password",
            PASSWORD,
            "--resume-window-ms",
            &window,
        ];
        Server::spawn(binary(), &args).expect("listening")
    }

    /// Opens `/ws` as bot `user`: the client and its session.
    fn open(&self, user: u64) -> (Client, String) {
        let mut c = self
            .try_ws(&format!("/ws?shards=1&user_id={user}"), &[])
            .expect("upgrade");
        let ready = c.recv();
        has(&ready, &json!({"op": "ready", "data": {"resumed": false}}));
        assert_eq!(
            ready["data"].as_object().map(|d| d.len()),
            Some(2),
            "{ready}"
        );
        (
            c,
            ready["data"]["session"]
                .as_str()
                .expect("session")
                .to_owned(),
        )
    }

    /// Resumes `session`: the client, after checking `ready` (resumed, same session).
    fn resume(&self, session: &str) -> Client {
        let mut c = self
            .try_ws("/ws/resume", &[("session", session)])
            .expect("resume upgrade");
        let ready = json!({"op": "ready", "data": {"session": session, "resumed": true}});
        assert_eq!(c.recv(), ready);
        c
    }

    /// A REST request with the password.
    fn http(&self, method: &str, target: &str, body: Option<Value>) -> (u16, Value) {
        self.http_as(method, target, Some(PASSWORD), body)
    }

    fn status(&self, method: &str, target: &str, body: Option<Value>) -> u16 {
        self.http(method, target, body).0
    }
}

impl Client {
    /// The next payload: op `op` whose `data.type` is `kind`; returns `data.data`.
    fn typed(&mut self, op: &str, kind: &str) -> Value {
        let v = self.recv();
        has(&v, &json!({"op": op, "data": {"type": kind}}));
        assert_eq!(v["data"].as_object().map(|d| d.len()), Some(2), "{v}");
        v["data"]["data"].clone()
    }
}

fn track(title: &str, ms: u64) -> Value {
    json!({"title": title, "duration_ms": ms, "artist": "someone", "url": "https://example.com/t"})
}

/// Checks a track object: exactly the seed's eight fields, its title and duration.
fn check_track(t: &Value, title: &str, ms: u64) {
    let object = t.as_object().expect("a track object");
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, TRACK_FIELDS, "{t}");
    has(t, &json!({"title": title, "duration": ms.to_string()}));
}

/// `PATH?session=S` plus `more` query parameters.
fn at(path: &str, session: &str, more: &str) -> String {
    format!("/api/v1/{path}?session={session}{more}")
}

/// Connects `session` to `guild`'s `channel` over REST and completes the voice handshake.
fn connect_voice(
    server: &Server,
    c: &mut Client,
    session: &str,
    user: u64,
    guild: u64,
    channel: u64,
) {
    let (g, ch) = (guild.to_string(), channel.to_string());
    let (status, body) = server.http(
        "PUT",
        &at(
            "connect",
            session,
            &format!("&guild_id={g}&channel_id={ch}"),
        ),
        None,
    );
    assert_eq!(status, 200, "{body}");
    let d = json!({"channel_id": ch, "guild_id": g, "self_deaf": true, "self_mute": false});
    assert_eq!(
        c.recv(),
        json!({"op": "forward", "data": {"op": 4, "d": d}})
    );
    let state = json!({"guild_id": g, "channel_id": ch, "user_id": user.to_string(), "session_id": "vsess"});
    assert_eq!(
        server.status("POST", &at("voice/state", session, ""), Some(state)),
        200
    );
    let voice = json!({"token": "vtok", "guild_id": g, "endpoint": "voice.example:443"});
    assert_eq!(
        server.status("POST", &at("voice/server", session, ""), Some(voice)),
        200
    );
    let up = c.typed("update_state", "connect_gateway");
    assert_eq!(up.as_object().map(|o| o.len()), Some(5), "{up}");
    let want = json!({"channel": channel, "guild": guild, "session": "vsess", "server": "voice.example:443"});
    has(&up, &want);
    assert!(
        up["ssrc"]
            .as_u64()
            .is_some_and(|s| s > 0 && s <= u64::from(u32::MAX)),
        "{up}"
    );
}

fn play(server: &Server, session: &str, guild: u64, how: &str, body: Value) -> u16 {
    let target = at(
        &format!("playback/{how}"),
        session,
        &format!("&guild_id={guild}"),
    );
    server.status("POST", &target, Some(body))
}

#[test]
fn ws_needs_integer_shards_and_user_id_then_sends_ready() {
    let server = Server::start(60_000);
    let (_c, session) = server.open(42);
    let parts: Vec<usize> = session.split('-').map(str::len).collect();
    assert_eq!(parts, [8, 4, 4, 4, 12], "{session}");
    assert_eq!(&session[14..15], "4", "a version 4 UUID: {session}");
    assert_ne!(server.open(42).1, session);
    for bad in [
        "/ws",
        "/ws?shards=1",
        "/ws?user_id=1",
        "/ws?shards=x&user_id=1",
        "/ws?shards=1&user_id=-5",
        "/ws?shards=0&user_id=1",
        "/ws?shards=1.5&user_id=1",
    ] {
        assert_eq!(server.try_ws(bad, &[]).err(), Some(400), "{bad}");
    }
    assert_eq!(
        server.try_ws("/elsewhere?shards=1&user_id=1", &[]).err(),
        Some(404)
    );
}

#[test]
fn resume_refusals_400_and_404() {
    let server = Server::start(300);
    assert_eq!(server.try_ws("/ws/resume", &[]).err(), Some(400));
    let unknown = ("session", "ad13c35f-7bf4-413b-997d-eef2fe009f98");
    assert_eq!(server.try_ws("/ws/resume", &[unknown]).err(), Some(404));
    assert_eq!(
        server.try_ws("/ws/resume", &[("session", "garbage")]).err(),
        Some(404)
    );
    // Expired: the window (300 ms) passed.
    let (c, session) = server.open(1);
    c.close();
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(
        server.try_ws("/ws/resume", &[("session", &session)]).err(),
        Some(404)
    );
    assert_eq!(
        server.status("GET", &at("player", &session, "&guild_id=1"), None),
        404
    );
}

#[test]
fn resume_replays_what_was_missed_in_order_then_goes_live() {
    for abrupt in [false, true] {
        let server = Server::start(60_000);
        let (mut c, session) = server.open(7);
        connect_voice(&server, &mut c, &session, 7, 10, 20);
        let tracks = json!([track("a", 150), track("b", 150), track("c", 800)]);
        assert_eq!(play(&server, &session, 10, "enqueue", tracks), 200);
        check_track(&c.typed("event", "track_start"), "a", 150);
        if abrupt {
            drop(c); // No closing handshake: the TCP connection just ends.
        } else {
            c.close();
        }
        std::thread::sleep(Duration::from_millis(450)); // a and b end, c starts.
        let mut c = server.resume(&session);
        let end = c.typed("event", "track_end");
        assert_eq!(end["stopped"], false);
        check_track(&end["track"], "a", 150);
        check_track(&c.typed("event", "track_start"), "b", 150);
        check_track(&c.typed("event", "track_end")["track"], "b", 150);
        check_track(&c.typed("event", "track_start"), "c", 800);
        c.expect_silence(Duration::from_millis(100));
        // Live again: the rest arrives as it happens.
        check_track(&c.typed("event", "track_end")["track"], "c", 800);
    }
}

#[test]
fn resuming_a_live_session_closes_the_old_connection_with_1000() {
    let server = Server::start(60_000);
    let (mut old, session) = server.open(1);
    server.status(
        "PUT",
        &at("connect", &session, "&guild_id=5&channel_id=6"),
        None,
    );
    assert_eq!(old.recv()["op"], "forward");
    let mut new = server.resume(&session);
    old.expect_close(1000);
    // What the open connection got is not sent again; the session goes on on the new one.
    new.expect_silence(QUIET);
    server.status(
        "PUT",
        &at("connect", &session, "&guild_id=7&channel_id=8"),
        None,
    );
    assert_eq!(new.recv()["data"]["d"]["guild_id"], "7");
}

#[test]
fn voice_connect_reconnect_and_disconnect() {
    let server = Server::start(60_000);
    let (mut c, session) = server.open(7);
    connect_voice(&server, &mut c, &session, 7, 10, 20);
    // A new voice server while connected: reconnect_gateway.
    let voice = json!({"token": "t2", "guild_id": "10", "endpoint": "other.example:443"});
    server.status("POST", &at("voice/server", &session, ""), Some(voice));
    let again = c.typed("update_state", "reconnect_gateway");
    has(
        &again,
        &json!({"server": "other.example:443", "guild": 10, "channel": 20}),
    );
    // Someone else's voice state is not applied.
    let theirs = json!({"guild_id": "10", "channel_id": null, "user_id": "99", "session_id": "x"});
    let (status, body) = server.http("POST", &at("voice/state", &session, ""), Some(theirs));
    assert_eq!((status, body), (200, json!({"applied": false})));
    // The bot left the channel on Discord's side.
    let gone = json!({"guild_id": "10", "channel_id": null, "user_id": "7", "session_id": "vsess"});
    server.status("POST", &at("voice/state", &session, ""), Some(gone));
    let down = json!({"channel": 20, "guild": 10, "session": "vsess"});
    assert_eq!(c.typed("update_state", "disconnect_gateway"), down);
    // Back, then leaving over REST: forward (null channel), then disconnect_gateway.
    connect_voice(&server, &mut c, &session, 7, 10, 21);
    let (status, body) = server.http("DELETE", &at("disconnect", &session, "&guild_id=10"), None);
    assert_eq!((status, body["channel_id"].clone()), (200, Value::Null));
    let d = json!({"channel_id": null, "guild_id": "10", "self_deaf": true, "self_mute": false});
    assert_eq!(
        c.recv(),
        json!({"op": "forward", "data": {"op": 4, "d": d}})
    );
    let down = json!({"channel": 21, "guild": 10, "session": "vsess"});
    assert_eq!(c.typed("update_state", "disconnect_gateway"), down);
    assert_eq!(
        server.status("DELETE", &at("disconnect", &session, "&guild_id=10"), None),
        404
    );
}

#[test]
fn a_queue_of_short_tracks_starts_and_ends_in_order_on_time() {
    let server = Server::start(60_000);
    let (mut c, session) = server.open(7);
    connect_voice(&server, &mut c, &session, 7, 10, 20);
    let body = json!({"tracks": [track("a", 200), track("b", 150), track("c", 100)]});
    let (status, state) = server.http(
        "POST",
        &at("playback/enqueue", &session, "&guild_id=10"),
        Some(body),
    );
    assert_eq!(status, 200, "{state}");
    has(&state, &json!({"guild_id": 10, "current": {"title": "a"}}));
    assert_eq!(state["queue"].as_array().map(Vec::len), Some(2));
    for (title, ms) in [("a", 200), ("b", 150), ("c", 100)] {
        let start = c.typed("event", "track_start");
        let started = Instant::now();
        check_track(&start, title, ms);
        let fields = json!({"artist": "someone", "source_url": "https://example.com/t", "album": null, "thumbnail": null, "channel": null});
        has(&start, &fields);
        assert!(
            start["track"]
                .as_str()
                .is_some_and(|t| t.starts_with("10:")),
            "{start}"
        );
        let end = c.typed("event", "track_end");
        // Measured from when this client read track_start: on a loaded machine that read can
        // be late by tens of milliseconds, so only half the track is asserted (the player's
        // exact timing is tested with a fake clock in tests/player.rs).
        assert!(
            started.elapsed() >= Duration::from_millis(ms / 2),
            "{title}: {:?}",
            started.elapsed()
        );
        assert_eq!(end["stopped"], false);
        check_track(&end["track"], title, ms);
    }
    c.expect_silence(QUIET);
}

#[test]
fn play_skip_stop_pause_and_errors() {
    let server = Server::start(60_000);
    let (mut c, session) = server.open(7);
    connect_voice(&server, &mut c, &session, 7, 10, 20);
    let act = |action: &str| {
        let target = at(&format!("playback/{action}"), &session, "&guild_id=10");
        server.http("POST", &target, None)
    };
    assert_eq!(act("skip").0, 409);
    play(
        &server,
        &session,
        10,
        "enqueue",
        json!([track("a", 5000), track("b", 5000)]),
    );
    check_track(&c.typed("event", "track_start"), "a", 5000);
    // Play: the current track ends stopped, the new one starts, the queue stays.
    assert_eq!(play(&server, &session, 10, "play", track("now", 5000)), 200);
    has(
        &c.typed("event", "track_end"),
        &json!({"stopped": true, "track": {"title": "a"}}),
    );
    check_track(&c.typed("event", "track_start"), "now", 5000);
    assert_eq!(act("skip").0, 200);
    has(
        &c.typed("event", "track_end"),
        &json!({"stopped": true, "track": {"title": "now"}}),
    );
    check_track(&c.typed("event", "track_start"), "b", 5000);
    // Pause and resume produce no event (the seed has none); they move the end.
    assert_eq!(act("pause").1["paused"], true);
    let resume = at("playback/resume", &session, "&guild_id=10");
    assert_eq!(server.http("PATCH", &resume, None).1["paused"], false);
    assert_eq!(act("stop").0, 200);
    has(
        &c.typed("event", "track_end"),
        &json!({"stopped": true, "track": {"title": "b"}}),
    );
    // Refused and broken tracks: track_errored with the error and the track.
    let bad = json!({"title": "bad", "duration_ms": 100, "error": "unsupported source"});
    let broken = json!({"title": "broken", "duration_ms": 500, "fail_after_ms": 50});
    play(&server, &session, 10, "enqueue", json!([bad, broken]));
    let e = c.typed("event", "track_errored");
    assert_eq!(e["error"], "unsupported source");
    check_track(&e["track"], "bad", 100);
    check_track(&c.typed("event", "track_start"), "broken", 500);
    let e = c.typed("event", "track_errored");
    assert_eq!(e["error"], "playback failed after 50 ms");
    check_track(&e["track"], "broken", 500);
    c.expect_silence(QUIET);
}

#[test]
fn rest_authorisation_sessions_and_bad_input() {
    let server = Server::start(60_000);
    let (mut c, session) = server.open(7);
    let player = at("player", &session, "&guild_id=10");
    assert_eq!(server.http_as("GET", &player, None, None).0, 401);
    assert_eq!(server.http_as("GET", &player, Some("wrong"), None).0, 401);
    let bearer = format!("Bearer {PASSWORD}");
    assert_eq!(server.http_as("GET", &player, Some(&bearer), None).0, 404);
    assert_eq!(
        server.status("GET", "/api/v1/player?guild_id=10", None),
        400
    );
    let unknown = at(
        "player",
        "ad13c35f-7bf4-413b-997d-eef2fe009f98",
        "&guild_id=10",
    );
    assert_eq!(server.status("GET", &unknown, None), 404);
    assert_eq!(
        server.status("GET", &at("player", &session, "&guild_id=x"), None),
        400
    );
    assert_eq!(
        server.status("GET", &at("nothing", &session, ""), None),
        404
    );
    let connect = at("connect", &session, "&guild_id=1&channel_id=2");
    assert_eq!(server.status("GET", &connect, None), 405);
    assert_eq!(
        server.status("PUT", &at("connect", &session, "&guild_id=1"), None),
        400
    );
    assert_eq!(
        server.status("PUT", &format!("{connect}&self_deaf=maybe"), None),
        400
    );
    assert_eq!(play(&server, &session, 10, "enqueue", track("a", 100)), 404);
    // The session header works as well as the query parameter.
    let mut s = TcpStream::connect(server.addr).expect("connect");
    let head = "PUT /api/v1/connect?guild_id=10&channel_id=20 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n";
    let head = format!("{head}Authorization: {PASSWORD}\r\nsession: {session}\r\n\r\n");
    s.write_all(head.as_bytes()).expect("write");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read");
    assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
    assert_eq!(c.recv()["op"], "forward");
    let long = json!({"duration_ms": 86_400_001});
    for bad in [
        json!({"duration_ms": "long"}),
        json!({"title": "x"}),
        long,
        json!(7),
    ] {
        assert_eq!(
            play(&server, &session, 10, "enqueue", bad.clone()),
            400,
            "{bad}"
        );
        assert_eq!(
            play(&server, &session, 10, "play", bad.clone()),
            400,
            "{bad}"
        );
    }
    let voice =
        |kind: &str, body: Value| server.status("POST", &at(kind, &session, ""), Some(body));
    assert_eq!(
        voice("voice/server", json!({"guild_id": "10", "endpoint": "e"})),
        400
    );
    let null_endpoint = json!({"guild_id": "10", "token": "t", "endpoint": null});
    assert_eq!(voice("voice/server", null_endpoint), 400);
    assert_eq!(
        voice("voice/state", json!({"guild_id": "10", "user_id": "7"})),
        400
    );
    let other_guild =
        json!({"guild_id": "11", "channel_id": "1", "user_id": "7", "session_id": "s"});
    assert_eq!(voice("voice/state", other_guild), 404);
    let no_guild = json!({"channel_id": "1", "user_id": "7", "session_id": "s"});
    assert_eq!(voice("voice/state", no_guild), 400);
    c.expect_silence(QUIET);
}

#[test]
fn client_messages_are_closed_with_1003() {
    let server = Server::start(60_000);
    let (mut c, _) = server.open(1);
    let text = r#"{"op":"update_voice_state","data":{}}"#;
    c.ws.send(Message::text(text)).expect("send");
    c.expect_close(1003);
    let (mut c, _) = server.open(1);
    c.ws.send(Message::binary(vec![0u8; 3])).expect("send");
    c.expect_close(1003);
}

#[test]
fn sigterm_closes_with_1001_and_exits_0() {
    let mut server = Server::start(60_000);
    let (mut c, _) = server.open(1);
    server.signal("-TERM");
    c.expect_close(1001);
    let status = server.wait_exit(Duration::from_secs(5)).expect("exits");
    assert!(status.success(), "{status:?}");
}

#[test]
fn options_defaults_and_errors() {
    let run = |args: &[&str]| {
        Command::new(binary())
            .args(args)
            .stderr(Stdio::null())
            .status()
    };
    assert_eq!(run(&["--nope", "1"]).expect("run").code(), Some(2));
    assert_eq!(
        run(&["--resume-window-ms", "soon"]).expect("run").code(),
        Some(2)
    );
    match Server::spawn(binary(), &["--password", "x"]) {
        Ok(server) => assert_eq!(server.addr, "127.0.0.1:9005".parse().expect("addr")),
        Err(stderr) => assert!(stderr.contains("in use"), "{stderr}"),
    }
    // Without --password one is generated and printed before `listening on`.
    let mut cmd = Command::new(binary());
    let mut child = cmd
        .args(["--listen", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let first = stderr
        .lines()
        .map_while(Result::ok)
        .next()
        .unwrap_or_default();
    let _ = child.kill();
    let _ = child.wait();
    let password = first
        .strip_prefix("no --password given: the password is ")
        .unwrap_or_default();
    assert_eq!(password.len(), 24, "{first}");
}

/// An upgrade on `path` from the local address `source` (another loopback address is
/// another owner): the client, or the refusal's HTTP status.
fn ws_from(source: &str, server: &Server, path: &str) -> Result<Client, u16> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    let from: std::net::SocketAddr = format!("{source}:0").parse().expect("source");
    socket.bind(&from.into()).expect("bind the source address");
    socket.connect(&server.addr.into()).expect("connect");
    let url = format!("ws://{}{path}", server.addr);
    match tungstenite::client::client(url, TcpStream::from(socket)) {
        Ok((ws, _)) => Ok(Client { ws }),
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(r))) => {
            Err(r.status().as_u16())
        }
        Err(e) => panic!("WebSocket handshake: {e}"),
    }
}

fn start_with(extra: &[&str]) -> Server {
    let mut args = vec!["--listen", "127.0.0.1:0", "--password", PASSWORD];
    args.extend_from_slice(extra);
    Server::spawn(binary(), &args).expect("listening")
}

#[test]
fn one_address_opening_sessions_fast_never_evicts_another_addresss_detached_session() {
    // Issue 12: at the session bound the oldest detached session went, whoever's it was:
    // unauthenticated /ws sessions from one address removed a disconnected bot's session
    // (its resume then got 404).
    let server = start_with(&["--max-sessions", "8"]);
    let mut bot = ws_from("127.0.0.2", &server, "/ws?shards=1&user_id=1").expect("upgrade");
    let ready = bot.recv();
    let session = ready["data"]["session"]
        .as_str()
        .expect("session")
        .to_owned();
    // The bot's session is detached: the oldest detached session from here on.
    bot.close();
    // Another address churns through 40 sessions, each dropped at once: only its own go.
    for _ in 0..40 {
        server.open(2).0.close();
    }
    // Then holds live ones until refused: 503, since nobody over their fair share has a
    // detached session left and the newcomer's owner has none.
    let mut live = Vec::new();
    let status = loop {
        match server.try_ws("/ws?shards=1&user_id=2", &[]) {
            Ok(c) => live.push(c),
            Err(status) => break status,
        }
        assert!(live.len() <= 8, "more sessions than the bound");
    };
    assert_eq!((status, live.len()), (503, 7));
    let mut back = server.resume(&session);
    back.expect_silence(QUIET);
}

#[test]
fn an_address_over_its_session_quota_gets_429_and_others_are_served() {
    let server = start_with(&["--max-sessions-per-owner", "3"]);
    let live: Vec<Client> = (0..3).map(|_| server.open(2).0).collect();
    assert_eq!(
        server.try_ws("/ws?shards=1&user_id=2", &[]).err(),
        Some(429)
    );
    // Another address is its own owner.
    let mut other = ws_from("127.0.0.2", &server, "/ws?shards=1&user_id=1").expect("upgrade");
    assert_eq!(other.recv()["op"], "ready");
    // One of the first address's sessions dropped: its next one replaces that one.
    let mut live = live.into_iter();
    live.next().expect("a live session").close();
    let (_again, _) = server.open(2);
    assert_eq!(
        server.try_ws("/ws?shards=1&user_id=2", &[]).err(),
        Some(429)
    );
}
