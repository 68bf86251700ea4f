#![allow(dead_code)] // shared by tests/chat.rs and tests/chat_resume.rs, each using a part
//! Helpers for the end-to-end tests of `examples/chat.rs` (seed 004, the i386chat gateway):
//! build the release example once, spawn it on a free port, and talk to it with a blocking
//! tungstenite client whose every read is bounded by a deadline.
//!
//! Set `POSTERN_CHAT_BIN` to a built `chat` binary to skip the build step. Include with
//! `mod support; mod support_chat;` (the process and the upgrade are `support::example`'s).

use crate::support::example::{example_binary, upgrade, Example};
use serde_json::{json, Value};
use std::io::ErrorKind;
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::{Duration, Instant};
use tungstenite::{Message, WebSocket};

/// Tokens of the users every server is started with.
pub const ALICE: &str = "TOKEN_A";
pub const BOB: &str = "TOKEN_B";
pub const ROOT: &str = "TOKEN_R";

/// How long a read waits for a payload the test expects.
pub const EXPECT: Duration = Duration::from_secs(3);

/// The release `chat` example, built once per test process.
pub fn chat_binary() -> PathBuf {
    example_binary("chat", "POSTERN_CHAT_BIN")
}

/// A running `chat` example; killed (if still running) when dropped.
pub struct Server {
    process: Example,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl Server {
    /// Starts the example with alice, bob (users), root (admin), the heartbeat interval
    /// `heartbeat_ms`, and `extra` options.
    pub fn start(heartbeat_ms: u64, extra: &[&str]) -> Server {
        let hb = heartbeat_ms.to_string();
        let mut args = vec![
            "--listen",
            "127.0.0.1:0",
            "--user",
            "alice:TOKEN_A",
            "--user",
            "bob:TOKEN_B",
            "--admin",
            "root:TOKEN_R",
            "--heartbeat-ms",
            &hb,
        ];
        args.extend_from_slice(extra);
        let process = Example::start(chat_binary(), &args);
        Server {
            addr: process.addr,
            process,
        }
    }

    /// `ws://ADDR/PATH` (any path is accepted).
    pub fn url(&self, path: &str) -> String {
        format!("ws://{}{}", self.addr, path)
    }

    /// Opens a WebSocket and reads HELLO (function code 100), checking its interval.
    pub fn connect(&self) -> Client {
        let mut c = self.connect_raw("/");
        let hello = c.recv();
        assert_eq!(hello["f"], 100, "HELLO first: {hello}");
        assert!(hello["cnf"]["hb_int"].as_u64().is_some(), "hb_int: {hello}");
        c
    }

    /// Opens a WebSocket on `path` without reading anything.
    pub fn connect_raw(&self, path: &str) -> Client {
        let ws = upgrade(self.addr, path, &[], EXPECT)
            .unwrap_or_else(|status| panic!("WebSocket handshake refused: {status}"));
        Client { ws, seq: None }
    }

    /// Connects and presents `token`; returns the client and READY's `cnf`. The session's
    /// own ROOM_USER_ADD (s = 1) is read too.
    pub fn login(&self, token: &str) -> (Client, Value) {
        let mut c = self.connect();
        let ready = c.present(token);
        let joined = c.expect_event("ROOM_USER_ADD");
        assert_eq!(
            joined["cnf"],
            json!({"user": ready["user"], "channel": "general"})
        );
        (c, ready)
    }

    /// Sends SIGTERM (with `kill -TERM PID`).
    pub fn sigterm(&self) {
        self.process.signal("-TERM");
    }

    /// Waits up to `limit` for the process to exit.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        self.process.wait_exit(limit)
    }
}

/// Something the server sent.
#[derive(Debug)]
pub enum Incoming {
    /// A text payload, parsed.
    Json(Value),
    /// A Close frame: code and reason.
    Close(u16, String),
    /// The connection ended without a Close frame.
    Gone(String),
}

/// A blocking WebSocket client. It checks that every 130 payload carries the next
/// sequence number once it knows where the session's sequence stands.
pub struct Client {
    ws: WebSocket<TcpStream>,
    /// The last sequence number seen (`None` before a session).
    pub seq: Option<u64>,
}

impl Client {
    /// Sends a JSON payload.
    pub fn send(&mut self, payload: Value) {
        self.send_text(&payload.to_string());
    }

    /// Sends a text payload as is.
    pub fn send_text(&mut self, text: &str) {
        self.ws
            .send(Message::text(text))
            .expect("send a text message");
    }

    /// Sends a binary payload.
    pub fn send_binary(&mut self, bytes: &[u8]) {
        self.ws
            .send(Message::binary(bytes.to_vec()))
            .expect("send a binary message");
    }

    /// Sends an execute (130) payload.
    pub fn execute(&mut self, event: &str, cnf: Value) {
        self.send(json!({"f": 130, "t": event, "cnf": cnf}));
    }

