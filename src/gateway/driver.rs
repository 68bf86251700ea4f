//! An in-memory driver for the gateway engine: no sockets, no sleeps (cargo feature
//! `testing`, and the crate's own tests).
//!
//! [`Driver`] holds a [`Gateway`] and a [`Sim`], a [`Link`] with a fake clock that records
//! every frame sent to each connection and keeps the engine's timers in deadline order.
//! A test opens connections, sends client messages, reads what the server sent, and moves
//! the clock: [`Driver::step`] jumps to the next deadline and fires what is due then,
//! [`Driver::advance`] fires every deadline on the way to a time, [`Driver::drive`] steps
//! until no timer is left (in the manner of quinn-proto's test `Pair`).
//!
//! The driver keeps the reactor's contract (see [`Link`]): a closed connection's state is
//! handed back to the engine (`handle_close`) after the call that closed it returns; sends
//! to a closing connection fail; a stalled reader ([`Driver::stall`]) whose unread output
//! passes its limit is closed with 1008, as the reactor's outbox does.
//!
//! ```
//! use postern::gateway::driver::Driver;
//! # use postern::gateway::{dialects::i386::I386, Gateway, GatewayConfig, GatewayError, Gw, Handler, SessionId};
//! # use postern::ConnId;
//! # use serde_json::value::RawValue;
//! # struct Echo;
//! # impl Handler for Echo {
//! #     type Dialect = I386; type Session = (); type Timer = (); type Command = ();
//! #     fn identify(&mut self, _: &mut Gw<'_, '_, Self>, _: ConnId, _: &RawValue) -> Result<(), GatewayError> { Ok(()) }
//! #     fn on_event(&mut self, _: &mut Gw<'_, '_, Self>, _: SessionId, _: &str, _: Option<&RawValue>) -> Result<(), GatewayError> { Ok(()) }
//! # }
//! let mut driver = Driver::new(Gateway::new(Echo, I386, GatewayConfig::default()));
//! let id = driver.connect("/").unwrap();
//! assert_eq!(driver.take_frames(id).len(), 1); // HELLO
//! driver.drive(); // nothing identifies: the identify deadline closes it
//! assert!(driver.close_of(id).is_some());
//! ```

use super::core::GwConn;
use super::engine::{Gateway, GwTimer};
use super::handler::Handler;
use super::link::Link;
use super::remote::GwCommand;
use super::secret::SessionId;
use crate::close::CloseCode;
use crate::conn_id::ConnId;
use crate::error::SendError;
use crate::http::{parse_request, Parsed, Response, MAX_HEADERS};
use crate::time::Millis;
use crate::timer::{TimerId, TimerWheel};
use crate::ws::SharedPayload;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;

/// The address a connection comes from unless the test names one.
pub const DEFAULT_PEER: &str = "192.0.2.1:40000";

/// Steps [`Driver::drive`] takes at most before it gives up (timers that keep re-arming
/// at the same time would otherwise spin, as they would spin a reactor).
pub const MAX_STEPS: usize = 100_000;

/// One connection as the driver sees it.
struct SimConn<S> {
    /// The engine's state while the connection is live; `None` once it started closing.
    state: Option<GwConn<S>>,
    peer: SocketAddr,
    /// Text frames sent and not yet taken by the test.
    frames: Vec<String>,
    /// Bytes in `frames`.
    unread: usize,
    /// The close the server sent, if it closed the connection.
    close: Option<(CloseCode, String)>,
    /// Unread bytes allowed before the connection counts as a slow reader (1008).
    limit: Option<usize>,
}

/// The in-memory [`Link`]: a fake clock, connections with their recorded frames, and
/// timers in deadline order.
pub struct Sim<H: Handler> {
    now: Millis,
    conns: BTreeMap<ConnId, SimConn<H::Session>>,
    /// Connections closed during the current call, for `handle_close` after it.
    closed: VecDeque<(ConnId, GwConn<H::Session>)>,
    /// Timer payloads (the wheel is used as a slab of ids; deadlines are kept below).
    timers: TimerWheel<GwTimer<H::Timer>>,
    /// Pending timers by deadline, then by insertion order.
    order: BTreeMap<(Millis, u64), TimerId>,
    /// Each pending timer's key in `order`.
    keys: HashMap<TimerId, (Millis, u64)>,
    inserted: u64,
    shutting_down: bool,
    next_conn: u64,
}

