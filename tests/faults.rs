//! Faults (issue 7, part 5): peers that vanish without a FIN, reset in the middle of a
//! frame, make a write fail, split a handshake byte by byte, or keep sending while the
//! reactor shuts down. None may panic, and once every client has left the reactor must hold
//! nothing: `stats()` shows 0 sockets, 0 WebSockets and 0 timers.
//!
//! In-process reactors run on a thread (`support::spawn_observed`, or `spawn_gateway` here
//! for the gateway engine, which is not `Send`) or are driven with `turn()` in the test
//! thread where the order of events must be exact; the chat binary covers the gateway's
//! half-open detection and resume end to end. Every test is bounded in time.

mod support;
mod support_chat;

use postern::gateway::dialects::i386::I386;
use postern::gateway::{Gateway, GatewayConfig, GatewayError, Gw, Handler, SessionId};
use postern::{
    Accept, App, CloseCode, Closed, Config, ConnId, Ctx, Message, Millis, Reactor, Remote,
};
use postern::{Request, Stats};
use serde_json::{json, value::RawValue, Value};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};
use support::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Resets the connection: SO_LINGER 0, then close (an RST instead of a FIN).
fn reset(stream: TcpStream) {
    socket2::SockRef::from(&stream)
        .set_linger(Some(Duration::ZERO))
        .expect("SO_LINGER 0");
    drop(stream);
}

/// Whether the reactor holds nothing: no socket, no WebSocket, no timer.
fn empty(stats: &Stats) -> bool {
    (stats.sockets, stats.websockets, stats.timers) == (0, 0, 0)
}

/// Echoes; "flood" is answered with 64 KiB; records every `on_close`.
#[derive(Default)]
struct Recorder {
    closed: Arc<Mutex<Vec<Closed>>>,
}

impl App for Recorder {
    type Conn = ();
    type Timer = ();
    type Command = ();

    fn on_upgrade(&mut self, _: &mut Ctx<'_, Self>, _: ConnId, _: &Request<'_, '_>) -> Accept<()> {
        Accept::new(())
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, Self>, id: ConnId, message: Message<'_>) {
        if message == Message::Text("flood") {
            for _ in 0..4 {
                let _ = ctx.send_binary(id, &[0x5A; 16 * 1024]);
            }
        } else {
            let _ = ctx.send(id, message);
        }
    }

    fn on_close(&mut self, _: &mut Ctx<'_, Self>, _: ConnId, _: (), why: Closed) {
        self.closed.lock().unwrap().push(why);
    }
}

/// Turns `reactor` (5 ms at most each) until `attempt` gives something, for at most 3 s.
fn pump<A: App, T>(
    reactor: &mut Reactor<A>,
    mut attempt: impl FnMut(&Reactor<A>) -> Option<T>,
) -> T {
    let end = Instant::now() + Duration::from_secs(3);
    loop {
        reactor.turn(Some(ms(5))).expect("turn");
        if let Some(done) = attempt(reactor) {
            return done;
        }
        assert!(
            Instant::now() < end,
            "nothing happened within 3 s: {:?}",
            reactor.stats()
        );
    }
}

/// Sends `value` as a text frame.
fn send_json(raw: &mut Raw, value: Value) {
    raw.send(&masked(TEXT, value.to_string().as_bytes()));
}

/// Reads a text frame as JSON.
fn read_json(raw: &mut Raw) -> Value {
    serde_json::from_slice(&raw.read_frame().expect("a payload").payload).expect("JSON")
}

/// Reads frames until a Close: its code.
fn close_code(raw: &mut Raw) -> u16 {
    loop {
        let frame = raw.read_frame().expect("a frame");
        if frame.opcode == CLOSE {
            return frame.close_code().expect("a close code");
        }
    }
}

/// Upgrades `raw` on a reactor driven here.
fn upgrade_driven<A: App>(reactor: &mut Reactor<A>, raw: &mut Raw) {
    raw.send_upgrade();
    raw.stream.set_read_timeout(Some(ms(5))).unwrap();
    let head = pump(reactor, |_| raw.read_head().ok());
    assert_eq!(status(&head), 101, "{head}");
}

