//! Everything that talks to a server outside the rows: the example binaries run as
//! subprocesses, plain HTTP requests, the observers' tungstenite client, and the thread an
//! observer runs on while the matrix plays.

use super::ANSWER;
use crate::support::example::{build_examples, upgrade, Example};
use serde_json::Value;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tungstenite::{Message, WebSocket};

// ---------------------------------------------------------------------------------------
// The example binaries

/// The release build of example `name` (all five gateway examples are built at once).
pub fn example(name: &str) -> PathBuf {
    let mut built = build_examples(&["chat", "rooms", "discodo", "nexus", "nightingale"]);
    built
        .remove(name)
        .unwrap_or_else(|| panic!("no executable for {name}"))
}

/// An example server run as a subprocess; killed when dropped.
pub struct Process {
    example: Example,
    pub addr: SocketAddr,
}

impl Process {
    /// Starts example `name` with `args` (plus `--listen 127.0.0.1:0`).
    pub fn start(name: &str, args: &[&str]) -> Process {
        let mut all = vec!["--listen", "127.0.0.1:0"];
        all.extend_from_slice(args);
        let example = Example::start(example(name), &all);
        Process {
            addr: example.addr,
            example,
        }
    }

    /// Checks the server is still running and never panicked.
    pub fn assert_healthy(&mut self) {
        let status = self.example.child.try_wait().expect("try_wait");
        let log = self.example.log();
        assert!(status.is_none(), "the server exited ({status:?}):\n{log}");
        assert!(!log.contains("panicked"), "the server panicked:\n{log}");
    }
}

/// One HTTP/1.1 request with `Connection: close`: the status and the body.
pub fn http(
    addr: SocketAddr,
    method: &str,
    target: &str,
    auth: Option<&str>,
    body: &str,
) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(ANSWER)).unwrap();
    s.write_all(&request(method, target, auth, body))
        .expect("send the request");
    let mut response = Vec::new();
    s.read_to_end(&mut response).expect("read the response");
    let response = String::from_utf8_lossy(&response);
    let (head, body) = response.split_once("\r\n\r\n").expect("a response head");
    (crate::support::status(head), body.to_owned())
}

/// A plain HTTP/1.1 request for a row (with `Connection: close` and a body, which may be
/// any bytes).
pub fn request(method: &str, target: &str, auth: Option<&str>, body: impl AsRef<[u8]>) -> Vec<u8> {
    let body = body.as_ref();
    let auth = auth.map_or(String::new(), |a| format!("Authorization: {a}\r\n"));
    let head = format!(
        "{method} {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n{auth}\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    [head.as_bytes(), body].concat()
}

// ---------------------------------------------------------------------------------------
// The well-behaved observer's client

/// What an observer read.
#[derive(Debug)]
pub enum In {
    Text(String),
    Binary(Vec<u8>),
    Pong(Vec<u8>),
    Close(u16, String),
    Gone(String),
}

/// A tungstenite client whose reads are bounded.
pub struct Ws(pub WebSocket<TcpStream>);

impl Ws {
    /// Upgrades on `path` with `headers`; panics on a refusal.
    pub fn connect(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Ws {
        let ws = upgrade(addr, path, headers, ANSWER)
            .unwrap_or_else(|status| panic!("upgrade refused: {status}"));
        Ws(ws)
    }

    pub fn send(&mut self, text: impl AsRef<str>) {
        self.0.send(Message::text(text.as_ref())).expect("send");
    }

    pub fn ping(&mut self, payload: &[u8]) {
        self.0
            .send(Message::Ping(payload.to_vec().into()))
            .expect("ping");
    }

    /// The next message within `limit`, or `None`.
    pub fn next(&mut self, limit: Duration) -> Option<In> {
        let _ = self
            .0
            .get_mut()
            .set_read_timeout(Some(limit.max(Duration::from_millis(1))));
        loop {
            return match self.0.read() {
                Ok(Message::Text(t)) => Some(In::Text(t.as_str().to_owned())),
                Ok(Message::Binary(b)) => Some(In::Binary(b.to_vec())),
                Ok(Message::Pong(p)) => Some(In::Pong(p.to_vec())),
                Ok(Message::Ping(_) | Message::Frame(_)) => continue,
                Ok(Message::Close(f)) => {
                    let _ = self.0.flush();
                    let f = f.map(|f| (u16::from(f.code), f.reason.as_str().to_owned()));
                    let (code, reason) = f.unwrap_or((1005, String::new()));
                    Some(In::Close(code, reason))
                }
                Err(tungstenite::Error::Io(e))
                    if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
                {
                    None
                }
                // A signal interrupted the read; tungstenite kept what it had: read again.
                Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => Some(In::Gone(e.to_string())),
            };
        }
    }

    /// The next text within [`ANSWER`]; panics on anything else.
    pub fn text(&mut self) -> String {
        match self.next(ANSWER) {
            Some(In::Text(t)) => t,
            other => panic!("expected a text message, got {other:?}"),
        }
    }

    /// The next text, parsed as JSON.
    pub fn json(&mut self) -> Value {
        serde_json::from_str(&self.text()).expect("JSON")
    }
}

/// A well-behaved client running on its own thread while the matrix plays.
pub struct Watch<T> {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<T>>,
}

/// Runs `observe` on a thread; it must return soon after its flag is set.
pub fn watch<T: Send + 'static>(
    observe: impl FnOnce(&AtomicBool) -> T + Send + 'static,
) -> Watch<T> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let handle = std::thread::Builder::new()
        .name("observer".into())
        .spawn(move || observe(&flag))
        .expect("spawn the observer");
    Watch {
        stop,
        handle: Some(handle),
    }
}

impl<T> Watch<T> {
    /// Tells the observer to finish, and returns its report (re-raising its panic).
    pub fn finish(mut self) -> T {
        self.stop.store(true, Ordering::Release);
        let handle = self.handle.take().unwrap();
        let end = Instant::now() + Duration::from_secs(15);
        while !handle.is_finished() {
            assert!(Instant::now() < end, "the observer did not finish");
            std::thread::sleep(Duration::from_millis(10));
        }
        handle
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
    }
}

impl<T> Drop for Watch<T> {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}