impl<H: Handler> std::fmt::Debug for Sim<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sim")
            .field("now", &self.now)
            .field("connections", &self.conns.len())
            .field("timers", &self.order.len())
            .finish()
    }
}

impl<H: Handler> std::fmt::Debug for Driver<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("gateway", &self.gateway)
            .field("link", &self.link)
            .finish()
    }
}

impl<H: Handler> Sim<H> {
    fn new(now: Millis) -> Sim<H> {
        Sim {
            now,
            conns: BTreeMap::new(),
            closed: VecDeque::new(),
            timers: TimerWheel::new(now),
            order: BTreeMap::new(),
            keys: HashMap::new(),
            inserted: 0,
            shutting_down: false,
            next_conn: 1,
        }
    }

    /// Files a timer under `at` (a deadline in the past fires at the next step, at the
    /// current time).
    fn file(&mut self, id: TimerId, at: Millis) {
        let at = at.max(self.now);
        self.inserted += 1;
        self.order.insert((at, self.inserted), id);
        self.keys.insert(id, (at, self.inserted));
    }

    fn forget_timer(&mut self, id: TimerId) {
        if let Some((at, n)) = self.keys.remove(&id) {
            self.order.remove(&(at, n));
        }
    }

    /// The earliest pending deadline.
    fn next_deadline(&self) -> Option<Millis> {
        self.order.first_key_value().map(|(&(at, _), _)| at)
    }

    /// Takes the earliest timer due at or before `at`.
    fn pop_due(&mut self, at: Millis) -> Option<(Millis, GwTimer<H::Timer>)> {
        let (&(due, n), &id) = self
            .order
            .first_key_value()
            .filter(|(&(due, _), _)| due <= at)?;
        self.order.remove(&(due, n));
        self.keys.remove(&id);
        self.timers.cancel(id).map(|t| (due, t))
    }

    /// Starts closing `id` as the reactor does: the state goes to the close queue.
    fn close_as(&mut self, id: ConnId, code: CloseCode, reason: &str) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        let Some(state) = conn.state.take() else {
            return;
        };
        conn.close = Some((code, reason.chars().take(123).collect()));
        self.closed.push_back((id, state));
    }

    /// Queues `text` to a live connection, closing a stalled one past its limit.
    fn push(&mut self, id: ConnId, text: String) -> Result<(), SendError> {
        let conn = self.conns.get_mut(&id).ok_or(SendError::Unknown)?;
        if conn.state.is_none() {
            return Err(SendError::Closing);
        }
        if conn
            .limit
            .is_some_and(|limit| !conn.frames.is_empty() && conn.unread + text.len() > limit)
        {
            self.close_as(id, CloseCode::POLICY, "slow reader: outbox overflow");
            return Err(SendError::Overflow);
        }
        conn.unread += text.len();
        conn.frames.push(text);
        Ok(())
    }
}

impl<H: Handler> Link<H> for Sim<H> {
    fn now(&self) -> Millis {
        self.now
    }

    fn send_text(&mut self, id: ConnId, text: &str) -> Result<(), SendError> {
        self.push(id, text.to_string())
    }

    fn send_prefixed(
        &mut self,
        id: ConnId,
        prefix: &[u8],
        body: &SharedPayload,
    ) -> Result<(), SendError> {
        let mut bytes = prefix.to_vec();
        bytes.extend_from_slice(body.bytes());
        let text = String::from_utf8(bytes).map_err(|_| SendError::Closing)?;
        self.push(id, text)
    }

    fn close(&mut self, id: ConnId, code: CloseCode, reason: &str) {
        self.close_as(id, code, reason);
    }

    fn conn(&mut self, id: ConnId) -> Option<&mut GwConn<H::Session>> {
        self.conns.get_mut(&id).and_then(|c| c.state.as_mut())
    }

    fn conn_ref(&self, id: ConnId) -> Option<&GwConn<H::Session>> {
        self.conns.get(&id).and_then(|c| c.state.as_ref())
    }

    fn connections(&self) -> Vec<ConnId> {
        let live = self.conns.iter().filter(|(_, c)| c.state.is_some());
        live.map(|(&id, _)| id).collect()
    }

    fn connection_count(&self) -> usize {
        self.conns.values().filter(|c| c.state.is_some()).count()
    }

