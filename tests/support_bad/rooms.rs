//! The chat-rooms gateway's matrix (`examples/rooms.rs`, docs/protocols/rooms.md): packets
//! a client may not send (spoofed room events), of the wrong type, huge numbers, deep JSON,
//! broken strings, heartbeat floods, broken upgrades and REST calls without the admin
//! token or with bad bodies; and the observer, a participant of the same room who
//! heartbeats, answers probes and must receive every message posted meanwhile.
//!
//! The protocol has no identify and no resume (the upgrade's query names the participant):
//! the nearest rows are a second socket under the observer's own participant id (allowed by
//! the protocol) and REST calls that would kick, close or lock the observer's room.

use super::{http, nested, read_text, request, unclosed, In, Protocol, Row, Ws};
use crate::support::{masked, upgrade_request, Raw, TEXT};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The server's options.
pub const ARGS: &[&str] = &["--admin-token", "rooms-admin", "--heartbeat-ms", "1000"];
const ADMIN: &str = "Bearer rooms-admin";
const HELLO: &str = r#"{"e":0,"d":{"heartbeatInterval":1000}}"#;
const BEAT: &str = r#"{"e":1,"d":{}}"#;
const PROBE: &str = r#"{"e":2,"d":{}}"#;
/// The library's 400 body for a target that does not percent-decode to UTF-8.
const NOT_UTF8: &str = "request target is not UTF-8 once percent-decoded";
/// Where the observer (participant `watcher`) and every hostile client are.
const ROOM: &str = "obs";

/// The rooms protocol as the rows speak it: hostile participant `rude-N` joins room `obs`.
pub struct RoomsWire;

