//! Per-address limits: sockets per source address and new connections per second, both
//! answered `429 Too Many Requests` at the request, while other addresses are unaffected.

mod support;

use postern::Config;
use std::time::Duration;
use support::{header, http_exchange, spawn, status, upgrade_request, EchoApp};

/// Sends `request` from a socket bound to `source` and returns the response head.
fn exchange_from(source: &str, to: std::net::SocketAddr, request: &[u8]) -> String {
    use socket2::{Domain, Socket, Type};
    use std::io::{Read, Write};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    let from: std::net::SocketAddr = format!("{source}:0").parse().expect("source");
    socket.bind(&from.into()).expect("bind source");
    socket.connect(&to.into()).expect("connect");
    let mut stream: std::net::TcpStream = socket.into();
    stream
        .set_read_timeout(Some(Duration::from_secs(3)))
        .expect("timeout");
    stream.write_all(request).expect("send");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
        head.push(byte[0]);
    }
    String::from_utf8_lossy(&head).into_owned()
}

fn limited(max_sockets: usize, per_second: u32) -> Config {
    Config {
        limit_loopback: true,
        max_connections_per_ip: max_sockets,
        new_connections_per_ip: per_second,
        ..Config::default()
    }
}

#[test]
fn sockets_per_address_over_the_limit_get_429() {
    let server = spawn(limited(3, 1000), EchoApp);
    let request = upgrade_request("/", "");
    let held: Vec<_> = (0..3)
        .map(|_| {
            let (raw, head) = http_exchange(server.addr, request.as_bytes());
            assert_eq!(status(&head), 101, "{head}");
            raw
        })
        .collect();
    let (_, head) = http_exchange(server.addr, request.as_bytes());
    assert_eq!(status(&head), 429, "{head}");
    assert_eq!(header(&head, "retry-after"), Some("1"), "{head}");
    // Another source address (127.0.0.2, loopback too, limited separately) is served.
    let head = exchange_from("127.0.0.2", server.addr, request.as_bytes());
    assert_eq!(status(&head), 101, "{head}");
    // Freeing a socket frees a place.
    drop(held);
    let mut ok = false;
    for _ in 0..50 {
        let (_, head) = http_exchange(server.addr, request.as_bytes());
        if status(&head) == 101 {
            ok = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(ok, "a place freed by closed sockets was never given back");
}

#[test]
fn loopback_is_exempt_by_default() {
    let server = spawn(
        Config {
            max_connections_per_ip: 2,
            new_connections_per_ip: 2,
            ..Config::default()
        },
        EchoApp,
    );
    let request = upgrade_request("/", "");
    let held: Vec<_> = (0..10)
        .map(|_| {
            let (raw, head) = http_exchange(server.addr, request.as_bytes());
            assert_eq!(status(&head), 101, "{head}");
            raw
        })
        .collect();
    assert_eq!(held.len(), 10);
}
