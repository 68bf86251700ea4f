//! Two engines on one in-process bus, each driven in memory (no sockets): a room's members
//! on both engines get every dispatch exactly once, in one order, whichever engine the
//! senders are on. The dialect is seed 004's (`I386`).

use super::*;
use crate::gateway::bus::{LocalBus, Origin};
use crate::gateway::dialects::i386::I386;
use crate::gateway::driver::Driver;
use crate::gateway::{GatewayConfig, GatewayError, Gw, GwCommand, Owner};
use crate::time::Millis;
use crate::ConnId;
use serde_json::value::RawValue;

/// Every session joins room "all"; `SAY` goes to the room, `SAYX` to the room but its sender.
struct Chat;

impl Handler for Chat {
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
        let v: serde_json::Value = serde_json::from_str(payload.get()).unwrap_or_default();
        v["token"]
            .as_str()
            .map(str::to_owned)
            .ok_or(GatewayError::AuthenticationFailed)
    }

    fn owner(&self, session: &String) -> Option<Owner> {
        Some(Owner::user(session))
    }

    fn on_ready(&mut self, gw: &mut Gw<'_, '_, Self>, session: SessionId, _: bool) {
        gw.join(session, "all");
    }

    fn on_event(
        &mut self,
        gw: &mut Gw<'_, '_, Self>,
        session: SessionId,
        event: &str,
        data: Option<&RawValue>,
    ) -> Result<(), GatewayError> {
        let data = data.map_or("{}", RawValue::get);
        let except = (event == "SAYX").then_some(session);
        let _ = gw.dispatch_room("all", "SAID", data, except);
        Ok(())
    }
}

/// Two engines on one bus: reactor 0 and reactor 1.
fn pair() -> [Driver<Chat>; 2] {
    let config = GatewayConfig::with_heartbeat(Millis(60_000));
    let mut ends = LocalBus::mesh(2, 1024).into_iter().map(|end| {
        let mut gateway = Gateway::new(Chat, I386, config.clone());
        gateway.attach_bus(Box::new(end));
        Driver::new(gateway)
    });
    [ends.next().unwrap(), ends.next().unwrap()]
}

fn login(d: &mut Driver<Chat>, token: &str) -> ConnId {
    let id = d.connect("/").expect("upgraded");
    d.send(id, &format!(r#"{{"f":110,"cnf":{{"token":"{token}"}}}}"#));
    let _hello_ready = d.take_frames(id);
    id
}

fn say(d: &mut Driver<Chat>, id: ConnId, event: &str, n: u64) {
    d.send(
        id,
        &format!(r#"{{"f":130,"t":"{event}","cnf":{{"n":{n}}}}}"#),
    );
}

/// Lets each engine take what the other published, until nothing is left.
fn pump(drivers: &mut [Driver<Chat>; 2]) {
    for _ in 0..8 {
        for d in drivers.iter_mut() {
            d.command(GwCommand::Bus);
        }
    }
}

/// The `n` of every SAID dispatch a connection got, with its sequence numbers checked.
fn heard(d: &mut Driver<Chat>, id: ConnId) -> Vec<u64> {
    let frames = d.take_frames(id);
    let values: Vec<serde_json::Value> = frames
        .iter()
        .map(|f| serde_json::from_str(f).unwrap())
        .collect();
    let seqs: Vec<u64> = values.iter().map(|v| v["s"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    values
        .iter()
        .map(|v| v["cnf"]["n"].as_u64().unwrap())
        .collect()
}

#[test]
fn every_member_on_both_engines_hears_every_dispatch_once_in_one_order() {
    let mut drivers = pair();
    let home = bus::home("all", drivers[0].gateway.bus().unwrap().engines()).unwrap();
    let home = usize::from(home.reactor);
    let members: Vec<[ConnId; 3]> = (0..2)
        .map(|e| [0, 1, 2].map(|i| login(&mut drivers[e], &format!("u{e}{i}"))))
        .collect();
    // Senders on both engines, interleaved with partial pumping, so that forwards reach
    // the home while it is dispatching its own members' messages.
    for n in 0..40u64 {
        let engine = (n % 2) as usize;
        let sender = members[engine][(n % 3) as usize];
        say(&mut drivers[engine], sender, "SAY", n);
        if n % 5 == 0 {
            drivers[home].command(GwCommand::Bus);
        }
    }
    pump(&mut drivers);
    let all: Vec<Vec<u64>> = (0..2)
        .flat_map(|e| members[e].map(|id| (e, id)))
        .map(|(e, id)| heard(&mut drivers[e], id))
        .collect();
    let reference = &all[0];
    let mut sorted = reference.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        (0..40).collect::<Vec<_>>(),
        "each once: {reference:?}"
    );
    for (i, got) in all.iter().enumerate() {
        assert_eq!(got, reference, "member {i} (engine {})", i / 3);
    }
    let stats = drivers[1 - home].gateway.bus().unwrap().stats();
    assert_eq!((stats.full, stats.lost, stats.malformed), (0, 0, 0));
    assert_eq!(
        stats.sent, 20,
        "the non-home engine forwards its 20, once each"
    );
}

#[test]
fn the_sender_left_out_stays_left_out_on_every_engine() {
    let mut drivers = pair();
    let origin = drivers[0].gateway.bus().unwrap().origin();
    assert_eq!(
        origin,
        Origin {
            node: 0,
            reactor: 0
        }
    );
    let a = [login(&mut drivers[0], "a0"), login(&mut drivers[0], "a1")];
    let b = [login(&mut drivers[1], "b0"), login(&mut drivers[1], "b1")];
    say(&mut drivers[0], a[0], "SAYX", 1);
    say(&mut drivers[1], b[0], "SAYX", 2);
    pump(&mut drivers);
    assert_eq!(heard(&mut drivers[0], a[0]), [2]);
    assert_eq!(heard(&mut drivers[1], b[0]), [1]);
    let mut a1 = heard(&mut drivers[0], a[1]);
    let mut b1 = heard(&mut drivers[1], b[1]);
    assert_eq!(a1, b1, "one order");
    a1.sort_unstable();
    b1.sort_unstable();
    assert_eq!((a1, b1), (vec![1, 2], vec![1, 2]));
}
