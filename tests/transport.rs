//! Transport-level integration tests over real loopback sockets: framing, limits, protocol
//! violations, the HTTP phase, deadlines, slow readers, many connections, and shutdown.
//! Each test runs its own reactor on a thread (see `support`).

mod support;

use postern::{Accept, App, CloseCode, Closed, Config, ConnId, Ctx, Message, Millis, Request};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::*;
use tungstenite::Message as WsMessage;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// A text payload of `n` bytes with some multi-byte characters (valid UTF-8 at any length).
fn text_of(n: usize) -> String {
    let mut s = String::with_capacity(n);
    let mut i = 0;
    while s.len() < n {
        let c = if i % 7 == 3 && s.len() + 2 <= n {
            'é'
        } else {
            (b'a' + (i % 26) as u8) as char
        };
        s.push(c);
        i += 1;
    }
    s
}

fn binary_of(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 % 251) as u8).collect()
}

/// Sends one message on a tungstenite client and checks the echo.
fn echo_roundtrip(ws: &mut tungstenite::WebSocket<std::net::TcpStream>, msg: WsMessage) {
    ws.send(msg.clone()).expect("send");
    let got = ws.read().expect("read echo");
    assert_eq!(got, msg);
}

#[test]
fn echoes_text_and_binary_at_length_boundaries() {
    let server = spawn(Config::default(), EchoApp);
    let mut ws = ws_client(server.addr);
    for n in [0, 125, 126, 4096] {
        let text = text_of(n);
        assert_eq!(text.len(), n);
        echo_roundtrip(&mut ws, WsMessage::text(text));
        echo_roundtrip(&mut ws, WsMessage::binary(binary_of(n)));
    }
    // The same on a raw socket, checking the server's header encoding byte for byte.
    let mut raw = Raw::websocket(server.addr);
    for (n, head) in [
        (0usize, vec![0x82, 0]),
        (125, vec![0x82, 125]),
        (126, vec![0x82, 126, 0, 126]),
        (4096, vec![0x82, 126, 0x10, 0x00]),
    ] {
        let payload = binary_of(n);
        raw.send(&masked(BINARY, &payload));
        let expected = [head, payload].concat();
        let mut got = vec![0u8; expected.len()];
        std::io::Read::read_exact(&mut raw.stream, &mut got).expect("read echo");
        assert_eq!(got, expected, "echo of {n} bytes");
    }
    server.stop();
}

#[test]
fn oversized_frame_is_closed_1009_while_others_keep_echoing() {
    let server = spawn(Config::default(), EchoApp);
    let mut other = ws_client(server.addr);
    echo_roundtrip(&mut other, WsMessage::text("before"));

    let mut raw = Raw::websocket(server.addr);
    raw.send(&masked(BINARY, &binary_of(4097)));
    let close = raw.expect_close(1009);
    assert!(!close.close_reason().is_empty(), "1009 comes with a reason");
    raw.read_to_eof(secs(3));

    echo_roundtrip(&mut other, WsMessage::text("after"));
    echo_roundtrip(&mut other, WsMessage::binary(binary_of(4096)));
    server.stop();
}

#[test]
fn fragmented_message_is_echoed_whole() {
    let server = spawn(Config::default(), EchoApp);
    let key = Some([1, 2, 3, 4]);
    let mut raw = Raw::websocket(server.addr);
    raw.send(&frame(false, 0, TEXT, "Hél".as_bytes(), key));
    raw.send(&frame(false, 0, CONT, b"lo, ", key));
    // A control frame may come between fragments; it is answered at once.
    raw.send(&masked(PING, b"mid"));
    raw.send(&frame(true, 0, CONT, b"world", key));
    let pong = raw.read_frame().unwrap();
    assert_eq!((pong.opcode, pong.payload.as_slice()), (PONG, &b"mid"[..]));
    let msg = raw.read_frame().unwrap();
    assert!(msg.fin && !msg.masked && msg.rsv == 0);
    assert_eq!(
        (msg.opcode, msg.payload.as_slice()),
        (TEXT, "Héllo, world".as_bytes())
    );

    // Binary, exactly at the limit across three fragments.
    let data = binary_of(4096);
    raw.send(&frame(false, 0, BINARY, &data[..2000], key));
    raw.send(&frame(false, 0, CONT, &data[2000..4000], key));
    raw.send(&frame(true, 0, CONT, &data[4000..], key));
    let msg = raw.read_frame().unwrap();
    assert_eq!((msg.fin, msg.opcode), (true, BINARY));
    assert_eq!(msg.payload, data);
    server.stop();
}

