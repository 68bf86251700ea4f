//! Accepting connections: the per-turn batch, the per-address verdict at accept, and
//! shedding the oldest sockets not yet upgraded when descriptors run low.
//!
//! A socket refused at accept (over a per-address limit, over `max_pending_handshakes`, or
//! with nothing left to shed) gets its answer written straight away and is closed: it never
//! holds a slot, so a flood of silent sockets costs descriptors only for an instant.
//! Established (upgraded) connections are never shed.

use super::address::AddressVerdict;
use super::app::{App, Closed};
use super::entry::{Entry, Phase};
use super::token::{next_generation, ConnId};
use super::{Reactor, ACCEPT_BACKOFF_MAX, ACCEPT_BACKOFF_MIN};
use mio::net::TcpStream;
use mio::Interest;
use std::io::{self, Read, Write};
use std::net::SocketAddr;

/// Sent, without a slot, to a connection accepted beyond `max_pending_handshakes`, or when
/// descriptors are low and nothing can be shed; also to a shed socket.
const BUSY_RESPONSE: &[u8] =
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
/// Sent, without a slot, to a connection over a per-address limit.
const TOO_MANY_RESPONSE: &[u8] = b"HTTP/1.1 429 Too Many Requests\r\nretry-after: 1\r\n\
content-type: text/plain; charset=utf-8\r\ncontent-length: 39\r\nconnection: close\r\n\r\n\
too many connections from your address\n";

/// Writes a refusal to a socket that has no slot, reads (and drops) what the peer already
/// sent, so that closing it sends a FIN rather than a reset that could destroy the answer,
/// then closes it.
fn refuse_unslotted(mut stream: TcpStream, answer: &[u8], scratch: &mut [u8]) {
    let _ = stream.write(answer);
    let _ = stream.read(scratch);
    let _ = stream.shutdown(std::net::Shutdown::Write);
}

/// The soft limit on open descriptors (`Max open files` in `/proc/self/limits`), if known.
fn descriptor_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Sockets the reactor may hold before shedding: the descriptor limit, less those open now
/// (the poll, the listener, the waker, the host's files) and the configured reserve.
pub(super) fn socket_budget(reserve: usize) -> Option<usize> {
    let limit = descriptor_limit()?;
    let open = std::fs::read_dir("/proc/self/fd").ok()?.count();
    Some(limit.saturating_sub(open).saturating_sub(reserve))
}

impl<A: App> Reactor<A> {
    /// Accepts up to `accepts_per_turn` connections.
    pub(super) fn accept(&mut self) {
        for _ in 0..self.core.config.accepts_per_turn {
            let Some(listener) = &self.listener else {
                return;
            };
            match listener.accept() {
                Ok((stream, peer)) => {
                    self.accept_backoff = ACCEPT_BACKOFF_MIN;
                    self.admit(stream, peer);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.accept_pending = false;
                    return;
                }
                Err(e)
                    if e.kind() == io::ErrorKind::Interrupted
                        || e.kind() == io::ErrorKind::ConnectionAborted => {}
                Err(e) => {
                    // EMFILE, ENFILE, ENOBUFS, ENOMEM...: the pending connection stays in
                    // the backlog. Free a descriptor by shedding the oldest socket not yet
                    // upgraded, and try again; with nothing to shed, pause accepting (no
                    // busy loop) and retry after a back-off, or as soon as one of our own
                    // connections frees a descriptor.
                    if self.shed_oldest() {
                        log::warn!("accept failed ({e}); shed the oldest pending handshake");
                        continue;
                    }
                    log::warn!(
                        "accept failed ({e}); pausing accepts for {}",
                        self.accept_backoff
                    );
                    self.core.accept_paused = true;
                    let at = self.core.now + self.accept_backoff;
                    self.core.wheel.insert(at, super::core::TimerTarget::Accept);
                    self.accept_backoff =
                        (self.accept_backoff + self.accept_backoff).min(ACCEPT_BACKOFF_MAX);
                    return;
                }
            }
        }
        // Budget spent: more may be waiting; the next turn continues without sleeping.
        self.accept_pending = true;
    }

    /// Gives an accepted socket a slot, or refuses it at once.
    fn admit(&mut self, mut stream: TcpStream, peer: SocketAddr) {
        let handshaking = self.core.conns.len() - self.core.ws_count;
        if handshaking >= self.core.config.max_pending_handshakes || self.core.shutting_down {
            self.refuse_now(stream, BUSY_RESPONSE);
            return;
        }
        let verdict = self.core.admit_address(peer);
        if verdict == AddressVerdict::Refused {
            self.refuse_now(stream, TOO_MANY_RESPONSE);
            return;
        }
        if self
            .core
            .socket_budget
            .is_some_and(|budget| self.core.conns.len() >= budget)
            && !self.shed_oldest()
        {
            self.forget(peer, verdict);
            self.refuse_now(stream, BUSY_RESPONSE);
            return;
        }
        if !cfg!(target_os = "linux") {
            let _ = stream.set_nodelay(true);
        }
        let generation = next_generation(&mut self.core.generation);
        let slot = self.core.conns.vacant_entry();
        if slot.key() > u32::MAX as usize {
            self.forget(peer, verdict);
            return;
        }
        let id = ConnId::new(slot.key(), generation);
        if self
            .core
            .registry
            .register(&mut stream, id.token(), Interest::READABLE)
            .is_err()
        {
            self.forget(peer, verdict);
            return;
        }
        let counted = verdict == AddressVerdict::Counted;
        slot.insert(Entry::accepted(
            stream,
            peer,
            generation,
            self.core.now,
            counted,
        ));
        self.remember_unupgraded(id);
        let at = self.core.now + self.core.config.handshake_timeout;
        self.core.arm(id, at);
    }

    fn forget(&mut self, peer: SocketAddr, verdict: AddressVerdict) {
        if verdict == AddressVerdict::Counted {
            self.core.forget_address(peer);
        }
    }

    fn refuse_now(&mut self, stream: TcpStream, answer: &[u8]) {
        let mut scratch = std::mem::take(&mut self.core.read_buf);
        let len = scratch.len().min(self.core.config.max_request_head);
        refuse_unslotted(stream, answer, &mut scratch[..len]);
        self.core.read_buf = scratch;
    }

    /// Queues a new socket as a candidate for shedding, compacting the queue when most of
    /// it is stale (so it stays within twice the sockets not upgraded, plus a constant).
    fn remember_unupgraded(&mut self, id: ConnId) {
        let live = self.core.conns.len() - self.core.ws_count;
        if self.core.unupgraded.len() >= 2 * live + 64 {
            let conns = &self.core.conns;
            self.core.unupgraded.retain(|&old| {
                conns
                    .get(old.index())
                    .is_some_and(|e| e.generation == old.generation() && !e.phase.is_upgraded())
            });
        }
        self.core.unupgraded.push_back(id);
    }

    /// Closes the oldest socket not upgraded (in its HTTP phase, or draining a refusal),
    /// answering `503` first where it has had no answer. False when there is none.
    pub(super) fn shed_oldest(&mut self) -> bool {
        while let Some(id) = self.core.unupgraded.pop_front() {
            let Some(entry) = self.core.get_mut(id) else {
                continue;
            };
            if entry.phase.is_upgraded() {
                continue;
            }
            if matches!(entry.phase, Phase::Http(_)) && entry.outbox.is_empty() {
                let _ = entry.stream.write(BUSY_RESPONSE);
            }
            log::debug!("{id}: shed (descriptors low)");
            self.core.remove(id, Closed::Dropped);
            self.deliver_closed();
            return true;
        }
        false
    }
}