    fn peer_addr(&self, id: ConnId) -> Option<SocketAddr> {
        self.conns.get(&id).map(|c| c.peer)
    }

    fn set_timer(&mut self, at: Millis, timer: GwTimer<H::Timer>) -> TimerId {
        let id = self.timers.insert(at, timer);
        self.file(id, at);
        id
    }

    fn cancel_timer(&mut self, id: TimerId) -> Option<GwTimer<H::Timer>> {
        self.forget_timer(id);
        self.timers.cancel(id)
    }

    fn reschedule_timer(&mut self, id: TimerId, at: Millis) -> bool {
        if !self.keys.contains_key(&id) {
            return false;
        }
        self.forget_timer(id);
        self.file(id, at);
        true
    }

    fn is_shutting_down(&self) -> bool {
        self.shutting_down
    }
}

/// A gateway engine driven in memory: the test is the reactor and every client.
pub struct Driver<H: Handler> {
    /// The engine under test.
    pub gateway: Gateway<H>,
    /// Where its frames and timers went.
    pub link: Sim<H>,
}

impl<H: Handler> Driver<H> {
    /// A driver whose clock starts at 1,000 ms with no connection.
    pub fn new(gateway: Gateway<H>) -> Driver<H> {
        Driver {
            gateway,
            link: Sim::new(Millis(1_000)),
        }
    }

    /// The fake clock.
    pub fn now(&self) -> Millis {
        self.link.now
    }

    /// Upgrades a connection from [`DEFAULT_PEER`] with a `GET` of `target` (path and
    /// query), and opens it; or the HTTP response refusing it.
    pub fn connect(&mut self, target: &str) -> Result<ConnId, Response> {
        let peer = DEFAULT_PEER.parse().expect("a socket address");
        self.connect_from(peer, target)
    }

