//! Peers that ask for output without ever reading it: every answer the reactor queues
//! counts against the outbox cap, so such a peer is cut off and the memory it can pin stays
//! bounded (`Stats::queued_bytes`), while a well-behaved client on the same reactor is
//! served throughout.
//!
//! Found by a probe before these tests existed: 8 s of Pings from a client that never read
//! grew the echo example to 2.1 GB, because Pongs were queued without the cap.

mod support;

use postern::Config;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::*;
use tungstenite::Message as WsMessage;

const CAP: usize = 64 * 1024;

fn config() -> Config {
    Config {
        outbox_limit: CAP,
        close_timeout: postern::Millis(300),
        ..Config::default()
    }
}

/// A socket with a small receive buffer that never reads.
fn deaf(addr: SocketAddr) -> Raw {
    let raw = Raw::connect(addr);
    let _ = socket2::SockRef::from(&raw.stream).set_recv_buffer_size(4096);
    raw
}

/// Writes `chunk` over and over on `raw` until the server ends the connection (an error)
/// or `limit` passes; meanwhile checks, about every millisecond, that the reactor never
/// holds much more than the cap in queued output, and that `healthy` is served. Returns
/// the bytes written.
fn flood(
    server: &Server<EchoApp>,
    mut raw: Raw,
    chunk: Vec<u8>,
    healthy: &mut tungstenite::WebSocket<std::net::TcpStream>,
) -> usize {
    let done = Arc::new(AtomicBool::new(false));
    let flag = done.clone();
    let writer = std::thread::spawn(move || {
        let _ = raw
            .stream
            .set_write_timeout(Some(Duration::from_millis(200)));
        let start = Instant::now();
        let mut sent = 0usize;
        while start.elapsed() < Duration::from_secs(20) {
            match raw.stream.write(&chunk) {
                Ok(n) => sent += n,
                Err(e) if is_timeout(&e) => {}
                Err(_) => break, // reset or broken pipe: the server let go
            }
        }
        flag.store(true, Ordering::SeqCst);
        (sent, start.elapsed())
    });
    let mut most = 0;
    let mut rounds = 0u32;
    while !done.load(Ordering::SeqCst) {
        most = most.max(server.stats().queued_bytes);
        rounds += 1;
        if rounds.is_multiple_of(50) {
            healthy.send(WsMessage::text("still there?")).unwrap();
            assert_eq!(healthy.read().unwrap(), WsMessage::text("still there?"));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let (sent, took) = writer.join().unwrap();
    assert!(
        took < Duration::from_secs(20),
        "the flooder was never cut off ({sent} bytes sent)"
    );
    // The cap, plus the frame that crossed it and a Close frame.
    assert!(most <= CAP + 8 * 1024, "{most} bytes queued at once");
    sent
}

#[test]
fn a_ping_flood_from_a_peer_that_never_reads_is_cut_off() {
    let server = spawn_observed(config(), EchoApp);
    let mut healthy = ws_client(server.addr);
    let mut raw = deaf(server.addr);
    raw.send_upgrade();
    raw.expect_switch();
    let ping = masked(PING, &[b'p'; 125]);
    let chunk: Vec<u8> = ping
        .iter()
        .copied()
        .cycle()
        .take(ping.len() * 400)
        .collect();
    flood(&server, raw, chunk, &mut healthy);
    let stats = server.wait_stats(Duration::from_secs(3), |s| s.sockets == 1);
    assert_eq!((stats.sockets, stats.websockets), (1, 1), "{stats:?}");
    assert_eq!(stats.queued_bytes, 0, "{stats:?}");
}

#[test]
fn pipelined_http_requests_from_a_peer_that_never_reads_are_cut_off() {
    let server = spawn_observed(config(), EchoApp);
    let mut healthy = ws_client(server.addr);
    let raw = deaf(server.addr);
    // Keep-alive requests answered 404 (EchoApp has no HTTP resources): each answer is
    // queued, none is read.
    let request = b"GET /missing HTTP/1.1\r\nHost: x\r\n\r\n";
    let chunk: Vec<u8> = request
        .iter()
        .copied()
        .cycle()
        .take(request.len() * 200)
        .collect();
    flood(&server, raw, chunk, &mut healthy);
    let stats = server.wait_stats(Duration::from_secs(3), |s| s.sockets == 1);
    assert_eq!((stats.sockets, stats.websockets), (1, 1), "{stats:?}");
}

#[test]
fn an_echo_flood_from_a_peer_that_never_reads_is_cut_off() {
    let server = spawn_observed(config(), EchoApp);
    let mut healthy = ws_client(server.addr);
    let mut raw = deaf(server.addr);
    raw.send_upgrade();
    raw.expect_switch();
    let msg = masked(TEXT, &[b'e'; 1000]);
    let chunk: Vec<u8> = msg.iter().copied().cycle().take(msg.len() * 64).collect();
    flood(&server, raw, chunk, &mut healthy);
    let stats = server.wait_stats(Duration::from_secs(3), |s| s.sockets == 1);
    assert_eq!((stats.sockets, stats.websockets), (1, 1), "{stats:?}");
}
