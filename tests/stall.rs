//! A stalled process must not expire clients whose heartbeats arrived meanwhile.
//!
//! The chat example (heartbeat every 500 ms, silence allowed: 1.25 s) serves a hundred
//! heartbeating sessions; it is stopped with SIGSTOP for 3 s and continued. Every client
//! heartbeats 200 ms after the echo of its previous heartbeat (so one heartbeat of each
//! waits in the socket during the stop), and none may be closed: the reactor must read every ready
//! socket before it judges a deadline, and must not count the time it was stopped against
//! anyone. The second test has more ready sockets than one poll returns
//! (`--events-per-poll 16`), as when the loop was busy at the stop.
//!
//! The third drives a reactor in-process and stalls it between turns: the excess of the
//! stall over `Config::stall_threshold` is left out of the reactor's clock.
//!
//! Set `POSTERN_CHAT_BIN` to a built `chat` binary to skip the build step.

mod support;

#[path = "support_chat/mod.rs"]
mod support_chat;

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, ErrorKind};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tungstenite::{Message, WebSocket};

/// Sessions, each its own user.
const CLIENTS: usize = 100;
/// How long after an echo each client heartbeats again (the server's interval is 500 ms).
const BEAT: Duration = Duration::from_millis(200);

/// The chat example with `CLIENTS` users, killed when dropped.
struct Chat {
    child: Child,
    addr: String,
}

