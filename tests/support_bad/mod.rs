//! The bad-input matrix's harness (`tests/bad_input.rs`): table rows of hostile input and
//! the exact answer each must get, and a runner that plays every row on its own raw socket.
//! [`shared`] holds the rows every server shares (WebSocket framing and the HTTP phase);
//! [`clients`] the example binaries run as subprocesses, a small tungstenite client for the
//! well-behaved observers, and a thread that runs an observer while the matrix plays. Each
//! server's own rows and observer are in the module named after it.
//!
//! Include with `mod support; mod support_bad;` (it builds on `support::Raw`).
#![allow(dead_code)]

mod clients;
mod shared;

pub use clients::*;
pub use shared::*;

pub mod chat;
pub mod discodo;
pub mod echo;
pub mod nexus;
pub mod nightingale;
pub mod rooms;

use crate::support::{close_frame, masked, Frame, Raw, CLOSE, PONG, TEXT};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How long an expected answer may take.
pub const ANSWER: Duration = Duration::from_secs(3);
/// How long "nothing comes back" is watched for.
pub const QUIET: Duration = Duration::from_millis(150);
/// The fewest messages or events an observer exchanges, however fast the matrix plays.
pub const AT_LEAST: usize = 10;

// ---------------------------------------------------------------------------------------
// Rows

/// Where a row's hostile client stands before its first step.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Stage {
    /// A bare TCP connection: the row sends its own request.
    Http,
    /// Upgraded with the protocol's well-formed request; the greeting (HELLO, ready...) read.
    Open,
    /// Open, then identified (where the protocol has an identify step).
    Identified,
}

/// How a received payload must look.
#[derive(Clone, Debug)]
pub enum Match {
    /// Exactly this text.
    Exact(String),
    /// Text starting with this (where the rest is a library's wording or random).
    Prefix(String),
}

impl Match {
    fn check(&self, got: &str) -> bool {
        match self {
            Match::Exact(s) => got == s,
            Match::Prefix(p) => got.starts_with(p.as_str()),
        }
    }
}

