//! The client harness of the Discodo end-to-end tests (`tests/discodo.rs`,
//! `tests/discodo_limits.rs`): the example binary built once and run as a subprocess (one
//! server per test), tungstenite clients, and the payload helpers. Every read has a timeout.
//!
//! Include with `mod support_discodo;`.
#![allow(dead_code)]
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;
use tungstenite::client::IntoClientRequest;
use tungstenite::http::HeaderValue;
use tungstenite::{Error as WsError, Message, WebSocket};

pub const PASSWORD: &str = "discodo-test-pw";
/// Heartbeat interval and VC_TIMEOUT the server runs with in these tests.
pub const HB: u64 = 500;
pub const VC_TIMEOUT: u64 = 2000;

/// The example binary, built once with the profile of this test binary.
pub fn binary() -> &'static PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("test binary path");
        let profile = exe
            .parent()
            .and_then(|deps| deps.parent())
            .expect("target dir");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build.args(["build", "--quiet", "--example", "discodo"]);
        if profile.ends_with("release") {
            build.arg("--release");
        }
        let status = build
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("cargo");
        assert!(status.success(), "building examples/discodo failed");
        profile.join("examples").join("discodo")
    })
}

/// A running `discodo` server, killed when dropped.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
}

impl Server {
    pub fn start() -> Server {
        Server::with(&["--heartbeat-ms", &HB.to_string()])
    }

    pub fn with(extra: &[&str]) -> Server {
        let vc = VC_TIMEOUT.to_string();
        let mut child = Command::new(binary())
            .args(["--listen", "127.0.0.1:0", "--password", PASSWORD])
            .args(["--vc-timeout-ms", &vc])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn discodo");
        let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let addr = loop {
            let line = lines.next().expect("server exited early").expect("line");
            if let Some(addr) = line.strip_prefix("listening on ") {
                break addr.parse().expect("address");
            }
        };
        std::thread::spawn(move || lines.for_each(drop));
        Server { child, addr }
    }

    /// A client past HELLO.
    pub fn client(&self) -> Ws {
        let mut ws = connect(self.addr, Some(PASSWORD));
        assert_eq!(op(&recv(&mut ws)), "HELLO");
        ws
    }

    /// A client past HELLO and IDENTIFY (`user_id` and `shard_id` as JSON).
    pub fn bot(&self, user: Value, shard: Value) -> Ws {
        let mut ws = self.client();
        send(
            &mut ws,
            "IDENTIFY",
            json!({"user_id": user, "shard_id": shard}),
        );
        ws
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub type Ws = WebSocket<TcpStream>;

pub fn connect(addr: SocketAddr, password: Option<&str>) -> Ws {
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_nodelay(true).unwrap();
    let mut request = format!("ws://{addr}/").into_client_request().unwrap();
    if let Some(pw) = password {
        let value = HeaderValue::from_str(pw).unwrap();
        request.headers_mut().insert("Authorization", value);
    }
    tungstenite::client::client(request, stream)
        .expect("upgrade")
        .0
}

/// What a read gave: a text payload as sent, a close, or nothing in time.
#[derive(Debug, PartialEq)]
pub enum Got {
    Text(String),
    Closed(u16, String),
    Timeout,
    Gone,
}

pub fn read(ws: &mut Ws, within: Duration) -> Got {
    let timeout = Some(within.max(Duration::from_millis(1)));
    ws.get_mut().set_read_timeout(timeout).unwrap();
    loop {
        return match ws.read() {
            Ok(Message::Text(t)) => Got::Text(t.to_string()),
            Ok(Message::Close(f)) => {
                let _ = ws.flush(); // completes the closing handshake
                let code = f.as_ref().map_or(1005, |f| f.code.into());
                Got::Closed(code, f.map(|f| f.reason.to_string()).unwrap_or_default())
            }
            Ok(_) => continue,
            Err(WsError::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                Got::Timeout
            }
            Err(_) => Got::Gone,
        };
    }
}

/// The next payload (within 2 s), parsed.
pub fn recv(ws: &mut Ws) -> Value {
    match read(ws, Duration::from_secs(2)) {
        Got::Text(t) => serde_json::from_str(&t).expect("server sends JSON"),
        other => panic!("expected a payload, got {other:?}"),
    }
}

pub fn op(payload: &Value) -> &str {
    payload["op"].as_str().expect("op is a string")
}

pub fn send(ws: &mut Ws, op: &str, d: Value) {
    let text = json!({"op": op, "d": d}).to_string();
    ws.send(Message::text(text)).expect("send");
}

pub fn send_raw(ws: &mut Ws, text: &str) {
    ws.send(Message::text(text)).expect("send");
}

/// Asserts the connection is alive and its earlier payloads were all read: a heartbeat's
/// ack is the very next payload.
pub fn still_alive(ws: &mut Ws) {
    send(ws, "HEARTBEAT", json!("ping"));
    assert_eq!(recv(ws), json!({"op": "HEARTBEAT_ACK", "d": "ping"}));
}

/// The close after an error payload: (payload, close code).
pub fn error_then_close(ws: &mut Ws) -> (Value, u16) {
    let payload = recv(ws);
    match read(ws, Duration::from_secs(3)) {
        Got::Closed(code, _) => (payload, code),
        other => panic!("expected a close after {payload}, got {other:?}"),
    }
}

pub fn voice_state(guild: Value, channel: Value, user: Value) -> Value {
    json!({"t": "VOICE_STATE_UPDATE", "d": {"guild_id": guild, "channel_id": channel,
        "user_id": user, "session_id": "s"}})
}

pub fn voice_server(guild: Value) -> Value {
    json!({"t": "VOICE_SERVER_UPDATE", "d": {"guild_id": guild, "token": "t",
        "endpoint": "voice.example:443"}})
}

/// Closes with the closing handshake and waits for the server to end the connection.
pub fn bye(mut ws: Ws) {
    ws.close(None).unwrap();
    for _ in 0..3 {
        if read(&mut ws, Duration::from_secs(2)) == Got::Gone {
            return;
        }
    }
    panic!("the server did not end the connection");
}
