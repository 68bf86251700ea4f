//! The Discodo gateway's matrix (`examples/discodo.rs`, docs/protocols/discodo.md): a
//! missing or wrong password, ops before IDENTIFY, envelopes of the wrong type, IDENTIFY
//! with ids of the wrong type or size, huge numbers and deep JSON (echoed as sent by a
//! heartbeat), a second IDENTIFY, another bot's voice clients; and the observer, a bot
//! that heartbeats and queries its voice client throughout, every answer checked exactly.
//!
//! Discodo has no per-bot credential: an IDENTIFY with another bot's `user_id` and
//! `shard_id` takes its audio manager over (documented), so the row for "someone else's
//! session" uses the observer's `user_id` on another shard, which must leave it untouched.

use super::{nested, read_text, unclosed, In, Protocol, Row, Ws};
use crate::support::{masked, upgrade_request, Raw, TEXT};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The server's options.
pub const ARGS: &[&str] = &[
    "--password",
    "pw",
    "--heartbeat-ms",
    "1000",
    "--vc-timeout-ms",
    "60000",
];
const HELLO: &str = r#"{"op":"HELLO","d":{"heartbeat_interval":1.0}}"#;
const BEAT: &str = r#"{"op":"HEARTBEAT","d":7}"#;
const ACK: &str = r#"{"op":"HEARTBEAT_ACK","d":7}"#;
/// The observer's guild.
const GUILD: &str = "555";

