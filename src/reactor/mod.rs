//! The reactor: the only code that touches `mio` and the OS clock.
//!
//! One thread, one `mio::Poll`, connections in a slab addressed by [`ConnId`] (index +
//! generation), one timer wheel for every deadline. Each [`Reactor::turn`] polls (sleeping
//! no longer than the next deadline, and polling again without sleeping while a poll fills
//! up or is interrupted), reads every ready socket into the shared buffer and feeds its
//! state machine, runs cross-thread commands, accepts a bounded batch of new connections,
//! fires expired timers, then flushes every connection that has output.
//!
//! The reactor's clock (`Ctx::now`, every deadline) is the OS's monotonic clock less the
//! stalls it has seen: a turn late by more than `Config::stall_threshold` has the excess
//! left out, so a stopped or paused process does not expire peers whose messages arrived
//! while it could not read them. A test (or a simulation) can set the clock itself with
//! [`Reactor::turn_at`] instead: deadlines then come when it says, without sleeping.

mod accept;
mod address;
mod app;
mod clock;
#[cfg(feature = "deflate")]
mod compress;
mod core;
mod ctx;
mod entry;
mod input;
mod multi;
mod remote;
mod token;

pub(crate) use self::core::SendError;
pub use app::{Accept, App, Closed, Message};
pub use ctx::Ctx;
pub use multi::{Reactors, ReactorsError, ReactorsHandle};
pub use remote::{Remote, RemoteError};
pub(crate) use token::ConnId;

use self::core::{Core, TimerTarget};
use crate::close::CloseCode;
use crate::config::Config;
use crate::error::Error;
use crate::time::Millis;
use crate::timer::TimerWheel;
use crate::ws::{BufPool, SharedFrame};
use clock::{Clock, PollSpan};
use entry::Phase;
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Waker};
use remote::{Command, Payload, RemoteInner};
use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use token::{LISTENER, WAKER};

/// Output buffers: size of each pooled buffer and how many spares are kept.
const POOL_BUF: usize = 16 * 1024;
const POOL_SPARES: usize = 256;
/// Accept back-off after descriptors run out: first and longest pause.
const ACCEPT_BACKOFF_MIN: Millis = Millis(20);
const ACCEPT_BACKOFF_MAX: Millis = Millis(1000);

/// Binds a non-blocking listener with `SO_REUSEADDR` and our own backlog.
fn listen(addr: SocketAddr, backlog: i32) -> io::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    // Accepted sockets inherit TCP_NODELAY from the listener on Linux: one setsockopt here
    // instead of one per connection (admit() sets it again only where not inherited).
    socket.set_tcp_nodelay(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    Ok(socket.into())
}

/// Figures about a reactor's current load, for tests and monitoring.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Stats {
    /// Sockets held (any phase).
    pub sockets: usize,
    /// Upgraded WebSocket connections (open or closing).
    pub websockets: usize,
    /// Pending timers on the wheel (the reactor's and the application's).
    pub timers: usize,
    /// Heap bytes of spare output buffers.
    pub pooled_bytes: usize,
    /// Bytes queued for all connections and not yet written: bounded by the outbox cap per
    /// connection (plus one frame), whatever the peers do.
    pub queued_bytes: usize,
}

/// A single-threaded WebSocket server reactor serving application `A`.
pub struct Reactor<A: App> {
    poll: Poll,
    events: Option<Events>,
    events_capacity: usize,
    listener: Option<TcpListener>,
    local_addr: SocketAddr,
    core: Core<A>,
    app: A,
    clock: Clock,
    accept_pending: bool,
    accept_backoff: Millis,
    commands: VecDeque<Command<A::Command>>,
    /// Frames decoded by the current read (charged against the read budget).
    frames: usize,
}

impl<A: App> std::fmt::Debug for Reactor<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reactor")
            .field("local_addr", &self.local_addr)
            .field("stats", &self.stats())
            .finish()
    }
}

impl<A: App> Reactor<A> {
    /// Binds `addr` and builds a reactor serving `app` with `config` (checked first).
    pub fn bind(addr: SocketAddr, config: Config, app: A) -> Result<Self, Error> {
        config.validate()?;
        let listener = listen(addr, config.listen_backlog)?;
        Self::with_listener(TcpListener::from_std(listener), config, app)
    }

    /// Builds a reactor on a listener the host already bound (set non-blocking here).
    pub fn from_std(
        listener: std::net::TcpListener,
        config: Config,
        app: A,
    ) -> Result<Self, Error> {
        config.validate()?;
        listener.set_nonblocking(true)?;
        Self::with_listener(TcpListener::from_std(listener), config, app)
    }

