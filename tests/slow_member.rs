//! A slow member of a room broadcast (issue 7, part 3): a member that stops reading while
//! the room keeps talking is closed by its outbox cap (1008), and nobody else is stalled:
//! a healthy member receives every broadcast, in order, with contiguous sequence numbers,
//! while the slow one's backlog grows. The slow member's session stays resumable (the
//! close is a connection failure, not the end of the session); a resume from a point the
//! replay buffer no longer holds gets the invalid-session answer (4006), never a gap.
//!
//! The gateway engine runs in-process (the i386 dialect of seed 004) on its own thread;
//! clients are raw sockets. Bounded in time.

mod support;

use postern::gateway::dialects::i386::I386;
use postern::gateway::{Gateway, GatewayConfig, GatewayError, Gw, Handler, SessionId};
use postern::{Config, Millis, Reactor, Stats};
use serde_json::{json, value::RawValue, Value};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::*;

/// Everyone who identifies joins room `r`, except the token `sender`; `SAY` broadcasts
/// its data to the room.
struct Room;

impl Handler for Room {
    type Dialect = I386;
    type Session = String;
    type Timer = ();
    type Command = ();

    fn identify(
        &mut self,
        _: &mut Gw<'_, '_, Self>,
        _: postern::ConnId,
        payload: &RawValue,
    ) -> Result<String, GatewayError> {
        let v: Value =
            serde_json::from_str(payload.get()).map_err(|_| GatewayError::AuthenticationFailed)?;
        v["token"]
            .as_str()
            .map(str::to_owned)
            .ok_or(GatewayError::AuthenticationFailed)
    }

    fn resume(&mut self, session: &String, payload: &RawValue) -> bool {
        serde_json::from_str::<Value>(payload.get()).is_ok_and(|v| v["token"] == **session)
    }

    fn on_ready(&mut self, gw: &mut Gw<'_, '_, Self>, session: SessionId, resumed: bool) {
        if !resumed && gw.session(session).is_some_and(|t| t != "sender") {
            gw.join(session, "r");
        }
    }

    fn on_event(
        &mut self,
        gw: &mut Gw<'_, '_, Self>,
        _: SessionId,
        event: &str,
        data: Option<&RawValue>,
    ) -> Result<(), GatewayError> {
        if event == "SAY" {
            let _ = gw.dispatch_room("r", "SAY", data.map_or("{}", RawValue::get), None);
        }
        Ok(())
    }
}

struct Live {
    addr: SocketAddr,
    stats: Arc<Mutex<Option<Stats>>>,
}

fn spawn(config: Config, gateway: GatewayConfig) -> Live {
    let stats = Arc::new(Mutex::new(None));
    let publish = stats.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    // The thread ends with the test process (the engine is not `Send`: built there).
    std::thread::spawn(move || {
        let app = Gateway::new(Room, I386, gateway);
        let mut reactor = Reactor::bind("127.0.0.1:0".parse().unwrap(), config, app).unwrap();
        tx.send(reactor.local_addr()).unwrap();
        loop {
            reactor.turn(Some(Duration::from_millis(10))).expect("turn");
            *publish.lock().unwrap() = Some(reactor.stats());
        }
    });
    let addr = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    Live { addr, stats }
}

fn send_json(raw: &mut Raw, value: Value) {
    raw.send(&masked(TEXT, value.to_string().as_bytes()));
}

fn read_json(raw: &mut Raw) -> Value {
    let frame = raw.read_frame().expect("a frame");
    assert_eq!(frame.opcode, TEXT, "{frame:?}");
    serde_json::from_slice(&frame.payload).expect("JSON")
}

/// Connects, identifies with `token`, and returns the connection and its session id.
fn join(addr: SocketAddr, token: &str) -> (Raw, u64) {
    let mut raw = Raw::websocket(addr);
    assert_eq!(read_json(&mut raw)["f"], 100);
    send_json(&mut raw, json!({"f": 110, "cnf": {"token": token}}));
    let ready = read_json(&mut raw);
    assert_eq!(ready["f"], 140, "{ready}");
    let sid = ready["cnf"]["session_id"].as_u64().expect("session id");
    (raw, sid)
}

#[test]
fn a_slow_member_is_closed_by_its_outbox_cap_and_stalls_nobody() {
    const BODY: usize = 3000;
    const MAX_SAYS: u64 = 4000; // 12 MB: far beyond any socket buffer and the outbox cap
    let config = Config {
        outbox_limit: 64 * 1024,
        close_timeout: Millis(300),
        ..Config::default()
    };
    let mut gateway = GatewayConfig::with_heartbeat(Millis(30_000));
    gateway.rate_limit = postern::gateway::RateLimit::new(1_000_000, Millis(60_000));
    let server = spawn(config, gateway);
    let (mut slow, slow_sid) = join(server.addr, "slow");
    let (mut healthy, _) = join(server.addr, "healthy");
    let (mut sender, _) = join(server.addr, "sender");

    // The healthy member reads on its own thread and checks every broadcast.
    let reader = std::thread::spawn(move || {
        let (mut last_seq, mut says) = (0u64, 0u64);
        loop {
            let v = read_json(&mut healthy);
            let seq = v["s"].as_u64().expect("a dispatch");
            assert_eq!(seq, last_seq + 1, "sequence gap at {v}");
            last_seq = seq;
            assert_eq!(v["t"], "SAY");
            let n = v["cnf"]["n"].as_u64().expect("n");
            assert_eq!(n, says + 1, "broadcast {} missing", says + 1);
            says = n;
            if v["cnf"]["last"] == true {
                return says;
            }
        }
    });

    let ws_count = |live: &Live| live.stats.lock().unwrap().map_or(0, |s| s.websockets);
    let filler = "x".repeat(BODY);
    let start = Instant::now();
    let mut said = 0u64;
    while ws_count(&server) == 3 {
        assert!(said < MAX_SAYS, "the slow member was never cut off");
        assert!(start.elapsed() < Duration::from_secs(20), "too slow");
        said += 1;
        let cnf = json!({"n": said, "last": false, "fill": filler});
        send_json(&mut sender, json!({"f": 130, "t": "SAY", "cnf": cnf}));
        if said.is_multiple_of(64) {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    // The room goes on: a few more, then the last one.
    for _ in 0..10 {
        said += 1;
        let last = said.is_multiple_of(10);
        let cnf = json!({"n": said, "last": last, "fill": "y"});
        send_json(&mut sender, json!({"f": 130, "t": "SAY", "cnf": cnf}));
        if last {
            break;
        }
    }
    let says = reader
        .join()
        .expect("the healthy member saw a gap or a stall");
    assert_eq!(says, said);
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "{:?}",
        start.elapsed()
    );

    // The slow member's connection is gone; its session is not. It had read nothing since
    // READY, so a resume from 0 needs every broadcast: more than the replay buffer keeps.
    let _ = slow.expect_closed(Duration::from_secs(10));
    let mut back = Raw::websocket(server.addr);
    assert_eq!(read_json(&mut back)["f"], 100);
    send_json(
        &mut back,
        json!({"f": 110, "cnf": {"token": "slow", "session_id": slow_sid, "s": 0}}),
    );
    let refused = read_json(&mut back);
    assert_eq!(refused, json!({"f": 150, "cnf": {"c": 4006, "d": false}}));
}