impl Drop for Chat {
    fn drop(&mut self) {
        signal(self.child.id(), "CONT");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .args([format!("-{name}"), pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{name} {pid}");
}

fn start(extra: &[&str]) -> Chat {
    let mut args: Vec<String> = ["--listen", "127.0.0.1:0", "--heartbeat-ms", "500"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for i in 0..CLIENTS {
        args.push("--user".into());
        args.push(format!("u{i}:T{i}"));
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    let mut child = Command::new(support_chat::chat_binary())
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn chat");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(addr) = line.strip_prefix("listening on ") {
                let _ = tx.send(addr.trim().to_owned());
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("`listening on` within 10 s");
    Chat { child, addr }
}

/// A logged-in session on a non-blocking socket.
struct Session {
    ws: WebSocket<TcpStream>,
    /// Why the server ended it, if it did.
    ended: Option<String>,
    /// When the heartbeat still waiting for its echo was sent.
    waiting: Option<Instant>,
    /// When the last echo came.
    echoed: Instant,
}

fn read_json(ws: &mut WebSocket<TcpStream>) -> Value {
    loop {
        match ws.read().expect("read during login") {
            Message::Text(text) => return serde_json::from_str(text.as_str()).expect("json"),
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("unexpected during login: {other:?}"),
        }
    }
}

fn login(addr: &str, i: usize) -> Session {
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_nodelay(true).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let (mut ws, _) =
        tungstenite::client::client(format!("ws://{addr}/"), stream).expect("handshake");
    assert_eq!(read_json(&mut ws)["f"], 100, "HELLO first");
    ws.send(Message::text(
        json!({"f": 110, "cnf": {"token": format!("T{i}")}}).to_string(),
    ))
    .expect("present");
    assert_eq!(read_json(&mut ws)["f"], 140, "READY");
    ws.get_mut().set_nonblocking(true).unwrap();
    Session {
        ws,
        ended: None,
        waiting: None,
        echoed: Instant::now(),
    }
}

impl Session {
    /// Sends a heartbeat when due (queued by tungstenite if the socket is full).
    fn beat(&mut self) {
        if self.ended.is_some() || self.waiting.is_some() || self.echoed.elapsed() < BEAT {
            return;
        }
        self.waiting = Some(Instant::now());
        match self.ws.send(Message::text(r#"{"f":120}"#)) {
            Ok(()) => {}
            Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => self.ended = Some(format!("send failed: {e}")),
        }
    }

    /// Reads everything available; records an error payload, a Close, or an end.
    fn drain(&mut self) {
        while self.ended.is_none() {
            match self.ws.read() {
                Ok(Message::Text(text)) => {
                    let v: Value = serde_json::from_str(text.as_str()).expect("json");
                    if v["f"] == 150 {
                        self.ended = Some(format!("error payload {v}"));
                    }
                    if v == json!({"f": 120}) {
                        self.waiting = None;
                        self.echoed = Instant::now();
                    }
                }
                Ok(Message::Close(frame)) => {
                    self.ended = Some(format!("closed: {frame:?}"));
                }
                Ok(_) => {}
                Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) => self.ended = Some(format!("ended: {e}")),
            }
        }
    }
}

/// Heartbeats every session for `span`, draining what the server sends.
fn heartbeat_for(sessions: &mut [Session], span: Duration) {
    let end = Instant::now() + span;
    while Instant::now() < end {
        for s in sessions.iter_mut() {
            s.drain();
            s.beat();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn stop_and_continue(extra: &[&str]) {
    let chat = start(extra);
    let mut sessions: Vec<Session> = (0..CLIENTS).map(|i| login(&chat.addr, i)).collect();
    heartbeat_for(&mut sessions, Duration::from_secs(1));
    let ended: Vec<_> = sessions.iter().filter_map(|s| s.ended.clone()).collect();
    assert!(ended.is_empty(), "before the stop: {ended:?}");

    signal(chat.child.id(), "STOP");
    heartbeat_for(&mut sessions, Duration::from_secs(3));
    signal(chat.child.id(), "CONT");
    heartbeat_for(&mut sessions, Duration::from_millis(2500));

    let ended: Vec<_> = sessions
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.ended.as_ref().map(|why| format!("u{i}: {why}")))
        .collect();
    assert!(
        ended.is_empty(),
        "{} of {CLIENTS} heartbeating sessions were ended by the stall, e.g. {:?}",
        ended.len(),
        &ended[..ended.len().min(3)]
    );
}

#[test]
fn sigstop_then_sigcont_ends_no_heartbeating_session() {
    stop_and_continue(&[]);
}

#[test]
fn sigstop_with_more_ready_sockets_than_one_poll_ends_no_session() {
    stop_and_continue(&["--events-per-poll", "16"]);
}

#[test]
fn a_stall_is_left_out_of_the_clock_beyond_the_threshold() {
    use postern::{Config, Millis, Reactor};
    let config = Config {
        handshake_timeout: Millis(1_000),
        stall_threshold: Millis(200),
        ..Config::default()
    };
    let mut reactor =
        Reactor::bind("127.0.0.1:0".parse().unwrap(), config, support::EchoApp).expect("bind");
    let silent = TcpStream::connect(reactor.local_addr()).expect("connect");
    let until = |reactor: &mut Reactor<support::EchoApp>, span: Duration, sockets: usize| {
        let end = Instant::now() + span;
        while Instant::now() < end && reactor.stats().sockets != sockets {
            reactor.turn(Some(Duration::from_millis(5))).expect("turn");
        }
        reactor.stats().sockets
    };
    assert_eq!(
        until(&mut reactor, Duration::from_secs(2), 1),
        1,
        "accepted"
    );
    let accepted = Instant::now();
    // The loop stalls for 3 s: past the 1 s handshake deadline by the OS clock.
    std::thread::sleep(Duration::from_secs(3));
    reactor.turn(Some(Duration::ZERO)).expect("turn");
    assert_eq!(
        reactor.stats().sockets,
        1,
        "the handshake deadline fired on time the reactor did not see"
    );
    // The clock moved on by the threshold only: the deadline comes about 0.8 s later.
    assert_eq!(
        until(&mut reactor, Duration::from_secs(5), 0),
        0,
        "deadline never came"
    );
    let took = accepted.elapsed();
    assert!(
        took >= Duration::from_millis(3_600),
        "the deadline came {took:?} after accept: the stall counted"
    );
    drop(silent);
}