#[test]
fn fragmented_message_over_limit_is_closed_1009() {
    let server = spawn(Config::default(), EchoApp);
    let key = Some([9, 8, 7, 6]);
    let data = binary_of(4097);
    let mut raw = Raw::websocket(server.addr);
    raw.send(&frame(false, 0, BINARY, &data[..2000], key));
    raw.send(&frame(false, 0, CONT, &data[2000..4000], key));
    raw.send(&frame(true, 0, CONT, &data[4000..], key));
    raw.expect_close(1009);
    raw.read_to_eof(secs(3));
    server.stop();
}

#[test]
fn protocol_violations_get_their_exact_close_code() {
    let server = spawn(Config::default(), EchoApp);
    let key = Some([0xA1, 0xB2, 0xC3, 0xD4]);
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("unmasked frame", frame(true, 0, TEXT, b"hi", None), 1002),
        ("RSV1 bit", frame(true, 4, TEXT, b"hi", key), 1002),
        ("RSV3 bit", frame(true, 1, BINARY, b"hi", key), 1002),
        (
            "reserved data opcode",
            frame(true, 0, 0x3, b"hi", key),
            1002,
        ),
        (
            "reserved control opcode",
            frame(true, 0, 0xB, b"", key),
            1002,
        ),
        ("ping of 126 bytes", masked(PING, &[b'p'; 126]), 1002),
        ("fragmented ping", frame(false, 0, PING, b"p", key), 1002),
        (
            "continuation without start",
            frame(true, 0, CONT, b"x", key),
            1002,
        ),
        (
            "invalid UTF-8 text",
            masked(TEXT, &[b'o', b'k', 0xC3, 0x28]),
            1007,
        ),
        ("close with code 1005", close_frame(1005, ""), 1002),
        ("close with 1-byte payload", masked(CLOSE, &[0x03]), 1002),
    ];
    for (name, bytes, code) in cases {
        let mut raw = Raw::websocket(server.addr);
        raw.send(&bytes);
        let close = raw.read_frame().unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(close.opcode, CLOSE, "{name}: {close:?}");
        assert_eq!(
            close.close_code(),
            Some(code),
            "{name}: {:?}",
            close.close_reason()
        );
        raw.read_to_eof(secs(3));
    }
    server.stop();
}

#[test]
fn ping_gets_pong_with_same_payload() {
    let server = spawn(Config::default(), EchoApp);
    let mut raw = Raw::websocket(server.addr);
    for payload in [&b""[..], b"hello", &[0xFF; 125]] {
        raw.send(&masked(PING, payload));
        let pong = raw.read_frame().unwrap();
        assert_eq!(pong.opcode, PONG);
        assert!(pong.fin && !pong.masked);
        assert_eq!(pong.payload, payload);
    }
    // Still an open, echoing connection.
    raw.send(&masked(TEXT, b"still here"));
    assert_eq!(raw.read_frame().unwrap().payload, b"still here");
    server.stop();
}

#[test]
fn client_close_is_echoed_then_tcp_closed() {
    let server = spawn(Config::default(), EchoApp);
    let mut raw = Raw::websocket(server.addr);
    raw.send(&close_frame(1000, "bye"));
    raw.expect_close(1000);
    let rest = raw.read_to_eof(secs(3));
    assert!(rest.is_empty(), "bytes after close: {rest:?}");
    server.stop();
}

#[test]
fn http_refusals_have_exact_status() {
    let server = spawn(Config::default(), EchoApp);
    let addr = server.addr;

    let (_, head) = http_exchange(addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status(&head), 426, "{head}");
    let (_, head) = http_exchange(addr, b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status(&head), 404, "{head}");

    let no_key = upgrade_request("/", "").replace(&format!("Sec-WebSocket-Key: {KEY}\r\n"), "");
    let (mut raw, head) = http_exchange(addr, no_key.as_bytes());
    assert_eq!(status(&head), 400, "{head}");
    raw.read_to_eof(secs(3));

    let v8 = upgrade_request("/", "").replace("Version: 13", "Version: 8");
    let (mut raw, head) = http_exchange(addr, v8.as_bytes());
    assert_eq!(status(&head), 426, "{head}");
    assert_eq!(header(&head, "sec-websocket-version"), Some("13"), "{head}");
    raw.read_to_eof(secs(3));

    // An upgrade attempt without `Upgrade: websocket` (or without `Connection: upgrade`)
    // is a broken upgrade (400), not a plain request.
    for cut in ["Upgrade: websocket\r\n", "Connection: Upgrade\r\n"] {
        let req = upgrade_request("/", "");
        assert!(req.contains(cut), "{req}");
        let (mut raw, head) = http_exchange(addr, req.replace(cut, "").as_bytes());
        assert_eq!(status(&head), 400, "without {cut:?}: {head}");
        raw.read_to_eof(secs(3));
    }

    let post = upgrade_request("/", "").replacen("GET", "POST", 1);
    let (mut raw, head) = http_exchange(addr, post.as_bytes());
    assert_eq!(status(&head), 400, "{head}");
    raw.read_to_eof(secs(3));

    // A head over 8 KiB: complete, and also one still growing.
    let big = upgrade_request("/", &format!("X-Filler: {}\r\n", "f".repeat(8 * 1024)));
    let (mut raw, head) = http_exchange(addr, big.as_bytes());
    assert_eq!(status(&head), 431, "{head}");
    raw.read_to_eof(secs(3));
    let unfinished = format!("GET / HTTP/1.1\r\nX-Filler: {}", "f".repeat(9 * 1024));
    let (mut raw, head) = http_exchange(addr, unfinished.as_bytes());
    assert_eq!(status(&head), 431, "{head}");
    raw.read_to_eof(secs(3));

    // The server is still fine.
    let mut ws = ws_client(addr);
    echo_roundtrip(&mut ws, WsMessage::text("ok"));
    server.stop();
}

