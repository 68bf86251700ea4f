//! The Nightingale gateway's matrix (`examples/nightingale.rs`, docs/protocols/nightingale.md):
//! upgrades with query parameters of the wrong type or size, resumes without a session or of
//! an unknown one, any client message at all (the protocol has none), REST calls without the
//! password or session, on the observer's guild from another session, with huge ids and bad
//! bodies; and the observer, a bot whose player plays a short track enqueued every 20 ms,
//! which must receive every track's start and end, in order.
//!
//! The session id is the resume credential: a resume with someone else's session takes it
//! over (documented), so the rows resume unknown and malformed sessions, and use another
//! session's REST on the observer's guild, which must not reach it.

use super::{http, nested, read_text, request, unclosed, In, Protocol, Row, Ws};
use crate::support::{masked, upgrade_request, Raw, TEXT};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The server's options.
pub const ARGS: &[&str] = &["--password", "pw", "--resume-window-ms", "60000"];
const READY: &str = r#"{"op":"ready","data":{"session":""#;
const SILENT: &str = "nightingale clients send no messages";

/// The Nightingale protocol as the rows speak it: a bot of user 7.
pub struct NightingaleWire;

impl Protocol for NightingaleWire {
    fn upgrade(&self, _: usize) -> String {
        upgrade_request("/ws?shards=1&user_id=7", "")
    }
    /// Reads ready; the session id is the credential.
    fn opened(&self, raw: &mut Raw) -> Option<String> {
        let ready: Value = serde_json::from_str(&read_text(raw)).unwrap();
        assert_eq!(ready["data"]["resumed"], false, "{ready}");
        Some(
            ready["data"]["session"]
                .as_str()
                .expect("a session")
                .to_owned(),
        )
    }
}

fn refused(name: &str, target: &str, headers: &str, status: u16, body: &str) -> Row {
    Row::http(name)
        .write(upgrade_request(target, headers))
        .status(status)
        .body(body)
}

fn message(name: &str, text: impl AsRef<str>) -> Row {
    Row::open(name).text(text).close_because(1003, SILENT)
}

