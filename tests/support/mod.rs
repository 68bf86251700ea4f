//! Shared helpers for the integration tests: an in-process server on its own thread (or
//! driven in the test thread on a clock the test sets), raw-socket clients that speak HTTP
//! and WebSocket frames byte by byte, and ([`example`]) the example binaries as
//! subprocesses with a tungstenite client's upgrade.
//!
//! Include with `mod support;` from a test file. Every read has a timeout, so no helper can
//! hang a test.
#![allow(dead_code)]

pub mod example;

use postern::{Accept, App, Config, ConnId, Ctx, Message, Millis, Reactor, Remote, Request, Stats};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Default bound on any single blocking read or write in these helpers.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// The RFC 6455 sample key and its accept value.
pub const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
pub const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// Frame opcodes.
pub const CONT: u8 = 0x0;
pub const TEXT: u8 = 0x1;
pub const BINARY: u8 = 0x2;
pub const CLOSE: u8 = 0x8;
pub const PING: u8 = 0x9;
pub const PONG: u8 = 0xA;

/// Echoes every message back to its sender.
#[derive(Debug, Default)]
pub struct EchoApp;

impl App for EchoApp {
    type Conn = ();
    type Timer = ();
    type Command = ();

    fn on_upgrade(&mut self, _: &mut Ctx<'_, Self>, _: ConnId, _: &Request<'_, '_>) -> Accept<()> {
        Accept::new(())
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, Self>, id: ConnId, message: Message<'_>) {
        let _ = ctx.send(id, message);
    }
}

/// A reactor driven in the test thread on a clock the test sets ([`Reactor::turn_at`]):
/// deadlines come when the test moves the clock, never by sleeping. Clients on loopback
/// read with short timeouts between turns.
pub struct Driven<A: App> {
    pub reactor: Reactor<A>,
    /// The reactor's time, as last given to `turn_at`.
    pub now: Millis,
}

/// Real time a [`Driven::pump`] may take before the test fails.
pub const PUMP_LIMIT: Duration = Duration::from_secs(3);
/// The read timeout of a client between two turns of a driven reactor.
pub const PUMP_READ: Duration = Duration::from_millis(5);

impl<A: App> Driven<A> {
    /// Binds `127.0.0.1:0` with `config`; the clock starts at 0.
    pub fn bind(config: Config, app: A) -> Driven<A> {
        let reactor = Reactor::bind("127.0.0.1:0".parse().unwrap(), config, app).expect("bind");
        Driven {
            reactor,
            now: Millis::ZERO,
        }
    }

    /// The listener's address.
    pub fn addr(&self) -> SocketAddr {
        self.reactor.local_addr()
    }

    /// One turn at the current time.
    pub fn turn(&mut self) {
        self.reactor.turn_at(self.now).expect("turn");
    }

    /// Moves the clock to `at` (after a turn at the current time, so that what the peers
    /// sent before is read first) and turns there.
    pub fn at(&mut self, at: Millis) {
        self.turn();
        assert!(at >= self.now, "the clock goes forward only");
        self.now = at;
        self.turn();
    }

    /// Turns (the clock standing still) until `attempt` gives something, for at most
    /// [`PUMP_LIMIT`] of real time.
    pub fn pump<T>(&mut self, mut attempt: impl FnMut(&mut Reactor<A>) -> Option<T>) -> T {
        let end = Instant::now() + PUMP_LIMIT;
        loop {
            self.turn();
            if let Some(done) = attempt(&mut self.reactor) {
                return done;
            }
            assert!(
                Instant::now() < end,
                "nothing happened within {PUMP_LIMIT:?}: {:?}",
                self.reactor.stats()
            );
        }
    }

    /// A client connected and accepted (its read timeout set to [`PUMP_READ`]).
    pub fn connect(&mut self) -> Raw {
        let before = self.reactor.stats().sockets;
        let raw = Raw::connect(self.addr());
        raw.stream.set_read_timeout(Some(PUMP_READ)).unwrap();
        self.pump(|r| (r.stats().sockets > before).then_some(()));
        raw
    }

    /// The response head `raw` gets, turning until it is there.
    pub fn head(&mut self, raw: &mut Raw) -> String {
        self.pump(|_| raw.read_head().ok())
    }

    /// The next frame `raw` gets, turning until it is there.
    pub fn frame(&mut self, raw: &mut Raw) -> Frame {
        self.pump(|_| raw.read_frame().ok())
    }

    /// A client upgraded on `/`.
    pub fn websocket(&mut self) -> Raw {
        let mut raw = self.connect();
        raw.send_upgrade();
        let head = self.head(&mut raw);
        assert_eq!(status(&head), 101, "{head}");
        raw
    }
}