    fn with_listener(mut listener: TcpListener, config: Config, app: A) -> Result<Self, Error> {
        let poll = Poll::new()?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let waker = Waker::new(poll.registry(), WAKER)?;
        let remote = Arc::new(RemoteInner::new(waker, config.remote_queue));
        let local_addr = listener.local_addr()?;
        let registry = poll.registry().try_clone()?;
        let events_capacity = config.events_per_poll;
        let socket_budget = accept::socket_budget(config.descriptor_reserve);
        let core = Core {
            conns: slab::Slab::new(),
            wheel: TimerWheel::new(Millis::ZERO),
            pool: BufPool::new(POOL_BUF, POOL_SPARES),
            read_buf: vec![0; config.read_buffer],
            config,
            now: Millis::ZERO,
            registry,
            dirty: Vec::new(),
            pending_reads: Vec::new(),
            closed: VecDeque::new(),
            ws_count: 0,
            generation: 0,
            remote,
            shutting_down: false,
            stop: false,
            accept_paused: false,
            per_ip: std::collections::HashMap::new(),
            sweep_armed: false,
            unupgraded: VecDeque::new(),
            socket_budget,
            #[cfg(feature = "deflate")]
            deflate: Default::default(),
        };

        Ok(Reactor {
            events: Some(Events::with_capacity(events_capacity)),
            events_capacity,
            poll,
            listener: Some(listener),
            local_addr,
            core,
            app,
            clock: Clock::os(),
            accept_pending: true,
            accept_backoff: ACCEPT_BACKOFF_MIN,
            commands: VecDeque::new(),
            frames: 0,
        })
    }

    /// The address the listener is bound to (useful after binding port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// A cross-thread handle.
    pub fn remote(&self) -> Remote<A::Command> {
        Remote::from_inner(self.core.remote.clone())
    }

    /// The application.
    pub fn app(&self) -> &A {
        &self.app
    }

    /// The application, mutably (between turns).
    pub fn app_mut(&mut self) -> &mut A {
        &mut self.app
    }

    /// Current load figures.
    pub fn stats(&self) -> Stats {
        Stats {
            sockets: self.core.conns.len(),
            websockets: self.core.ws_count,
            timers: self.core.wheel.len(),
            pooled_bytes: self.core.pool.heap_bytes(),
            queued_bytes: self.core.conns.iter().map(|(_, e)| e.outbox.len()).sum(),
        }
    }

    /// Whether the reactor has stopped (after a shutdown or stop); `turn` then does nothing.
    pub fn is_stopped(&self) -> bool {
        self.core.stop
    }

    /// Runs turns until the reactor stops (graceful shutdown finished, or stop).
    pub fn run(&mut self) -> Result<(), Error> {
        while !self.core.stop {
            self.turn(None)?;
        }
        Ok(())
    }

    /// Begins a graceful shutdown: stop accepting, call [`App::on_shutdown`], close every
    /// connection with 1001, and stop once all are gone or `shutdown_timeout` passes.
    pub fn shutdown(&mut self) {
        self.begin_shutdown();
    }

    /// Stops at once, dropping every connection (each still gets `on_close`, as `Dropped`).
    pub fn stop(&mut self) {
        self.stop_now();
    }

    /// Polls into `events`. True when another poll may find more ready sockets: the
    /// events filled up, or the wait was interrupted (`epoll_wait` fails with EINTR after
    /// the process was stopped and continued, having reported nothing).
    fn poll_once(&mut self, events: &mut Events, timeout: Option<Duration>) -> Result<bool, Error> {
        match self.poll.poll(events, timeout) {
            Ok(()) => Ok(events.iter().count() >= self.events_capacity),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(true),
            Err(e) => Err(e.into()),
        }
    }

    /// Acts on one poll's events: reads ready sockets, flushes writable ones.
    fn handle_events(&mut self, events: &Events) {
        for event in events.iter() {
            match event.token() {
                LISTENER => self.accept_pending = true,
                WAKER => {}
                token => {
                    let id = ConnId::from_token(token);
                    if event.is_read_closed() || event.is_error() {
                        if let Some(entry) = self.core.get_mut(id) {
                            entry.peer_closed = true;
                        }
                    }
                    if event.is_readable() || event.is_read_closed() || event.is_error() {
                        self.read_conn(id);
                    }
                    if event.is_writable() {
                        self.core.flush(id);
                    }
                }
            }
        }
    }

