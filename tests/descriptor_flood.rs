//! One address opening far more silent sockets than it may hold must not lock anyone else
//! out, even with few descriptors. The echo example runs under `ulimit -n 128` with the
//! per-address limits on for loopback; an established client (from 127.0.0.3) and a new
//! client from another address (127.0.0.2) must keep being served while 127.0.0.1 floods.
//!
//! - With a per-address cap below the descriptor limit, the sockets beyond the cap are
//!   answered `429` at accept, before they send anything, and hold nothing.
//! - With a cap above it, the oldest sockets still in their HTTP phase are shed (`503`)
//!   to make room; upgraded connections are never shed.
//!
//! Set `POSTERN_ECHO_BIN` to a built `echo` binary to skip the build step.

use socket2::{Domain, Socket, Type};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The echo example under a 128-descriptor limit; killed when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn echo_binary() -> String {
    if let Some(bin) = std::env::var_os("POSTERN_ECHO_BIN") {
        return bin.to_string_lossy().into_owned();
    }
    let built = Command::new(env!("CARGO"))
        .args(["build", "--release", "--example", "echo"])
        .status()
        .expect("cargo build");
    assert!(built.success());
    format!(
        "{}/target/release/examples/echo",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn start(per_ip: usize) -> Server {
    let bin = echo_binary();
    let mut child = Command::new("sh")
        .args([
            "-c",
            &format!(
                "ulimit -n 128 && exec {bin} --listen 127.0.0.1:0 --limit-loopback true \
                 --max-conns-per-ip {per_ip} --new-conns-per-ip 100000"
            ),
        ])
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn echo");
    let stderr = child.stderr.take().expect("stderr");
    let mut reader = BufReader::new(stderr);
    let mut line = String::new();
    reader.read_line(&mut line).expect("listening line");
    // Keep reading stderr so that the server never blocks on a full pipe.
    std::thread::spawn(move || {
        let mut sink = String::new();
        while reader.read_line(&mut sink).is_ok_and(|n| n > 0) {
            sink.clear();
        }
    });
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    Server { child, addr }
}

/// A TCP connection to `to` from `source` (an address of 127.0.0.0/8).
fn connect_from(source: &str, to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    let from: SocketAddr = format!("{source}:0").parse().expect("source");
    socket.bind(&from.into())?;
    socket.connect_timeout(&to.into(), Duration::from_secs(3))?;
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(Duration::from_secs(3)))?;
    stream.set_write_timeout(Some(Duration::from_secs(3)))?;
    Ok(stream)
}

/// Connects from `source` and upgrades; the response head on failure.
fn upgrade_from(source: &str, to: SocketAddr) -> Result<TcpStream, String> {
    let mut s = connect_from(source, to).map_err(|e| format!("connect: {e}"))?;
    s.write_all(
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .map_err(|e| format!("send: {e}"))?;
    let head = read_head(&mut s).map_err(|e| format!("read: {e}"))?;
    if head.starts_with("HTTP/1.1 101") {
        Ok(s)
    } else {
        Err(head)
    }
}

fn read_head(s: &mut TcpStream) -> std::io::Result<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte)? == 0 {
            break;
        }
        head.push(byte[0]);
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

/// Sends a masked text frame and reads its echo.
fn echo(s: &mut TcpStream, text: &str) -> std::io::Result<String> {
    let key = [1u8, 2, 3, 4];
    let mut frame = vec![0x81, 0x80 | text.len() as u8];
    frame.extend_from_slice(&key);
    frame.extend(text.bytes().enumerate().map(|(i, b)| b ^ key[i % 4]));
    s.write_all(&frame)?;
    let mut head = [0u8; 2];
    s.read_exact(&mut head)?;
    let mut body = vec![0u8; usize::from(head[1] & 0x7F)];
    s.read_exact(&mut body)?;
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// 127.0.0.1 opens `count` silent sockets (kept open); returns them.
fn flood(addr: SocketAddr, count: usize) -> Vec<TcpStream> {
    let mut held = Vec::new();
    for _ in 0..count {
        match connect_from("127.0.0.1", addr) {
            Ok(s) => held.push(s),
            Err(e) => panic!("connect {}: {e}", held.len()),
        }
    }
    // Let the server accept what it will.
    std::thread::sleep(Duration::from_millis(500));
    held
}

/// Another address is served, and the established client still is.
fn others_are_served(addr: SocketAddr, established: &mut TcpStream) {
    let start = Instant::now();
    let mut newcomer = upgrade_from("127.0.0.2", addr)
        .unwrap_or_else(|e| panic!("127.0.0.2 refused during the flood: {e}"));
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "127.0.0.2 waited {:?}",
        start.elapsed()
    );
    assert_eq!(echo(&mut newcomer, "new").expect("newcomer echo"), "new");
    assert_eq!(
        echo(established, "still").expect("established echo"),
        "still"
    );
}

#[test]
fn silent_sockets_over_the_per_address_cap_are_refused_at_accept() {
    let server = start(32);
    let mut established = upgrade_from("127.0.0.3", server.addr).expect("established");
    let mut held = flood(server.addr, 300);
    // The 33rd socket was answered 429 without sending anything (the first 32 wait).
    let head = read_head(&mut held[32]).expect("an answer at accept");
    assert!(head.starts_with("HTTP/1.1 429 "), "{head:?}");
    assert!(
        head.to_ascii_lowercase().contains("retry-after: 1"),
        "{head}"
    );
    let last = held.len() - 1;
    let head = read_head(&mut held[last]).expect("an answer at accept");
    assert!(head.starts_with("HTTP/1.1 429 "), "{head:?}");
    others_are_served(server.addr, &mut established);
}

#[test]
fn oldest_handshakes_are_shed_when_descriptors_run_low() {
    // The cap (1,000) is above the descriptor limit (128): only shedding protects others.
    let server = start(1000);
    let mut established = upgrade_from("127.0.0.3", server.addr).expect("established");
    let mut held = flood(server.addr, 400);
    others_are_served(server.addr, &mut established);
    // The oldest silent socket was shed with 503; the newest still waits, unanswered.
    let head = read_head(&mut held[0]).expect("an answer to the shed socket");
    assert!(head.starts_with("HTTP/1.1 503 "), "{head:?}");
    let last = held.len() - 1;
    held[last]
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut byte = [0u8; 1];
    match held[last].read(&mut byte) {
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) => {}
        other => panic!("the newest silent socket should still wait: {other:?}"),
    }
}