/// A half-open chat client: it stops reading and writing (its socket stays open, as when
/// the peer's host vanished). The heartbeat deadline closes it (4009), and its session
/// then resumes on a new connection with what it missed.
#[test]
fn chat_half_open_client_is_timed_out_and_its_session_resumes() {
    use support_chat::{Server, ALICE, BOB};
    let server = Server::start(500, &[]);
    // Timed from here: the first start may build the release binary.
    let start = Instant::now();
    let (mut alice, ready) = server.login(ALICE);
    let (mut bob, _) = server.login(BOB);
    alice.expect_event("ROOM_USER_ADD");
    let (sid, seen) = (ready["session_id"].as_u64().unwrap(), alice.seq.unwrap());
    // Alice goes silent; bob keeps heartbeating and says something she misses.
    bob.execute("MESSAGE_CREATE", json!({"content": "are you there?"}));
    let said = bob.expect_event("MESSAGE_CREATE");
    let silent = Instant::now();
    while silent.elapsed() < ms(1800) {
        bob.heartbeat();
        std::thread::sleep(ms(250));
    }
    // What reached her dead connection: the message, then the heartbeat timeout.
    assert_eq!(alice.expect_event("MESSAGE_CREATE")["cnf"], said["cnf"]);
    alice.expect_fatal(4009);
    // The session was kept: a resume replays the message.
    let mut back = server.connect();
    let again = back.resume(ALICE, json!(sid), seen);
    assert_eq!(again["session_id"], json!(sid));
    assert_eq!(back.expect_event("MESSAGE_CREATE")["cnf"], said["cnf"]);
    back.heartbeat();
    bob.heartbeat();
    bob.expect_silence(ms(200));
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "took {:?}",
        start.elapsed()
    );
}

/// A chat client reset (RST) in the middle of a frame: the session is detached at once and
/// resumes with what it missed; bob is undisturbed.
#[test]
fn chat_reset_mid_frame_leaves_a_resumable_session() {
    use support_chat::{Server, ALICE, BOB};
    let server = Server::start(2000, &[]);
    let mut raw = Raw::connect(server.addr);
    raw.send_upgrade();
    raw.expect_switch();
    assert_eq!(read_json(&mut raw)["f"], 100);
    send_json(&mut raw, json!({"f": 110, "cnf": {"token": ALICE}}));
    let sid = read_json(&mut raw)["cnf"]["session_id"].as_u64().unwrap();
    assert_eq!(read_json(&mut raw)["s"], 1);
    let (mut bob, _) = server.login(BOB);
    // Half a MESSAGE_CREATE, then the reset.
    let message = masked(
        TEXT,
        br#"{"f":130,"t":"MESSAGE_CREATE","cnf":{"content":"never sent"}}"#,
    );
    raw.send(&message[..message.len() / 2]);
    std::thread::sleep(ms(50));
    reset(raw.stream);
    bob.execute("MESSAGE_CREATE", json!({"content": "after the reset"}));
    let said = bob.expect_event("MESSAGE_CREATE");
    let mut back = server.connect();
    back.resume(ALICE, json!(sid), 1);
    assert_eq!(back.expect_event("ROOM_USER_ADD")["cnf"]["user"], "bob");
    assert_eq!(back.expect_event("MESSAGE_CREATE")["cnf"], said["cnf"]);
    back.expect_silence(ms(200));
    bob.expect_silence(ms(100));
}