    /// How long the turn's first poll may sleep: not at all while work is left over, else
    /// at most `max_wait` and until the next deadline (`before` is the OS clock now).
    fn poll_timeout(&self, max_wait: Option<Duration>, before: Millis) -> Option<Duration> {
        let busy = (self.accept_pending && !self.core.accept_paused && self.listener.is_some())
            || !self.core.pending_reads.is_empty()
            || !self.core.dirty.is_empty();
        if busy {
            return Some(Duration::ZERO);
        }
        if matches!(self.clock, Clock::Manual) {
            // Deadlines come when the caller moves the clock, not by waiting.
            return max_wait;
        }
        match self.core.wheel.next_deadline() {
            Some(deadline) => {
                let wait = deadline
                    .saturating_since(self.clock.reactor_time(before))
                    .to_duration();
                Some(max_wait.map_or(wait, |t| t.min(wait)))
            }
            None => max_wait,
        }
    }

    /// Polls (sleeping at most `timeout`), sets the clock, reads what is ready, and polls
    /// again without sleeping while a poll may have left ready sockets behind (at most
    /// `polls_per_turn` polls).
    fn poll_and_read(
        &mut self,
        events: &mut Events,
        timeout: Option<Duration>,
        before: Millis,
    ) -> Result<(), Error> {
        let polled = self.poll_once(events, timeout);
        let after = self.clock.raw(self.core.now);
        let span = PollSpan {
            before,
            asked: timeout,
            after,
        };
        if let Some(now) = self
            .clock
            .after_poll(span, self.core.config.stall_threshold)
        {
            self.core.now = now;
        }
        let mut again = polled?;
        self.handle_events(events);
        for _ in 1..self.core.config.polls_per_turn {
            if !again {
                break;
            }
            again = self.poll_once(events, Some(Duration::ZERO))?;
            self.handle_events(events);
        }
        Ok(())
    }

    /// One batch: poll (waiting at most `max_wait`, or less when a timer is due), handle
    /// every event, poll again without waiting while polls fill up (at most
    /// `polls_per_turn` in all, so every ready socket is read before any deadline is
    /// judged), run commands, accept, fire timers, flush output.
    ///
    /// After [`Reactor::turn_at`] the clock is the caller's: a turn then sleeps at most
    /// `max_wait` and leaves the time as it was.
    pub fn turn(&mut self, max_wait: Option<Duration>) -> Result<(), Error> {
        if self.core.stop {
            return Ok(());
        }
        let before = self.clock.raw(self.core.now);
        let timeout = self.poll_timeout(max_wait, before);
        self.turn_with(timeout, before)
    }

    /// A turn at time `now` (the reactor's time, as [`Ctx::now`] gives it), without
    /// sleeping: for tests and simulations that drive deadlines themselves. From the first
    /// call on, the reactor's clock is the caller's (the OS clock and its stall detection
    /// are no longer read): it moves only when a later `turn_at` moves it. A `now` earlier
    /// than the reactor's time is taken as its time (the clock never goes back).
    pub fn turn_at(&mut self, now: Millis) -> Result<(), Error> {
        if self.core.stop {
            return Ok(());
        }
        self.clock = Clock::Manual;
        self.core.now = self.core.now.max(now);
        self.turn_with(Some(Duration::ZERO), self.core.now)
    }

    /// The turn after the poll timeout is known.
    fn turn_with(&mut self, timeout: Option<Duration>, before: Millis) -> Result<(), Error> {
        let mut events = self
            .events
            .take()
            .unwrap_or_else(|| Events::with_capacity(self.events_capacity));
        let polled = self.poll_and_read(&mut events, timeout, before);
        self.events = Some(events);
        polled?;
        self.run_commands();
        let pending = std::mem::take(&mut self.core.pending_reads);
        for id in pending {
            if self.core.get(id).is_some_and(|e| e.read_pending) {
                self.read_conn(id);
            }
        }
        if self.accept_pending && !self.core.accept_paused {
            self.accept();
        }
        self.fire_timers();
        self.flush_dirty();
        if self.core.shutting_down && self.core.conns.is_empty() {
            self.finish_stop();
        }
        Ok(())
    }

    fn flush_dirty(&mut self) {
        // Flushing can drop a connection, whose on_close may queue output elsewhere: a few
        // rounds, then the rest waits for the next turn (which then does not sleep).
        for _ in 0..4 {
            if self.core.dirty.is_empty() {
                break;
            }
            let mut dirty = std::mem::take(&mut self.core.dirty);
            for id in dirty.drain(..) {
                self.core.flush(id);
            }
            if self.core.dirty.is_empty() {
                self.core.dirty = dirty;
            }
            self.deliver_closed();
        }
    }

