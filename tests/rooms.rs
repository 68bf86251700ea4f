//! The chat-rooms gateway (seed 003, `examples/rooms.rs`) over real sockets: the example
//! binary, tungstenite clients and plain HTTP/1.1 for the REST API. Every sentence of
//! issue 5's seed-003 section has a test here; docs/protocols/rooms.md is the contract.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use tungstenite::{Error as WsError, HandshakeError, Message, WebSocket};

const TOKEN: &str = "rooms-test-token";
/// The heartbeat interval the server runs with in these tests.
const HB: u64 = 500;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The example binary, built once with the profile of this test binary.
fn binary() -> &'static PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("test binary path");
        let profile = exe.parent().and_then(|d| d.parent()).expect("target dir");
        let mut build = Command::new(std::env::var("CARGO").unwrap_or("cargo".into()));
        build.args(["build", "--quiet", "--example", "rooms"]);
        if profile.ends_with("release") {
            build.arg("--release");
        }
        let built = build.current_dir(env!("CARGO_MANIFEST_DIR")).status();
        assert!(
            built.expect("cargo").success(),
            "building examples/rooms failed"
        );
        profile.join("examples/rooms")
    })
}

/// A running `rooms` server, killed when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    fn start() -> Server {
        let args = format!("--listen 127.0.0.1:0 --admin-token {TOKEN} --heartbeat-ms {HB}");
        let mut child = Command::new(binary())
            .args(args.split(' '))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn rooms");
        let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let addr = loop {
            let line = lines.next().expect("server exited early").expect("stderr");
            if let Some(addr) = line.strip_prefix("listening on ") {
                break addr.parse().expect("address");
            }
        };
        std::thread::spawn(move || lines.for_each(drop));
        Server { child, addr }
    }

    fn join(&self, room: &str, who: &str) -> Ws {
        connect(
            self.addr,
            &format!("/gateway?roomId={room}&participantId={who}"),
        )
        .expect("upgrade")
    }

    fn refused(&self, query: &str) -> (u16, String) {
        let refusal = connect(self.addr, &format!("/gateway{query}")).err();
        refusal.expect("upgrade refused")
    }

    /// The status of an admin request with a JSON body.
    fn code(&self, method: &str, path: &str, body: Value) -> u16 {
        self.rest(method, path, Some(body)).0
    }

    fn rest(&self, method: &str, path: &str, body: Option<Value>) -> (u16, String) {
        http(
            self.addr,
            method,
            path,
            Some(&format!("Bearer {TOKEN}")),
            body,
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

type Ws = WebSocket<TcpStream>;

/// Upgrades on `path`; an HTTP refusal gives its status and body.
fn connect(addr: SocketAddr, path: &str) -> Result<Ws, (u16, String)> {
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_nodelay(true).unwrap();
    match tungstenite::client::client(format!("ws://{addr}{path}"), stream) {
        Ok((ws, _)) => Ok(ws),
        Err(HandshakeError::Failure(WsError::Http(r))) => {
            let body = r.body().as_deref().map(String::from_utf8_lossy);
            Err((r.status().as_u16(), body.unwrap_or_default().into_owned()))
        }
        Err(e) => panic!("handshake: {e}"),
    }
}

/// One plain HTTP/1.1 request: (status, body).
fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: Option<Value>,
) -> (u16, String) {
    let body = body.map_or(String::new(), |b| b.to_string());
    let auth = auth.map_or(String::new(), |a| format!("Authorization: {a}\r\n"));
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(ms(5000))).unwrap();
    let n = body.len();
    let head = format!("{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n{auth}");
    write!(s, "{head}Content-Length: {n}\r\n\r\n{body}").unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).expect("response");
    let (head, body) = response.split_once("\r\n\r\n").expect("response head");
    (head[9..12].parse().expect("status"), body.to_owned())
}

const TIMEOUTS: [ErrorKind; 2] = [ErrorKind::WouldBlock, ErrorKind::TimedOut];