    /// [`connect`](Self::connect) from `peer` (the default owner of its sessions).
    pub fn connect_from(&mut self, peer: SocketAddr, target: &str) -> Result<ConnId, Response> {
        let id = ConnId::from_u64(self.link.next_conn);
        self.link.next_conn += 1;
        let head = format!(
            "GET {target} HTTP/1.1\r\nHost: postern.test\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        );
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let request = match parse_request(head.as_bytes(), &mut headers) {
            Ok(Parsed::Complete { request, .. }) => request,
            _ => return Err(Response::text(400, "bad request target\n")),
        };
        // The connection exists (its peer known) while the handler decides.
        self.link.conns.insert(id, Self::conn(peer, None));
        match self.gateway.handle_upgrade(&mut self.link, id, &request) {
            Ok(state) => {
                if let Some(conn) = self.link.conns.get_mut(&id) {
                    conn.state = Some(state);
                }
                self.gateway.handle_open(&mut self.link, id);
                self.settle();
                Ok(id)
            }
            Err(response) => {
                self.link.conns.remove(&id);
                Err(response)
            }
        }
    }

    fn conn(peer: SocketAddr, state: Option<GwConn<H::Session>>) -> SimConn<H::Session> {
        SimConn {
            state,
            peer,
            frames: Vec::new(),
            unread: 0,
            close: None,
            limit: None,
        }
    }

    /// The client sends a text message.
    pub fn send(&mut self, id: ConnId, text: &str) {
        self.gateway.handle_message(&mut self.link, id, text);
        self.settle();
    }

    /// The client sends a binary message.
    pub fn send_binary(&mut self, id: ConnId) {
        self.gateway.handle_binary(&mut self.link, id);
        self.settle();
    }

    /// The client's TCP connection ends without a closing handshake (or the client closes
    /// it): the engine hears of it at once. No effect on one the server already closed.
    pub fn disconnect(&mut self, id: ConnId) {
        let state = self.link.conns.get_mut(&id).and_then(|c| c.state.take());
        if let Some(state) = state {
            self.link.closed.push_back((id, state));
        }
        self.settle();
    }

    /// A command, as if from another thread.
    pub fn command(&mut self, command: GwCommand<H::Command>) {
        self.gateway.handle_command(&mut self.link, command);
        self.settle();
    }

    /// A graceful shutdown: the engine's last words, then every connection closed (their
    /// sessions end).
    pub fn shutdown(&mut self) {
        self.link.shutting_down = true;
        self.gateway.handle_shutdown(&mut self.link);
        self.settle();
    }

    /// Whether the connection is live (open, and not closed by either side).
    pub fn is_open(&self, id: ConnId) -> bool {
        self.link.conns.get(&id).is_some_and(|c| c.state.is_some())
    }

    /// The frames sent to a connection and not yet taken.
    pub fn frames(&self, id: ConnId) -> &[String] {
        self.link.conns.get(&id).map_or(&[], |c| &c.frames)
    }

    /// Takes (reads) the frames sent to a connection.
    pub fn take_frames(&mut self, id: ConnId) -> Vec<String> {
        match self.link.conns.get_mut(&id) {
            Some(conn) => {
                conn.unread = 0;
                std::mem::take(&mut conn.frames)
            }
            None => Vec::new(),
        }
    }

    /// The session a live connection is attached to.
    pub fn session_of(&self, id: ConnId) -> Option<SessionId> {
        self.link.conn_ref(id).and_then(GwConn::session)
    }

    /// The deadline a live connection's timer is armed for (identify, heartbeat, probe).
    pub fn conn_deadline(&self, id: ConnId) -> Option<Millis> {
        let timer = self.link.conn_ref(id)?.timer?;
        self.link.keys.get(&timer).map(|&(at, _)| at)
    }

    /// The close code and reason the server sent to a connection, if it closed it.
    pub fn close_of(&self, id: ConnId) -> Option<(CloseCode, &str)> {
        let conn = self.link.conns.get(&id)?;
        conn.close
            .as_ref()
            .map(|(code, reason)| (*code, reason.as_str()))
    }

    /// Makes a connection a stalled reader: once its unread frames pass `limit` bytes, the
    /// next send closes it with 1008 (the reactor's outbox overflow).
    pub fn stall(&mut self, id: ConnId, limit: usize) {
        if let Some(conn) = self.link.conns.get_mut(&id) {
            conn.limit = Some(limit);
        }
    }

    /// The earliest pending deadline.
    pub fn next_deadline(&self) -> Option<Millis> {
        self.link.next_deadline()
    }

    /// Jumps the clock to the next deadline and fires every timer due then (including ones
    /// the handling sets for that same time). False when no timer is pending.
    pub fn step(&mut self) -> bool {
        let Some(at) = self.link.next_deadline() else {
            return false;
        };
        self.link.now = self.link.now.max(at);
        self.fire_due();
        true
    }

    /// Steps until no timer is pending; returns the steps taken. Panics after
    /// [`MAX_STEPS`] (timers that never stop re-arming would spin a reactor).
    pub fn drive(&mut self) -> usize {
        for n in 0..MAX_STEPS {
            if !self.step() {
                return n;
            }
        }
        panic!(
            "timers still firing after {MAX_STEPS} steps at {}",
            self.now()
        );
    }

    /// Moves the clock forward by `by`, firing every timer on the way at its own time.
    pub fn advance(&mut self, by: Millis) {
        self.advance_to(self.now() + by);
    }

    /// Moves the clock to `to`, firing every timer due on the way at its own time.
    pub fn advance_to(&mut self, to: Millis) {
        for _ in 0..MAX_STEPS {
            match self.link.next_deadline() {
                Some(at) if at <= to => {
                    self.link.now = self.link.now.max(at);
                    self.fire_due();
                }
                _ => {
                    self.link.now = self.link.now.max(to);
                    return;
                }
            }
        }
        panic!(
            "timers still firing after {MAX_STEPS} steps at {}",
            self.now()
        );
    }

    /// Moves the clock to `to` at once and then fires everything due (a reactor that was
    /// held up: late timers all fire at `to`).
    pub fn jump_to(&mut self, to: Millis) {
        self.link.now = self.link.now.max(to);
        self.fire_due();
    }

    /// Fires every timer due at the current time.
    fn fire_due(&mut self) {
        for _ in 0..MAX_STEPS {
            let Some((_, timer)) = self.link.pop_due(self.link.now) else {
                return;
            };
            self.gateway.handle_timer(&mut self.link, timer);
            self.settle();
        }
        panic!("timers keep firing at {}: a reactor would spin", self.now());
    }

    /// Hands the engine the state of every connection closed by the last call, as the
    /// reactor does once a callback returns (closes caused by those calls included).
    fn settle(&mut self) {
        while let Some((id, state)) = self.link.closed.pop_front() {
            self.gateway.handle_close(&mut self.link, id, state);
        }
    }
}
