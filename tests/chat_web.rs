//! The chat example's browser side over raw sockets: the page and its assets served at their
//! paths with their types and Content-Security-Policy, and the Origin rule (the page's own
//! origin, no Origin, and `--allowed-origin` upgrade; any other Origin, `null` included, is
//! answered `403` before the upgrade). docs/protocols/chat.md, "The browser client".

mod support;
mod support_chat;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;
use support_chat::Server;

/// Sends `request` on a new connection and returns the response head and what followed it
/// (the body of a plain request; nothing is read past a `101`).
fn exchange(addr: SocketAddr, request: &str) -> (String, Vec<u8>) {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream.write_all(request.as_bytes()).expect("send");
    let mut got = Vec::new();
    let mut buf = [0u8; 16384];
    loop {
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&got[..end]).into_owned();
            let length = header(&head, "content-length").map_or(0, |v| v.parse().unwrap());
            if head.starts_with("HTTP/1.1 101") || got.len() >= end + 4 + length {
                let body = got[end + 4..].to_vec();
                return (head, body);
            }
        }
        match stream.read(&mut buf) {
            Ok(0) => panic!("closed before a complete response: {got:?}"),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => panic!("read: {e}; got {:?}", String::from_utf8_lossy(&got)),
        }
    }
}

fn header<'h>(head: &'h str, name: &str) -> Option<&'h str> {
    head.split("\r\n").skip(1).find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// The status of an upgrade to `/gateway` with `Host: host` and this `Origin`, if any.
fn upgrade_status(addr: SocketAddr, host: &str, origin: Option<&str>) -> u16 {
    let origin = origin.map_or(String::new(), |o| format!("Origin: {o}\r\n"));
    let request = format!(
        "GET /gateway HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{origin}\r\n"
    );
    let (head, _) = exchange(addr, &request);
    head[9..12].parse().expect("a status code")
}

#[test]
fn origins_other_than_the_pages_own_and_the_allowed_get_403() {
    let server = Server::start(2000, &["--allowed-origin", "https://friend.example"]);
    let addr = server.addr;
    let host = addr.to_string();
    let own = format!("http://{addr}");
    let other_port = format!("http://127.0.0.1:{}", addr.port() + 1);
    for (origin, status) in [
        (None, 101),
        (Some(own.as_str()), 101),
        (Some("https://friend.example"), 101),
        (Some("https://friend.example:443"), 101),
        (Some("null"), 403),
        (Some("http://evil.example"), 403),
        (Some("http://friend.example"), 403),
        (Some(other_port.as_str()), 403),
        (Some("http://localhost"), 403),
    ] {
        assert_eq!(
            upgrade_status(addr, &host, origin),
            status,
            "Origin {origin:?}"
        );
    }
    // The 403 is the whole answer: the socket is closed after it.
    let (head, body) = exchange(
        addr,
        &format!(
            "GET / HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Origin: null\r\n\r\n"
        ),
    );
    assert!(head.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{head}");
    assert_eq!(body, b"origin not allowed\n");
    // Same origin is judged on the Host header the browser sent (e.g. through a proxy).
    let proxied = Some("http://chat.example:8443");
    assert_eq!(upgrade_status(addr, "chat.example:8443", proxied), 101);
    assert_eq!(upgrade_status(addr, "chat.example:8444", proxied), 403);
}

#[test]
fn serves_the_client_with_types_and_a_strict_policy() {
    let server = Server::start(2000, &[]);
    let addr = server.addr;
    for (path, content_type, file) in [
        ("/", "text/html; charset=utf-8", "index.html"),
        ("/index.html", "text/html; charset=utf-8", "index.html"),
        ("/app.js", "text/javascript; charset=utf-8", "app.js"),
        ("/style.css", "text/css; charset=utf-8", "style.css"),
    ] {
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        let (head, body) = exchange(addr, &request);
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{path}: {head}");
        assert_eq!(header(&head, "content-type"), Some(content_type), "{path}");
        let csp = header(&head, "content-security-policy").expect("a CSP");
        assert!(
            csp.starts_with("default-src 'none'; script-src 'self';"),
            "{csp}"
        );
        assert_eq!(header(&head, "x-content-type-options"), Some("nosniff"));
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/chat_web/");
        assert_eq!(
            body,
            std::fs::read(format!("{dir}{file}")).unwrap(),
            "{path}"
        );
    }
    let (head, _) = exchange(addr, "GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(head.starts_with("HTTP/1.1 404 "), "{head}");
    let (head, _) = exchange(
        addr,
        "POST /app.js HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
    );
    assert!(head.starts_with("HTTP/1.1 405 "), "{head}");
    assert_eq!(header(&head, "allow"), Some("GET"));
}
