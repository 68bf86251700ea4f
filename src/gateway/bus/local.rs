//! The in-process bus: engines on reactor threads of one process, connected by bounded
//! channels.
//!
//! [`LocalBus::mesh`] builds one [`LocalBusEnd`] per engine. Each end has one inbound
//! queue (a `std::sync::mpsc::sync_channel` of `queue` envelopes, shared by every
//! publisher) and a [`WakeSlot`]: the function that wakes its reactor, set once the reactor
//! exists (typically a command through its [`Remote`](crate::Remote), whose waker then
//! wakes the reactor's poll). A publication is encoded once and shared (`Arc<[u8]>`) by its
//! receivers.
//!
//! - **Wake-ups** are coalesced: a receiver is woken when its queue goes from "nothing
//!   announced" to "something", not once per message; it re-arms when
//!   [`poll`](super::Bus::poll) finds the queue empty. A waker that reports failure
//!   (`false`, e.g. the reactor's command queue was full) is retried at the next publication.
//! - **A full queue** refuses the message at once (never blocks, never grows):
//!   [`BusError::Full`] for the publisher, [`BusStats::full`] counted, and the receiver
//!   learns of it from the link's sequence numbers: a [`Received::Gap`] before the next
//!   message from that publisher.
//! - **Malformed** messages (not an [`Envelope`], or claiming the receiver's own origin or
//!   another publisher's) are dropped by the receiver and counted ([`BusStats::malformed`]).

use super::{Bus, BusError, BusStats, Envelope, EnvelopeError, Origin, Received, Target};
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, OnceLock};

/// Wakes a reactor; true when the wake-up was delivered.
type Waker = Box<dyn Fn() -> bool + Send + Sync>;

/// One engine's inbound side, as its publishers see it.
#[derive(Default)]
struct Inbox {
    /// A wake-up was delivered and the receiver has not yet found its queue empty.
    announced: AtomicBool,
    waker: OnceLock<Waker>,
}

impl Inbox {
    /// Wakes the receiver unless a wake-up is already on its way.
    fn announce(&self) {
        if self.announced.swap(true, Ordering::AcqRel) {
            return;
        }
        let delivered = self.waker.get().is_some_and(|wake| wake());
        if !delivered {
            // Not delivered (no waker yet, or it failed): the next publication tries again;
            // the message waits in the queue meanwhile.
            self.announced.store(false, Ordering::Release);
        }
    }
}

/// Where to set the function that wakes an end's reactor: `Send + Sync + Clone`, so the
/// embedder can set it from any thread once the reactor is built.
#[derive(Clone)]
pub struct WakeSlot {
    inbox: Arc<Inbox>,
}

impl fmt::Debug for WakeSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WakeSlot")
            .field("set", &self.inbox.waker.get().is_some())
            .finish()
    }
}

impl WakeSlot {
    /// Sets the waker (`true` when the wake-up was delivered). Only the first call takes
    /// effect; false if one was set already.
    pub fn set(&self, wake: impl Fn() -> bool + Send + Sync + 'static) -> bool {
        let set = self.inbox.waker.set(Box::new(wake)).is_ok();
        // Messages may have arrived before the waker: announce them now.
        self.inbox.announce();
        set
    }
}

/// One message in a queue: the publisher's index, its sequence on this link, the bytes.
struct Delivery {
    from: usize,
    seq: u64,
    bytes: Arc<[u8]>,
}

/// This end's link to one other engine.
struct Outbound {
    queue: SyncSender<Delivery>,
    inbox: Arc<Inbox>,
    /// The sequence number of the next message on this link (a refused one uses its
    /// number too, so the receiver sees the hole).
    next: u64,
}

/// Builds the in-process bus.
#[derive(Debug)]
pub struct LocalBus;

impl LocalBus {
    /// One end per engine, `count` engines (origins node 0, reactors 0..count), each with
    /// an inbound queue of `queue` envelopes (at least 1).
    pub fn mesh(count: u16, queue: usize) -> Vec<LocalBusEnd> {
        let count = usize::from(count);
        let engines: Arc<[Origin]> = (0..count)
            .map(|reactor| Origin {
                node: 0,
                reactor: reactor as u16,
            })
            .collect();
        let inboxes: Vec<Arc<Inbox>> = (0..count).map(|_| Arc::default()).collect();
        let (senders, receivers): (Vec<_>, Vec<_>) =
            (0..count).map(|_| sync_channel(queue.max(1))).unzip();
        receivers
            .into_iter()
            .enumerate()
            .map(|(index, inbound)| LocalBusEnd {
                index,
                engines: Arc::clone(&engines),
                outbound: (0..count)
                    .map(|to| {
                        (to != index).then(|| Outbound {
                            queue: senders[to].clone(),
                            inbox: Arc::clone(&inboxes[to]),
                            next: 0,
                        })
                    })
                    .collect(),
                inbound,
                inbox: Arc::clone(&inboxes[index]),
                expected: vec![0; count],
                stashed: None,
                stats: BusStats::default(),
            })
            .collect()
    }
}