/// An error payload `{"op":NAME,"d":why}`.
fn error(name: &str, why: &str) -> String {
    format!(r#"{{"op":"{name}","d":"{why}"}}"#)
}

fn op(name: &str, d: &str) -> String {
    format!(r#"{{"op":"{name}","d":{d}}}"#)
}

/// The Discodo protocol as the rows speak it: bot `rude-N` with the password.
pub struct DiscodoWire;

impl Protocol for DiscodoWire {
    fn upgrade(&self, _: usize) -> String {
        upgrade_request("/", "Authorization: pw\r\n")
    }
    fn opened(&self, raw: &mut Raw) -> Option<String> {
        assert_eq!(read_text(raw), HELLO);
        None
    }
    fn identify(&self, raw: &mut Raw, n: usize) -> Option<String> {
        raw.send(&masked(
            TEXT,
            op(
                "IDENTIFY",
                &format!(r#"{{"user_id":"rude-{n}","shard_id":null}}"#),
            )
            .as_bytes(),
        ));
        None
    }
}

/// A non-fatal DECODE_ERROR; the connection then still heartbeats.
fn undecodable(name: &str, text: impl AsRef<str>) -> Row {
    let prefix = r#"{"op":"DECODE_ERROR","d":"malformed payload: "#;
    Row::open(name)
        .text(text)
        .answer_prefix(prefix)
        .text(BEAT)
        .answer(ACK)
}

/// An answer `expected` (exact) at `stage`; the connection then still heartbeats.
fn answered(row: Row, text: impl AsRef<str>, expected: impl Into<String>) -> Row {
    row.text(text).answer(expected).text(BEAT).answer(ACK)
}

fn bad_id(name: &str, field: &str, identify: &str) -> Row {
    let why = format!("{field} must be a non-empty string or a non-negative integer");
    answered(
        Row::open(name),
        op("IDENTIFY", identify),
        error("BAD_REQUEST", &why),
    )
}

/// Fatal before IDENTIFY: NOT_IDENTIFIED then close 4003 with the same words.
fn too_early(name: &str, text: &str, why: &'static str) -> Row {
    Row::open(name)
        .text(text)
        .answer(error("NOT_IDENTIFIED", why))
        .close_because(4003, why)
}

/// The protocol's own rows.
pub fn rows() -> Vec<Row> {
    let deep = nested(10_000);
    let not_found = |g: &str| {
        error(
            "VOICE_CLIENT_NOT_FOUND",
            &format!("no voice client for guild {g}"),
        )
    };
    let guild_why = error(
        "BAD_REQUEST",
        "guild_id must be a non-empty string or a non-negative integer",
    );
    let event = |t: &str, d: &str| op("DISCORD_EVENT", &format!(r#"{{"t":"{t}","d":{d}}}"#));
    let forbidden = |name: &str, auth: &str, why: &'static str| {
        Row::http(name)
            .write(upgrade_request("/", auth))
            .status(101)
            .answer(error("FORBIDDEN", why))
            .close_because(4001, why)
    };
    vec![
        forbidden(
            "upgrade without Authorization",
            "",
            "missing Authorization header",
        ),
        forbidden(
            "upgrade with a wrong password",
            "Authorization: nope\r\n",
            "password mismatch",
        ),
        forbidden(
            "upgrade with the password as Bearer",
            "Authorization: Bearer pw\r\n",
            "password mismatch",
        ),
        undecodable("not JSON", "hello"),
        undecodable("a JSON array", "[]"),
        undecodable("no op", r#"{"d":{}}"#),
        undecodable("op a number", r#"{"op":1}"#),
        undecodable("op null", r#"{"op":null}"#),
        undecodable("op \"\\ud800\"", r#"{"op":"\ud800"}"#),
        undecodable("op given twice", r#"{"op":"HEARTBEAT","op":"IDENTIFY"}"#),
        undecodable("10,000 unclosed brackets", unclosed(10_000)),
        undecodable(
            "10,000 unclosed brackets as d",
            format!(r#"{{"op":"HEARTBEAT","d":{}"#, unclosed(10_000)),
        ),
        Row::open("a binary payload: a DECODE_ERROR, not fatal")
            .binary(BEAT)
            .answer_prefix(r#"{"op":"DECODE_ERROR","d":""#)
            .text(BEAT)
            .answer(ACK),
        Row::open("a binary payload (invalid UTF-8 inside), as documented")
            .binary(b"{\"op\":\"HEARTBEAT\",\"d\":\"\xFF\"}")
            .answer(r#"{"op":"DECODE_ERROR","d":"binary messages are not accepted"}"#),
        // Heartbeats echo d as sent, whatever it holds.
        Row::open("heartbeat d = 1e400 is echoed as sent")
            .text(op("HEARTBEAT", "1e400"))
            .answer(op("HEARTBEAT_ACK", "1e400")),
        Row::open("heartbeat d = 2^64 is echoed as sent")
            .text(op("HEARTBEAT", "18446744073709551616"))
            .answer(op("HEARTBEAT_ACK", "18446744073709551616")),
        Row::open("heartbeat d = \"\\ud800\" is echoed as sent")
            .text(op("HEARTBEAT", r#""\ud800""#))
            .answer(op("HEARTBEAT_ACK", r#""\ud800""#)),
        Row::open("heartbeat d = 10,000 nested arrays is echoed as sent")
            .text(op("HEARTBEAT", &deep))
            .answer(op("HEARTBEAT_ACK", &deep)),
        Row::open("heartbeat without d")
            .text(r#"{"op":"HEARTBEAT"}"#)
            .answer(op("HEARTBEAT_ACK", "null")),
        Row::open("heartbeat split byte by byte")
            .trickle(masked(TEXT, BEAT.as_bytes()))
            .answer(ACK),
        // Wrong order.
        too_early(
            "getState before IDENTIFY",
            &op("getState", r#"{"guild_id":"555"}"#),
            "getState before IDENTIFY",
        ),
        too_early(
            "VC_DESTROY of the observer's guild before IDENTIFY",
            &op("VC_DESTROY", r#"{"guild_id":"555"}"#),
            "VC_DESTROY before IDENTIFY",
        ),
        too_early(
            "an unknown op before IDENTIFY",
            r#"{"op":"NOPE"}"#,
            "NOPE before IDENTIFY",
        ),
        // IDENTIFY of the wrong shape.
        answered(
            Row::open("IDENTIFY without d"),
            r#"{"op":"IDENTIFY"}"#,
            error("BAD_REQUEST", "IDENTIFY needs d"),
        ),
        answered(
            Row::open("IDENTIFY with d null"),
            op("IDENTIFY", "null"),
            error("BAD_REQUEST", "IDENTIFY needs d"),
        ),
        Row::open("IDENTIFY with d an array")
            .text(op("IDENTIFY", "[]"))
            .answer_prefix(r#"{"op":"BAD_REQUEST","d":"IDENTIFY: invalid"#),
        Row::open("IDENTIFY without user_id")
            .text(op("IDENTIFY", r#"{"shard_id":null}"#))
            .answer_prefix(r#"{"op":"BAD_REQUEST","d":"IDENTIFY: missing field `user_id`"#),
        bad_id("user_id 1e400", "user_id", r#"{"user_id":1e400}"#),
        bad_id(
            "user_id 2^64",
            "user_id",
            r#"{"user_id":18446744073709551616}"#,
        ),
        bad_id("user_id -1", "user_id", r#"{"user_id":-1}"#),
        bad_id("user_id 1.5", "user_id", r#"{"user_id":1.5}"#),
        bad_id("user_id true", "user_id", r#"{"user_id":true}"#),
        bad_id("user_id empty", "user_id", r#"{"user_id":""}"#),
        bad_id(
            "user_id of 65 bytes",
            "user_id",
            &format!(r#"{{"user_id":"{}"}}"#, "u".repeat(65)),
        ),
        bad_id("user_id \"\\ud800\"", "user_id", r#"{"user_id":"\ud800"}"#),
        bad_id(
            "user_id 10,000 nested arrays",
            "user_id",
            &format!(r#"{{"user_id":{deep}}}"#),
        ),
        bad_id(
            "shard_id -1",
            "shard_id",
            r#"{"user_id":"x","shard_id":-1}"#,
        ),
        bad_id(
            "shard_id 1e400",
            "shard_id",
            r#"{"user_id":"x","shard_id":1e400}"#,
        ),
        answered(
            Row::open("shard_id \"x\""),
            op("IDENTIFY", r#"{"user_id":"x","shard_id":"x"}"#),
            error(
                "BAD_REQUEST",
                "shard_id must be null or a non-negative integer",
            ),
        ),
        Row::open("IDENTIFY as the observer's user_id on another shard leaves it alone")
            .text(op("IDENTIFY", r#"{"user_id":"watcher","shard_id":1}"#))
            .quiet()
            .text(op("getState", r#"{"guild_id":"555"}"#))
            .answer(not_found("555")),
        // Identified.
        answered(
            Row::identified("a second IDENTIFY"),
            op("IDENTIFY", r#"{"user_id":"x"}"#),
            error(
                "ALREADY_IDENTIFIED",
                "this connection is already identified",
            ),
        ),
        answered(
            Row::identified("an unknown op"),
            r#"{"op":"NOPE"}"#,
            error("UNKNOWN_OP", "unknown op NOPE"),
        ),
        answered(
            Row::identified("a lowercase heartbeat"),
            r#"{"op":"heartbeat"}"#,
            error("UNKNOWN_OP", "unknown op heartbeat"),
        ),
        answered(
            Row::identified("the server's HELLO"),
            op("HELLO", "{}"),
            error("UNKNOWN_OP", "unknown op HELLO"),
        ),
        answered(
            Row::identified("VC_DESTROY without d"),
            r#"{"op":"VC_DESTROY"}"#,
            error("BAD_REQUEST", "VC_DESTROY needs d"),
        ),
        answered(
            Row::identified("VC_DESTROY of an unknown guild"),
            op("VC_DESTROY", r#"{"guild_id":"1"}"#),
            not_found("1"),
        ),
        answered(
            Row::identified("VC_DESTROY of the observer's guild"),
            op("VC_DESTROY", r#"{"guild_id":"555"}"#),
            not_found("555"),
        ),
        answered(
            Row::identified("getState of the observer's guild"),
            op("getState", r#"{"guild_id":555}"#),
            not_found("555"),
        ),
        answered(
            Row::identified("getState of guild 1e400"),
            op("getState", r#"{"guild_id":1e400}"#),
            guild_why.clone(),
        ),
        answered(
            Row::identified("DISCORD_EVENT without d"),
            r#"{"op":"DISCORD_EVENT"}"#,
            error("BAD_REQUEST", "DISCORD_EVENT needs d"),
        ),
        Row::identified("DISCORD_EVENT without t")
            .text(op("DISCORD_EVENT", r#"{"d":{}}"#))
            .answer_prefix(r#"{"op":"BAD_REQUEST","d":"DISCORD_EVENT: missing field `t`"#),
        Row::identified("DISCORD_EVENT with t a number")
            .text(op("DISCORD_EVENT", r#"{"t":5,"d":{}}"#))
            .answer_prefix(r#"{"op":"BAD_REQUEST","d":"DISCORD_EVENT: invalid type"#),
        answered(
            Row::identified("VOICE_STATE_UPDATE without d"),
            op("DISCORD_EVENT", r#"{"t":"VOICE_STATE_UPDATE"}"#),
            error("BAD_REQUEST", "VOICE_STATE_UPDATE needs d"),
        ),
        answered(
            Row::identified("VOICE_STATE_UPDATE guild 2^64"),
            event(
                "VOICE_STATE_UPDATE",
                r#"{"guild_id":18446744073709551616,"channel_id":"1"}"#,
            ),
            guild_why.clone(),
        ),
        answered(
            Row::identified("VOICE_SERVER_UPDATE guild \"\\ud800\""),
            event("VOICE_SERVER_UPDATE", r#"{"guild_id":"\ud800"}"#),
            guild_why.clone(),
        ),
        answered(
            Row::identified("VOICE_SERVER_UPDATE guild of 10,000 nested arrays"),
            event("VOICE_SERVER_UPDATE", &format!(r#"{{"guild_id":{deep}}}"#)),
            guild_why,
        ),
        Row::identified("another member's VOICE_STATE_UPDATE is ignored")
            .text(event(
                "VOICE_STATE_UPDATE",
                r#"{"guild_id":"9","channel_id":"1","user_id":"someone"}"#,
            ))
            .quiet(),
        Row::identified("a Discord READY is ignored")
            .text(event("READY", r#"{"v":10}"#))
            .quiet(),
    ]
}

/// Connects as bot `watcher`, identifies, creates the voice client of guild 555; returns
/// the client and the voice client's id.
pub fn connect(addr: SocketAddr) -> (Ws, String) {
    let mut ws = Ws::connect(addr, "/", &[("Authorization", "pw")]);
    assert_eq!(ws.text(), HELLO);
    ws.send(op("IDENTIFY", r#"{"user_id":"watcher","shard_id":null}"#));
    ws.send(op(
        "DISCORD_EVENT",
        r#"{"t":"VOICE_SERVER_UPDATE","d":{"guild_id":"555","token":"t","endpoint":"e"}}"#,
    ));
    let created: serde_json::Value = ws.json();
    assert_eq!(
        (&created["op"], &created["d"]["guild_id"]),
        (&"VC_CREATED".into(), &GUILD.into())
    );
    (ws, created["d"]["id"].as_str().unwrap().to_owned())
}

/// Every 20 ms, alternately a numbered heartbeat and a getState of its voice client, each
/// answer checked exactly and in order, until stopped (after at least [`super::AT_LEAST`]
/// of each) and everything is answered. Returns how many requests were answered.
pub fn observe(mut ws: Ws, vc: String, stop: &AtomicBool) -> usize {
    let state = op(
        "getState",
        &format!(r#"{{"id":"{vc}","guild_id":"555","channel_id":null}}"#),
    );
    let mut waiting = VecDeque::new();
    let (mut next, mut n, mut answered) = (Instant::now(), 0, 0);
    let started = Instant::now();
    let stopped = |n: usize| stop.load(Ordering::Acquire) && n >= 2 * super::AT_LEAST;
    while !(stopped(n) && waiting.is_empty()) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the observer never finished"
        );
        if Instant::now() >= next && !stopped(n) {
            if n % 2 == 0 {
                ws.send(op("HEARTBEAT", &n.to_string()));
                waiting.push_back(op("HEARTBEAT_ACK", &n.to_string()));
            } else {
                ws.send(op("getState", r#"{"guild_id":"555"}"#));
                waiting.push_back(state.clone());
            }
            n += 1;
            next += Duration::from_millis(20);
        }
        while let Some(got) = ws.next(Duration::from_millis(5)) {
            match (got, waiting.pop_front()) {
                (In::Text(text), Some(want)) if text == want => answered += 1,
                (got, want) => panic!("the observer was disturbed: got {got:?}, wanted {want:?}"),
            }
        }
    }
    answered
}