    /// The next thing the server sends within `limit`, or `None` if it sends nothing.
    pub fn next(&mut self, limit: Duration) -> Option<Incoming> {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            let _ = self.ws.get_mut().set_read_timeout(Some(left));
            match self.ws.read() {
                Ok(Message::Text(text)) => {
                    let value: Value = serde_json::from_str(text.as_str())
                        .unwrap_or_else(|e| panic!("server sent non-JSON text {text:?}: {e}"));
                    self.check_seq(&value);
                    return Some(Incoming::Json(value));
                }
                Ok(Message::Close(frame)) => {
                    // Answer the Close (tungstenite queued the reply), and end the TCP
                    // connection: the exchange is over.
                    let _ = self.ws.flush();
                    let _ = self.ws.get_ref().shutdown(std::net::Shutdown::Both);
                    return Some(match frame {
                        Some(f) => Incoming::Close(u16::from(f.code), f.reason.as_str().to_owned()),
                        None => Incoming::Close(1005, String::new()),
                    });
                }
                // Not sent by this server, but harmless.
                Ok(Message::Ping(_) | Message::Pong(_)) => continue,
                Ok(other) => panic!("unexpected frame from the server: {other:?}"),
                Err(tungstenite::Error::Io(e))
                    if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
                {
                    return None;
                }
                // A signal interrupted the read; tungstenite kept what it had: read again.
                Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Some(Incoming::Gone(e.to_string())),
            }
        }
    }

    fn check_seq(&mut self, value: &Value) {
        if value["f"] != 130 {
            return;
        }
        let s = value["s"]
            .as_u64()
            .unwrap_or_else(|| panic!("130 without a sequence number: {value}"));
        if let Some(last) = self.seq {
            assert_eq!(
                s,
                last + 1,
                "sequence numbers go up by one: after {last} came {value}"
            );
        }
        self.seq = Some(s);
    }

    /// The next JSON payload; panics on a close, an end, or silence.
    pub fn recv(&mut self) -> Value {
        match self.next(EXPECT) {
            Some(Incoming::Json(v)) => v,
            Some(Incoming::Gone(why)) => panic!("expected a payload, the connection ended: {why}"),
            other => panic!("expected a payload, got {other:?}"),
        }
    }

    /// The next payload, which must be the 130 event `t`; returns the whole payload.
    pub fn expect_event(&mut self, t: &str) -> Value {
        let v = self.recv();
        assert_eq!(
            (v["f"].as_u64(), v["t"].as_str()),
            (Some(130), Some(t)),
            "expected {t}, got {v}"
        );
        v
    }

    /// The next payload, which must be `{"f":150,"cnf":{"c":code,"d":fatal}}` exactly.
    pub fn expect_error(&mut self, code: u16, fatal: bool) {
        let v = self.recv();
        assert_eq!(
            v,
            json!({"f": 150, "cnf": {"c": code, "d": fatal}}),
            "expected error {code}"
        );
    }

    /// The next thing must be a Close frame with `code`; returns its reason.
    pub fn expect_close(&mut self, code: u16) -> String {
        match self.next(EXPECT) {
            Some(Incoming::Close(c, reason)) => {
                assert_eq!(c, code, "close code (reason {reason:?})");
                reason
            }
            Some(Incoming::Gone(why)) => {
                panic!("expected close {code}, the connection ended: {why}")
            }
            other => panic!("expected close {code}, got {other:?}"),
        }
    }

    /// A fatal error: 150 with `code` and `d: true`, then a Close with the same code.
    pub fn expect_fatal(&mut self, code: u16) {
        self.expect_error(code, true);
        self.expect_close(code);
    }

    /// Nothing may arrive for `quiet`.
    pub fn expect_silence(&mut self, quiet: Duration) {
        if let Some(got) = self.next(quiet) {
            panic!("expected silence, got {got:?}");
        }
    }

    /// Sends a heartbeat and expects its echo `{"f":120}`.
    pub fn heartbeat(&mut self) {
        self.send(json!({"f": 120}));
        assert_eq!(self.recv(), json!({"f": 120}), "heartbeat echo");
    }

    /// Presents `token` and returns READY's `cnf` (checked: 140, v 6, not resumed).
    pub fn present(&mut self, token: &str) -> Value {
        self.send(json!({"f": 110, "cnf": {"token": token}}));
        let ready = self.recv();
        assert_eq!(ready["f"], 140, "READY after present: {ready}");
        assert_eq!(ready["cnf"]["v"], 6);
        assert!(
            ready["cnf"].get("resumed").is_none(),
            "a fresh session is not resumed: {ready}"
        );
        self.seq = Some(0);
        ready["cnf"].clone()
    }

    /// Sends a resume with `session_id` (any JSON: number or string) and `s`.
    pub fn send_resume(&mut self, token: &str, session_id: Value, s: u64) {
        self.send(json!({"f": 110, "cnf": {"token": token, "session_id": session_id, "s": s}}));
    }

    /// Resumes and expects READY with `resumed: true`; returns its `cnf`. Sequence checks
    /// continue from `s`.
    pub fn resume(&mut self, token: &str, session_id: Value, s: u64) -> Value {
        self.send_resume(token, session_id, s);
        let ready = self.recv();
        assert_eq!(ready["f"], 140, "READY after resume: {ready}");
        assert_eq!(ready["cnf"]["resumed"], true, "resumed READY: {ready}");
        self.seq = Some(s);
        ready["cnf"].clone()
    }

    /// Closes from our side (1000) and waits for the server's reply.
    pub fn close(mut self) {
        let _ = self.ws.close(None);
        let deadline = Instant::now() + EXPECT;
        while Instant::now() < deadline {
            let _ = self
                .ws
                .get_mut()
                .set_read_timeout(Some(Duration::from_millis(200)));
            match self.ws.read() {
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(_) => return,
            }
        }
        panic!("the server did not complete the closing handshake");
    }
}