/// RST in the HTTP phase, in the middle of a frame, of a fragmented message, and with
/// output queued: each connection ends once (`Dropped`), a healthy client is undisturbed,
/// and nothing is left.
#[test]
fn reset_mid_request_mid_frame_and_with_output_queued_leaves_nothing() {
    let app = Recorder::default();
    let closed = app.closed.clone();
    let server = spawn_observed(Config::default(), app);
    let mut healthy = Raw::websocket(server.addr);
    let echo = |raw: &mut Raw, text: &str| {
        raw.send(&masked(TEXT, text.as_bytes()));
        assert_eq!(raw.read_frame().unwrap().payload, text.as_bytes());
    };
    echo(&mut healthy, "before");

    let request = upgrade_request("/", "");
    let mut head = Raw::connect(server.addr);
    head.send(&request.as_bytes()[..request.len() / 2]);
    let payload = [b'z'; 1000];
    let mut mid_frame = Raw::websocket(server.addr);
    mid_frame.send(&masked(BINARY, &payload)[..300]);
    let mut mid_message = Raw::websocket(server.addr);
    mid_message.send(&frame(false, 0, TEXT, &payload, Some([1, 2, 3, 4])));
    mid_message.send(&frame(true, 0, CONT, &payload, Some([1, 2, 3, 4]))[..200]);
    let mut backlog = Raw::websocket(server.addr);
    for _ in 0..8 {
        // 512 KiB asked for (under the outbox limit), none read.
        backlog.send(&masked(TEXT, b"flood"));
    }
    let stats = server.wait_stats(Duration::from_secs(3), |s| {
        s.sockets == 5 && s.websockets == 4
    });
    assert_eq!((stats.sockets, stats.websockets), (5, 4), "{stats:?}");
    std::thread::sleep(ms(50));
    for raw in [head, mid_frame, mid_message, backlog] {
        reset(raw.stream);
    }
    let stats = server.wait_stats(Duration::from_secs(3), |s| s.sockets == 1);
    assert_eq!(
        (stats.sockets, stats.websockets, stats.timers),
        (1, 1, 0),
        "{stats:?}"
    );
    assert_eq!(*closed.lock().unwrap(), vec![Closed::Dropped; 3]);
    echo(&mut healthy, "after");
    drop(healthy);
    let stats = server.wait_stats(Duration::from_secs(3), empty);
    assert!(empty(&stats), "{stats:?}");
    assert_eq!(server.stop().stats.sockets, 0);
}

/// A write that fails: the client sends a message and resets before the reactor reads it.
/// The reactor reads the message (the data comes before the reset), queues its echo, and
/// the write of that echo fails: the connection is dropped, once, and nothing is left.
/// Driven with `turn()` so that the order is exact. (On Linux the first write after a
/// reset fails with ECONNRESET, later ones with EPIPE; the reactor's write is the first:
/// `strace` shows `sendto(.., "\x81\x07echo me", ..) = -1 ECONNRESET`.)
#[test]
fn write_to_a_reset_client_fails_cleanly() {
    // What the scenario relies on: after data then RST, a read gives the data, and writes
    // fail: first with ECONNRESET, then with EPIPE.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (mut accepted, _) = listener.accept().unwrap();
    (&client).write_all(b"hello").unwrap();
    reset(client);
    std::thread::sleep(ms(50));
    let mut buf = [0u8; 16];
    assert_eq!(
        accepted.read(&mut buf).unwrap(),
        5,
        "the data before the reset is readable"
    );
    let first = accepted
        .write(&[0; 64])
        .expect_err("a write to a reset peer");
    let then = accepted
        .write(&[0; 64])
        .expect_err("a second write to a reset peer");
    assert_eq!(
        (first.kind(), then.kind()),
        (
            std::io::ErrorKind::ConnectionReset,
            std::io::ErrorKind::BrokenPipe
        )
    );

    let app = Recorder::default();
    let closed = app.closed.clone();
    let mut reactor =
        Reactor::bind("127.0.0.1:0".parse().unwrap(), Config::default(), app).unwrap();
    let addr = reactor.local_addr();
    let mut raw = Raw::connect(addr);
    upgrade_driven(&mut reactor, &mut raw);
    let mut other = Raw::connect(addr);
    upgrade_driven(&mut reactor, &mut other);
    raw.send(&masked(TEXT, b"echo me"));
    reset(raw.stream);
    std::thread::sleep(ms(50));
    pump(&mut reactor, |r| (r.stats().websockets == 1).then_some(()));
    assert_eq!(*closed.lock().unwrap(), vec![Closed::Dropped]);
    // The reactor goes on.
    other.send(&masked(TEXT, b"still here"));
    other.stream.set_read_timeout(Some(ms(5))).unwrap();
    let got = pump(&mut reactor, |_| other.read_frame().ok());
    assert_eq!(got.payload, b"still here");
    other.send(&close_frame(1000, ""));
    pump(&mut reactor, |r| empty(&r.stats()).then_some(()));
    assert_eq!(closed.lock().unwrap().len(), 2);
}