#[test]
fn upgrade_beyond_max_connections_gets_503() {
    let config = Config {
        max_connections: 2,
        ..Config::default()
    };
    let server = spawn(config, EchoApp);
    let mut a = ws_client(server.addr);
    let mut b = ws_client(server.addr);
    let (mut raw, head) = http_exchange(server.addr, upgrade_request("/", "").as_bytes());
    assert_eq!(status(&head), 503, "{head}");
    raw.read_to_eof(secs(3));
    echo_roundtrip(&mut a, WsMessage::text("a"));
    echo_roundtrip(&mut b, WsMessage::text("b"));
    server.stop();
}

/// Echoes, except that "flood" is answered with 16 KiB; records every `on_close`.
#[derive(Default)]
struct FloodApp {
    closed: Arc<Mutex<Vec<(ConnId, Closed)>>>,
}

impl App for FloodApp {
    type Conn = ();
    type Timer = ();
    type Command = ();

    fn on_upgrade(&mut self, _: &mut Ctx<'_, Self>, _: ConnId, _: &Request<'_, '_>) -> Accept<()> {
        Accept::new(())
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, Self>, id: ConnId, message: Message<'_>) {
        if message == Message::Text("flood") {
            let _ = ctx.send_binary(id, &[0x5A; 16 * 1024]);
        } else {
            let _ = ctx.send(id, message);
        }
    }

    fn on_close(&mut self, _: &mut Ctx<'_, Self>, id: ConnId, _: (), why: Closed) {
        self.closed.lock().unwrap().push((id, why));
    }
}