    fn run_commands(&mut self) {
        if self.core.remote.take_shutdown() {
            self.begin_shutdown();
        }
        let mut commands = std::mem::take(&mut self.commands);
        self.core.remote.drain(&mut commands);
        while let Some(command) = commands.pop_front() {
            let mut ctx = Ctx::new(&mut self.core);
            match command {
                Command::Send(id, Payload::Text(text)) => {
                    let _ = ctx.send_text(id, &text);
                }
                Command::Send(id, Payload::Binary(bytes)) => {
                    let _ = ctx.send_binary(id, &bytes);
                }
                Command::Close(id, code, reason) => ctx.close(id, code, &reason),
                Command::Broadcast(Payload::Text(text)) => {
                    ctx.broadcast_all(&SharedFrame::text(&text));
                }
                Command::Broadcast(Payload::Binary(bytes)) => {
                    ctx.broadcast_all(&SharedFrame::binary(&bytes));
                }
                Command::App(command) => self.app.on_command(&mut ctx, command),
                Command::Stop => self.stop_now(),
            }
            self.deliver_closed();
        }
        self.commands = commands;
    }

    fn fire_timers(&mut self) {
        while let Some((_, target)) = self.core.wheel.poll(self.core.now) {
            match target {
                TimerTarget::Conn(id) => self.conn_deadline(id),
                TimerTarget::Accept => self.core.accept_paused = false,
                TimerTarget::SweepAddresses => {
                    self.core.sweep_armed = false;
                    self.core.sweep_addresses();
                }
                TimerTarget::Shutdown => self.stop_now(),
                TimerTarget::App(timer) => {
                    let mut ctx = Ctx::new(&mut self.core);
                    self.app.on_timer(&mut ctx, timer);
                }
            }
            self.deliver_closed();
        }
    }

    /// A connection's own deadline passed: what it means depends on its phase.
    fn conn_deadline(&mut self, id: ConnId) {
        let now = self.core.now;
        let (idle_timeout, ping_interval) = (
            self.core.config.idle_timeout,
            self.core.config.ping_interval,
        );
        let Some(entry) = self.core.get_mut(id) else {
            return;
        };
        entry.timer = None;
        let open = entry.is_open();
        if matches!(entry.phase, Phase::Http(_)) && !entry.rx.is_empty() {
            // Handshake deadline with part of a request received (slowloris): answer 408,
            // then drain (the close deadline bounds the drain).
            entry.rx = Vec::new();
            let mut out = Vec::with_capacity(160);
            let response =
                crate::http::Response::from_error(&crate::http::HttpError::RequestTimeout);
            crate::http::write_response(&mut out, &response, false);
            self.core.push_bytes(id, &out);
            self.core.drain(id);
            return;
        }
        if !open {
            // Handshake deadline with nothing received (or nothing since the last answered
            // keep-alive request), close handshake or drain deadline: close without a word.
            self.core.remove(id, Closed::Dropped);
            return;
        }
        let Some(idle) = idle_timeout else {
            return;
        };
        let silent = now.saturating_since(entry.last_rx);
        if silent >= idle {
            self.core.close(id, CloseCode::GOING_AWAY, "idle timeout");
            return;
        }
        let last_rx = entry.last_rx;
        match ping_interval {
            Some(ping) if silent >= ping => {
                self.core.push_control(id, crate::wire::OpCode::Ping, b"");
                self.core.arm(id, (now + ping).min(last_rx + idle));
            }
            Some(ping) => self.core.arm(id, last_rx + ping),
            None => self.core.arm(id, last_rx + idle),
        }
    }

    fn begin_shutdown(&mut self) {
        if self.core.shutting_down || self.core.stop {
            return;
        }
        self.core.shutting_down = true;
        if let Some(mut listener) = self.listener.take() {
            let _ = self.core.registry.deregister(&mut listener);
        }
        let mut ctx = Ctx::new(&mut self.core);
        self.app.on_shutdown(&mut ctx);
        self.deliver_closed();
        let ids = self.core.all_ids();
        for id in ids {
            self.core
                .close(id, CloseCode::GOING_AWAY, "server shutting down");
        }
        self.deliver_closed();
        let at = self.core.now + self.core.config.shutdown_timeout;
        self.core.wheel.insert(at, TimerTarget::Shutdown);
    }

    fn stop_now(&mut self) {
        let ids = self.core.all_ids();
        for id in ids {
            self.core.remove(id, Closed::Dropped);
        }
        self.deliver_closed();
        self.finish_stop();
    }

    fn finish_stop(&mut self) {
        self.listener = None;
        self.core.stop = true;
        self.core.remote.mark_stopped();
        // Drop every pending timer (application timers included): nothing will fire them.
        self.core.wheel = TimerWheel::new(self.core.now);
    }
}
