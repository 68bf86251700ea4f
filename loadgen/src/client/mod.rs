//! The load generator's reactor: one `mio::Poll` driving many client connections.
//!
//! Benchmarks own the outer loop: they open connections with [`Client::connect`],
//! call [`Client::poll`] with a [`Handler`] that reacts to upgrades and messages, and
//! decide when to stop. Handlers answer through the connection's [`Writer`]; the
//! reactor flushes after every callback batch, answers pings and close frames itself.

mod conn;
mod recv_buf;
mod socket;
mod writer;

use std::io;
use std::net::IpAddr;
use std::str::FromStr;
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token};
use slab::Slab;

use self::conn::{Conn, Step};
pub use self::writer::Writer;
use crate::rng::Rng;
use crate::url::WsUrl;

/// A complete message from the server (fragments already joined).
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    /// Binary (true) or text (false).
    pub binary: bool,
    /// Payload, valid for the duration of the callback.
    pub data: &'a [u8],
}

/// How to end a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseMode {
    /// Close the socket (FIN) without a close frame.
    Drop,
    /// Close the socket with `SO_LINGER 0` (RST, no TIME_WAIT), no close frame.
    Reset,
    /// Send a close frame (1000) and close the socket at once.
    Frame,
    /// Send a close frame and wait for the server's close frame or EOF.
    Wait,
}

impl CloseMode {
    /// Name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Drop => "drop",
            Self::Reset => "rst",
            Self::Frame => "frame",
            Self::Wait => "wait",
        }
    }
}

impl FromStr for CloseMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "drop" => Ok(Self::Drop),
            "rst" => Ok(Self::Reset),
            "frame" => Ok(Self::Frame),
            "wait" => Ok(Self::Wait),
            _ => Err("expected drop, rst, frame or wait".into()),
        }
    }
}

/// Why a connection ended.
#[derive(Debug)]
pub enum Closed {
    /// We closed it (after [`Action::Close`] or [`Client::close`]).
    Local,
    /// The server sent a close frame (with this code).
    Remote(Option<u16>),
    /// The server closed TCP without a close frame.
    Eof,
    /// Connect, I/O, handshake or protocol error.
    Error(io::Error),
}

/// What a handler wants done with the connection after a callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Keep it open.
    Keep,
    /// Close it this way.
    Close(CloseMode),
}

/// Benchmark logic reacting to connection events.
pub trait Handler {
    /// The upgrade completed (`101` with a valid accept key).
    fn on_open(&mut self, _id: usize, _out: &mut Writer, _now: Instant) -> Action {
        Action::Keep
    }
    /// A text or binary message arrived on an open connection.
    fn on_message(&mut self, id: usize, msg: Message<'_>, out: &mut Writer, now: Instant)
        -> Action;
    /// The connection is gone; called exactly once per connection (except on drop of
    /// the whole client). Its id may be reused afterwards.
    fn on_closed(&mut self, id: usize, why: Closed, now: Instant);
}

/// Many client connections to one URL, on one thread.
pub struct Client {
    poll: Poll,
    events: Events,
    conns: Slab<Conn>,
    url: WsUrl,
    sources: Vec<IpAddr>,
    next_source: usize,
    rng: Rng,
}

impl Client {
    /// A client for `url`, binding to `sources` round-robin (none: the kernel picks).
    pub fn new(url: WsUrl, sources: Vec<IpAddr>) -> io::Result<Self> {
        Ok(Self {
            poll: Poll::new()?,
            events: Events::with_capacity(1024),
            conns: Slab::new(),
            url,
            sources,
            next_source: 0,
            rng: Rng::from_time(),
        })
    }

    /// Starts a connection (non-blocking connect, upgrade request queued) and returns
    /// its id. Errors here are immediate ones (no ports, no file descriptors, ...).
    pub fn connect(&mut self) -> io::Result<usize> {
        let mut stream = socket::connect(self.url.addr, &self.sources, &mut self.next_source)?;
        let entry = self.conns.vacant_entry();
        let id = entry.key();
        self.poll.registry().register(
            &mut stream,
            Token(id),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        let rng = self.rng.fork();
        entry.insert(Conn::new(stream, &self.url.host, &self.url.path, rng));
        Ok(id)
    }

    /// Number of live connections (connecting, open or closing).
    pub fn len(&self) -> usize {
        self.conns.len()
    }

    /// True if no connection is live.
    pub fn is_empty(&self) -> bool {
        self.conns.is_empty()
    }

    /// Waits up to `timeout` for events and dispatches them to `h`.
    pub fn poll<H: Handler>(&mut self, h: &mut H, timeout: Duration) -> io::Result<()> {
        match self.poll.poll(&mut self.events, Some(timeout)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(e),
        }
        for event in self.events.iter() {
            let id = event.token().0;
            let Some(conn) = self.conns.get_mut(id) else {
                continue; // removed earlier in this batch
            };
            let drain = event.is_read_closed() || event.is_error();
            let readable = event.is_readable() || drain;
            let now = Instant::now();
            if let Step::Remove(why, reset) = conn.drive(id, readable, drain, h, now) {
                remove(&mut self.conns, id, reset);
                h.on_closed(id, why, now);
            }
        }
        Ok(())
    }

    /// Queues a text message on `id` and flushes; returns false if `id` is not open
    /// (a write error closes the connection through `h`).
    pub fn send_text<H: Handler>(&mut self, id: usize, text: &[u8], h: &mut H) -> bool {
        let Some(conn) = self.conns.get_mut(id).filter(|c| c.is_open()) else {
            return false;
        };
        conn.writer().text(text);
        if let Step::Remove(why, reset) = conn.flush_step() {
            remove(&mut self.conns, id, reset);
            h.on_closed(id, why, Instant::now());
            return false;
        }
        true
    }

    /// Queues several text messages on `id` and flushes them with one write (so the
    /// server reads them together); returns false if `id` is not open.
    pub fn send_texts<H: Handler>(&mut self, id: usize, texts: &[Vec<u8>], h: &mut H) -> bool {
        let Some(conn) = self.conns.get_mut(id).filter(|c| c.is_open()) else {
            return false;
        };
        for text in texts {
            conn.writer().text(text);
        }
        if let Step::Remove(why, reset) = conn.flush_step() {
            remove(&mut self.conns, id, reset);
            h.on_closed(id, why, Instant::now());
            return false;
        }
        true
    }

    /// Closes `id` per `mode`; `h.on_closed` runs now, or later for [`CloseMode::Wait`].
    pub fn close<H: Handler>(&mut self, id: usize, mode: CloseMode, h: &mut H) {
        let Some(conn) = self.conns.get_mut(id) else {
            return;
        };
        let step = conn.begin_close(mode).unwrap_or_else(|| conn.flush_step());
        if let Step::Remove(why, reset) = step {
            remove(&mut self.conns, id, reset);
            h.on_closed(id, why, Instant::now());
        }
    }

    /// Drops every connection at once (FIN), without callbacks.
    pub fn close_all(&mut self) {
        self.conns.clear();
    }
}

/// Removes a connection from the slab and closes its socket (dropping it also takes
/// it out of the epoll set).
fn remove(conns: &mut Slab<Conn>, id: usize, reset: bool) {
    let conn = conns.remove(id);
    if reset {
        let _ = socket2::SockRef::from(&conn.stream).set_linger(Some(Duration::ZERO));
    }
}