/// One step of a row: something sent, or the answer expected.
#[derive(Clone, Debug)]
pub enum Step {
    /// Write these bytes at once.
    Write(Vec<u8>),
    /// Write these bytes one at a time (each its own TCP segment).
    Trickle(Vec<u8>),
    /// Open a second connection and send this HTTP request on it; `{TOKEN}` is replaced
    /// with the credential the greeting or identify step returned. Later HTTP answers are
    /// read there.
    Request(Vec<u8>),
    /// An HTTP response head with this status (and this header, if given).
    Status(u16, Option<(&'static str, &'static str)>),
    /// The response body (read to the end of the connection).
    Body(Match),
    /// A text frame.
    Text(Match),
    /// A Pong frame with this payload.
    Pong(Vec<u8>),
    /// A Close frame with this code (`None`: no payload) and reason (if given); the client
    /// answers it and the server must then end the TCP connection.
    Close(Option<u16>, Option<&'static str>),
    /// Nothing (but the protocol's noise) for [`QUIET`].
    Quiet,
}

/// One hostile input and its exact answer.
#[derive(Clone, Debug)]
pub struct Row {
    /// What the input is, as reported when the answer is wrong.
    pub name: String,
    /// Where the hostile client stands before the first step.
    pub stage: Stage,
    /// What it sends and what it must get, in order.
    pub steps: Vec<Step>,
    /// A known bug: the row expects the documented answer, and is run only by the
    /// `#[ignore]`d test of known bugs.
    pub bug: Option<&'static str>,
}

impl Row {
    fn new(name: impl Into<String>, stage: Stage) -> Row {
        Row {
            name: name.into(),
            stage,
            steps: Vec::new(),
            bug: None,
        }
    }
    /// A row on a bare TCP connection.
    pub fn http(name: impl Into<String>) -> Row {
        Row::new(name, Stage::Http)
    }
    /// A row on an upgraded, greeted connection.
    pub fn open(name: impl Into<String>) -> Row {
        Row::new(name, Stage::Open)
    }
    /// A row on an identified connection.
    pub fn identified(name: impl Into<String>) -> Row {
        Row::new(name, Stage::Identified)
    }
    fn step(mut self, step: Step) -> Row {
        self.steps.push(step);
        self
    }
    /// Bytes written at once.
    pub fn write(self, bytes: impl AsRef<[u8]>) -> Row {
        self.step(Step::Write(bytes.as_ref().to_vec()))
    }
    /// Bytes written one at a time.
    pub fn trickle(self, bytes: impl AsRef<[u8]>) -> Row {
        self.step(Step::Trickle(bytes.as_ref().to_vec()))
    }
    /// One masked text frame.
    pub fn text(self, text: impl AsRef<str>) -> Row {
        self.write(masked(TEXT, text.as_ref().as_bytes()))
    }
    /// One masked binary frame.
    pub fn binary(self, bytes: impl AsRef<[u8]>) -> Row {
        self.write(masked(crate::support::BINARY, bytes.as_ref()))
    }
    /// An HTTP request on a second connection (see [`Step::Request`]).
    pub fn request(self, request: impl AsRef<[u8]>) -> Row {
        self.step(Step::Request(request.as_ref().to_vec()))
    }
    /// An HTTP response with this status.
    pub fn status(self, status: u16) -> Row {
        self.step(Step::Status(status, None))
    }
    /// An HTTP response with this status and header.
    pub fn status_with(self, status: u16, name: &'static str, value: &'static str) -> Row {
        self.step(Step::Status(status, Some((name, value))))
    }
    /// The HTTP response body, exactly.
    pub fn body(self, body: impl Into<String>) -> Row {
        self.step(Step::Body(Match::Exact(body.into())))
    }
    /// The HTTP response body, starting with `prefix`.
    pub fn body_prefix(self, prefix: impl Into<String>) -> Row {
        self.step(Step::Body(Match::Prefix(prefix.into())))
    }
    /// A text frame exactly `text`.
    pub fn answer(self, text: impl Into<String>) -> Row {
        self.step(Step::Text(Match::Exact(text.into())))
    }
    /// A text frame starting with `prefix`.
    pub fn answer_prefix(self, prefix: impl Into<String>) -> Row {
        self.step(Step::Text(Match::Prefix(prefix.into())))
    }
    /// A Pong frame with `payload`.
    pub fn pong(self, payload: impl AsRef<[u8]>) -> Row {
        self.step(Step::Pong(payload.as_ref().to_vec()))
    }
    /// A Close frame with `code`, then the end of the connection.
    pub fn close(self, code: u16) -> Row {
        self.step(Step::Close(Some(code), None))
    }
    /// A Close frame with `code` and `reason`, then the end of the connection.
    pub fn close_because(self, code: u16, reason: &'static str) -> Row {
        self.step(Step::Close(Some(code), Some(reason)))
    }
    /// A Close frame without payload, then the end of the connection.
    pub fn close_empty(self) -> Row {
        self.step(Step::Close(None, None))
    }
    /// No answer at all (see [`Step::Quiet`]).
    pub fn quiet(self) -> Row {
        self.step(Step::Quiet)
    }
    /// Marks the row as a known bug (`why` is reported).
    pub fn bug(mut self, why: &'static str) -> Row {
        self.bug = Some(why);
        self
    }
}

// ---------------------------------------------------------------------------------------
// The runner

/// How a server is spoken to, as far as the rows need.
pub trait Protocol: Sync {
    /// The well-formed upgrade request of the `n`th hostile client.
    fn upgrade(&self, n: usize) -> String;
    /// Reads what the server sends when a connection opens (HELLO, ready...); returns a
    /// credential it carries for `{TOKEN}`, if any.
    fn opened(&self, raw: &mut Raw) -> Option<String>;
    /// Identifies client `n`; returns its credential for `{TOKEN}`, if any.
    fn identify(&self, raw: &mut Raw, n: usize) -> Option<String> {
        let _ = (raw, n);
        None
    }
    /// Payloads the server may send at any moment, which rows skip (heartbeats, probes).
    fn noise(&self, text: &str) -> bool {
        let _ = text;
        false
    }
}

/// The next frame within `limit`, skipping the protocol's noise unless `wanted` takes it.
fn next_frame(
    raw: &mut Raw,
    proto: &dyn Protocol,
    limit: Duration,
    wanted: Option<&Match>,
) -> Frame {
    let end = Instant::now() + limit;
    loop {
        let left = end
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1));
        raw.stream.set_read_timeout(Some(left)).unwrap();
        let frame = raw
            .read_frame()
            .unwrap_or_else(|e| panic!("no frame within {limit:?}: {e}"));
        if frame.opcode == TEXT {
            let text = String::from_utf8_lossy(&frame.payload);
            let taken = wanted.is_some_and(|w| w.check(&text));
            if !taken && proto.noise(&text) && Instant::now() < end {
                continue;
            }
        }
        return frame;
    }
}

/// Reads one text frame within [`ANSWER`].
pub fn read_text(raw: &mut Raw) -> String {
    raw.stream.set_read_timeout(Some(ANSWER)).unwrap();
    let frame = raw.read_frame().expect("a frame");
    assert_eq!(frame.opcode, TEXT, "{}", describe(&frame));
    String::from_utf8(frame.payload).expect("UTF-8")
}

/// A frame, for a failure message.
fn describe(frame: &Frame) -> String {
    match frame.opcode {
        CLOSE if frame.payload.len() >= 2 => {
            format!("Close {:?} {:?}", frame.close_code(), frame.close_reason())
        }
        TEXT => format!("text {:?}", String::from_utf8_lossy(&frame.payload)),
        op => format!("opcode {op:#x} payload {:?}", frame.payload),
    }
}

