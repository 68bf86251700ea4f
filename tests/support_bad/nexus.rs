//! The Nexus gateway's matrix (`examples/nexus.rs`, docs/protocols/nexus.md): upgrades
//! without the client id or the password or with the observer's client id, operations
//! before IDENTIFY, opcodes of the wrong type, unknown or huge, deep JSON, broken strings,
//! a second IDENTIFY, voice events and REST calls on the observer's guild (someone else's
//! player), bad REST bodies; and the observer, a bot whose player plays a short track
//! enqueued every 20 ms, which must hear every one start and finish, in order.
//!
//! Nexus has no resume: the nearest row is an upgrade under the observer's client id.

use super::{http, nested, read_text, request, unclosed, In, Protocol, Row, Ws};
use crate::support::{masked, upgrade_request, Raw, TEXT};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The server's options.
pub const ARGS: &[&str] = &["--password", "pw", "--heartbeat-ms", "1000"];
const HELLO: &str = r#"{"op":0,"d":{"heartbeat_interval":1000}}"#;
const READY: &str = r#"{"t":"READY","d":{"client_id":""#;
const PING: &str = r#"{"op":11}"#;
const PONG: &str = r#"{"op":12}"#;

/// The Nexus protocol as the rows speak it: client `rude-N` with the password.
pub struct NexusWire;