/// The handshake, then a frame, each split byte by byte with a reactor turn between
/// bytes: every split point of the HTTP and frame parsers is met, the answers are exact,
/// and the handshake deadline is gone once upgraded.
#[test]
fn handshake_and_frame_split_byte_by_byte_one_turn_each() {
    let mut reactor = Reactor::bind(
        "127.0.0.1:0".parse().unwrap(),
        Config::default(),
        Recorder::default(),
    )
    .unwrap();
    let mut raw = Raw::connect(reactor.local_addr());
    raw.stream.set_read_timeout(Some(ms(1))).unwrap();
    let request = upgrade_request("/", "");
    for (i, byte) in request.bytes().enumerate() {
        raw.send(&[byte]);
        reactor.turn(Some(ms(1))).unwrap();
        reactor.turn(Some(Duration::ZERO)).unwrap();
        if i + 1 < request.len() {
            assert_eq!(reactor.stats().timers, 1, "the handshake deadline runs");
        }
    }
    raw.stream.set_read_timeout(Some(ms(5))).unwrap();
    let head = pump(&mut reactor, |_| raw.read_head().ok());
    assert_eq!(
        (status(&head), header(&head, "sec-websocket-accept")),
        (101, Some(ACCEPT)),
        "{head}"
    );
    let stats = reactor.stats();
    assert_eq!(
        (stats.sockets, stats.websockets, stats.timers),
        (1, 1, 0),
        "{stats:?}"
    );
    for frame in [
        masked(TEXT, "héllo".as_bytes()),
        masked(PING, b"p"),
        masked(BINARY, &[7; 300]),
    ] {
        for byte in &frame {
            raw.send(std::slice::from_ref(byte));
            reactor.turn(Some(ms(1))).unwrap();
        }
    }
    let got: Vec<(u8, Vec<u8>)> = (0..3)
        .map(|_| pump(&mut reactor, |_| raw.read_frame().ok()))
        .map(|f| (f.opcode, f.payload))
        .collect();
    assert_eq!(
        got,
        vec![
            (TEXT, "héllo".into()),
            (PONG, b"p".to_vec()),
            (BINARY, vec![7; 300])
        ]
    );
    raw.send(&close_frame(1000, ""));
    pump(&mut reactor, |r| empty(&r.stats()).then_some(()));
}

/// A graceful shutdown while 32 clients keep sending, with sockets still in their HTTP
/// phase and one in the middle of a frame: every WebSocket gets 1001 after its echoes,
/// every `on_close` comes once, the reactor stops well before its shutdown deadline, and
/// nothing is left.
#[test]
fn shutdown_under_load_closes_everyone_and_leaves_nothing() {
    const CLIENTS: usize = 32;
    let app = Recorder::default();
    let closed = app.closed.clone();
    let config = Config {
        shutdown_timeout: Millis(4000),
        ..Config::default()
    };
    let server = spawn_observed(config, app);
    let addr = server.addr;
    let echoes = Arc::new(AtomicUsize::new(0));
    let ready = Arc::new(Barrier::new(CLIENTS + 1));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let (echoes, ready) = (echoes.clone(), ready.clone());
            std::thread::spawn(move || {
                let mut raw = Raw::websocket(addr);
                ready.wait();
                for n in 0.. {
                    let text = format!("client {i} message {n}");
                    raw.send(&masked(TEXT, text.as_bytes()));
                    let got = raw.read_frame().expect("an echo or the close");
                    if got.opcode == CLOSE {
                        assert_eq!(got.close_code(), Some(1001));
                        let _ = raw.try_send(&close_frame(1001, ""));
                        raw.expect_closed(Duration::from_secs(3));
                        return n;
                    }
                    assert_eq!(got.payload, text.as_bytes());
                    echoes.fetch_add(1, Ordering::Relaxed);
                }
                unreachable!()
            })
        })
        .collect();
    let idle = Raw::connect(addr);
    let mut half_request = Raw::connect(addr);
    half_request.send(&upgrade_request("/", "").as_bytes()[..40]);
    let mut mid_frame = Raw::websocket(addr);
    mid_frame.send(&masked(TEXT, &[b'x'; 1000])[..500]);
    ready.wait();
    let end = Instant::now() + Duration::from_secs(5);
    while echoes.load(Ordering::Relaxed) < CLIENTS * 20 {
        assert!(Instant::now() < end, "the clients are not being echoed");
        std::thread::sleep(ms(5));
    }
    let start = Instant::now();
    server.remote.shutdown();
    // The sockets still in their HTTP phase are closed at once (and then let go here).
    for mut raw in [idle, half_request] {
        assert_eq!(raw.expect_closed(Duration::from_secs(3)), Ending::Eof(0));
    }
    mid_frame.expect_close(1001);
    // A well-behaved client finishes its frame, then answers the close.
    mid_frame.send(&masked(TEXT, &[b'x'; 1000])[500..]);
    let _ = mid_frame.try_send(&close_frame(1001, ""));
    mid_frame.expect_closed(Duration::from_secs(3));
    for client in clients {
        client.join().expect("a client failed");
    }
    let finished = server.join(Duration::from_secs(6));
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "stopped only after {:?}",
        start.elapsed()
    );
    assert!(
        finished.stopped && empty(&finished.stats),
        "{:?}",
        finished.stats
    );
    let closed = closed.lock().unwrap();
    assert_eq!(closed.len(), CLIENTS + 1, "{closed:?}");
    assert!(
        closed
            .iter()
            .all(|c| *c == Closed::ByServer(CloseCode::GOING_AWAY)),
        "{closed:?}"
    );
}