/// Plays row `n` on a connection of its own; panics at the first wrong answer.
fn play(addr: SocketAddr, proto: &dyn Protocol, row: &Row, n: usize) {
    let mut raw = Raw::connect(addr);
    let mut token = None;
    if row.stage != Stage::Http {
        raw.send(proto.upgrade(n).as_bytes());
        raw.expect_switch();
        token = proto.opened(&mut raw);
        if row.stage == Stage::Identified {
            token = proto.identify(&mut raw, n).or(token);
        }
    }
    let mut side: Option<Raw> = None;
    for step in &row.steps {
        match step {
            Step::Write(bytes) => {
                // A server that refuses early may reset before everything is written.
                let _ = raw.try_send(bytes);
            }
            Step::Trickle(bytes) => {
                for b in bytes {
                    raw.send(std::slice::from_ref(b));
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
            Step::Request(bytes) => {
                let token = token.as_deref().unwrap_or("no-token").as_bytes();
                let mut other = Raw::connect(addr);
                other.send(&replace(bytes, b"{TOKEN}", token));
                side = Some(other);
            }
            Step::Status(status, header) => {
                let conn = side.as_mut().unwrap_or(&mut raw);
                conn.stream.set_read_timeout(Some(ANSWER)).unwrap();
                let head = conn.read_head().expect("a response head");
                assert_eq!(crate::support::status(&head), *status, "{head}");
                if let Some((name, value)) = header {
                    assert_eq!(crate::support::header(&head, name), Some(*value), "{head}");
                }
            }
            Step::Body(want) => {
                let conn = side.as_mut().unwrap_or(&mut raw);
                let body = String::from_utf8_lossy(&conn.read_to_eof(ANSWER)).into_owned();
                assert!(want.check(&body), "body {body:?}, wanted {want:?}");
            }
            Step::Text(want) => {
                let frame = next_frame(&mut raw, proto, ANSWER, Some(want));
                let text = String::from_utf8_lossy(&frame.payload);
                assert!(
                    frame.opcode == TEXT && want.check(&text),
                    "got {}, wanted text {want:?}",
                    describe(&frame)
                );
            }
            Step::Pong(payload) => {
                let frame = next_frame(&mut raw, proto, ANSWER, None);
                assert!(
                    frame.opcode == PONG && frame.payload == *payload,
                    "got {}, wanted a pong",
                    describe(&frame)
                );
            }
            Step::Close(code, reason) => {
                let frame = next_frame(&mut raw, proto, ANSWER, None);
                assert_eq!(
                    frame.opcode,
                    CLOSE,
                    "got {}, wanted Close {code:?}",
                    describe(&frame)
                );
                let got = (frame.payload.len() >= 2).then(|| frame.close_code().unwrap());
                assert_eq!(got, *code, "got {}", describe(&frame));
                if let Some(reason) = reason {
                    assert_eq!(frame.close_reason(), *reason);
                }
                let _ = raw.try_send(&close_frame(code.unwrap_or(1000), ""));
                raw.expect_closed(ANSWER);
            }
            Step::Quiet => {
                let end = Instant::now() + QUIET;
                while let Some(left) = end.checked_duration_since(Instant::now()) {
                    raw.stream
                        .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                        .unwrap();
                    match raw.read_frame() {
                        Ok(f)
                            if f.opcode == TEXT
                                && proto.noise(&String::from_utf8_lossy(&f.payload)) => {}
                        Ok(f) => panic!("expected silence, got {}", describe(&f)),
                        Err(e) if crate::support::is_timeout(&e) => break,
                        Err(e) => panic!("expected silence, the connection failed: {e}"),
                    }
                }
            }
        }
    }
}

/// `bytes` with every `from` replaced by `to`.
fn replace(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut rest = bytes;
    while !rest.is_empty() {
        if rest.starts_with(from) {
            out.extend_from_slice(to);
            rest = &rest[from.len()..];
        } else {
            out.push(rest[0]);
            rest = &rest[1..];
        }
    }
    out
}

/// A panic's message.
fn panic_text(panic: Box<dyn std::any::Any + Send>) -> String {
    match panic.downcast::<String>() {
        Ok(s) => *s,
        Err(panic) => panic
            .downcast::<&str>()
            .map_or_else(|_| "panic".to_owned(), |s| (*s).to_owned()),
    }
}

/// Plays every row (all but the known bugs, or only them); panics listing every row whose
/// answer was not the expected one. Returns how many rows ran.
pub fn check(addr: SocketAddr, proto: &dyn Protocol, rows: &[Row], bugs: bool) -> usize {
    let mut failed = Vec::new();
    let mut ran = 0;
    for (n, row) in rows.iter().enumerate() {
        if row.bug.is_some() != bugs {
            continue;
        }
        ran += 1;
        let played =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| play(addr, proto, row, n)));
        if let Err(panic) = played {
            let bug = row.bug.map_or(String::new(), |b| format!(" [bug: {b}]"));
            failed.push(format!(
                "row {n} {:?}{bug}: {}",
                row.name,
                panic_text(panic)
            ));
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {ran} rows got the wrong answer:\n{}",
        failed.len(),
        failed.join("\n")
    );
    ran
}