/// What the reactor thread hands back when `run` returns. (`Reactor` itself is not `Send`:
/// its outboxes share frames through `Rc`, so it is built, run and inspected on its thread.)
#[derive(Copy, Clone, Debug)]
pub struct Finished {
    /// `reactor.stats()` after `run` returned.
    pub stats: Stats,
    /// `reactor.is_stopped()` then.
    pub stopped: bool,
}

/// A reactor running on its own thread. Dropping it stops the reactor (so a failing test
/// does not leave it running).
pub struct Server<A: App> {
    pub addr: SocketAddr,
    pub remote: Remote<A::Command>,
    /// With [`spawn_observed`]: the reactor's [`Stats`] after every turn.
    pub live: Option<Arc<Mutex<Stats>>>,
    handle: Option<JoinHandle<Finished>>,
}

/// Binds `127.0.0.1:0` (on the reactor's thread) and runs the reactor there with
/// [`Reactor::run`]. Observe the application through shared state it holds.
pub fn spawn<A: App + Send + 'static>(config: Config, app: A) -> Server<A> {
    start(config, app, false)
}

/// Like [`spawn`], but drives the reactor with `turn` and publishes its [`Stats`] after
/// every turn in [`Server::live`] (`run` offers no way to look while it runs).
pub fn spawn_observed<A: App + Send + 'static>(config: Config, app: A) -> Server<A> {
    start(config, app, true)
}

fn start<A: App + Send + 'static>(config: Config, app: A, observed: bool) -> Server<A> {
    let (tx, rx) = std::sync::mpsc::channel();
    let live = observed.then(|| Arc::new(Mutex::new(EMPTY_STATS)));
    let publish = live.clone();
    let handle = std::thread::Builder::new()
        .name("reactor".into())
        .spawn(move || {
            let mut reactor = Reactor::bind("127.0.0.1:0".parse().unwrap(), config, app)
                .expect("bind 127.0.0.1:0");
            tx.send((reactor.local_addr(), reactor.remote())).unwrap();
            match publish {
                None => reactor.run().expect("reactor run"),
                Some(stats) => {
                    while !reactor.is_stopped() {
                        reactor
                            .turn(Some(Duration::from_millis(10)))
                            .expect("reactor turn");
                        *stats.lock().unwrap() = reactor.stats();
                    }
                }
            }
            Finished {
                stats: reactor.stats(),
                stopped: reactor.is_stopped(),
            }
        })
        .expect("spawn reactor thread");
    let (addr, remote) = rx.recv_timeout(IO_TIMEOUT).expect("reactor bound");
    Server {
        addr,
        remote,
        live,
        handle: Some(handle),
    }
}

const EMPTY_STATS: Stats = Stats {
    sockets: 0,
    websockets: 0,
    timers: 0,
    pooled_bytes: 0,
    queued_bytes: 0,
};

impl<A: App> Server<A> {
    /// The latest published stats (only with [`spawn_observed`]).
    pub fn stats(&self) -> Stats {
        *self
            .live
            .as_ref()
            .expect("server not observed")
            .lock()
            .unwrap()
    }