impl Protocol for NexusWire {
    fn upgrade(&self, n: usize) -> String {
        upgrade_request(
            "/",
            &format!("Authorization: pw\r\nclient-id: rude-{n}\r\n"),
        )
    }
    fn opened(&self, raw: &mut Raw) -> Option<String> {
        assert_eq!(read_text(raw), HELLO);
        None
    }
    /// Identifies; the access token is the credential.
    fn identify(&self, raw: &mut Raw, _: usize) -> Option<String> {
        raw.send(&masked(TEXT, br#"{"op":10}"#));
        let ready: Value = serde_json::from_str(&read_text(raw)).unwrap();
        Some(
            ready["d"]["access_token"]
                .as_str()
                .expect("a token")
                .to_owned(),
        )
    }
}

const NOT_IDENTIFIED: &str = "This client is not identified";

fn closed(row: Row, text: impl AsRef<str>, code: u16, reason: &'static str) -> Row {
    row.text(text).close_because(code, reason)
}

fn invalid(row: Row, text: impl AsRef<str>) -> Row {
    closed(row, text, 4004, "Invalid payload")
}

fn unknown(row: Row, text: impl AsRef<str>) -> Row {
    closed(row, text, 4005, "Unknown opcode")
}

/// A REST request with the row's own access token, answered `status` and `body` (prefix).
fn own(
    name: &str,
    method: &str,
    path: &str,
    body: impl AsRef<[u8]>,
    status: u16,
    answer: &str,
) -> Row {
    let answer = format!(r#"{{"error":"{answer}"#);
    Row::identified(name)
        .request(request(method, path, Some("{TOKEN}"), body))
        .status(status)
        .body_prefix(answer)
}

/// The protocol's own rows.
pub fn rows() -> Vec<Row> {
    let upgrade = |headers: &str| upgrade_request("/", headers);
    let refused = |name: &str, headers: &str, code: u16, reason: &'static str| {
        Row::http(name)
            .write(upgrade(headers))
            .status(101)
            .close_because(code, reason)
    };
    let no_id = "Missing client-id in request headers";
    let no_auth = "Missing or invalid authorization in request headers";
    let voice = |t: &str, d: &str| format!(r#"{{"t":"{t}","d":{d}}}"#);
    let queue = "/api/player/222/queue";
    let mut not_utf8 = upgrade("Authorization: pw\r\nclient-id: @\r\n").into_bytes();
    let at = not_utf8.iter().position(|&b| b == b'@').unwrap();
    not_utf8[at] = 0xFF;
    vec![
        refused(
            "upgrade without client-id",
            "Authorization: pw\r\n",
            4001,
            no_id,
        ),
        refused(
            "upgrade with an empty client-id",
            "Authorization: pw\r\nclient-id: \r\n",
            4001,
            no_id,
        ),
        refused(
            "upgrade with a client-id of 65 bytes",
            &format!("Authorization: pw\r\nclient-id: {}\r\n", "c".repeat(65)),
            4001,
            no_id,
        ),
        refused("upgrade without either header", "", 4001, no_id),
        Row::http("upgrade with a client-id that is not UTF-8")
            .write(not_utf8)
            .status(101)
            .close_because(4001, no_id),
        refused(
            "upgrade without Authorization",
            "client-id: x\r\n",
            4002,
            no_auth,
        ),
        refused(
            "upgrade with a wrong password",
            "Authorization: nope\r\nclient-id: x\r\n",
            4002,
            no_auth,
        ),
        // A newcomer with a live client-id is greeted (it would replace the old socket at
        // its IDENTIFY, as the real server does); until then the observer keeps its socket.
        Row::http("upgrade as the observer's client-id, no IDENTIFY: the observer is kept")
            .write(upgrade("Authorization: pw\r\nclient-id: watcher\r\n"))
            .status(101)
            .answer(HELLO)
            .text(PING)
            .close_because(4013, NOT_IDENTIFIED),
        // Before IDENTIFY.
        closed(
            Row::open("PING before IDENTIFY"),
            PING,
            4013,
            NOT_IDENTIFIED,
        ),
        closed(
            Row::open("a voice event before IDENTIFY"),
            voice("VOICE_SERVER_UPDATE", r#"{"guild_id":"111"}"#),
            4013,
            NOT_IDENTIFIED,
        ),
        invalid(Row::open("not JSON"), "hello"),
        invalid(Row::open("a JSON array"), "[]"),
        invalid(Row::open("an empty object"), "{}"),
        invalid(Row::open("t a number"), r#"{"t":5}"#),
        invalid(Row::open("op as a string"), r#"{"op":"10"}"#),
        invalid(Row::open("op = 10.5"), r#"{"op":10.5}"#),
        invalid(Row::open("op = 1e400"), r#"{"op":1e400}"#),
        invalid(Row::open("op = 2^64"), r#"{"op":18446744073709551616}"#),
        invalid(Row::open("op null and no t"), r#"{"op":null}"#),
        invalid(Row::open("t = \"\\ud800\""), r#"{"t":"\ud800","d":{}}"#),
        invalid(Row::open("10,000 unclosed brackets"), unclosed(10_000)),
        Row::open("a binary IDENTIFY")
            .binary(br#"{"op":10}"#)
            .close_because(4004, "Invalid payload"),
        Row::open("invalid UTF-8 in a JSON string, as a binary message")
            .binary(b"{\"op\":10,\"d\":\"\xFF\"}")
            .close_because(4004, "Invalid payload"),
        unknown(Row::open("op = 0 (server's HELLO)"), r#"{"op":0,"d":{}}"#),
        unknown(Row::open("op = 12 (server's PONG)"), PONG),
        unknown(Row::open("op = 99"), r#"{"op":99}"#),
        unknown(Row::open("op = -1"), r#"{"op":-1}"#),
        Row::open("IDENTIFY with d of 10,000 nested arrays")
            .text(format!(r#"{{"op":10,"d":{}}}"#, nested(10_000)))
            .answer_prefix(READY),
        Row::open("IDENTIFY with d = \"\\ud800\"")
            .text(r#"{"op":10,"d":"\ud800"}"#)
            .answer_prefix(READY),
        Row::open("IDENTIFY split byte by byte")
            .trickle(masked(TEXT, br#"{"op":10}"#))
            .answer_prefix(READY),
        // Identified.
        closed(
            Row::identified("a second IDENTIFY"),
            r#"{"op":10}"#,
            4011,
            "Not allowed",
        ),
        unknown(Row::identified("an unknown event"), voice("NOPE", "{}")),
        unknown(Row::identified("the server's READY"), voice("READY", "{}")),
        invalid(
            Row::identified("a voice event without d"),
            r#"{"t":"VOICE_STATE_UPDATE"}"#,
        ),
        invalid(
            Row::identified("a voice event with d an array"),
            voice("VOICE_STATE_UPDATE", "[]"),
        ),
        invalid(
            Row::identified("guild_id 1e400"),
            voice("VOICE_SERVER_UPDATE", r#"{"guild_id":1e400}"#),
        ),
        invalid(
            Row::identified("guild_id 2^64"),
            voice(
                "VOICE_SERVER_UPDATE",
                r#"{"guild_id":18446744073709551616}"#,
            ),
        ),
        invalid(
            Row::identified("guild_id \"\\ud800\""),
            voice("VOICE_SERVER_UPDATE", r#"{"guild_id":"\ud800"}"#),
        ),
        invalid(
            Row::identified("d of 10,000 nested arrays"),
            voice("VOICE_STATE_UPDATE", &nested(10_000)),
        ),
        closed(
            Row::identified("VOICE_SERVER_UPDATE for the observer's guild"),
            voice(
                "VOICE_SERVER_UPDATE",
                r#"{"guild_id":"111","token":"t","endpoint":"e"}"#,
            ),
            4003,
            "No guild available",
        ),
        Row::identified("another member's VOICE_STATE_UPDATE is ignored")
            .text(voice(
                "VOICE_STATE_UPDATE",
                r#"{"guild_id":"111","channel_id":"1","user_id":"someone","session_id":"s"}"#,
            ))
            .quiet()
            .text(PING)
            .answer(PONG),
        Row::identified("PING split byte by byte")
            .trickle(masked(TEXT, PING.as_bytes()))
            .answer(PONG),
        Row::identified("15 PINGs at once: 4 answered, the 11th refused is fatal")
            .write(masked(TEXT, PING.as_bytes()).repeat(15))
            .answer(PONG)
            .answer(PONG)
            .answer(PONG)
            .answer(PONG)
            .close_because(4011, "Not allowed"),
        // REST.
        Row::http("REST without a token")
            .write(request("POST", "/api/player/111/skip", None, ""))
            .status(401)
            .body(r#"{"error":"missing or unknown access token"}"#),
        Row::http("REST with a made-up token")
            .write(request(
                "POST",
                "/api/player/111/skip",
                Some(&"0".repeat(64)),
                "",
            ))
            .status(401),
        Row::http("REST outside /api/")
            .write(request("GET", "/elsewhere", None, ""))
            .status(404)
            .body(r#"{"error":"not found"}"#),
        own(
            "REST skip of the observer's player",
            "POST",
            "/api/player/111/skip",
            "",
            403,
            "this guild's player belongs",
        ),
        own(
            "REST stop of the observer's player",
            "POST",
            "/api/player/111/stop",
            "",
            403,
            "this guild's player belongs",
        ),
        own(
            "REST leave of the observer's guild",
            "DELETE",
            "/api/subscription/111",
            "",
            403,
            "this guild's player belongs",
        ),
        own(
            "REST join of the observer's guild",
            "POST",
            "/api/subscription/111/333",
            "",
            403,
            "this guild's player belongs",
        ),
        own(
            "REST guild 1e400",
            "POST",
            "/api/player/1e400/queue",
            "{}",
            400,
            "the guild id must be a snowflake",
        ),
        own(
            "REST guild 2^64",
            "POST",
            "/api/player/18446744073709551616/queue",
            "{}",
            400,
            "the guild id must be a snowflake",
        ),
        own(
            "REST body of 10,000 nested arrays",
            "POST",
            queue,
            nested(10_000),
            400,
            "body is not JSON: recursion limit exceeded",
        ),
        own(
            "REST duration_ms 1e400",
            "POST",
            queue,
            r#"{"duration_ms":1e400}"#,
            400,
            "body is not JSON",
        ),
        own(
            "REST duration_ms 2^64",
            "POST",
            queue,
            r#"{"duration_ms":18446744073709551616}"#,
            400,
            "invalid track",
        ),
        own(
            "REST duration_ms -1",
            "POST",
            queue,
            r#"{"duration_ms":-1}"#,
            400,
            "invalid track",
        ),
        own(
            "REST title \"\\ud800\"",
            "POST",
            queue,
            r#"{"duration_ms":1,"title":"\ud800"}"#,
            400,
            "body is not JSON",
        ),
        own(
            "REST invalid UTF-8 in a title",
            "POST",
            queue,
            b"{\"duration_ms\":1,\"title\":\"\xFF\"}",
            400,
            "body is not JSON",
        ),
        own(
            "REST self_mute \"yes\"",
            "POST",
            "/api/subscription/222/333",
            r#"{"self_mute":"yes"}"#,
            400,
            "`self_mute` must be a boolean",
        ),
    ]
}

/// Connects as client `watcher`, identifies and joins guild 111: the client and its token.
pub fn connect(addr: SocketAddr) -> (Ws, String) {
    let mut ws = Ws::connect(
        addr,
        "/",
        &[("Authorization", "pw"), ("client-id", "watcher")],
    );
    assert_eq!(ws.text(), HELLO);
    ws.send(r#"{"op":10}"#);
    let token = ws.json()["d"]["access_token"].as_str().unwrap().to_owned();
    let (status, body) = http(addr, "POST", "/api/subscription/111/222", Some(&token), "");
    assert_eq!(status, 200, "{body}");
    assert_eq!(ws.json()["op"], 1, "the voice payload to forward");
    (ws, token)
}

/// What the observer heard: the tracks enqueued, started and finished (title, reason).
pub struct Report {
    pub enqueued: Vec<String>,
    pub started: Vec<String>,
    pub finished: Vec<(String, String)>,
}

/// PINGs every 400 ms (the allowance is 4 per interval) and enqueues a 20 ms track every
/// 20 ms (at most 100) until stopped (and at least [`super::AT_LEAST`]); then enqueues
/// "end" and waits for it to finish.
pub fn observe(addr: SocketAddr, mut ws: Ws, token: &str, stop: &AtomicBool) -> Report {
    let enqueue = |title: &str| {
        let body = json!({"title": title, "duration_ms": 20}).to_string();
        let (status, answer) = http(addr, "POST", "/api/player/111/queue", Some(token), &body);
        assert_eq!(status, 200, "{answer}");
    };
    let (mut next_ping, mut next_track) = (Instant::now(), Instant::now());
    let mut report = Report {
        enqueued: Vec::new(),
        started: Vec::new(),
        finished: Vec::new(),
    };
    let (mut pings, mut pongs, mut ending) = (0, 0, None::<Instant>);
    loop {
        let now = Instant::now();
        if now >= next_ping {
            ws.send(PING);
            pings += 1;
            next_ping += Duration::from_millis(400);
        }
        if ending.is_none() && now >= next_track && report.enqueued.len() < 100 {
            let title = format!("t{}", report.enqueued.len());
            enqueue(&title);
            report.enqueued.push(title);
            next_track += Duration::from_millis(20);
        }
        if ending.is_none()
            && stop.load(Ordering::Acquire)
            && report.enqueued.len() >= super::AT_LEAST
        {
            enqueue("end");
            report.enqueued.push("end".into());
            ending = Some(now);
        }
        while let Some(got) = ws.next(Duration::from_millis(5)) {
            let In::Text(text) = got else {
                panic!("the observer was disturbed: {got:?}");
            };
            let v: Value = serde_json::from_str(&text).expect("JSON");
            let title = || v["d"]["track"]["title"].as_str().unwrap_or("?").to_owned();
            match (v["op"].as_u64(), v["t"].as_str()) {
                (Some(12), _) => pongs += 1,
                (_, Some("TRACK_START")) => report.started.push(title()),
                (_, Some("TRACK_FINISH")) => {
                    report
                        .finished
                        .push((title(), v["d"]["reason"].as_str().unwrap_or("?").to_owned()));
                }
                (_, Some("QUEUE_STATE_UPDATE")) => {}
                _ => panic!("the observer was disturbed: {text}"),
            }
        }
        let done = report.finished.last().is_some_and(|(t, _)| t == "end");
        if ending.is_some() && done && pongs == pings {
            break;
        }
        assert!(
            ending.is_none_or(|t| t.elapsed() < Duration::from_secs(5)),
            "the end never came"
        );
    }
    report
}
