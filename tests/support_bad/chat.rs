//! The chat gateway's matrix (`examples/chat.rs`, docs/protocols/chat.md): rows for every
//! function code in the wrong order, of the wrong type, unknown or huge, deep JSON, broken
//! strings, a second present, resumes of someone else's session, event payloads of the
//! wrong shape; and the observers, alice and bob, who chat throughout.
//!
//! The hostile user is mallory (`TOKEN_M`).

use super::{fr, nested, read_text, unclosed, In, Protocol, Row, Ws};
use crate::support::{masked, upgrade_request, Raw, CONT, TEXT};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The heartbeat interval the server runs with (silence allowed: 2.5 s).
pub const HB: u64 = 1000;
/// The server's options.
pub const ARGS: &[&str] = &[
    "--user",
    "alice:TOKEN_A",
    "--user",
    "bob:TOKEN_B",
    "--user",
    "mallory:TOKEN_M",
    "--admin",
    "root:TOKEN_R",
    "--heartbeat-ms",
    "1000",
];
const HELLO: &str = r#"{"f":100,"cnf":{"hb_int":1000}}"#;
const READY: &str = r#"{"f":140,"cnf":{"v":6,"session_id":"#;
const BEAT: &str = r#"{"f":120}"#;
const PRESENT: &str = r#"{"f":110,"cnf":{"token":"TOKEN_M"}}"#;

/// A known bug (see the report in `tests/bad_input.rs`).
const SIGNED_DIGITS: &str = "a number given as a string with a leading '+' is accepted \
    (u64::from_str takes '+'): a resume gets 4006 instead of the decode error 4002, a \
    MESSAGE_DELETE of \"+1\" deletes (or is refused) as id 1 instead of 4011";