    /// Polls the published stats until `pred` holds or `timeout` passes; returns the last.
    pub fn wait_stats(&self, timeout: Duration, pred: impl Fn(&Stats) -> bool) -> Stats {
        let deadline = Instant::now() + timeout;
        loop {
            let stats = self.stats();
            if pred(&stats) || Instant::now() >= deadline {
                return stats;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits (at most `timeout`) for the reactor thread to end; what it handed back.
    pub fn join(mut self, timeout: Duration) -> Finished {
        let handle = self.handle.take().expect("joined twice");
        let deadline = Instant::now() + timeout;
        while !handle.is_finished() {
            assert!(
                Instant::now() < deadline,
                "reactor thread still running after {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        match handle.join() {
            Ok(finished) => finished,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }

    /// Graceful shutdown, then [`Server::join`].
    pub fn shutdown(self, timeout: Duration) -> Finished {
        self.remote.shutdown();
        self.join(timeout)
    }

    /// Immediate stop, then [`Server::join`].
    pub fn stop(self) -> Finished {
        let _ = self.remote.stop();
        self.join(IO_TIMEOUT)
    }
}

impl<A: App> Drop for Server<A> {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            let _ = self.remote.stop();
            // Bounded: never hang a test that is already failing.
            let deadline = Instant::now() + IO_TIMEOUT;
            while !handle.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            if handle.is_finished() && !std::thread::panicking() {
                let _ = handle.join();
            }
        }
    }
}

/// A valid upgrade request for `path`, with `extra` header lines (each ending in `\r\n`).
pub fn upgrade_request(path: &str, extra: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
}

/// One server frame as read off the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub fin: bool,
    /// The three RSV bits, in the low bits.
    pub rsv: u8,
    pub opcode: u8,
    pub masked: bool,
    pub payload: Vec<u8>,
}

impl Frame {
    /// The close code of a Close frame (`None` if it has no payload).
    pub fn close_code(&self) -> Option<u16> {
        assert_eq!(self.opcode, CLOSE, "not a close frame: {self:?}");
        (self.payload.len() >= 2).then(|| u16::from_be_bytes([self.payload[0], self.payload[1]]))
    }

    /// The reason of a Close frame.
    pub fn close_reason(&self) -> String {
        assert_eq!(self.opcode, CLOSE, "not a close frame: {self:?}");
        String::from_utf8_lossy(self.payload.get(2..).unwrap_or(&[])).into_owned()
    }
}

/// Builds a frame: `fin`, RSV bits `rsv` (0..=7), `opcode`, `payload`, masked with `mask` if
/// given (clients must mask). The length is encoded in the shortest form.
pub fn frame(fin: bool, rsv: u8, opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 14);
    out.push(u8::from(fin) << 7 | (rsv & 7) << 4 | (opcode & 0xF));
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => out.push(mask_bit | n as u8),
        n if n <= 0xFFFF => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    match mask {
        Some(key) => {
            out.extend_from_slice(&key);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        }
        None => out.extend_from_slice(payload),
    }
    out
}

/// A complete client frame (FIN, no RSV), masked with a fixed key.
pub fn masked(opcode: u8, payload: &[u8]) -> Vec<u8> {
    frame(true, 0, opcode, payload, Some([0x37, 0xFA, 0x21, 0x3D]))
}

/// A masked Close frame with `code` and `reason`.
pub fn close_frame(code: u16, reason: &str) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(reason.as_bytes());
    masked(CLOSE, &payload)
}

/// How a wait for the server to close a socket ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ending {
    /// Orderly EOF, after this many bytes.
    Eof(usize),
    /// Reset (the server closed with data unread, or we wrote after its close).
    Reset,
}

