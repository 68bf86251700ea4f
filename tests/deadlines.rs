//! The reactor's own deadlines on a clock the test sets (`Reactor::turn_at`): the handshake
//! deadline (silent socket, slowloris 408, idle keep-alive), a keep-alive connection's
//! lifetime, the per-address rate's recovery, the idle ping and timeout, and the close
//! deadline. Nothing sleeps: each deadline is checked a millisecond before (nothing
//! happens) and at its time (exactly what must happen).

mod support;

use postern::{Config, Millis};
use std::time::Duration;
use support::*;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// A plain request, answered `404` with a 10-byte body by the default `on_http`.
const PLAIN: &[u8] = b"GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n";

/// Sends a plain request on `raw` and reads its answer (head and body): the head.
fn plain(d: &mut Driven<EchoApp>, raw: &mut Raw) -> String {
    raw.send(PLAIN);
    let head = d.head(raw);
    assert_eq!(status(&head), 404, "{head}");
    assert_eq!(d.pump(|_| raw.read_bytes(10).ok()), b"not found\n");
    head
}

/// Checks nothing is sent to `raw` (a millisecond before its deadline).
fn quiet(d: &mut Driven<EchoApp>, raw: &mut Raw, at: Millis) {
    d.at(at);
    raw.expect_nothing(PUMP_READ);
}

#[test]
fn handshake_deadline_closes_silent_socket() {
    let mut d = Driven::bind(Config::default(), EchoApp);
    let mut raw = d.connect();
    quiet(&mut d, &mut raw, Millis(9_999));
    d.at(Millis(10_000));
    assert_eq!(raw.expect_closed(secs(2)), Ending::Eof(0));
    assert_eq!(d.reactor.stats().sockets, 0);
}

#[test]
fn handshake_deadline_answers_slowloris_408() {
    let mut d = Driven::bind(Config::default(), EchoApp);
    let request = upgrade_request("/", "");
    let mut raw = d.connect();
    // A byte a second: the request is never complete.
    for (i, byte) in request.as_bytes()[..10].iter().enumerate() {
        raw.send(&[*byte]);
        quiet(&mut d, &mut raw, Millis(i as u64 * 1_000));
    }
    quiet(&mut d, &mut raw, Millis(9_999));
    d.at(Millis(10_000));
    let response = String::from_utf8_lossy(&raw.read_to_eof(secs(2))).into_owned();
    assert_eq!(status(&response), 408, "{response}");
    assert_eq!(header(&response, "connection"), Some("close"), "{response}");
}

#[test]
fn idle_keep_alive_at_the_handshake_deadline_is_closed_without_an_answer() {
    let mut d = Driven::bind(Config::default(), EchoApp);
    let mut raw = d.connect();
    plain(&mut d, &mut raw);
    // Nothing of a second request was sent: no 408, just the end.
    quiet(&mut d, &mut raw, Millis(9_999));
    d.at(Millis(10_000));
    assert_eq!(raw.expect_closed(secs(2)), Ending::Eof(0));
    // Part of a second request: 408.
    let mut raw = d.connect();
    plain(&mut d, &mut raw);
    raw.send(b"GET / HT");
    quiet(&mut d, &mut raw, Millis(19_999));
    d.at(Millis(20_000));
    let head = d.head(&mut raw);
    assert_eq!(status(&head), 408, "{head}");
    assert_eq!(header(&head, "connection"), Some("close"), "{head}");
}