/// The 150 error payload.
fn err(code: u16, fatal: bool) -> String {
    format!(r#"{{"f":150,"cnf":{{"c":{code},"d":{fatal}}}}}"#)
}

/// A client's execute (130) of `event` with `cnf` (JSON text).
fn exec(event: &str, cnf: &str) -> String {
    format!(r#"{{"f":130,"t":"{event}","cnf":{cnf}}}"#)
}

/// A resume of `session_id` (JSON text) with `token` (JSON text) from `s` (JSON text).
fn resume(token: &str, session_id: &str, s: &str) -> String {
    format!(r#"{{"f":110,"cnf":{{"token":{token},"session_id":{session_id},"s":{s}}}}}"#)
}

/// The chat protocol as the rows speak it: mallory presents.
pub struct ChatWire;

impl Protocol for ChatWire {
    fn upgrade(&self, _: usize) -> String {
        upgrade_request("/gateway", "")
    }
    fn opened(&self, raw: &mut Raw) -> Option<String> {
        assert_eq!(read_text(raw), HELLO);
        None
    }
    fn identify(&self, raw: &mut Raw, _: usize) -> Option<String> {
        raw.send(&masked(TEXT, PRESENT.as_bytes()));
        assert!(read_text(raw).starts_with(READY));
        let joined =
            r#"{"f":130,"s":1,"t":"ROOM_USER_ADD","cnf":{"user":"mallory","channel":"general"}}"#;
        assert_eq!(read_text(raw), joined);
        None
    }
    /// Mallory's session is in `general`: bob's messages and others' arrivals reach it.
    fn noise(&self, text: &str) -> bool {
        text.starts_with(r#"{"f":130,"#)
    }
}

/// Rows fatal with `code`: its 150 then a Close with `reason`.
fn fatal(name: &str, text: impl AsRef<str>, code: u16, reason: &'static str) -> Row {
    Row::open(name)
        .text(text)
        .answer(err(code, true))
        .close_because(code, reason)
}

/// Fatal 4002: not the envelope or not its types.
fn decode(name: &str, text: impl AsRef<str>) -> Row {
    fatal(name, text, 4002, "decode error")
}

/// Fatal 4001: a function code clients may not send.
fn unknown(name: &str, text: impl AsRef<str>) -> Row {
    fatal(name, text, 4001, "unknown operation")
}

/// Fatal 4003: before present.
fn early(name: &str, text: impl AsRef<str>) -> Row {
    fatal(name, text, 4003, "not identified")
}

/// Fatal 4004: a token nobody has.
fn stranger(name: &str, text: impl AsRef<str>) -> Row {
    fatal(name, text, 4004, "authentication failed")
}

/// Rows with a non-fatal 150 on an identified connection, which then still heartbeats.
fn refused(name: &str, text: impl AsRef<str>, code: u16) -> Row {
    Row::identified(name)
        .text(text)
        .answer(err(code, false))
        .text(BEAT)
        .answer(BEAT)
}

/// The protocol's own rows. `alice` is the observer's session id; message 1 is bob's.
pub fn rows(alice: u64) -> Vec<Row> {
    let a = alice.to_string();
    let quoted = format!("\"{alice}\"");
    let mut padded = r#"{"f":110,"cnf":{"token":"TOKEN_M","pad":""}}"#.to_string();
    padded.insert_str(padded.len() - 3, &"p".repeat(4096 - padded.len()));
    let deep_ok = format!(
        r#"{{"f":110,"cnf":{{"token":"TOKEN_M","x":{}}}}}"#,
        nested(2000)
    );
    let (p1, p2, p3) = (&PRESENT[..10], &PRESENT[10..20], &PRESENT[20..]);
    let mut flood = Row::identified("heartbeat flood: 4 answered, 10 refused, the 11th fatal")
        .write(masked(TEXT, BEAT.as_bytes()).repeat(15));
    for _ in 0..4 {
        flood = flood.answer(BEAT);
    }
    for _ in 0..10 {
        flood = flood.answer(err(4008, false));
    }
    flood = flood
        .answer(err(4008, true))
        .close_because(4008, "rate limited");
    vec![
        // Not the envelope.
        decode("not JSON", "hello"),
        decode("empty text", ""),
        decode("a JSON array", "[]"),
        decode("a JSON string", "\"f\""),
        decode("no f", "{}"),
        decode("f as a string", r#"{"f":"110","cnf":{"token":"TOKEN_M"}}"#),
        decode("f as 110.0", r#"{"f":110.0,"cnf":{"token":"TOKEN_M"}}"#),
        decode("f = 1e400", r#"{"f":1e400}"#),
        decode("f = 2^64", r#"{"f":18446744073709551616}"#),
        decode("f given twice", r#"{"f":110,"f":120}"#),
        decode("4,000 unclosed brackets", unclosed(4000)),
        // Unknown or server-only function codes.
        unknown("f = -1", r#"{"f":-1}"#),
        unknown("f = 2^63 - 1", r#"{"f":9223372036854775807}"#),
        unknown(
            "f = 100 (server's HELLO)",
            r#"{"f":100,"cnf":{"hb_int":1}}"#,
        ),
        unknown("f = 140 (server's READY)", r#"{"f":140,"cnf":{}}"#),
        unknown(
            "f = 150 (server's error)",
            r#"{"f":150,"cnf":{"c":4000,"d":false}}"#,
        ),
        // Wrong order.
        early("heartbeat before present", BEAT),
        early(
            "execute before present",
            exec("MESSAGE_CREATE", r#"{"content":"x"}"#),
        ),
        decode("execute without t before present", r#"{"f":130}"#),
        // Present of the wrong shape.
        decode("present without cnf", r#"{"f":110}"#),
        decode("present with cnf a string", r#"{"f":110,"cnf":"TOKEN_M"}"#),
        decode(
            "present with a numeric token",
            r#"{"f":110,"cnf":{"token":42}}"#,
        ),
        decode(
            "present with a null token",
            r#"{"f":110,"cnf":{"token":null}}"#,
        ),
        decode(
            "present with token \"\\ud800\"",
            r#"{"f":110,"cnf":{"token":"\ud800"}}"#,
        ),
        decode(
            "present with 4,000 unclosed brackets as token",
            format!(r#"{{"f":110,"cnf":{{"token":{}"#, unclosed(4000)),
        ),
        decode(
            "present with two tokens",
            r#"{"f":110,"cnf":{"token":"TOKEN_M","token":"TOKEN_A"}}"#,
        ),
        stranger(
            "present with a NUL after the token",
            r#"{"f":110,"cnf":{"token":"TOKEN_M\u0000"}}"#,
        ),
        stranger(
            "present with an unknown token",
            r#"{"f":110,"cnf":{"token":"nope"}}"#,
        ),
        Row::open("2,000 nested arrays in an unknown field are ignored")
            .text(deep_ok)
            .answer_prefix(READY),
        Row::open("a present of exactly 4096 bytes")
            .text(&padded)
            .answer_prefix(READY),
        Row::open("a present of 4097 bytes")
            .text(format!("{padded} "))
            .close(1009),
        Row::open("a present in three fragments")
            .write(
                [
                    fr(false, 0, TEXT, p1.as_bytes()),
                    fr(false, 0, CONT, p2.as_bytes()),
                ]
                .concat(),
            )
            .write(fr(true, 0, CONT, p3.as_bytes()))
            .answer_prefix(READY),
        Row::open("a present split byte by byte")
            .trickle(masked(TEXT, PRESENT.as_bytes()))
            .answer_prefix(READY),
        Row::open("a present as a binary message")
            .binary(PRESENT)
            .answer(err(4002, true))
            .close(4002),
        Row::open("invalid UTF-8 in a JSON string, as a binary message")
            .binary(b"{\"f\":110,\"cnf\":{\"token\":\"\xFF\xFE\"}}")
            .answer(err(4002, true))
            .close(4002),
        // Resume of the wrong shape, and of someone else's session.
        decode(
            "resume with session_id \"abc\"",
            resume("\"TOKEN_M\"", "\"abc\"", "0"),
        ),
        decode(
            "resume with session_id -1",
            resume("\"TOKEN_M\"", "-1", "0"),
        ),
        decode(
            "resume with session_id 1.5e19",
            resume("\"TOKEN_M\"", "1.5e19", "0"),
        ),
        decode(
            "resume with session_id 2^64",
            resume("\"TOKEN_M\"", "18446744073709551616", "0"),
        ),
        decode(
            "resume with session_id 1e400",
            resume("\"TOKEN_M\"", "1e400", "0"),
        ),
        decode(
            "resume with s = 2^64",
            resume("\"TOKEN_M\"", &a, "18446744073709551616"),
        ),
        decode("resume with s = -1", resume("\"TOKEN_M\"", &a, "-1")),
        decode(
            "resume with session_id \"+N\" (not a string of digits)",
            resume("\"TOKEN_M\"", &format!("\"+{alice}\""), "0"),
        )
        .bug(SIGNED_DIGITS),
        decode(
            "resume with s \"+0\" (not a string of digits)",
            resume("\"TOKEN_M\"", &a, "\"+0\""),
        )
        .bug(SIGNED_DIGITS),
        Row::open("resume of an unknown session: 4006, then a present works")
            .text(resume("\"TOKEN_M\"", "12345", "0"))
            .answer(err(4006, false))
            .text(PRESENT)
            .answer_prefix(READY),
        Row::open("resume of alice's session with mallory's token")
            .text(resume("\"TOKEN_M\"", &a, "0"))
            .answer(err(4006, false))
            .text(PRESENT)
            .answer_prefix(READY),
        Row::open("resume of alice's session (as digits) with mallory's token")
            .text(resume("\"TOKEN_M\"", &quoted, "0"))
            .answer(err(4006, false))
            .quiet(),
        Row::open("resume of alice's session with an unknown token")
            .text(resume("\"nope\"", &a, "0"))
            .answer(err(4006, false))
            .quiet(),
        Row::open("resume of alice's session without a token")
            .text(format!(r#"{{"f":110,"cnf":{{"session_id":{a}}}}}"#))
            .answer(err(4006, false))
            .quiet(),
        // On an identified connection.
        Row::identified("a second present")
            .text(PRESENT)
            .answer(err(4005, true))
            .close_because(4005, "already identified"),
        Row::identified("a resume after present")
            .text(resume("\"TOKEN_M\"", "12345", "0"))
            .answer(err(4005, true))
            .close(4005),
        refused("unknown event", exec("NOPE", "{}"), 4010),
        refused(
            "server-only event ROOM_USER_ADD",
            exec("ROOM_USER_ADD", r#"{"user":"x","channel":"general"}"#),
            4010,
        ),
        refused(
            "server-only event GATEWAY_DOWN",
            exec("GATEWAY_DOWN", "{}"),
            4010,
        ),
        Row::identified("execute without t")
            .text(r#"{"f":130,"cnf":{}}"#)
            .answer(err(4002, true))
            .close(4002),
        Row::identified("t as a number")
            .text(r#"{"f":130,"t":5,"cnf":{}}"#)
            .answer(err(4002, true))
            .close(4002),
        refused(
            "MESSAGE_CREATE with numeric content",
            exec("MESSAGE_CREATE", r#"{"content":42}"#),
            4011,
        ),
        refused(
            "MESSAGE_CREATE with cnf a string",
            exec("MESSAGE_CREATE", r#""hi""#),
            4011,
        ),
        refused(
            "MESSAGE_CREATE with empty content",
            exec("MESSAGE_CREATE", r#"{"content":""}"#),
            4011,
        ),
        refused(
            "MESSAGE_CREATE of 2001 characters",
            exec(
                "MESSAGE_CREATE",
                &json!({"content": "x".repeat(2001)}).to_string(),
            ),
            4011,
        ),
        refused(
            "MESSAGE_CREATE with content \"\\ud800\"",
            exec("MESSAGE_CREATE", r#"{"content":"\ud800"}"#),
            4011,
        ),
        refused(
            "MESSAGE_DELETE id 1e400",
            exec("MESSAGE_DELETE", r#"{"id":1e400}"#),
            4011,
        ),
        refused(
            "MESSAGE_DELETE id 2^64",
            exec("MESSAGE_DELETE", r#"{"id":18446744073709551616}"#),
            4011,
        ),
        refused(
            "MESSAGE_DELETE id -1",
            exec("MESSAGE_DELETE", r#"{"id":-1}"#),
            4011,
        ),
        refused(
            "MESSAGE_DELETE id \"abc\"",
            exec("MESSAGE_DELETE", r#"{"id":"abc"}"#),
            4011,
        ),
        refused(
            "MESSAGE_DELETE id \"+1\" (not a string of digits)",
            exec("MESSAGE_DELETE", r#"{"id":"+1"}"#),
            4011,
        )
        .bug(SIGNED_DIGITS),
        refused(
            "MESSAGE_DELETE of bob's message",
            exec("MESSAGE_DELETE", r#"{"id":1}"#),
            4012,
        ),
        refused(
            "MESSAGE_DELETE of an unknown id",
            exec("MESSAGE_DELETE", r#"{"id":999999}"#),
            4016,
        ),
        refused(
            "CHANNEL_MOVE to an unknown channel",
            exec("CHANNEL_MOVE", r#"{"channel":"nowhere"}"#),
            4016,
        ),
        refused(
            "CHANNEL_ADD of a bad name",
            exec("CHANNEL_ADD", r#"{"channel":"Bad Name!"}"#),
            4011,
        ),
        refused(
            "CHANNEL_ADD of general again",
            exec("CHANNEL_ADD", r#"{"channel":"general"}"#),
            4011,
        ),
        refused(
            "SYSTEM_BAN_ADD of alice by a non-admin",
            exec("SYSTEM_BAN_ADD", r#"{"user":"alice"}"#),
            4012,
        ),
        Row::identified("heartbeat with 2,000 nested arrays in cnf")
            .text(format!(r#"{{"f":120,"cnf":{}}}"#, nested(2000)))
            .answer(BEAT),
        Row::identified("heartbeat with cnf 1e400")
            .text(r#"{"f":120,"cnf":1e400}"#)
            .answer(BEAT),
        Row::identified("heartbeat with cnf \"\\ud800\"")
            .text(r#"{"f":120,"cnf":"\ud800"}"#)
            .answer(BEAT),
        Row::identified("heartbeat split byte by byte")
            .trickle(masked(TEXT, BEAT.as_bytes()))
            .answer(BEAT),
        Row::identified("4,000 unclosed brackets in a heartbeat")
            .text(format!(r#"{{"f":120,"cnf":{}"#, unclosed(4000)))
            .answer(err(4002, true))
            .close(4002),
        flood,
    ]
}

/// Connects, presents `token`, reads READY and the session's own ROOM_USER_ADD; returns
/// the client and its session id.
pub fn login(addr: SocketAddr, token: &str) -> (Ws, u64) {
    let mut ws = Ws::connect(addr, "/", &[]);
    assert_eq!(ws.text(), HELLO);
    ws.send(json!({"f": 110, "cnf": {"token": token}}).to_string());
    let ready = ws.json();
    assert_eq!(ready["f"], 140, "{ready}");
    let sid = ready["cnf"]["session_id"].as_u64().expect("session_id");
    let joined = ws.json();
    assert_eq!(
        (&joined["t"], &joined["s"]),
        (&json!("ROOM_USER_ADD"), &json!(1))
    );
    (ws, sid)
}

/// One well-behaved chatter: its last sequence number and bob's messages it received.
struct Chatter {
    name: &'static str,
    ws: Ws,
    last: u64,
    beats: usize,
    acks: usize,
    from_bob: Vec<String>,
}

impl Chatter {
    /// Takes one payload; anything but an event in sequence or a heartbeat echo is a
    /// disturbance.
    fn take(&mut self, got: In) {
        let In::Text(text) = got else {
            panic!("{} was disturbed: {got:?}", self.name);
        };
        let v: Value = serde_json::from_str(&text).expect("JSON");
        match v["f"].as_u64() {
            Some(120) => {
                assert_eq!(text, BEAT);
                self.acks += 1;
            }
            Some(130) => {
                let s = v["s"].as_u64().expect("s");
                assert_eq!(s, self.last + 1, "{}'s sequence jumped: {text}", self.name);
                self.last = s;
                if v["t"] == "MESSAGE_CREATE" && v["cnf"]["author"] == "bob" {
                    self.from_bob
                        .push(v["cnf"]["content"].as_str().unwrap().to_owned());
                }
            }
            _ => panic!("{} was disturbed: {text}", self.name),
        }
    }
}

/// What the observers saw: how many messages bob sent, and what each of them received.
pub struct Report {
    pub sent: usize,
    pub alice: Vec<String>,
    pub bob: Vec<String>,
    pub beats: usize,
}

/// Alice listens, bob chats (a message every 50 ms, at most 100), both heartbeat every
/// 400 ms, until stopped (and at least [`super::AT_LEAST`] messages); then bob sends "end"
/// and both must receive it. `last` is each one's last sequence number so far.
pub fn observe(alice: (Ws, u64), bob: (Ws, u64), stop: &AtomicBool) -> Report {
    let chatter = |name, (ws, last)| Chatter {
        name,
        ws,
        last,
        beats: 0,
        acks: 0,
        from_bob: Vec::new(),
    };
    let mut people = [chatter("alice", alice), chatter("bob", bob)];
    let (mut next_beat, mut next_message) = (Instant::now(), Instant::now());
    let (mut sent, mut ending) = (0, None::<Instant>);
    loop {
        let now = Instant::now();
        if now >= next_beat {
            for p in &mut people {
                p.ws.send(BEAT);
                p.beats += 1;
            }
            next_beat += Duration::from_millis(HB * 2 / 5);
        }
        if ending.is_none() && now >= next_message && sent < 100 {
            people[1].ws.send(exec(
                "MESSAGE_CREATE",
                &json!({"content": format!("m{sent}")}).to_string(),
            ));
            sent += 1;
            next_message += Duration::from_millis(50);
        }
        if ending.is_none() && stop.load(Ordering::Acquire) && sent >= super::AT_LEAST {
            people[1]
                .ws
                .send(exec("MESSAGE_CREATE", r#"{"content":"end"}"#));
            ending = Some(now);
        }
        for p in &mut people {
            while let Some(got) = p.ws.next(Duration::from_millis(5)) {
                p.take(got);
            }
        }
        let done = |p: &Chatter| p.from_bob.last().is_some_and(|m| m == "end") && p.acks == p.beats;
        if ending.is_some() && people.iter().all(done) {
            break;
        }
        assert!(
            ending.is_none_or(|t| t.elapsed() < Duration::from_secs(5)),
            "the end never came"
        );
    }
    let [alice, bob] = people;
    Report {
        sent,
        beats: alice.beats,
        alice: alice.from_bob,
        bob: bob.from_bob,
    }
}