/// A raw TCP client with a read buffer, so that a response head and the frames after it
/// can be read separately.
#[derive(Debug)]
pub struct Raw {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    /// Connects with [`IO_TIMEOUT`] read and write timeouts.
    pub fn connect(addr: SocketAddr) -> Raw {
        let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT).expect("connect");
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_nodelay(true).unwrap();
        Raw {
            stream,
            buf: Vec::new(),
        }
    }

    /// Connects and completes a WebSocket upgrade on `/`, checking the 101 answer.
    pub fn websocket(addr: SocketAddr) -> Raw {
        let mut raw = Raw::connect(addr);
        raw.send_upgrade();
        raw.expect_switch();
        raw
    }

    /// Sends [`upgrade_request`] for `/`.
    pub fn send_upgrade(&mut self) {
        self.send(upgrade_request("/", "").as_bytes());
    }

    /// Reads the response head and checks it is a proper `101` for [`KEY`].
    pub fn expect_switch(&mut self) {
        let head = self.read_head().expect("read 101 head");
        assert_eq!(status(&head), 101, "{head}");
        assert_eq!(
            header(&head, "sec-websocket-accept"),
            Some(ACCEPT),
            "{head}"
        );
    }

    /// Writes all of `bytes`.
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    /// Writes all of `bytes`, reporting failure instead of panicking.
    pub fn try_send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    fn fill(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; 16 * 1024];
        let n = self.stream.read(&mut chunk)?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    fn need(&mut self, len: usize) -> io::Result<()> {
        while self.buf.len() < len {
            if self.fill()? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("EOF with {} of {len} bytes", self.buf.len()),
                ));
            }
        }
        Ok(())
    }

    /// Reads up to and including the blank line ending an HTTP response head.
    pub fn read_head(&mut self) -> io::Result<String> {
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head: Vec<u8> = self.buf.drain(..end + 4).collect();
                return Ok(String::from_utf8_lossy(&head).into_owned());
            }
            if self.fill()? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("EOF inside head: {:?}", String::from_utf8_lossy(&self.buf)),
                ));
            }
        }
    }

    /// Reads exactly `len` bytes (e.g. a response body after [`Raw::read_head`]).
    pub fn read_bytes(&mut self, len: usize) -> io::Result<Vec<u8>> {
        self.need(len)?;
        Ok(self.buf.drain(..len).collect())
    }

    /// Reads one server frame.
    pub fn read_frame(&mut self) -> io::Result<Frame> {
        self.need(2)?;
        let (b0, b1) = (self.buf[0], self.buf[1]);
        let (len, mut at) = match b1 & 0x7F {
            126 => {
                self.need(4)?;
                (u64::from(u16::from_be_bytes([self.buf[2], self.buf[3]])), 4)
            }
            127 => {
                self.need(10)?;
                (u64::from_be_bytes(self.buf[2..10].try_into().unwrap()), 10)
            }
            n => (u64::from(n), 2),
        };
        let masked = b1 & 0x80 != 0;
        let key = if masked {
            self.need(at + 4)?;
            let key: [u8; 4] = self.buf[at..at + 4].try_into().unwrap();
            at += 4;
            Some(key)
        } else {
            None
        };
        let len = usize::try_from(len).expect("frame length");
        self.need(at + len)?;
        let mut payload: Vec<u8> = self.buf.drain(..at + len).skip(at).collect();
        if let Some(key) = key {
            payload
                .iter_mut()
                .enumerate()
                .for_each(|(i, b)| *b ^= key[i % 4]);
        }
        Ok(Frame {
            fin: b0 & 0x80 != 0,
            rsv: (b0 >> 4) & 7,
            opcode: b0 & 0xF,
            masked,
            payload,
        })
    }

    /// Reads one frame and checks it is an unmasked Close with `code`; returns it.
    pub fn expect_close(&mut self, code: u16) -> Frame {
        let frame = self.read_frame().expect("read close frame");
        assert_eq!(frame.opcode, CLOSE, "expected close {code}, got {frame:?}");
        assert!(!frame.masked && frame.fin, "{frame:?}");
        assert_eq!(
            frame.close_code(),
            Some(code),
            "reason {:?}",
            frame.close_reason()
        );
        frame
    }

    /// Checks that nothing arrives within `wait` (no byte, no EOF, no reset).
    pub fn expect_nothing(&mut self, wait: Duration) {
        assert!(
            self.buf.is_empty(),
            "unread: {:?}",
            String::from_utf8_lossy(&self.buf)
        );
        self.stream.set_read_timeout(Some(wait)).unwrap();
        let mut byte = [0u8; 1];
        match self.stream.read(&mut byte) {
            Ok(0) => panic!("closed"),
            Ok(_) => panic!("got {:?}", byte[0] as char),
            Err(e) if is_timeout(&e) => {}
            Err(e) => panic!("read: {e}"),
        }
    }

    /// Reads until EOF or reset, at most `timeout`; panics on timeout. Data read is
    /// discarded (its length is reported).
    pub fn expect_closed(&mut self, timeout: Duration) -> Ending {
        let deadline = Instant::now() + timeout;
        let mut total = std::mem::take(&mut self.buf).len();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "socket still open after {timeout:?}");
            self.stream.set_read_timeout(Some(left)).unwrap();
            let mut chunk = [0u8; 16 * 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Ending::Eof(total),
                Ok(n) => total += n,
                Err(e) if is_reset(&e) => return Ending::Reset,
                Err(e) if is_timeout(&e) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => panic!("read: {e}"),
            }
        }
    }

    /// Reads until EOF (at most `timeout`); panics on a reset or timeout. Returns the bytes.
    pub fn read_to_eof(&mut self, timeout: Duration) -> Vec<u8> {
        let deadline = Instant::now() + timeout;
        let mut out = std::mem::take(&mut self.buf);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "no EOF after {timeout:?}");
            self.stream.set_read_timeout(Some(left)).unwrap();
            let mut chunk = [0u8; 16 * 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) => return out,
                Ok(n) => out.extend_from_slice(&chunk[..n]),
                Err(e) if is_timeout(&e) || e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => panic!("read before EOF: {e}"),
            }
        }
    }
}

pub fn is_reset(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
    )
}

pub fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// The status code of a response head.
pub fn status(head: &str) -> u16 {
    head.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"))
}

/// The first value of header `name` (case-insensitive) in a response head.
pub fn header<'h>(head: &'h str, name: &str) -> Option<&'h str> {
    head.split("\r\n").skip(1).find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Sends a raw HTTP request and returns the response head (the socket is left open).
pub fn http_exchange(addr: SocketAddr, request: &[u8]) -> (Raw, String) {
    let mut raw = Raw::connect(addr);
    raw.send(request);
    let head = raw.read_head().expect("response head");
    (raw, head)
}

/// A `tungstenite` client connected to `ws://addr/`, with [`IO_TIMEOUT`] on its socket.
pub fn ws_client(addr: SocketAddr) -> tungstenite::WebSocket<TcpStream> {
    let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT).expect("connect");
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_nodelay(true).unwrap();
    let (ws, response) =
        tungstenite::client::client(format!("ws://{addr}/"), stream).expect("websocket handshake");
    assert_eq!(response.status(), 101);
    ws
}
