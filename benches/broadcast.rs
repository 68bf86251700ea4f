//! Broadcast to a room: one encode shared by every member versus one encode per member,
//! and the gateway engine's own room dispatch (a per-member sequence prefix before a shared
//! body, each event kept for replay), driven through its `Link` seam.
//! `cargo bench --bench broadcast`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use postern::gateway::dialects::i386::I386;
use postern::gateway::{
    Admit, Gateway, GatewayConfig, GatewayError, Gw, GwCommand, GwConn, GwTimer, Handler, Link,
    SessionId,
};
use postern::http::{parse_request, Parsed, Request, MAX_HEADERS};
use postern::timer::{TimerId, TimerWheel};
use postern::wire::OpCode;
use postern::ws::{BufPool, Outbox, SharedFrame, SharedPayload};
use postern::{CloseCode, ConnId, Millis, SendError};
use serde_json::value::RawValue;
use std::hint::black_box;
use std::io::{self, Write};
use std::net::SocketAddr;

/// A socket that takes everything (so outboxes drain between rounds).
struct Sink;

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        Ok(bufs.iter().map(|b| b.len()).sum())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

const MESSAGE: &str = r#"{"id":123456,"channel":"general","author":"alice","content":"hello everyone, this is a chat message of typical size","timestamp":1795521891891}"#;

/// A room's members: every upgrade opens a session (seed 004's dialect, as the chat
/// example speaks it) that joins `general`; the command dispatches [`MESSAGE`] to the room.
struct Room {
    /// Members reached by the last dispatch.
    reached: usize,
}

impl Handler for Room {
    type Dialect = I386;
    type Session = ();
    type Timer = ();
    type Command = ();

    fn on_upgrade(
        &mut self,
        _: &mut Gw<'_, '_, Self>,
        _: ConnId,
        _: &Request<'_, '_>,
    ) -> Admit<()> {
        Admit::Identified(())
    }

    fn identify(
        &mut self,
        _: &mut Gw<'_, '_, Self>,
        _: ConnId,
        _: &RawValue,
    ) -> Result<(), GatewayError> {
        Ok(())
    }

    fn on_ready(&mut self, gw: &mut Gw<'_, '_, Self>, session: SessionId, _: bool) {
        gw.join(session, "general");
    }

    fn on_event(
        &mut self,
        _: &mut Gw<'_, '_, Self>,
        _: SessionId,
        _: &str,
        _: Option<&RawValue>,
    ) -> Result<(), GatewayError> {
        Ok(())
    }

    fn on_command(&mut self, gw: &mut Gw<'_, '_, Self>, (): ()) {
        self.reached = gw.dispatch_room("general", "MESSAGE_CREATE", black_box(MESSAGE), None);
    }
}

/// One member's connection: the engine's state while live, and its outbox.
struct Member {
    state: Option<GwConn<()>>,
    outbox: Outbox,
}

/// The engine's [`Link`] as the reactor's context is for sends: frames go onto each
/// connection's [`Outbox`] (drained to [`Sink`] after each round); timers into a wheel.
struct Outboxes {
    pool: BufPool,
    members: Vec<Member>,
    timers: TimerWheel<GwTimer<()>>,
}

impl Outboxes {
    /// A live member's outbox, with the pool (the reactor's checks before a send).
    fn outbox(&mut self, id: ConnId) -> Result<(&mut Outbox, &mut BufPool), SendError> {
        let member = self.members.get_mut(id.index()).ok_or(SendError::Unknown)?;
        match member.state {
            Some(_) => Ok((&mut member.outbox, &mut self.pool)),
            None => Err(SendError::Closing),
        }
    }

    fn drain(&mut self) {
        for member in &mut self.members {
            let _ = member.outbox.write_to(&mut Sink, &mut self.pool);
        }
    }
}

impl Link<Room> for Outboxes {
    fn now(&self) -> Millis {
        Millis(1_000)
    }

    fn send_text(&mut self, id: ConnId, text: &str) -> Result<(), SendError> {
        let (outbox, pool) = self.outbox(id)?;
        outbox.push_frame(pool, OpCode::Text, text.as_bytes());
        Ok(())
    }

    fn send_prefixed(
        &mut self,
        id: ConnId,
        prefix: &[u8],
        body: &SharedPayload,
    ) -> Result<(), SendError> {
        let (outbox, pool) = self.outbox(id)?;
        outbox.push_prefixed(pool, OpCode::Text, prefix, body);
        Ok(())
    }

    fn close(&mut self, id: ConnId, _: CloseCode, _: &str) {
        panic!("the benchmark closed {id}");
    }

    fn conn(&mut self, id: ConnId) -> Option<&mut GwConn<()>> {
        self.members.get_mut(id.index())?.state.as_mut()
    }

    fn conn_ref(&self, id: ConnId) -> Option<&GwConn<()>> {
        self.members.get(id.index())?.state.as_ref()
    }