/// One engine's end of the in-process bus (see the module doc). `Send`: built on one
/// thread, moved to its reactor's.
pub struct LocalBusEnd {
    index: usize,
    engines: Arc<[Origin]>,
    outbound: Vec<Option<Outbound>>,
    inbound: Receiver<Delivery>,
    inbox: Arc<Inbox>,
    /// Per publisher, the sequence number expected next.
    expected: Vec<u64>,
    /// A message that arrived after a gap, handed out after the gap.
    stashed: Option<Arc<[u8]>>,
    stats: BusStats,
}

impl fmt::Debug for LocalBusEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalBusEnd")
            .field("origin", &self.origin())
            .field("stats", &self.stats)
            .finish()
    }
}

impl LocalBusEnd {
    /// Where to set this end's reactor waker.
    pub fn wake_slot(&self) -> WakeSlot {
        WakeSlot {
            inbox: Arc::clone(&self.inbox),
        }
    }

    /// Sends `bytes` on the link to engine `to`, unchecked (the checked way is
    /// [`Bus::publish`]).
    fn send(&mut self, to: usize, bytes: &Arc<[u8]>) -> Result<(), BusError> {
        let origin = self.engines[to];
        let Some(link) = self.outbound.get_mut(to).and_then(Option::as_mut) else {
            return Err(BusError::Unknown(origin));
        };
        let seq = link.next;
        link.next += 1;
        let delivery = Delivery {
            from: self.index,
            seq,
            bytes: Arc::clone(bytes),
        };
        match link.queue.try_send(delivery) {
            Ok(()) => {
                self.stats.sent += 1;
                link.inbox.announce();
                Ok(())
            }
            Err(TrySendError::Full(_)) => {
                self.stats.full += 1;
                Err(BusError::Full(origin))
            }
            Err(TrySendError::Disconnected(_)) => Err(BusError::Unknown(origin)),
        }
    }

    /// Publishes bytes without checking them (tests of the receiver's checks).
    #[cfg(test)]
    fn publish_raw(&mut self, to: usize, bytes: &[u8]) -> Result<(), BusError> {
        self.send(to, &Arc::from(bytes))
    }

    /// Takes the next delivery; re-arms the wake-up when the queue is empty.
    fn next_delivery(&mut self) -> Option<Delivery> {
        match self.inbound.try_recv() {
            Ok(delivery) => Some(delivery),
            Err(TryRecvError::Empty | TryRecvError::Disconnected) => {
                self.inbox.announced.store(false, Ordering::Release);
                // A publisher may have queued after the first look and seen the wake-up
                // still announced: look once more.
                self.inbound.try_recv().ok()
            }
        }
    }

    /// Whether `bytes` are an envelope from engine `from` (and not from this one).
    fn is_valid(&self, from: usize, bytes: &[u8]) -> bool {
        Envelope::decode(bytes)
            .is_ok_and(|e| e.origin == self.engines[from] && e.origin != self.engines[self.index])
    }
}

impl Bus for LocalBusEnd {
    fn origin(&self) -> Origin {
        self.engines[self.index]
    }

    fn engines(&self) -> &[Origin] {
        &self.engines
    }

    fn publish(&mut self, to: Target, envelope: &[u8]) -> Result<(), BusError> {
        let decoded = Envelope::decode(envelope).map_err(BusError::Malformed)?;
        if decoded.origin != self.origin() {
            return Err(BusError::Malformed(EnvelopeError::Foreign));
        }
        let bytes: Arc<[u8]> = Arc::from(envelope);
        match to {
            Target::Engine(origin) => {
                let to = self
                    .engines
                    .iter()
                    .position(|&o| o == origin)
                    .ok_or(BusError::Unknown(origin))?;
                self.send(to, &bytes)
            }
            Target::Others => {
                let mut first_error = Ok(());
                let (count, me) = (self.engines.len(), self.index);
                for to in (0..count).filter(|&to| to != me) {
                    if let Err(e) = self.send(to, &bytes) {
                        first_error = first_error.and(Err(e));
                    }
                }
                first_error
            }
        }
    }

    fn poll(&mut self) -> Option<Received> {
        if let Some(bytes) = self.stashed.take() {
            self.stats.received += 1;
            return Some(Received::Message(bytes));
        }
        while let Some(delivery) = self.next_delivery() {
            let Some(expected) = self.expected.get_mut(delivery.from) else {
                self.stats.malformed += 1;
                continue;
            };
            let missed = delivery.seq.saturating_sub(*expected);
            *expected = delivery.seq + 1;
            let valid = self.is_valid(delivery.from, &delivery.bytes);
            if !valid {
                self.stats.malformed += 1;
            }
            if missed > 0 {
                self.stats.lost += missed;
                self.stashed = valid.then_some(delivery.bytes);
                let from = self.engines[delivery.from];
                return Some(Received::Gap { from, missed });
            }
            if valid {
                self.stats.received += 1;
                return Some(Received::Message(delivery.bytes));
            }
        }
        None
    }

    fn stats(&self) -> BusStats {
        self.stats
    }
}

#[cfg(test)]
#[path = "local_tests.rs"]
mod tests;
