//! The client harness shared by the end-to-end tests of the music examples (`tests/nexus.rs`,
//! `tests/nightingale.rs`): the release binary built once and run as a subprocess (one server
//! per test), a tungstenite client, and plain HTTP/1.1 requests. Each test file adds its
//! protocol's own helpers (`impl Server`, `impl Client`) next to its tests.
//!
//! Include with `mod support; mod support_music;` (the process and the upgrade are
//! `support::example`'s). Every read has a timeout, so no helper can hang a test.
#![allow(dead_code)]

pub use crate::support::example::example_binary;
use crate::support::example::{upgrade, Example};
use serde_json::Value;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::{Duration, Instant};
use tungstenite::{Message, WebSocket};

/// The password the servers run with.
pub const PASSWORD: &str = "s3cret";
/// How long an expected payload may take.
pub const EXPECT: Duration = Duration::from_secs(3);
/// How long "nothing more arrives" is watched for.
pub const QUIET: Duration = Duration::from_millis(250);

/// Checks that `got` has every member of `want`, recursively (arrays element by element,
/// of the same length; scalars exactly).
pub fn has(got: &Value, want: &Value) {
    match (got, want) {
        (Value::Object(g), Value::Object(w)) => {
            for (k, v) in w {
                has(g.get(k).unwrap_or(&Value::Null), v);
            }
        }
        (Value::Array(g), Value::Array(w)) if g.len() == w.len() => {
            g.iter().zip(w).for_each(|(g, w)| has(g, w));
        }
        _ => assert_eq!(got, want),
    }
}

/// A running example, killed when dropped.
pub struct Server {
    pub process: Example,
    pub addr: SocketAddr,
}

impl Server {
    /// Spawns `binary` with `args`; the running server once it prints `listening on ADDR`,
    /// or its stderr if it did not start.
    pub fn spawn(binary: PathBuf, args: &[&str]) -> Result<Server, String> {
        let process = Example::spawn(binary, args)?;
        Ok(Server {
            addr: process.addr,
            process,
        })
    }

    /// An upgrade on `path` with `headers`: the client, or the refusal's HTTP status.
    pub fn try_ws(&self, path: &str, headers: &[(&str, &str)]) -> Result<Client, u16> {
        upgrade(self.addr, path, headers, EXPECT).map(|ws| Client { ws })
    }

    /// A REST request with `Authorization: auth` (none if `None`): the status and the JSON
    /// body (`null` if it is not JSON).
    pub fn http_as(
        &self,
        method: &str,
        target: &str,
        auth: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let auth: Vec<(&str, &str)> = auth.map(|a| ("Authorization", a)).into_iter().collect();
        self.http_with(method, target, &auth, body)
    }

    /// A REST request with `headers`: the status and the JSON body (`null` if not JSON).
    pub fn http_with(
        &self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut s = TcpStream::connect(self.addr).expect("connect");
        s.set_read_timeout(Some(EXPECT)).expect("timeout");
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let headers: String = headers
            .iter()
            .map(|(name, value)| format!("{name}: {value}\r\n"))
            .collect();
        let head =
            format!("{method} {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{headers}");
        let request = format!("{head}Content-Length: {}\r\n\r\n{body}", body.len());
        s.write_all(request.as_bytes()).expect("write");
        let mut raw = String::new();
        s.read_to_string(&mut raw).expect("read the response");
        let status = raw
            .get(9..12)
            .and_then(|c| c.parse().ok())
            .expect("status code");
        let json = raw
            .split_once("\r\n\r\n")
            .and_then(|(_, b)| serde_json::from_str(b).ok());
        (status, json.unwrap_or(Value::Null))
    }

    /// Sends `sig` (`-TERM`, `-INT`) to the server.
    pub fn signal(&self, sig: &str) {
        self.process.signal(sig);
    }

    /// The server's exit status, if it exits within `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        self.process.wait_exit(limit)
    }
}

/// What a client read.
#[derive(Debug)]
pub enum Incoming {
    Json(Value),
    /// A Close frame: its code (1005 if none) and reason.
    Close(u16, String),
    /// The connection ended without a Close frame.
    Gone,
    /// A Ping or Pong (answered, never returned by [`Client::next`]).
    Ping,
}

/// A WebSocket client.
pub struct Client {
    pub ws: WebSocket<TcpStream>,
}

impl Client {
    pub fn send(&mut self, v: Value) {
        self.send_text(&v.to_string());
    }

    pub fn send_text(&mut self, text: &str) {
        self.ws.send(Message::text(text)).expect("send");
    }

    /// The next message within `limit`, or `None` if nothing came. The server's Pings are
    /// answered (tungstenite queues the Pong and writes it on the next read) and skipped.
    pub fn next(&mut self, limit: Duration) -> Option<Incoming> {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let _ = self
                .ws
                .get_mut()
                .set_read_timeout(Some(left.max(Duration::from_millis(1))));
            match self.read_one() {
                Some(Incoming::Ping) if Instant::now() < deadline => continue,
                Some(Incoming::Ping) => return None,
                other => return other,
            }
        }
    }

    fn read_one(&mut self) -> Option<Incoming> {
        match self.ws.read() {
            Ok(Message::Ping(_) | Message::Pong(_)) => {
                let _ = self.ws.flush(); // The Pong goes out now.
                Some(Incoming::Ping)
            }
            Ok(Message::Text(t)) => Some(Incoming::Json(
                serde_json::from_str(t.as_str()).expect("JSON"),
            )),
            Ok(Message::Close(f)) => {
                // Answer the Close and end the TCP connection: the exchange is over.
                let _ = self.ws.flush();
                let _ = self.ws.get_ref().shutdown(std::net::Shutdown::Both);
                let (code, reason) = f.map_or((1005, String::new()), |f| {
                    (f.code.into(), f.reason.to_string())
                });
                Some(Incoming::Close(code, reason))
            }
            Ok(other) => panic!("unexpected frame {other:?}"),
            Err(tungstenite::Error::Io(e))
                if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
            {
                None
            }
            // A signal interrupted the blocking read (seen under load): nothing is lost,
            // tungstenite keeps what it had read; read again.
            Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::Interrupted => self.read_one(),
            Err(_) => Some(Incoming::Gone),
        }
    }

    pub fn recv(&mut self) -> Value {
        match self.next(EXPECT) {
            Some(Incoming::Json(v)) => v,
            other => panic!("expected a payload, got {other:?}"),
        }
    }

    /// Expects a Close frame with `code`: its reason.
    pub fn expect_close(&mut self, code: u16) -> String {
        match self.next(EXPECT) {
            Some(Incoming::Close(c, reason)) if c == code => reason,
            other => panic!("expected close {code}, got {other:?}"),
        }
    }

    pub fn expect_silence(&mut self, quiet: Duration) {
        if let Some(got) = self.next(quiet) {
            panic!("expected silence, got {got:?}");
        }
    }

    /// Closes from our side and completes the handshake.
    pub fn close(mut self) {
        let _ = self.ws.close(None);
        while let Some(Incoming::Json(_)) = self.next(EXPECT) {}
    }
}
