//! Engines that act as one gateway: room dispatches across a [`Bus`] (first step).
//!
//! Without a bus (the default) nothing here runs and the engine is exactly the lone engine.
//! With one ([`Gateway::attach_bus`]), a room dispatch follows the room's one order
//! (`bus::room`): on the room's home engine it is delivered to the local members and
//! published once to every other engine; on another engine it is forwarded to the home and
//! delivered nowhere yet. Each engine delivers a received dispatch to its own members,
//! encoding it once for all of them. What arrives is taken by
//! [`Gateway::handle_bus`] (the reactor adapter calls it on [`GwCommand::Bus`], which the
//! bus's waker queues).
//!
//! Not yet (the next steps): the home's room sequence numbers, fan-out only to the engines
//! that hold members, presence and bans across engines, resume across engines, and the
//! answer to a [`Received::Gap`] (evict the members of the rooms involved with the
//! protocol's resumable code); a gap is logged and counted by the bus today.
//!
//! [`GwCommand::Bus`]: super::GwCommand::Bus

use super::bus::{self, Bus, Envelope, Kind, Received, RoomDispatch, Target};
use super::core::GwCore;
use super::engine::Gateway;
use super::handler::Handler;
use super::link::Link;
use super::secret::SessionId;

impl<H: Handler> Gateway<H> {
    /// Joins this engine to `bus`: from now on its room dispatches follow the rooms' homes
    /// across every engine on the bus. Call before serving.
    pub fn attach_bus(&mut self, bus: Box<dyn Bus>) {
        self.core.bus = Some(bus);
    }

    /// The bus this engine is on, if any (its counters, its origin).
    pub fn bus(&self) -> Option<&dyn Bus> {
        self.core.bus.as_deref()
    }

    /// Takes everything other engines published to this one: room dispatches delivered to
    /// this engine's members (and, on a room's home, forwards sequenced and fanned out).
    pub fn handle_bus(&mut self, link: &mut dyn Link<H>) {
        loop {
            let Some(received) = self.core.bus.as_mut().and_then(|bus| bus.poll()) else {
                return;
            };
            match received {
                Received::Message(bytes) => self.core.bus_message(link, &bytes),
                Received::Gap { from, missed } => {
                    log::warn!("bus: {missed} messages from reactor {} lost", from.reactor);
                }
            }
        }
    }
}

impl<H: Handler> GwCore<H> {
    /// A room dispatch on an engine with a bus: delivered here if this is the room's home
    /// (and published to the others), else forwarded to the home. Returns the members of
    /// this engine reached now; `None` without a bus (the caller then delivers locally).
    pub(crate) fn dispatch_room_on_bus(
        &mut self,
        link: &mut dyn Link<H>,
        room: &str,
        dispatch: RoomDispatch<'_>,
    ) -> Option<usize> {
        let bus = self.bus.as_ref()?;
        let origin = bus.origin();
        let home = bus::home(room, bus.engines())?;
        if home == origin {
            self.publish_room(Kind::Dispatch, Target::Others, room, dispatch);
            return Some(self.deliver_room(link, room, dispatch));
        }
        self.publish_room(Kind::Forward, Target::Engine(home), room, dispatch);
        Some(0)
    }

    /// Encodes and publishes a room envelope; a failure is the bus's to count and report.
    fn publish_room(&mut self, kind: Kind, to: Target, room: &str, dispatch: RoomDispatch<'_>) {
        let Some(bus) = self.bus.as_mut() else {
            return;
        };
        let mut body = Vec::with_capacity(32 + dispatch.event.len() + dispatch.data.len());
        if dispatch.encode(&mut body).is_none() {
            log::warn!("bus: event name too long for a room dispatch; not published");
            return;
        }
        let envelope = Envelope {
            kind,
            origin: bus.origin(),
            topic: room,
            body: &body,
        };
        let published = envelope
            .to_vec()
            .map_err(bus::BusError::Malformed)
            .and_then(|bytes| bus.publish(to, &bytes));
        if let Err(e) = published {
            log::warn!("bus: room dispatch not published: {e}");
        }
    }

    /// Delivers a room dispatch to this engine's members of `room`, encoded once.
    fn deliver_room(
        &mut self,
        link: &mut dyn Link<H>,
        room: &str,
        dispatch: RoomDispatch<'_>,
    ) -> usize {
        let except = dispatch.except.map(SessionId::new);
        let members = self.registry.members_vec(room);
        let tail = self.encode(dispatch.event, dispatch.data);
        let mut n = 0;
        for sid in members.into_iter().filter(|&s| Some(s) != except) {
            self.deliver(link, sid, &tail);
            n += 1;
        }
        n
    }

    /// One message from the bus (a checked envelope: the bus refuses anything else).
    fn bus_message(&mut self, link: &mut dyn Link<H>, bytes: &[u8]) {
        let Ok(envelope) = Envelope::decode(bytes) else {
            return;
        };
        let Ok(dispatch) = RoomDispatch::decode(envelope.body) else {
            log::warn!(
                "bus: malformed room dispatch from reactor {}",
                envelope.origin.reactor
            );
            return;
        };
        let room = envelope.topic;
        match envelope.kind {
            Kind::Forward => {
                // Only the home sequences a room; a forward elsewhere is a stale or foreign
                // view of the bus: dropped.
                let is_home = self
                    .bus
                    .as_ref()
                    .is_some_and(|bus| bus::home(room, bus.engines()) == Some(bus.origin()));
                if !is_home {
                    log::warn!("bus: forward for room not homed here; dropped");
                    return;
                }
                self.publish_room(Kind::Dispatch, Target::Others, room, dispatch);
                self.deliver_room(link, room, dispatch);
            }
            Kind::Dispatch => {
                self.deliver_room(link, room, dispatch);
            }
            _ => log::debug!("bus: {:?} not handled yet", envelope.kind),
        }
    }
}

#[cfg(test)]
#[path = "cluster_tests.rs"]
mod tests;