#[test]
fn keep_alive_connections_have_a_lifetime() {
    let config = Config {
        http_connection_lifetime: Millis(30_000),
        ..Config::default()
    };
    let mut d = Driven::bind(config, EchoApp);
    // A request every 9 s would hold the socket forever under the 10 s handshake deadline:
    // the lifetime ends it, without an answer since it is idle then.
    let mut raw = d.connect();
    for at in [0, 9_000, 18_000, 27_000] {
        d.at(Millis(at));
        let head = plain(&mut d, &mut raw);
        assert_eq!(header(&head, "connection"), Some("keep-alive"), "{head}");
    }
    quiet(&mut d, &mut raw, Millis(29_999));
    d.at(Millis(30_000));
    assert_eq!(raw.expect_closed(secs(2)), Ending::Eof(0));

    // Part of a request pending when the lifetime ends: 408.
    let mut raw = d.connect();
    for at in [30_000, 39_000, 48_000, 57_000] {
        d.at(Millis(at));
        plain(&mut d, &mut raw);
    }
    raw.send(b"GET / HT");
    quiet(&mut d, &mut raw, Millis(59_999));
    d.at(Millis(60_000));
    let head = d.head(&mut raw);
    assert_eq!(status(&head), 408, "{head}");
}

#[test]
fn new_connections_per_second_over_the_rate_get_429_then_recover() {
    let config = Config {
        limit_loopback: true,
        new_connections_per_ip: 5,
        ..Config::default()
    };
    let mut d = Driven::bind(config, EchoApp);
    let request = upgrade_request("/", "");
    let exchange = |d: &mut Driven<EchoApp>| {
        let mut raw = Raw::connect(d.addr());
        raw.stream.set_read_timeout(Some(PUMP_READ)).unwrap();
        raw.send(request.as_bytes());
        status(&d.head(&mut raw))
    };
    let statuses: Vec<u16> = (0..8).map(|_| exchange(&mut d)).collect();
    assert_eq!(statuses, [101, 101, 101, 101, 101, 429, 429, 429]);
    // 5 per second: one more allowed 200 ms later, not before.
    d.at(Millis(199));
    assert_eq!(exchange(&mut d), 429);
    d.at(Millis(200));
    assert_eq!(exchange(&mut d), 101);
    assert_eq!(exchange(&mut d), 429);
}

/// Reads a frame and checks it is an empty server Ping.
fn expect_ping(d: &mut Driven<EchoApp>, raw: &mut Raw) {
    let frame = d.frame(raw);
    assert_eq!((frame.opcode, frame.payload.len()), (PING, 0), "{frame:?}");
}

#[test]
fn idle_peers_are_pinged_then_closed_and_dropped_at_the_close_deadline() {
    let config = Config {
        ping_interval: Some(Millis(1_000)),
        idle_timeout: Some(Millis(3_000)),
        ..Config::default()
    };
    let mut d = Driven::bind(config, EchoApp);
    let mut silent = d.websocket();
    let mut live = d.websocket();
    quiet(&mut d, &mut silent, Millis(999));
    live.expect_nothing(PUMP_READ);
    for at in [1_000, 2_000] {
        d.at(Millis(at));
        expect_ping(&mut d, &mut silent);
        expect_ping(&mut d, &mut live);
        // The live peer answers; its Pong resets its silence.
        live.send(&masked(PONG, b""));
    }
    quiet(&mut d, &mut silent, Millis(2_999));
    d.at(Millis(3_000));
    let close = d.frame(&mut silent);
    assert_eq!(close.opcode, CLOSE, "{close:?}");
    assert_eq!(close.close_code(), Some(1001));
    assert_eq!(close.close_reason(), "idle timeout");
    // The live peer, pinged every second and answering, is kept; the silent one never
    // answers the Close: dropped at the close deadline (5 s).
    for at in (3_000..=8_000).step_by(1_000) {
        if at == 8_000 {
            quiet(&mut d, &mut silent, Millis(7_999));
        }
        d.at(Millis(at));
        expect_ping(&mut d, &mut live);
        live.send(&masked(PONG, b""));
    }
    assert_eq!(silent.expect_closed(secs(2)), Ending::Eof(0));
    live.send(&masked(TEXT, b"still here"));
    assert_eq!(d.frame(&mut live).payload, b"still here");
    assert_eq!(d.reactor.stats().websockets, 1);
}