    fn connections(&self) -> Vec<ConnId> {
        let live = self
            .members
            .iter()
            .enumerate()
            .filter(|(_, m)| m.state.is_some());
        live.map(|(i, _)| ConnId::from_u64(i as u64)).collect()
    }

    fn connection_count(&self) -> usize {
        self.members.len()
    }

    fn peer_addr(&self, _: ConnId) -> Option<SocketAddr> {
        "192.0.2.1:40000".parse().ok()
    }

    fn set_timer(&mut self, at: Millis, timer: GwTimer<()>) -> TimerId {
        self.timers.insert(at, timer)
    }

    fn cancel_timer(&mut self, id: TimerId) -> Option<GwTimer<()>> {
        self.timers.cancel(id)
    }

    fn reschedule_timer(&mut self, id: TimerId, at: Millis) -> bool {
        self.timers.reschedule(id, at)
    }

    fn is_shutting_down(&self) -> bool {
        false
    }
}

/// A gateway with `members` sessions in room `general`, each on its own connection.
fn room(members: usize) -> (Gateway<Room>, Outboxes) {
    let config = GatewayConfig {
        max_sessions_per_owner: members,
        ..GatewayConfig::default()
    };
    let mut gateway = Gateway::new(Room { reached: 0 }, I386, config);
    let mut link = Outboxes {
        pool: BufPool::new(16 * 1024, 256),
        members: Vec::with_capacity(members),
        timers: TimerWheel::new(Millis(1_000)),
    };
    let head = b"GET / HTTP/1.1\r\nHost: bench\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let Ok(Parsed::Complete { request, .. }) = parse_request(head, &mut headers) else {
        panic!("the upgrade request does not parse");
    };
    for i in 0..members {
        let id = ConnId::from_u64(i as u64);
        link.members.push(Member {
            state: None,
            outbox: Outbox::default(),
        });
        let state = gateway.handle_upgrade(&mut link, id, &request);
        link.members[i].state = Some(state.unwrap_or_else(|r| panic!("upgrade refused: {r:?}")));
        gateway.handle_open(&mut link, id);
    }
    link.drain(); // HELLO and READY
    gateway.handle_command(&mut link, GwCommand::Handler(()));
    assert_eq!(
        gateway.handler().reached,
        members,
        "every member in the room"
    );
    let mut wire = Vec::new();
    let _ = link.members[0].outbox.write_to(&mut wire, &mut link.pool);
    let event = b"{\"f\":130,\"s\":1,\"t\":\"MESSAGE_CREATE\"";
    assert!(
        wire.windows(event.len()).any(|w| w == event),
        "the sequenced event is sent"
    );
    link.drain();
    (gateway, link)
}

fn drain(outboxes: &mut [Outbox], pool: &mut BufPool) {
    for ob in outboxes.iter_mut() {
        let _ = ob.write_to(&mut Sink, pool);
    }
}

fn broadcast(c: &mut Criterion) {
    let mut g = c.benchmark_group("broadcast");
    g.sample_size(20);
    for members in [1_000usize, 10_000] {
        let mut pool = BufPool::new(16 * 1024, 256);
        let mut outboxes: Vec<Outbox> = (0..members).map(|_| Outbox::default()).collect();
        g.throughput(Throughput::Elements(members as u64));
        g.bench_with_input(
            BenchmarkId::new("encode_once_shared", members),
            &members,
            |b, _| {
                b.iter(|| {
                    let frame = SharedFrame::text(black_box(MESSAGE));
                    for ob in outboxes.iter_mut() {
                        ob.push_shared(&frame);
                    }
                    drain(&mut outboxes, &mut pool);
                })
            },
        );
        g.bench_with_input(BenchmarkId::new("serialize_per_member", members), &members, |b, _| {
            let event: serde_json::Value = serde_json::from_str(MESSAGE).unwrap_or_default();
            let mut seq = 0u64;
            b.iter(|| {
                for ob in outboxes.iter_mut() {
                    // What a server without shared bodies does: serialise each member's
                    // sequenced event on its own.
                    seq += 1;
                    let text = serde_json::json!({"f": 130, "s": seq, "t": "MESSAGE_CREATE", "cnf": &event}).to_string();
                    ob.push_frame(&mut pool, OpCode::Text, text.as_bytes());
                }
                drain(&mut outboxes, &mut pool);
            })
        });
        let (mut gateway, mut link) = room(members);
        g.bench_with_input(
            BenchmarkId::new("gateway_dispatch_room", members),
            &members,
            |b, _| {
                // postern's gateway, the code that ships: `Gw::dispatch_room` encodes the body
                // once, then per member looks the session up, gives it its next sequence
                // number, keeps the event for replay and queues the dialect's prefix
                // (`{"f":130,"s":<seq>`) before the shared body on the member's outbox.
                b.iter(|| {
                    gateway.handle_command(&mut link, GwCommand::Handler(()));
                    link.drain();
                })
            },
        );
    }
    g.finish();
}

criterion_group!(benches, broadcast);
criterion_main!(benches);