/// A gateway whose clients identify (and resume) with any token; events are ignored.
struct Relay;

#[derive(serde::Deserialize)]
struct Token {
    token: String,
}

impl Handler for Relay {
    type Dialect = I386;
    type Session = String;
    type Timer = ();
    type Command = ();

    fn identify(
        &mut self,
        _: &mut Gw<'_, '_, Self>,
        _: ConnId,
        payload: &RawValue,
    ) -> Result<String, GatewayError> {
        let token: Result<Token, _> = serde_json::from_str(payload.get());
        token
            .map(|t| t.token)
            .map_err(|_| GatewayError::AuthenticationFailed)
    }

    fn resume(&mut self, session: &String, payload: &RawValue) -> bool {
        serde_json::from_str::<Token>(payload.get()).is_ok_and(|t| t.token == *session)
    }

    fn on_event(
        &mut self,
        _: &mut Gw<'_, '_, Self>,
        _: SessionId,
        _: &str,
        _: Option<&RawValue>,
    ) -> Result<(), GatewayError> {
        Ok(())
    }
}

/// A gateway reactor on its own thread (built there: the engine is not `Send`), publishing
/// its stats and session count after every turn.
struct LiveGateway {
    addr: SocketAddr,
    remote: Remote<postern::gateway::GwCommand<()>>,
    live: Arc<Mutex<Option<(Stats, usize)>>>,
    handle: std::thread::JoinHandle<()>,
}

fn spawn_gateway(config: Config, gateway: GatewayConfig) -> LiveGateway {
    let live = Arc::new(Mutex::new(None));
    let publish = live.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = std::thread::spawn(move || {
        let app = Gateway::new(Relay, I386, gateway);
        let mut reactor = Reactor::bind("127.0.0.1:0".parse().unwrap(), config, app).unwrap();
        tx.send((reactor.local_addr(), reactor.remote())).unwrap();
        while !reactor.is_stopped() {
            reactor.turn(Some(ms(10))).expect("turn");
            *publish.lock().unwrap() = Some((reactor.stats(), reactor.app().session_count()));
        }
    });
    let (addr, remote) = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    LiveGateway {
        addr,
        remote,
        live,
        handle,
    }
}

