//! Bounds added by the second hardening round (issue 12), each with its exact answer while
//! a bystander on the same reactor keeps being served: frames per fragmented message,
//! keep-alive requests per connection, and per-address limits on IPv6 peers. (A keep-alive
//! connection's lifetime and the handshake deadline's answers are in `deadlines.rs`, on a
//! clock the test sets.)

mod support;

use postern::{Config, Reactor};
use std::time::{Duration, Instant};
use support::*;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// A bystander upgraded before the abuse: echoes `text` and checks it comes back.
fn bystander_echo(raw: &mut Raw, text: &str) {
    raw.send(&masked(TEXT, text.as_bytes()));
    let frame = raw.read_frame().expect("bystander echo");
    assert_eq!(
        (frame.opcode, frame.payload.as_slice()),
        (TEXT, text.as_bytes())
    );
}

#[test]
fn empty_continuation_frames_are_bounded_with_1008() {
    let server = spawn(Config::default(), EchoApp);
    let mut bystander = Raw::websocket(server.addr);
    let mut raw = Raw::websocket(server.addr);
    let key = Some([5, 6, 7, 8]);
    // A message that never grows and never ends: one first frame, then empty
    // continuations. The 1,025th frame is refused.
    let mut flood = frame(false, 0, TEXT, b"", key);
    for _ in 0..1023 {
        flood.extend(frame(false, 0, CONT, b"", key));
    }
    raw.send(&flood);
    bystander_echo(&mut bystander, "between");
    raw.send(&frame(false, 0, CONT, b"", key));
    let close = raw.expect_close(1008);
    assert_eq!(close.close_reason(), "too many fragments");
    raw.read_to_eof(secs(3));
    bystander_echo(&mut bystander, "after");

    // 1,024 frames is allowed: the message is echoed whole.
    let mut ok = Raw::websocket(server.addr);
    let mut message = frame(false, 0, BINARY, b"a", key);
    for _ in 0..1022 {
        message.extend(frame(false, 0, CONT, b"", key));
    }
    message.extend(frame(true, 0, CONT, b"z", key));
    ok.send(&message);
    let echoed = ok.read_frame().expect("echo");
    assert_eq!(
        (echoed.opcode, echoed.payload.as_slice()),
        (BINARY, &b"az"[..])
    );
    server.stop();
}

#[test]
fn a_failed_connection_that_keeps_sending_is_not_read_without_end() {
    let server = spawn(Config::default(), EchoApp);
    let mut bystander = Raw::websocket(server.addr);
    let mut raw = Raw::websocket(server.addr);
    let key = Some([5, 6, 7, 8]);
    let mut flood = frame(false, 0, TEXT, b"", key);
    for _ in 0..1024 {
        flood.extend(frame(false, 0, CONT, b"", key));
    }
    raw.send(&flood);
    raw.expect_close(1008);
    // The peer keeps sending. Past 1 MiB after the failure the server stops reading it:
    // its sends stall once the socket buffers are full, instead of being read and dropped
    // as fast as it can send until the close deadline (5 s).
    raw.stream.set_nonblocking(true).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    let start = Instant::now();
    let mut sent = 0usize;
    while start.elapsed() < secs(2) {
        match std::io::Write::write(&mut raw.stream, &chunk) {
            Ok(n) => sent += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(5))
            }
            Err(e) => panic!("send after the failure: {e}"),
        }
    }
    assert!(
        sent < 64 << 20,
        "{} MiB sent in 2 s: the server reads a failed connection without end",
        sent >> 20
    );
    bystander_echo(&mut bystander, "unaffected");
    server.stop();
}

const PLAIN: &[u8] = b"GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n";

/// Sends a plain request on `raw` and reads its answer (head and 10-byte body).
fn plain(raw: &mut Raw) -> String {
    raw.send(PLAIN);
    let head = raw.read_head().expect("an answer");
    assert_eq!(status(&head), 404, "{head}");
    assert_eq!(raw.read_bytes(10).expect("body"), b"not found\n");
    head
}

#[test]
fn keep_alive_requests_per_connection_are_capped() {
    let config = Config {
        max_requests_per_connection: 3,
        ..Config::default()
    };
    let server = spawn(config, EchoApp);
    let mut bystander = Raw::websocket(server.addr);
    let mut raw = Raw::connect(server.addr);
    for _ in 0..2 {
        let head = plain(&mut raw);
        assert_eq!(header(&head, "connection"), Some("keep-alive"), "{head}");
    }
    let head = plain(&mut raw);
    assert_eq!(header(&head, "connection"), Some("close"), "{head}");
    assert_eq!(raw.expect_closed(secs(3)), Ending::Eof(0));
    bystander_echo(&mut bystander, "still here");
    server.stop();
}

/// A reactor on `[::1]:0`, on its own thread; stopped when dropped.
struct V6 {
    addr: std::net::SocketAddr,
    remote: postern::Remote<()>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Drop for V6 {
    fn drop(&mut self) {
        let _ = self.remote.stop();
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

/// Binds `[::1]:0` and runs the reactor there; `None` without IPv6 loopback.
fn spawn_v6(config: Config) -> Option<V6> {
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = std::thread::spawn(move || {
        let Ok(mut reactor) = Reactor::bind("[::1]:0".parse().unwrap(), config, EchoApp) else {
            let _ = tx.send(None);
            return;
        };
        let _ = tx.send(Some((reactor.local_addr(), reactor.remote())));
        let _ = reactor.run();
    });
    let (addr, remote) = rx.recv_timeout(IO_TIMEOUT).expect("bound")?;
    Some(V6 {
        addr,
        remote,
        handle: Some(handle),
    })
}

#[test]
fn per_address_limits_apply_to_ipv6_peers() {
    let config = Config {
        limit_loopback: true,
        max_connections_per_ip: 2,
        ..Config::default()
    };
    let Some(server) = spawn_v6(config) else {
        eprintln!("no IPv6 loopback here: skipped");
        return;
    };
    let request = upgrade_request("/", "");
    let held: Vec<_> = (0..2)
        .map(|_| {
            let (raw, head) = http_exchange(server.addr, request.as_bytes());
            assert_eq!(status(&head), 101, "{head}");
            raw
        })
        .collect();
    let (_, head) = http_exchange(server.addr, request.as_bytes());
    assert_eq!(status(&head), 429, "{head}");
    assert_eq!(header(&head, "retry-after"), Some("1"), "{head}");
    drop(held);
}