/// What a read gave.
#[derive(Debug)]
enum Got {
    Packet(Value),
    Closed(u16, String),
    Timeout,
    Gone,
}

fn read(ws: &mut Ws, within: Duration) -> Got {
    let timeout = Some(within.max(ms(1)));
    ws.get_mut().set_read_timeout(timeout).unwrap();
    loop {
        return match ws.read() {
            Ok(Message::Text(t)) => Got::Packet(serde_json::from_str(&t).expect("JSON")),
            Ok(Message::Close(f)) => {
                let _ = ws.flush(); // completes the closing handshake
                let f = f.map(|f| (f.code.into(), f.reason.to_string()));
                let (code, reason) = f.unwrap_or((1005, String::new()));
                Got::Closed(code, reason)
            }
            Ok(_) => continue,
            Err(WsError::Io(e)) if TIMEOUTS.contains(&e.kind()) => Got::Timeout,
            Err(_) => Got::Gone,
        };
    }
}

fn send(ws: &mut Ws, text: &str) {
    ws.send(Message::text(text)).expect("send");
}

fn beat(ws: &mut Ws) {
    send(ws, r#"{"e":1,"d":{}}"#);
}

fn hello(ws: &mut Ws) {
    match read(ws, ms(2000)) {
        Got::Packet(p) => assert_eq!(p, json!({"e": 0, "d": {"heartbeatInterval": HB}})),
        other => panic!("expected hello, got {other:?}"),
    }
}

/// Behaves like a good client for `time` (heartbeats every 200 ms, probes answered at
/// once) and returns every packet other than heartbeats and probes.
fn live_for(ws: &mut Ws, time: Duration) -> Vec<Value> {
    let (end, mut next_beat, mut got) = (Instant::now() + time, Instant::now(), Vec::new());
    while Instant::now() < end {
        if Instant::now() >= next_beat {
            beat(ws);
            next_beat = Instant::now() + ms(200);
        }
        let wait = next_beat.min(end).saturating_duration_since(Instant::now());
        match read(ws, wait) {
            Got::Packet(p) if p["e"] == 2 => beat(ws),
            Got::Packet(p) if p["e"] == 1 => {}
            Got::Packet(p) => got.push(p),
            Got::Timeout => {}
            other => panic!("connection ended: {other:?}"),
        }
    }
    got
}

/// Lives until a packet with event id `e` comes (within 3 s), and returns it.
fn expect(ws: &mut Ws, e: u64) -> Value {
    let end = Instant::now() + ms(3000);
    loop {
        match read(ws, ms(200)) {
            Got::Packet(p) if p["e"] == e => return p,
            Got::Packet(p) if p["e"] == 2 => beat(ws),
            Got::Packet(p) if p["e"] == 1 => {}
            Got::Timeout if Instant::now() < end => beat(ws),
            other => panic!("waiting for e={e}: {other:?}"),
        }
    }
}

/// Reads (answering nothing) until the close; its code, reason and when it came.
fn closed(ws: &mut Ws, within: Duration) -> (u16, String, Instant) {
    let end = Instant::now() + within;
    loop {
        match read(ws, end.saturating_duration_since(Instant::now())) {
            Got::Closed(code, reason) => return (code, reason, Instant::now()),
            Got::Packet(_) => {}
            other => panic!("expected a close: {other:?}"),
        }
    }
}

#[test]
fn upgrade_needs_both_query_parameters_and_the_gateway_path() {
    let s = Server::start();
    for (query, missing) in [
        ("", "roomId, participantId"),
        ("?participantId=p", "roomId"),
        ("?roomId=&participantId=p", "roomId"),
        ("?roomId=r", "participantId"),
        ("?roomId=r&participantId=", "participantId"),
    ] {
        let (status, body) = s.refused(query);
        assert_eq!(status, 400, "{query}");
        assert!(body.trim_end().ends_with(missing), "{query}: {body}");
    }
    let (status, _) = connect(s.addr, "/other?roomId=r&participantId=p").expect_err("404");
    assert_eq!(status, 404);
    assert_eq!(http(s.addr, "GET", "/gateway", None, None).0, 426);
    assert_eq!(http(s.addr, "GET", "/nothing", None, None).0, 404);
    let mut ws = s.join("r", "p");
    hello(&mut ws);
}

/// The 400 body of a target with a component that does not percent-decode to UTF-8.
const NOT_UTF8: &str = "request target is not UTF-8 once percent-decoded";

#[test]
fn ids_that_do_not_decode_to_utf8_are_400_and_never_name_another() {
    let s = Server::start();
    for query in [
        "?roomId=%FE&participantId=p",
        "?roomId=r&participantId=%FF",
        "?roomId=r&participantId=a%C3",
        "?roomId=%ED%A0%80&participantId=p",
    ] {
        let (status, body) = s.refused(query);
        assert_eq!((status, body.trim()), (400, NOT_UTF8), "{query}");
    }
    // U+FFFD itself and another character: two valid ids, two participants.
    let (mut fffd, mut thorn) = (s.join("r", "%EF%BF%BD"), s.join("r", "%C3%BE"));
    hello(&mut fffd);
    hello(&mut thorn);
    for path in [
        "/rooms/r/participants/%FE",
        "/rooms/r/participants/%FF",
        "/rooms/%FF/participants/p",
        "/rooms/%FE",
    ] {
        let (status, body) = s.rest("DELETE", path, None);
        assert_eq!((status, body.trim()), (400, NOT_UTF8), "{path}");
    }
    let (status, _) = s.rest("DELETE", "/rooms/r/participants/%C3%BE", None);
    assert_eq!(status, 200);
    let kick = json!({"e": 5, "d": {"userId": "\u{FE}"}});
    assert_eq!(expect(&mut thorn, 5), kick);
    let (code, reason, _) = closed(&mut thorn, ms(1000));
    assert_eq!((code, reason.as_str()), (4010, "kicked"));
    assert_eq!(expect(&mut fffd, 5), kick);
    assert!(live_for(&mut fffd, ms(300)).is_empty(), "U+FFFD stays");
    let (status, body) = s.rest("GET", "/rooms/r", None);
    let state: Value = serde_json::from_str(&body).expect("room state");
    assert_eq!(status, 200);
    assert_eq!(
        (&state["participants"], &state["kicked"]),
        (&json!(["\u{FFFD}"]), &json!(["\u{FE}"]))
    );
}

#[test]
fn heartbeats_keep_a_client_alive_and_are_not_answered() {
    let s = Server::start();
    let mut ws = s.join("alive", "p");
    hello(&mut ws);
    // 6 intervals with heartbeats every 200 ms (30 of them): the server sends its own
    // heartbeat every 0.85 interval, answers no client heartbeat, and never probes a client
    // it hears from at least once an interval.
    let (start, mut server_beats, mut probes) = (Instant::now(), Vec::new(), 0);
    let mut next_beat = start;
    while start.elapsed() < ms(6 * HB) {
        if Instant::now() >= next_beat {
            beat(&mut ws);
            next_beat += ms(200);
        }
        match read(&mut ws, next_beat.saturating_duration_since(Instant::now())) {
            Got::Packet(p) if p == json!({"e": 1, "d": {}}) => server_beats.push(Instant::now()),
            Got::Packet(p) if p == json!({"e": 2, "d": {}}) => {
                probes += 1;
                beat(&mut ws);
            }
            Got::Timeout => {}
            other => panic!("{other:?}"),
        }
    }
    let n = server_beats.len();
    assert!((5..=8).contains(&n), "server heartbeats: {n}");
    assert_eq!(probes, 0, "a client heard from every 200 ms is not probed");
    // On average a little under the interval apart (0.85 of it), so that a client timing
    // out after exactly one silent interval does not trip on jitter.
    let mean = (server_beats[n - 1] - server_beats[0]) / (n as u32 - 1);
    assert!(mean < ms(HB * 19 / 20), "mean gap {mean:?}");
    // A client heartbeat_ack (are you alive?) is answered with a heartbeat.
    send(&mut ws, r#"{"e":2,"d":{}}"#);
    match read(&mut ws, ms(100)) {
        Got::Packet(p) => assert_eq!(p, json!({"e": 1, "d": {}})),
        other => panic!("{other:?}"),
    }
}

/// Reads (answering nothing) until the close: its code and reason, when the first probe
/// came and when the close came.
fn probed_then_closed(ws: &mut Ws, within: Duration) -> (u16, String, Option<Instant>, Instant) {
    let (end, mut probe) = (Instant::now() + within, None);
    loop {
        match read(ws, end.saturating_duration_since(Instant::now())) {
            Got::Closed(code, reason) => return (code, reason, probe, Instant::now()),
            Got::Packet(p) if p["e"] == 2 => {
                probe.get_or_insert(Instant::now());
            }
            Got::Packet(_) => {}
            other => panic!("expected a close: {other:?}"),
        }
    }
}

#[test]
fn a_silent_client_is_probed_after_one_interval_and_closed_4009_after_two() {
    let s = Server::start();
    let mut ws = s.join("silent", "p");
    hello(&mut ws);
    let start = Instant::now();
    let (code, reason, probe, at) = probed_then_closed(&mut ws, ms(HB * 2 + 3000));
    assert_eq!((code, reason.as_str()), (4009, "heartbeat timeout"));
    let probe = probe.expect("a probe before the close") - start;
    assert!(
        probe >= ms(HB - 20) && probe < ms(HB + 1000),
        "probe at {probe:?}"
    );
    // The documented bound: two intervals after the last message (here, the upgrade).
    let after = at - start;
    assert!(
        after >= ms(2 * HB - 20) && after < ms(2 * HB + 1000),
        "{after:?}"
    );
}

#[test]
fn an_unanswered_probe_closes_4009_one_interval_later() {
    let s = Server::start();
    let mut ws = s.join("probe", "p");
    hello(&mut ws);
    // Heartbeats every 150 ms for two intervals (no probe meanwhile), then silence.
    let end = Instant::now() + ms(2 * HB);
    while Instant::now() < end {
        match read(&mut ws, ms(150)) {
            Got::Packet(p) => assert_ne!(p["e"], 2, "probed while heartbeating"),
            Got::Timeout => beat(&mut ws),
            other => panic!("{other:?}"),
        }
    }
    beat(&mut ws);
    let last = Instant::now();
    let (code, _, probe, at) = probed_then_closed(&mut ws, ms(HB * 2 + 3000));
    assert_eq!(code, 4009);
    let probe = probe.expect("a probe before the close");
    assert!(
        probe - last >= ms(HB - 20),
        "probed {:?} after",
        probe - last
    );
    assert!(
        at - probe >= ms(HB - 20),
        "closed {:?} after the probe",
        at - probe
    );
    assert!(
        at - last < ms(2 * HB + 1000),
        "closed {:?} after",
        at - last
    );
}

#[test]
fn a_client_that_heartbeats_every_interval_but_ignores_probes_is_kept_for_10_intervals() {
    // Issue 11: the seed's own client heartbeats but never answers a probe (heartbeat_ack);
    // it was dropped with 4009 at 1.75 intervals.
    let s = Server::start();
    let mut ws = s.join("deaf", "p");
    hello(&mut ws);
    let start = Instant::now();
    let mut next_beat = start + ms(HB);
    while start.elapsed() < ms(10 * HB) {
        if Instant::now() >= next_beat {
            beat(&mut ws);
            next_beat += ms(HB);
        }
        match read(&mut ws, next_beat.saturating_duration_since(Instant::now())) {
            Got::Packet(p) => assert!(p["e"] == 1 || p["e"] == 2, "{p}"),
            Got::Timeout => {}
            other => panic!("dropped after {:?}: {other:?}", start.elapsed()),
        }
    }
    // Still connected and served: a message posted now reaches it.
    let body = json!({"authorId": "a", "content": "still here"});
    let auth = format!("Bearer {TOKEN}");
    let posted = http(
        s.addr,
        "POST",
        "/rooms/deaf/messages",
        Some(&auth),
        Some(body),
    );
    assert_eq!(posted.0, 200, "{}", posted.1);
    let end = Instant::now() + ms(3000);
    loop {
        match read(&mut ws, end.saturating_duration_since(Instant::now())) {
            Got::Packet(p) if p["e"] == 3 => break assert_eq!(p["d"]["content"], "still here"),
            Got::Packet(_) => {}
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn rest_needs_the_admin_bearer_token() {
    let s = Server::start();
    let body = Some(json!({"authorId": "a", "content": "x"}));
    for auth in [
        None,
        Some("Bearer wrong"),
        Some(TOKEN),
        Some("Basic cm9vdDpyb290"),
    ] {
        let (status, _) = http(s.addr, "POST", "/rooms/r/messages", auth, body.clone());
        assert_eq!(status, 401, "{auth:?}");
    }
    assert_eq!(s.rest("POST", "/rooms/r/messages", body).0, 200);
    assert_eq!(s.rest("PUT", "/rooms/r", None).0, 405);
    assert_eq!(s.rest("GET", "/rooms/r/else", None).0, 404);
}

#[test]
fn message_create_reaches_every_participant_of_the_room_only() {
    let s = Server::start();
    let (mut a, mut b, mut other) = (s.join("m", "a"), s.join("m", "b"), s.join("elsewhere", "c"));
    for ws in [&mut a, &mut b, &mut other] {
        hello(ws);
    }
    let before = std::time::UNIX_EPOCH.elapsed().unwrap().as_millis() as u64;
    let message = json!({"authorId": "a", "content": "hi \"you\""});
    let (status, body) = s.rest("POST", "/rooms/m/messages", Some(message.clone()));
    assert_eq!(status, 200);
    let sent: Value = serde_json::from_str(&body).unwrap();
    let sent_at = sent["d"]["sentAt"].as_u64().expect("sentAt");
    assert!(
        sent_at >= before && sent_at < before + 5_000,
        "sentAt in ms: {sent_at}"
    );
    let mut expected = message;
    expected["sentAt"] = json!(sent_at);
    assert_eq!(
        sent,
        json!({"e": 3, "d": expected}),
        "exactly the seed's fields"
    );
    for ws in [&mut a, &mut b] {
        assert_eq!(expect(ws, 3), sent);
    }
    assert_eq!(live_for(&mut other, ms(300)), Vec::<Value>::new());
    for bad in [
        json!({"authorId": "a"}),
        json!({"authorId": 1, "content": "x"}),
        json!({"authorId": "", "content": "x"}),
        json!({"authorId": "a", "content": "x", "extra": 1}),
    ] {
        let status = s.code("POST", "/rooms/m/messages", bad.clone());
        assert_eq!(status, 400, "{bad}");
    }
}

#[test]
fn room_update_carries_exactly_the_fields_changed() {
    let s = Server::start();
    let (mut a, mut b) = (s.join("u", "a"), s.join("u", "b"));
    hello(&mut a);
    hello(&mut b);
    for change in [
        json!({"chatLocked": true}),
        json!({"maxParticipants": 10, "discordWebhookLink": "https://discord.com/api/webhooks/1/x"}),
        json!({"chatLocked": false, "roomLocked": false, "maxParticipants": 0, "discordWebhookLink": ""}),
    ] {
        let (status, body) = s.rest("PATCH", "/rooms/u", Some(change.clone()));
        assert_eq!(status, 200, "{body}");
        for ws in [&mut a, &mut b] {
            assert_eq!(expect(ws, 4), json!({"e": 4, "d": change}));
        }
    }
    for bad in [
        json!({}),
        json!({"chatLocked": "yes"}),
        json!({"maxParticipants": -1}),
        json!({"locked": true}),
    ] {
        assert_eq!(s.code("PATCH", "/rooms/u", bad.clone()), 400, "{bad}");
    }
    let (status, body) = s.rest("GET", "/rooms/u", None);
    assert_eq!(status, 200);
    let room: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(room["participants"], json!(["a", "b"]));
    assert_eq!(room["discordWebhookLink"], json!(""));
}

#[test]
fn a_locked_room_refuses_new_participants_with_403() {
    let s = Server::start();
    let mut a = s.join("locked", "a");
    hello(&mut a);
    assert_eq!(
        s.code("PATCH", "/rooms/locked", json!({"roomLocked": true})),
        200
    );
    expect(&mut a, 4);
    let (status, body) = s.refused("?roomId=locked&participantId=b");
    assert_eq!((status, body.trim()), (403, "room is locked"));
    let mut a2 = s.join("locked", "a"); // not new: a second socket of a participant inside
    hello(&mut a2);
    assert_eq!(
        s.code("PATCH", "/rooms/locked", json!({"roomLocked": false})),
        200
    );
    expect(&mut a, 4);
    hello(&mut s.join("locked", "b"));
    assert!(live_for(&mut a, ms(100)).is_empty());
}

#[test]
fn a_full_room_refuses_new_participants_with_409() {
    let s = Server::start();
    let mut a = s.join("full", "a");
    hello(&mut a);
    assert_eq!(
        s.code("PATCH", "/rooms/full", json!({"maxParticipants": 1})),
        200
    );
    let (status, body) = s.refused("?roomId=full&participantId=b");
    assert_eq!((status, body.trim()), (409, "room is full"));
    hello(&mut s.join("full", "a"));
    drop(a);
    // Once a's sockets are gone, there is room again.
    let end = Instant::now() + ms(2000);
    loop {
        match connect(s.addr, "/gateway?roomId=full&participantId=b") {
            Ok(mut b) => break hello(&mut b),
            Err((409, _)) if Instant::now() < end => std::thread::sleep(ms(20)),
            Err(e) => panic!("{e:?}"),
        }
    }
}

#[test]
fn kick_tells_everyone_then_closes_the_kicked_who_cannot_rejoin() {
    let s = Server::start();
    let (mut a, mut b, mut b2) = (s.join("k", "a"), s.join("k", "b"), s.join("k", "b"));
    for ws in [&mut a, &mut b, &mut b2] {
        hello(ws);
    }
    let (status, body) = s.rest("DELETE", "/rooms/k/participants/b", None);
    assert_eq!(status, 200);
    let kick = json!({"e": 5, "d": {"userId": "b"}});
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), kick);
    assert_eq!(expect(&mut a, 5), kick);
    for ws in [&mut b, &mut b2] {
        assert_eq!(expect(ws, 5), kick);
        let (code, reason, _) = closed(ws, ms(1000));
        assert_eq!((code, reason.as_str()), (4010, "kicked"));
    }
    let (status, body) = s.refused("?roomId=k&participantId=b");
    assert_eq!((status, body.trim()), (403, "kicked from this room"));
    assert!(live_for(&mut a, ms(100)).is_empty(), "a stays");
}

#[test]
fn participant_update_goes_to_all_and_a_ban_disconnects() {
    let s = Server::start();
    let (mut a, mut b) = (s.join("p", "a"), s.join("p", "b"));
    hello(&mut a);
    hello(&mut b);
    let change = json!({"color": true, "admin": false});
    assert_eq!(s.code("PATCH", "/rooms/p/participants/b", change), 200);
    let update = json!({"e": 6, "d": {"userId": "b", "color": true, "admin": false}});
    assert_eq!(
        (expect(&mut a, 6), expect(&mut b, 6)),
        (update.clone(), update)
    );
    assert_eq!(
        s.code("PATCH", "/rooms/p/participants/b", json!({"banned": true})),
        200
    );
    let ban = json!({"e": 6, "d": {"userId": "b", "banned": true}});
    assert_eq!((expect(&mut a, 6), expect(&mut b, 6)), (ban.clone(), ban));
    let (code, reason, _) = closed(&mut b, ms(1000));
    assert_eq!((code, reason.as_str()), (4011, "banned"));
    assert_eq!(s.refused("?roomId=p&participantId=b").0, 403);
    assert_eq!(
        s.code("PATCH", "/rooms/p/participants/b", json!({"banned": false})),
        200
    );
    assert_eq!(
        expect(&mut a, 6),
        json!({"e": 6, "d": {"userId": "b", "banned": false}})
    );
    hello(&mut s.join("p", "b"));
    for bad in [json!({}), json!({"color": "red"}), json!({"nick": "x"})] {
        let status = s.code("PATCH", "/rooms/p/participants/b", bad.clone());
        assert_eq!(status, 400, "{bad}");
    }
}

#[test]
fn room_close_tells_everyone_then_closes_every_socket() {
    let s = Server::start();
    let (mut a, mut b, mut c) = (s.join("c", "a"), s.join("c", "b"), s.join("stays", "c"));
    for ws in [&mut a, &mut b, &mut c] {
        hello(ws);
    }
    let (status, body) = s.rest("DELETE", "/rooms/c", None);
    assert_eq!(
        (status, serde_json::from_str::<Value>(&body).unwrap()),
        (200, json!({"e": 7, "d": {}}))
    );
    for ws in [&mut a, &mut b] {
        assert_eq!(expect(ws, 7), json!({"e": 7, "d": {}}));
        let (code, reason, _) = closed(ws, ms(1000));
        assert_eq!((code, reason.as_str()), (4012, "room closed"));
    }
    assert_eq!(s.refused("?roomId=c&participantId=a").0, 410);
    assert_eq!(
        s.code(
            "POST",
            "/rooms/c/messages",
            json!({"authorId": "a", "content": "x"})
        ),
        410
    );
    assert!(live_for(&mut c, ms(100)).is_empty(), "other rooms stay");
}

#[test]
fn bad_input_closes_only_the_sender() {
    let s = Server::start();
    let mut bystander = s.join("bad", "ok");
    hello(&mut bystander);
    for (input, code) in [
        (Message::text("not json"), 4002),
        (Message::text(r#"{"e":"1"}"#), 4002),
        (
            Message::text(r#"{"e":3,"d":{"authorId":"x","content":"y","sentAt":1}}"#),
            4001,
        ),
        (Message::text(r#"{"e":42,"d":{}}"#), 4001),
        (Message::binary(vec![1, 2, 3]), 4002),
    ] {
        let mut ws = s.join("bad", "rude");
        hello(&mut ws);
        ws.send(input).unwrap();
        assert_eq!(closed(&mut ws, ms(1000)).0, code);
    }
    let _ = s.rest(
        "POST",
        "/rooms/bad/messages",
        Some(json!({"authorId": "a", "content": "still here"})),
    );
    assert_eq!(expect(&mut bystander, 3)["d"]["content"], "still here");
}

#[test]
fn sigterm_closes_every_socket_with_1001_and_exits_0() {
    let mut s = Server::start();
    let mut ws = s.join("bye", "a");
    hello(&mut ws);
    let pid = s.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    assert_eq!(closed(&mut ws, ms(3000)).0, 1001);
    drop(ws); // the server waits for the client's end of the TCP connection
    let end = Instant::now() + ms(3000);
    while Instant::now() < end {
        if let Some(status) = s.child.try_wait().unwrap() {
            assert!(status.success(), "{status:?}");
            return;
        }
        std::thread::sleep(ms(20));
    }
    panic!("server did not exit");
}