/// In-process gateway: a half-open client (closed by the heartbeat timeout), one that never
/// identifies (closed by the identify timeout), and one reset mid-frame whose session
/// resumes on a new, well-behaved connection. Once all have left and the resume window has
/// passed: no socket, no timer, no session.
#[test]
fn gateway_faults_leave_no_slot_timer_or_session() {
    let config = Config {
        close_timeout: Millis(300),
        ..Config::default()
    };
    let mut gateway = GatewayConfig::with_heartbeat(Millis(200)); // silence allowed: 500 ms
    gateway.identify_timeout = Millis(500);
    gateway.resume_window = Millis(400);
    let server = spawn_gateway(config, gateway);
    let join = |token: &str| {
        let mut raw = Raw::websocket(server.addr);
        assert_eq!(read_json(&mut raw)["f"], 100);
        send_json(&mut raw, json!({"f": 110, "cnf": {"token": token}}));
        let ready = read_json(&mut raw);
        (raw, ready["cnf"]["session_id"].as_u64().expect("READY"))
    };
    let (mut half_open, _) = join("a");
    let (reset_one, sid) = join("b");
    let mut silent = Raw::websocket(server.addr);
    (&reset_one.stream)
        .write_all(&masked(TEXT, br#"{"f":130,"t":"X","cnf":{}}"#)[..10])
        .unwrap();
    reset(reset_one.stream);
    // The reset session resumes within the window, on a new connection.
    let mut back = Raw::websocket(server.addr);
    assert_eq!(read_json(&mut back)["f"], 100);
    send_json(
        &mut back,
        json!({"f": 110, "cnf": {"token": "b", "session_id": sid, "s": 0}}),
    );
    assert_eq!(read_json(&mut back)["cnf"]["resumed"], true);
    // Heartbeats keep `back` alive while the half-open and the silent ones are timed out.
    let start = Instant::now();
    while start.elapsed() < ms(900) {
        back.send(&masked(TEXT, br#"{"f":120}"#));
        assert_eq!(read_json(&mut back), json!({"f": 120}));
        std::thread::sleep(ms(100));
    }
    assert_eq!(close_code(&mut half_open), 4009, "the heartbeat timeout");
    assert_eq!(close_code(&mut silent), 4003, "the identify timeout");
    back.send(&close_frame(1000, ""));
    back.expect_close(1000);
    drop((half_open, silent, back));
    let end = Instant::now() + Duration::from_secs(3);
    let (stats, sessions) = loop {
        let (stats, sessions) = server.live.lock().unwrap().expect("a turn ran");
        if (empty(&stats) && sessions == 0) || Instant::now() > end {
            break (stats, sessions);
        }
        std::thread::sleep(ms(10));
    };
    assert!(
        empty(&stats) && sessions == 0,
        "{stats:?}, {sessions} sessions"
    );
    let _ = server.remote.stop();
    let end = Instant::now() + Duration::from_secs(3);
    while !server.handle.is_finished() {
        assert!(Instant::now() < end, "the gateway did not stop");
        std::thread::sleep(ms(10));
    }
    server.handle.join().expect("the gateway thread panicked");
}

/// A client whose last bytes (an upgrade request, a message) and FIN arrive together, then
/// closes: its slot must be freed. Observed: the short read returns the bytes, the reactor
/// takes the short read as "socket drained" and waits for an edge that never comes, so the
/// EOF is never read and the WebSocket stays in the slab for ever, with no timer.
#[test]
fn fin_right_behind_the_last_bytes_frees_the_slot() {
    let mut reactor = Reactor::bind(
        "127.0.0.1:0".parse().unwrap(),
        Config::default(),
        Recorder::default(),
    )
    .unwrap();
    let addr = reactor.local_addr();
    let mut clients = Vec::new();
    for _ in 0..5 {
        let raw = Raw::connect(addr);
        (&raw.stream)
            .write_all(upgrade_request("/", "").as_bytes())
            .unwrap();
        raw.stream.shutdown(std::net::Shutdown::Write).unwrap();
        clients.push(raw);
    }
    let mut last = Raw::connect(addr);
    upgrade_driven(&mut reactor, &mut last);
    last.send(&masked(TEXT, b"bye"));
    last.stream.shutdown(std::net::Shutdown::Write).unwrap();
    std::thread::sleep(ms(50));
    // Every client reads all it was sent (so that closing sends a FIN, not an RST).
    for raw in &mut clients {
        raw.stream.set_read_timeout(Some(ms(5))).unwrap();
        let head = pump(&mut reactor, |_| raw.read_head().ok());
        assert_eq!(status(&head), 101, "{head}");
    }
    last.stream.set_read_timeout(Some(ms(5))).unwrap();
    assert_eq!(
        pump(&mut reactor, |_| last.read_frame().ok()).payload,
        b"bye"
    );
    clients.push(last);
    drop(clients);
    let end = Instant::now() + Duration::from_secs(2);
    while !empty(&reactor.stats()) && Instant::now() < end {
        reactor.turn(Some(ms(10))).unwrap();
    }
    assert!(
        empty(&reactor.stats()),
        "6 clients have left; the reactor still holds {:?}",
        reactor.stats()
    );
}
