//! A gateway on two reactors whose engines share the in-process bus (issue 14, first
//! step of part 2): `Reactors` runs one `Gateway` per reactor, each engine attached to its
//! end of a `LocalBus`, each end's waker a `GwCommand::Bus` through its reactor's `Remote`.
//! 200 clients over real sockets land on both reactors (asserted from each reactor's
//! `Stats`); messages sent from both reactors reach every member exactly once, in one
//! order. The dialect is seed 004's (`I386`). Every wait is bounded.

mod support;

use postern::gateway::bus::{LocalBus, LocalBusEnd};
use postern::gateway::dialects::i386::I386;
use postern::gateway::{Gateway, GatewayConfig, GatewayError, Gw, GwCommand, Handler, SessionId};
use postern::{Config, ConnId, Millis, Reactors};
use serde_json::{value::RawValue, Value};
use std::sync::Mutex;
use std::time::Duration;
use support::*;

const LONG: Duration = Duration::from_secs(10);
const CLIENTS: usize = 200;

/// Every session joins room "all"; any event is dispatched to the room as `SAID`.
struct Room;

impl Handler for Room {
    type Dialect = I386;
    type Session = String;
    type Timer = ();
    type Command = ();

    fn identify(
        &mut self,
        _: &mut Gw<'_, '_, Self>,
        _: ConnId,
        payload: &RawValue,
    ) -> Result<String, GatewayError> {
        let v: Value = serde_json::from_str(payload.get()).unwrap_or_default();
        v["token"]
            .as_str()
            .map(str::to_owned)
            .ok_or(GatewayError::AuthenticationFailed)
    }

    fn on_ready(&mut self, gw: &mut Gw<'_, '_, Self>, session: SessionId, _: bool) {
        gw.join(session, "all");
    }

    fn on_event(
        &mut self,
        gw: &mut Gw<'_, '_, Self>,
        _: SessionId,
        _: &str,
        data: Option<&RawValue>,
    ) -> Result<(), GatewayError> {
        let _ = gw.dispatch_room("all", "SAID", data.map_or("{}", RawValue::get), None);
        Ok(())
    }
}

/// Two reactors, their engines on one bus.
fn spawn() -> Reactors<GwCommand<()>> {
    let ends = LocalBus::mesh(2, 4096);
    let slots: Vec<_> = ends.iter().map(LocalBusEnd::wake_slot).collect();
    let ends: Mutex<Vec<Option<LocalBusEnd>>> = Mutex::new(ends.into_iter().map(Some).collect());
    let mut gateway_config = GatewayConfig::with_heartbeat(Millis(60_000));
    gateway_config.max_sessions_per_owner = CLIENTS;
    let reactors = Reactors::spawn(
        "127.0.0.1:0".parse().unwrap(),
        Config::default(),
        2,
        move |index| {
            let end = ends.lock().unwrap()[index].take().expect("one end each");
            let mut gateway = Gateway::new(Room, I386, gateway_config.clone());
            gateway.attach_bus(Box::new(end));
            gateway
        },
    )
    .expect("spawn");
    let handle = reactors.handle();
    for (index, slot) in slots.into_iter().enumerate() {
        let remote = handle.remote(index).unwrap().clone();
        slot.set(move || remote.command(GwCommand::Bus).is_ok());
    }
    reactors
}

/// Reads frames until a dispatch (`f` 130) arrives; returns its `n`.
fn next_said(raw: &mut Raw) -> u64 {
    loop {
        let frame = raw.read_frame().expect("a dispatch");
        let v: Value = serde_json::from_slice(&frame.payload).unwrap();
        if v["f"] == 130 {
            return v["cnf"]["n"].as_u64().unwrap();
        }
    }
}

#[test]
fn members_on_both_reactors_hear_every_message_once_in_one_order() {
    let reactors = spawn();
    let mut clients: Vec<Raw> = (0..CLIENTS)
        .map(|i| {
            let mut raw = Raw::websocket(reactors.local_addr());
            let identify = format!(r#"{{"f":110,"cnf":{{"token":"u{i}"}}}}"#);
            raw.send(&masked(TEXT, identify.as_bytes()));
            loop {
                let frame = raw.read_frame().expect("hello, then ready");
                let v: Value = serde_json::from_slice(&frame.payload).unwrap();
                if v["f"] == 140 {
                    break raw;
                }
            }
        })
        .collect();
    let handle = reactors.handle();
    let stats = handle.all_stats(LONG);
    let websockets: Vec<usize> = stats.iter().map(|s| s.unwrap().websockets).collect();
    assert!(websockets.iter().all(|&n| n > 0), "{websockets:?}");
    assert_eq!(websockets.iter().sum::<usize>(), CLIENTS);
    // 20 senders spread over the clients (so over both reactors), one message each.
    const MESSAGES: u64 = 20;
    for n in 0..MESSAGES {
        let sender = (n as usize * 7) % CLIENTS;
        let event = format!(r#"{{"f":130,"t":"SAY","cnf":{{"n":{n}}}}}"#);
        clients[sender].send(&masked(TEXT, event.as_bytes()));
    }
    let orders: Vec<Vec<u64>> = clients
        .iter_mut()
        .map(|raw| (0..MESSAGES).map(|_| next_said(raw)).collect())
        .collect();
    let mut sorted = orders[0].clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..MESSAGES).collect::<Vec<_>>(), "each once");
    for (i, order) in orders.iter().enumerate() {
        assert_eq!(order, &orders[0], "client {i}");
    }
    // Nothing more was queued behind them (no duplicate): the next dispatch is a marker.
    let marker = br#"{"f":130,"t":"SAY","cnf":{"n":999}}"#;
    clients[1].send(&masked(TEXT, marker));
    for (i, raw) in clients.iter_mut().enumerate() {
        assert_eq!(next_said(raw), 999, "client {i}");
    }
    drop(clients);
    handle.shutdown();
    reactors.join().expect("clean end");
}
