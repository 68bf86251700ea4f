//! Several reactors in one process (issue 14, part 1): `postern::Reactors` runs N reactors
//! of one application on one port (`SO_REUSEPORT`), one thread each. These tests embed it
//! as a library user would: the kernel spreads 240 connections over two reactors (asserted
//! from each reactor's `Stats`, not hoped for), one graceful shutdown drains both, and a
//! reactor that panics makes the runner shut the other down gracefully and report the
//! panic. Every wait is bounded.

mod support;

use postern::{
    Accept, App, CloseCode, Config, ConnId, Ctx, Message, Reactors, ReactorsError, Request,
};
use std::time::{Duration, Instant};
use support::*;

const LONG: Duration = Duration::from_secs(10);

/// Tells each client which reactor holds it ("which"), echoes anything else, and panics on
/// "panic" (the fault under test).
struct Which {
    index: usize,
}

impl App for Which {
    type Conn = ();
    type Timer = ();
    type Command = ();

    fn on_upgrade(&mut self, _: &mut Ctx<'_, Self>, _: ConnId, _: &Request<'_, '_>) -> Accept<()> {
        Accept::new(())
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, Self>, id: ConnId, message: Message<'_>) {
        match message {
            Message::Text("which") => {
                let _ = ctx.send_text(id, &self.index.to_string());
            }
            Message::Text("panic") => panic!("reactor {} asked to panic", self.index),
            other => {
                let _ = ctx.send(id, other);
            }
        }
    }
}

fn spawn(count: usize) -> Reactors<()> {
    Reactors::spawn(
        "127.0.0.1:0".parse().unwrap(),
        Config::default(),
        count,
        |index| Which { index },
    )
    .expect("spawn reactors")
}

/// Connects and asks which reactor holds the connection.
fn connect(reactors: &Reactors<()>) -> (Raw, usize) {
    let mut raw = Raw::websocket(reactors.local_addr());
    raw.send(&masked(TEXT, b"which"));
    let frame = raw.read_frame().expect("which answer");
    assert_eq!(frame.opcode, TEXT, "{frame:?}");
    let index = String::from_utf8(frame.payload).unwrap().parse().unwrap();
    (raw, index)
}

/// Connects until each of the two reactors holds at least `each` connections (bounded).
fn connect_both(reactors: &Reactors<()>, each: usize) -> [Vec<Raw>; 2] {
    let mut held: [Vec<Raw>; 2] = [Vec::new(), Vec::new()];
    for _ in 0..400 {
        if held.iter().all(|h| h.len() >= each) {
            return held;
        }
        let (raw, index) = connect(reactors);
        held[index].push(raw);
    }
    panic!(
        "400 connections did not give both reactors {each}: {} and {}",
        held[0].len(),
        held[1].len()
    );
}

#[test]
fn the_kernel_spreads_connections_over_both_reactors() {
    let reactors = spawn(2);
    assert_eq!(reactors.len(), 2);
    let mut clients = Vec::new();
    let mut seen = [0usize; 2];
    for i in 0..240 {
        let (mut raw, index) = connect(&reactors);
        seen[index] += 1;
        let text = format!("hello {i}");
        raw.send(&masked(TEXT, text.as_bytes()));
        assert_eq!(raw.read_frame().unwrap().payload, text.as_bytes());
        clients.push(raw);
    }
    let handle = reactors.handle();
    let stats = handle.all_stats(LONG);
    let websockets: Vec<usize> = stats.iter().map(|s| s.expect("stats").websockets).collect();
    assert!(
        websockets.iter().all(|&n| n > 0),
        "every reactor holds sessions: {websockets:?}"
    );
    assert_eq!(websockets.iter().sum::<usize>(), 240, "{websockets:?}");
    // Each reactor's own count is what its clients were told.
    assert_eq!(websockets, seen.to_vec());
    assert_eq!(handle.stats(2, LONG), None, "no third reactor");
    drop(clients);
    handle.shutdown();
    reactors.join().expect("clean end");
}

#[test]
fn one_shutdown_drains_every_reactor() {
    let reactors = spawn(2);
    let addr = reactors.local_addr();
    let [mut on_0, mut on_1] = connect_both(&reactors, 20);
    let handle = reactors.handle();
    let started = Instant::now();
    handle.shutdown();
    for raw in on_0.iter_mut().chain(on_1.iter_mut()) {
        let frame = raw.expect_close(CloseCode::GOING_AWAY.0);
        assert_eq!(frame.close_reason(), "server shutting down");
        raw.send(&close_frame(1001, ""));
    }
    reactors.join().expect("both drained, no error");
    assert!(
        started.elapsed() < LONG,
        "drained in {:?}",
        started.elapsed()
    );
    for index in 0..2 {
        let last = handle.stats(index, LONG).expect("last figures");
        assert_eq!((last.sockets, last.websockets), (0, 0), "reactor {index}");
    }
    assert!(handle.remote(0).unwrap().is_stopped() && handle.remote(1).unwrap().is_stopped());
    // Nobody listens any more.
    assert!(std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err());
}

#[test]
fn a_panicking_reactor_shuts_the_others_down_and_is_reported() {
    let reactors = spawn(2);
    let [mut on_0, mut on_1] = connect_both(&reactors, 3);
    on_0[0].send(&masked(TEXT, b"panic"));
    // The panicked reactor's sockets are dropped with it: its clients see the end.
    for raw in &mut on_0 {
        let _ = raw.expect_closed(LONG);
    }
    // The other one is shut down gracefully: its clients get the going-away close.
    for raw in &mut on_1 {
        raw.expect_close(CloseCode::GOING_AWAY.0);
        raw.send(&close_frame(1001, ""));
    }
    match reactors.join() {
        Err(ReactorsError::Panicked { reactor, message }) => {
            assert_eq!(reactor, 0);
            assert_eq!(message, "reactor 0 asked to panic");
        }
        other => panic!("expected the panic reported, got {other:?}"),
    }
}

#[test]
fn a_factory_that_panics_fails_the_spawn_and_stops_the_started_ones() {
    let result = Reactors::spawn(
        "127.0.0.1:0".parse().unwrap(),
        Config::default(),
        3,
        |index| {
            assert!(index != 1, "no application for reactor 1");
            Which { index }
        },
    );
    match result {
        Err(ReactorsError::Panicked { reactor, message }) => {
            assert_eq!(reactor, 1);
            assert_eq!(message, "no application for reactor 1");
        }
        other => panic!("expected the factory's panic, got {other:?}"),
    }
}

#[test]
fn count_zero_is_one_reactor_per_core() {
    let reactors = spawn(0);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert_eq!(reactors.len(), cores);
    let handle = reactors.handle();
    handle.shutdown();
    reactors.join().expect("clean end");
}