/// A REST call with the password and the row's own session (`{TOKEN}`).
fn own(
    name: &str,
    method: &str,
    path: &str,
    body: impl AsRef<[u8]>,
    status: u16,
    answer: &str,
) -> Row {
    let sep = if path.contains('?') { '&' } else { '?' };
    let target = format!("/api/v1/{path}{sep}session={{TOKEN}}");
    let answer = format!(r#"{{"error":"{answer}"#);
    Row::open(name)
        .request(request(method, &target, Some("pw"), body))
        .status(status)
        .body_prefix(answer)
}

/// The protocol's own rows; `observer` is the observer's session.
pub fn rows(observer: &str) -> Vec<Row> {
    let query = r#"{"error":"shards (1 or more) and user_id must be integer query parameters"}"#;
    let player = format!("/api/v1/player?guild_id=111&session={observer}");
    let unknown = r#"{"error":"unknown or expired session"}"#;
    let bad_guild = "the guild_id query parameter must be an integer";
    vec![
        refused("upgrade without a query", "/ws", "", 400, query),
        refused(
            "upgrade with shards=0",
            "/ws?shards=0&user_id=1",
            "",
            400,
            query,
        ),
        refused(
            "upgrade with shards=x",
            "/ws?shards=x&user_id=1",
            "",
            400,
            query,
        ),
        refused(
            "upgrade with shards=1.5",
            "/ws?shards=1.5&user_id=1",
            "",
            400,
            query,
        ),
        refused(
            "upgrade with shards=1e400",
            "/ws?shards=1e400&user_id=1",
            "",
            400,
            query,
        ),
        refused(
            "upgrade with user_id=-5",
            "/ws?shards=1&user_id=-5",
            "",
            400,
            query,
        ),
        refused(
            "upgrade with user_id=2^64",
            "/ws?shards=1&user_id=18446744073709551616",
            "",
            400,
            query,
        ),
        refused(
            "upgrade on another path",
            "/gateway",
            "",
            404,
            r#"{"error":"the gateway is at /ws and /ws/resume"}"#,
        ),
        refused(
            "resume without a session",
            "/ws/resume",
            "",
            400,
            r#"{"error":"the session header is required"}"#,
        ),
        refused(
            "resume with an empty session",
            "/ws/resume",
            "session: \r\n",
            400,
            r#"{"error":"the session header is required"}"#,
        ),
        refused(
            "resume of an unknown session",
            "/ws/resume",
            "session: d477a39e-7d6b-462c-8924-5e1cc5074a3d\r\n",
            404,
            unknown,
        ),
        refused(
            "resume of a 4,000-byte session",
            "/ws/resume",
            &format!("session: {}\r\n", "a".repeat(4000)),
            404,
            unknown,
        ),
        Row::http("resume with a session that is not UTF-8")
            .write(
                [
                    &b"GET /ws/resume HTTP/1.1\r\nsession: \xFF\xFE\r\n"[..],
                    &upgrade_request("/", "").as_bytes()[16..],
                ]
                .concat(),
            )
            .status(400)
            .body(r#"{"error":"the session header is required"}"#),
        // Any message at all.
        message("a JSON message", r#"{"op":"ping"}"#),
        message("not JSON", "hello"),
        message("an empty text", ""),
        message("4,000 unclosed brackets", unclosed(4000)),
        message("2,000 nested arrays", nested(2000)),
        message("a string \"\\ud800\"", r#""\ud800""#),
        message("a number 1e400", "1e400"),
        Row::open("a binary message")
            .binary(b"{}")
            .close_because(1003, SILENT),
        Row::open("invalid UTF-8 in a JSON string, as a binary message")
            .binary(b"\"\xFF\"")
            .close_because(1003, SILENT),
        Row::open("a message split byte by byte")
            .trickle(masked(TEXT, b"{}"))
            .close_because(1003, SILENT),
        // REST.
        Row::http("REST without the password")
            .write(request("GET", &player, None, ""))
            .status(401)
            .body(r#"{"error":"missing or wrong password in Authorization"}"#),
        Row::http("REST with a wrong password")
            .write(request("GET", &player, Some("nope"), ""))
            .status(401),
        Row::http("REST without a session")
            .write(request(
                "GET",
                "/api/v1/player?guild_id=111",
                Some("pw"),
                "",
            ))
            .status(400)
            .body(r#"{"error":"the session header is required"}"#),
        Row::http("REST with an unknown session")
            .write(request(
                "GET",
                "/api/v1/player?guild_id=111&session=x",
                Some("pw"),
                "",
            ))
            .status(404)
            .body(unknown),
        own(
            "REST read of the observer's guild from another session",
            "GET",
            "player?guild_id=111",
            "",
            404,
            "no player for this guild",
        ),
        own(
            "REST skip of the observer's guild from another session",
            "POST",
            "playback/skip?guild_id=111",
            "",
            404,
            "no player",
        ),
        own(
            "REST stop of the observer's guild from another session",
            "POST",
            "playback/stop?guild_id=111",
            "",
            404,
            "no player",
        ),
        own(
            "REST disconnect of the observer's guild from another session",
            "DELETE",
            "disconnect?guild_id=111",
            "",
            404,
            "no player",
        ),
        own(
            "REST guild_id 1e400",
            "PUT",
            "connect?guild_id=1e400&channel_id=1",
            "",
            400,
            bad_guild,
        ),
        own(
            "REST guild_id 2^64",
            "PUT",
            "connect?guild_id=18446744073709551616&channel_id=1",
            "",
            400,
            bad_guild,
        ),
        own(
            "REST channel_id -1",
            "PUT",
            "connect?guild_id=1&channel_id=-1",
            "",
            400,
            "the channel_id query parameter",
        ),
        own(
            "REST self_deaf=maybe",
            "PUT",
            "connect?guild_id=1&channel_id=1&self_deaf=maybe",
            "",
            400,
            "`self_deaf` must be true or false",
        ),
        own(
            "REST voice body of 10,000 nested arrays",
            "POST",
            "voice/state",
            nested(10_000),
            400,
            "body is not JSON: recursion limit exceeded",
        ),
        own(
            "REST voice guild_id 1e400",
            "POST",
            "voice/server",
            r#"{"guild_id":1e400}"#,
            400,
            "body is not JSON",
        ),
        own(
            "REST voice session_id \"\\ud800\"",
            "POST",
            "voice/state",
            r#"{"guild_id":"1","session_id":"\ud800"}"#,
            400,
            "body is not JSON",
        ),
        own(
            "REST voice invalid UTF-8",
            "POST",
            "voice/state",
            b"{\"guild_id\":\"1\",\"session_id\":\"\xFF\"}",
            400,
            "body is not JSON",
        ),
        own(
            "REST voice guild_id 2^64",
            "POST",
            "voice/server",
            r#"{"guild_id":"18446744073709551616","token":"t","endpoint":"e"}"#,
            400,
            "guild_id must be a snowflake",
        ),
        own(
            "REST enqueue of 10,000 unclosed brackets",
            "POST",
            "playback/enqueue?guild_id=111",
            unclosed(10_000),
            400,
            "body is not JSON",
        ),
        own(
            "REST enqueue duration_ms 2^64",
            "POST",
            "playback/enqueue?guild_id=111",
            r#"{"duration_ms":18446744073709551616}"#,
            400,
            "invalid track",
        ),
        Row::open("REST PUT on the player")
            .request(request(
                "PUT",
                "/api/v1/player?guild_id=1&session={TOKEN}",
                Some("pw"),
                "",
            ))
            .status_with(405, "allow", "GET"),
    ]
}

/// Connects as a bot of user 42 and connects guild 111: the client and its session.
pub fn connect(addr: SocketAddr) -> (Ws, String) {
    let mut ws = Ws::connect(addr, "/ws?shards=1&user_id=42", &[]);
    let session = ws.json()["data"]["session"].as_str().unwrap().to_owned();
    let target = format!("/api/v1/connect?guild_id=111&channel_id=222&session={session}");
    let (status, body) = http(addr, "PUT", &target, Some("pw"), "");
    assert_eq!(status, 200, "{body}");
    assert_eq!(ws.json()["op"], "forward");
    (ws, session)
}

/// What the observer heard: the tracks enqueued, started and ended (title, stopped).
pub struct Report {
    pub enqueued: Vec<String>,
    pub started: Vec<String>,
    pub ended: Vec<(String, bool)>,
}

/// Pings (WebSocket Ping) every 250 ms and enqueues a 20 ms track every 20 ms (at most
/// 100) until stopped (and at least [`super::AT_LEAST`]); then enqueues "end" and waits
/// for it to end.
pub fn observe(addr: SocketAddr, mut ws: Ws, session: &str, stop: &AtomicBool) -> Report {
    let target = format!("/api/v1/playback/enqueue?guild_id=111&session={session}");
    let enqueue = |title: &str| {
        let body = json!({"title": title, "duration_ms": 20}).to_string();
        let (status, answer) = http(addr, "POST", &target, Some("pw"), &body);
        assert_eq!(status, 200, "{answer}");
    };
    let (mut next_ping, mut next_track) = (Instant::now(), Instant::now());
    let mut report = Report {
        enqueued: Vec::new(),
        started: Vec::new(),
        ended: Vec::new(),
    };
    let (mut pings, mut pongs, mut ending) = (0, 0, None::<Instant>);
    loop {
        let now = Instant::now();
        if now >= next_ping {
            ws.ping(b"obs");
            pings += 1;
            next_ping += Duration::from_millis(250);
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
            let text = match got {
                In::Pong(p) if p == b"obs" => {
                    pongs += 1;
                    continue;
                }
                In::Text(text) => text,
                other => panic!("the observer was disturbed: {other:?}"),
            };
            let v: Value = serde_json::from_str(&text).expect("JSON");
            let data = &v["data"]["data"];
            match (v["op"].as_str(), v["data"]["type"].as_str()) {
                (Some("event"), Some("track_start")) => report
                    .started
                    .push(data["title"].as_str().unwrap().to_owned()),
                (Some("event"), Some("track_end")) => {
                    let title = data["track"]["title"].as_str().unwrap().to_owned();
                    report
                        .ended
                        .push((title, data["stopped"].as_bool().unwrap()));
                }
                _ => panic!("the observer was disturbed: {text}"),
            }
        }
        let done = report.ended.last().is_some_and(|(t, _)| t == "end");
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