#[test]
fn slow_reader_is_closed_without_stalling_others() {
    let config = Config {
        outbox_limit: 64 * 1024,
        close_timeout: Millis(300),
        ..Config::default()
    };
    let app = FloodApp::default();
    let closed = app.closed.clone();
    let server = spawn_observed(config, app);
    let mut healthy = ws_client(server.addr);
    echo_roundtrip(&mut healthy, WsMessage::text("hello"));

    let mut flooder = Raw::websocket(server.addr);
    let request = masked(TEXT, b"flood");
    let start = Instant::now();
    let mut sent = 0u32;
    loop {
        assert!(
            start.elapsed() < secs(8),
            "flooder not cut off after {sent} requests"
        );
        if let Err(e) = flooder.try_send(&request) {
            assert!(is_reset(&e), "{e}");
            break;
        }
        sent += 1;
        if sent.is_multiple_of(64) {
            // Others are served while the flooder's backlog grows.
            echo_roundtrip(&mut healthy, WsMessage::text(format!("during {sent}")));
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    // The server has let it go: only the healthy connection is left.
    let stats = server.wait_stats(secs(3), |s| s.websockets == 1 && s.sockets == 1);
    assert_eq!((stats.websockets, stats.sockets), (1, 1), "{stats:?}");
    let closed = closed.lock().unwrap().clone();
    assert_eq!(closed.len(), 1, "{closed:?}");
    assert_eq!(closed[0].1, Closed::ByServer(CloseCode::POLICY));
    echo_roundtrip(&mut healthy, WsMessage::binary(binary_of(4096)));
    server.stop();
}

#[test]
fn two_thousand_concurrent_connections_echo() {
    const N: usize = 2000;
    const BATCH: usize = 250;
    let start = Instant::now();
    let server = spawn_observed(Config::default(), EchoApp);
    let mut conns: Vec<Raw> = Vec::with_capacity(N);
    while conns.len() < N {
        let first = conns.len();
        for _ in 0..BATCH {
            let mut raw = Raw::connect(server.addr);
            raw.send_upgrade();
            conns.push(raw);
        }
        for raw in &mut conns[first..] {
            raw.expect_switch();
        }
    }
    let stats = server.wait_stats(secs(3), |s| s.websockets == N);
    assert_eq!((stats.websockets, stats.sockets), (N, N), "{stats:?}");
    let payload = |i: usize| format!("message from connection {i}").into_bytes();
    for (i, raw) in conns.iter_mut().enumerate() {
        raw.send(&masked(TEXT, &payload(i)));
    }
    for (i, raw) in conns.iter_mut().enumerate() {
        let msg = raw
            .read_frame()
            .unwrap_or_else(|e| panic!("connection {i}: {e}"));
        assert_eq!(
            (msg.opcode, msg.payload),
            (TEXT, payload(i)),
            "connection {i}"
        );
    }
    drop(conns);
    let stats = server.wait_stats(secs(3), |s| s.sockets == 0);
    assert_eq!((stats.sockets, stats.websockets), (0, 0), "{stats:?}");
    server.stop();
    assert!(start.elapsed() < secs(10), "took {:?}", start.elapsed());
}

/// Echo that records every `on_close` reason.
#[derive(Default)]
struct RecordingEcho {
    closed: Arc<Mutex<Vec<Closed>>>,
}

impl App for RecordingEcho {
    type Conn = ();
    type Timer = ();
    type Command = ();

    fn on_upgrade(&mut self, _: &mut Ctx<'_, Self>, _: ConnId, _: &Request<'_, '_>) -> Accept<()> {
        Accept::new(())
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, Self>, id: ConnId, message: Message<'_>) {
        let _ = ctx.send(id, message);
    }

    fn on_close(&mut self, _: &mut Ctx<'_, Self>, _: ConnId, _: (), why: Closed) {
        self.closed.lock().unwrap().push(why);
    }
}

#[test]
fn graceful_shutdown_closes_everyone_with_1001() {
    let config = Config {
        shutdown_timeout: Millis(10_000),
        ..Config::default()
    };
    let app = RecordingEcho::default();
    let closed = app.closed.clone();
    let server = spawn(config, app);
    let mut clients: Vec<_> = (0..8).map(|_| ws_client(server.addr)).collect();
    for (i, ws) in clients.iter_mut().enumerate() {
        echo_roundtrip(ws, WsMessage::text(format!("client {i}")));
    }
    let mut raws: Vec<Raw> = (0..4).map(|_| Raw::websocket(server.addr)).collect();

    let start = Instant::now();
    server.remote.shutdown();
    // Raw clients: read the 1001 and answer it, then wait for the server's FIN.
    for raw in &mut raws {
        let close = raw.expect_close(1001);
        assert_eq!(close.close_reason(), "server shutting down");
        raw.send(&close_frame(1001, ""));
        raw.read_to_eof(secs(3));
    }
    drop(raws);
    for ws in &mut clients {
        match ws.read().expect("close frame") {
            WsMessage::Close(Some(frame)) => assert_eq!(u16::from(frame.code), 1001),
            other => panic!("expected close 1001, got {other:?}"),
        }
        // tungstenite answers the close, then sees the server end the TCP connection.
        match ws.read() {
            Err(tungstenite::Error::ConnectionClosed) => {}
            other => panic!("expected the connection to end, got {other:?}"),
        }
    }
    drop(clients);
    let finished = server.join(secs(5));
    let took = start.elapsed();
    assert!(
        took < secs(5),
        "run() returned only after {took:?} (shutdown timeout?)"
    );
    let stats = finished.stats;
    assert_eq!(
        (stats.sockets, stats.websockets, stats.timers),
        (0, 0, 0),
        "{stats:?}"
    );
    assert!(finished.stopped);
    let closed = closed.lock().unwrap().clone();
    assert_eq!(closed.len(), 12, "{closed:?}");
    assert!(
        closed
            .iter()
            .all(|c| *c == Closed::ByServer(CloseCode::GOING_AWAY)),
        "{closed:?}"
    );
}

/// Regression: a socket still in its HTTP phase at shutdown used to be marked for a
/// half-close but never flushed, so it was only dropped at `close_timeout`.
#[test]
fn shutdown_closes_handshaking_sockets_promptly() {
    let server = spawn_observed(Config::default(), EchoApp);
    let mut idle = Raw::connect(server.addr);
    let stats = server.wait_stats(secs(3), |s| s.sockets == 1);
    assert_eq!(stats.sockets, 1, "{stats:?}");
    let start = Instant::now();
    server.remote.shutdown();
    assert_eq!(idle.expect_closed(secs(8)), Ending::Eof(0));
    let took = start.elapsed();
    assert!(
        took < secs(1),
        "idle handshaking socket closed only after {took:?}"
    );
    server.join(secs(8));
}