impl Protocol for RoomsWire {
    fn upgrade(&self, n: usize) -> String {
        upgrade_request(
            &format!("/gateway?roomId={ROOM}&participantId=rude-{n}"),
            "",
        )
    }
    fn opened(&self, raw: &mut Raw) -> Option<String> {
        assert_eq!(read_text(raw), HELLO);
        None
    }
    /// The server's heartbeat, its probes and the observer's messages may come at any time.
    fn noise(&self, text: &str) -> bool {
        text == BEAT || text == PROBE || text.starts_with(r#"{"e":3,"d":{"authorId":"poster"#)
    }
}

fn malformed(name: &str, text: impl AsRef<str>) -> Row {
    Row::open(name)
        .text(text)
        .close_because(4002, "malformed packet")
}

fn forbidden(name: &str, text: impl AsRef<str>) -> Row {
    Row::open(name)
        .text(text)
        .close_because(4001, "clients may only send events 1 and 2")
}

/// A heartbeat that is accepted silently; the connection then still answers a probe.
fn accepted(name: &str, text: impl AsRef<str>) -> Row {
    Row::open(name).text(text).quiet().text(PROBE).answer(BEAT)
}

/// An upgrade on `target` refused with `status` and the one-line `body`.
fn refused(name: &str, target: &str, status: u16, body: &str) -> Row {
    Row::http(name)
        .write(upgrade_request(target, ""))
        .status(status)
        .body(format!("{body}\n"))
}

/// A REST call answered `status` with a body starting with `body`.
fn rest(
    name: &str,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: impl AsRef<[u8]>,
    status: u16,
    answer: &str,
) -> Row {
    Row::http(name)
        .write(request(method, path, auth, body))
        .status(status)
        .body_prefix(answer)
}

/// The protocol's own rows.
pub fn rows() -> Vec<Row> {
    let long = "p".repeat(257);
    let msgs = "/rooms/obs/messages";
    let invalid = "invalid body:";
    vec![
        malformed("not JSON", "hello"),
        malformed("empty text", ""),
        malformed("a JSON array", "[]"),
        malformed("no e", r#"{"d":{}}"#),
        malformed("e as a string", r#"{"e":"1","d":{}}"#),
        malformed("e as 1.0", r#"{"e":1.0,"d":{}}"#),
        malformed("e = 1e400", r#"{"e":1e400}"#),
        malformed("e = 2^64", r#"{"e":18446744073709551616}"#),
        malformed("e = null", r#"{"e":null}"#),
        malformed("e given twice", r#"{"e":1,"e":2}"#),
        malformed("4,000 unclosed brackets", unclosed(4000)),
        malformed(
            "4,000 unclosed brackets as d",
            format!(r#"{{"e":1,"d":{}"#, unclosed(4000)),
        ),
        malformed("e = \"\\ud800\"", r#"{"e":"\ud800"}"#),
        forbidden("e = -1", r#"{"e":-1}"#),
        forbidden("e = 2^63 - 1", r#"{"e":9223372036854775807}"#),
        forbidden(
            "e = 0 (server's hello)",
            r#"{"e":0,"d":{"heartbeatInterval":1}}"#,
        ),
        forbidden(
            "a spoofed message_create",
            r#"{"e":3,"d":{"authorId":"x","content":"spoof","sentAt":1}}"#,
        ),
        forbidden(
            "a spoofed room_update locking the room",
            r#"{"e":4,"d":{"roomLocked":true}}"#,
        ),
        forbidden(
            "a spoofed kick of the observer",
            r#"{"e":5,"d":{"userId":"watcher"}}"#,
        ),
        forbidden("a spoofed room_close", r#"{"e":7,"d":{}}"#),
        forbidden("e = 42", r#"{"e":42,"d":{}}"#),
        Row::open("a binary packet")
            .binary(BEAT)
            .close_because(4002, "binary messages are not accepted"),
        Row::open("invalid UTF-8 in a JSON string, as a binary message")
            .binary(b"{\"e\":1,\"d\":{\"x\":\"\xFF\"}}")
            .close_because(4002, "binary messages are not accepted"),
        accepted(
            "a heartbeat with 2,000 nested arrays as d",
            format!(r#"{{"e":1,"d":{}}}"#, nested(2000)),
        ),
        accepted(
            "a heartbeat with d = \"\\ud800\"",
            r#"{"e":1,"d":"\ud800"}"#,
        ),
        accepted("a heartbeat with d = 1e400", r#"{"e":1,"d":1e400}"#),
        accepted("a heartbeat without d", r#"{"e":1}"#),
        Row::open("a probe is answered with a heartbeat")
            .text(PROBE)
            .answer(BEAT),
        Row::open("a probe split byte by byte")
            .trickle(masked(TEXT, PROBE.as_bytes()))
            .answer(BEAT),
        Row::open("15 heartbeats at once: the 11th ignored in a row is fatal")
            .write(masked(TEXT, BEAT.as_bytes()).repeat(15))
            .close_because(4008, "rate limited"),
        Row::open("15 probes at once: 4 answered, then fatal")
            .write(masked(TEXT, PROBE.as_bytes()).repeat(15))
            .answer(BEAT)
            .answer(BEAT)
            .answer(BEAT)
            .answer(BEAT)
            .close_because(4008, "rate limited"),
        // The upgrade.
        Row::http("a second socket as the observer's participant id is allowed")
            .write(upgrade_request(
                "/gateway?roomId=obs&participantId=watcher",
                "",
            ))
            .status(101)
            .answer(HELLO),
        refused(
            "upgrade without a query",
            "/gateway",
            400,
            "missing or empty query parameters: roomId, participantId",
        ),
        refused(
            "upgrade with an empty roomId",
            "/gateway?roomId=&participantId=x",
            400,
            "missing or empty query parameter: roomId",
        ),
        refused(
            "upgrade with a participantId of 257 bytes",
            &format!("/gateway?roomId=obs&participantId={long}"),
            400,
            "roomId and participantId are at most 256 bytes",
        ),
        // Refused by the library's request parser (its bodies have no final newline).
        Row::http("upgrade with a roomId that does not decode to UTF-8 (%FE)")
            .write(upgrade_request("/gateway?roomId=%FE&participantId=x", ""))
            .status(400)
            .body(NOT_UTF8),
        Row::http("upgrade with a participantId that does not decode to UTF-8 (a lone %C3)")
            .write(upgrade_request(
                "/gateway?roomId=obs&participantId=w%C3",
                "",
            ))
            .status(400)
            .body(NOT_UTF8),
        refused(
            "upgrade on another path",
            "/elsewhere?roomId=obs&participantId=x",
            404,
            "not found",
        ),
        Row::http("plain GET /gateway")
            .write(request("GET", "/gateway", None, ""))
            .status(426),
        // REST without the admin token: nothing happens to the observer's room.
        Row::http("REST message without a token")
            .write(request(
                "POST",
                msgs,
                None,
                r#"{"authorId":"x","content":"spoof"}"#,
            ))
            .status_with(401, "www-authenticate", "Bearer")
            .body("missing or wrong admin token\n"),
        rest(
            "REST message with a wrong token",
            "POST",
            msgs,
            Some("Bearer nope"),
            "{}",
            401,
            "missing or wrong",
        ),
        rest(
            "REST close of the room with a wrong token",
            "DELETE",
            "/rooms/obs",
            Some("Bearer nope"),
            "",
            401,
            "missing",
        ),
        rest(
            "REST kick of the observer without a token",
            "DELETE",
            "/rooms/obs/participants/watcher",
            None,
            "",
            401,
            "missing",
        ),
        rest(
            "REST kick, with the token, of an id that does not decode to UTF-8 (%FF)",
            "DELETE",
            "/rooms/obs/participants/%FF",
            Some(ADMIN),
            "",
            400,
            NOT_UTF8,
        ),
        rest(
            "REST lock with the token as Basic",
            "PATCH",
            "/rooms/obs",
            Some("Basic rooms-admin"),
            r#"{"roomLocked":true}"#,
            401,
            "missing",
        ),
        // REST with the token and a bad body: refused, nothing sent to the room.
        rest(
            "REST body not JSON",
            "POST",
            msgs,
            Some(ADMIN),
            "hello",
            400,
            invalid,
        ),
        rest(
            "REST authorId a number",
            "POST",
            msgs,
            Some(ADMIN),
            r#"{"authorId":1,"content":"x"}"#,
            400,
            invalid,
        ),
        rest(
            "REST invalid UTF-8 in authorId",
            "POST",
            msgs,
            Some(ADMIN),
            b"{\"authorId\":\"\xFF\",\"content\":\"x\"}",
            400,
            invalid,
        ),
        rest(
            "REST authorId \"\\ud800\"",
            "POST",
            msgs,
            Some(ADMIN),
            r#"{"authorId":"\ud800","content":"x"}"#,
            400,
            invalid,
        ),
        rest(
            "REST content of 10,000 nested arrays",
            "POST",
            msgs,
            Some(ADMIN),
            format!(r#"{{"authorId":"x","content":{}}}"#, nested(10_000)),
            400,
            invalid,
        ),
        rest(
            "REST body of 10,000 unclosed brackets",
            "POST",
            msgs,
            Some(ADMIN),
            unclosed(10_000),
            400,
            invalid,
        ),
        rest(
            "REST maxParticipants 1e400",
            "PATCH",
            "/rooms/obs",
            Some(ADMIN),
            r#"{"maxParticipants":1e400}"#,
            400,
            invalid,
        ),
        rest(
            "REST maxParticipants 2^64",
            "PATCH",
            "/rooms/obs",
            Some(ADMIN),
            r#"{"maxParticipants":18446744073709551616}"#,
            400,
            invalid,
        ),
        rest(
            "REST maxParticipants 2^32",
            "PATCH",
            "/rooms/obs",
            Some(ADMIN),
            r#"{"maxParticipants":4294967296}"#,
            400,
            invalid,
        ),
        rest(
            "REST maxParticipants -1",
            "PATCH",
            "/rooms/obs",
            Some(ADMIN),
            r#"{"maxParticipants":-1}"#,
            400,
            invalid,
        ),
        rest(
            "REST roomLocked \"true\"",
            "PATCH",
            "/rooms/obs",
            Some(ADMIN),
            r#"{"roomLocked":"true"}"#,
            400,
            invalid,
        ),
        rest(
            "REST unknown field",
            "PATCH",
            "/rooms/obs",
            Some(ADMIN),
            r#"{"roomlocked":true}"#,
            400,
            "invalid body: unknown field",
        ),
        rest(
            "REST nothing to update",
            "PATCH",
            "/rooms/obs",
            Some(ADMIN),
            "{}",
            400,
            "nothing to update",
        ),
        Row::http("REST PUT on a room")
            .write(request("PUT", "/rooms/obs", Some(ADMIN), ""))
            .status_with(405, "allow", "GET, PATCH, DELETE"),
        rest(
            "REST room id of 300 bytes",
            "GET",
            &format!("/rooms/{}", "r".repeat(300)),
            Some(ADMIN),
            "",
            404,
            "not found",
        ),
    ]
}

/// What the observer saw: how many messages were posted, and the contents it received.
pub struct Report {
    pub sent: usize,
    pub received: Vec<String>,
    pub probes: usize,
}

/// Joins room `obs` as `watcher` and reads hello.
pub fn join(addr: SocketAddr) -> Ws {
    let mut ws = Ws::connect(
        addr,
        &format!("/gateway?roomId={ROOM}&participantId=watcher"),
        &[],
    );
    assert_eq!(ws.text(), HELLO);
    ws
}

/// Heartbeats every 400 ms (within the allowance of 4 per interval, probe answers
/// included), answers probes at once, and posts a message to the room over REST every
/// 20 ms (at most 100) until stopped (and at least [`super::AT_LEAST`]); then posts "end"
/// and waits for it.
pub fn observe(addr: SocketAddr, mut ws: Ws, stop: &AtomicBool) -> Report {
    let post = |content: &str| {
        let body = json!({"authorId": "poster", "content": content}).to_string();
        let (status, answer) = http(addr, "POST", "/rooms/obs/messages", Some(ADMIN), &body);
        assert_eq!(status, 200, "{answer}");
    };
    let (mut next_beat, mut next_post) = (Instant::now(), Instant::now());
    let (mut sent, mut probes, mut received, mut ending) = (0, 0, Vec::new(), None::<Instant>);
    loop {
        let now = Instant::now();
        if now >= next_beat {
            ws.send(BEAT);
            next_beat += Duration::from_millis(400);
        }
        if ending.is_none() && now >= next_post && sent < 100 {
            post(&format!("m{sent}"));
            sent += 1;
            next_post += Duration::from_millis(20);
        }
        if ending.is_none() && stop.load(Ordering::Acquire) && sent >= super::AT_LEAST {
            post("end");
            ending = Some(now);
        }
        while let Some(got) = ws.next(Duration::from_millis(5)) {
            let In::Text(text) = got else {
                panic!("the observer was disturbed: {got:?}");
            };
            let packet: Value = serde_json::from_str(&text).expect("JSON");
            match packet["e"].as_u64() {
                Some(1) => {}
                Some(2) => {
                    ws.send(BEAT);
                    probes += 1;
                }
                Some(3) => received.push(packet["d"]["content"].as_str().unwrap().to_owned()),
                _ => panic!("the observer was disturbed: {text}"),
            }
        }
        if ending.is_some() && received.last().is_some_and(|m| m == "end") {
            break;
        }
        assert!(
            ending.is_none_or(|t| t.elapsed() < Duration::from_secs(5)),
            "the end never came"
        );
    }
    Report {
        sent,
        received,
        probes,
    }
}
