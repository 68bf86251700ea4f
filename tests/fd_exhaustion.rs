//! Running out of file descriptors on accept must not spin the reactor, and it must recover
//! once descriptors are free again. The echo example runs under `ulimit -n 64`; the test
//! opens more connections than that, measures the server's CPU time while the backlog is
//! stuck, then closes them and checks a new client is served.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The echo example under a 64-descriptor limit.
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

fn start() -> Server {
    let built = Command::new(env!("CARGO"))
        .args(["build", "--release", "--example", "echo"])
        .status()
        .expect("cargo build");
    assert!(built.success());
    let bin = format!(
        "{}/target/release/examples/echo",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut child = Command::new("sh")
        .args([
            "-c",
            &format!("ulimit -n 64 && exec {bin} --listen 127.0.0.1:0"),
        ])
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn echo");
    let stderr = child.stderr.take().expect("stderr");
    let mut line = String::new();
    BufReader::new(stderr)
        .read_line(&mut line)
        .expect("listening line");
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    Server { child, addr }
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let after = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap_or(0) + fields[12].parse::<u64>().unwrap_or(0)
}

fn upgrade(addr: SocketAddr) -> std::io::Result<TcpStream> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(3)))?;
    s.write_all(
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte)?;
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    Ok(s)
}

/// Sends a masked text frame and reads its echo.
fn echo(s: &mut TcpStream, text: &str) -> String {
    let key = [1u8, 2, 3, 4];
    let mut frame = vec![0x81, 0x80 | text.len() as u8];
    frame.extend_from_slice(&key);
    frame.extend(text.bytes().enumerate().map(|(i, b)| b ^ key[i % 4]));
    s.write_all(&frame).expect("send");
    let mut head = [0u8; 2];
    s.read_exact(&mut head).expect("echo header");
    let mut body = vec![0u8; usize::from(head[1] & 0x7F)];
    s.read_exact(&mut body).expect("echo body");
    String::from_utf8(body).expect("utf8")
}

#[test]
fn emfile_on_accept_backs_off_and_recovers() {
    let server = start();
    let pid = server.child.id();
    // More connections than descriptors: the first ~55 are served, the rest wait in the
    // kernel's backlog while accept fails with EMFILE.
    let mut open = Vec::new();
    for _ in 0..120 {
        match TcpStream::connect(server.addr) {
            Ok(s) => open.push(s),
            Err(_) => break,
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    let before = cpu_ticks(pid);
    let window = Instant::now();
    std::thread::sleep(Duration::from_secs(2));
    let used = cpu_ticks(pid) - before;
    let ticks_per_s = 100; // CLK_TCK on Linux
    let share = used as f64 / ticks_per_s as f64 / window.elapsed().as_secs_f64();
    assert!(
        share < 0.2,
        "reactor spun at {share:.2} of a core while out of descriptors"
    );

    // Free every descriptor: the waiting connections and new ones are served again.
    drop(open);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut client = loop {
        match upgrade(server.addr) {
            Ok(c) => break c,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("not recovered after descriptors were freed: {e}"),
        }
    };
    assert_eq!(echo(&mut client, "back"), "back");
}
