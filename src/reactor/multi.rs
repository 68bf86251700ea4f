//! [`Reactors`]: N reactors of one application in one process, one thread each, sharing one
//! port.
//!
//! Each reactor is the plain single-threaded [`Reactor`] (nothing in its hot path knows it
//! has siblings): its own thread, its own `mio::Poll`, its own listener. The listeners are
//! bound with `SO_REUSEPORT` on the same address, so the kernel spreads new connections
//! among them (on Linux by a hash of the connection's addresses and ports); a connection
//! then stays on the reactor that accepted it. Reactors share nothing but what the
//! application's factory gives them: a message for a connection on another reactor goes
//! through that reactor's [`Remote`] (or, for gateways, through the bus between engines).
//!
//! Around each reactor's loop the runner adds what an embedder of several needs: a
//! statistics snapshot on request ([`ReactorsHandle::stats`]), one graceful shutdown for
//! all ([`ReactorsHandle::shutdown`]), and a guard that reports the thread's end, however
//! it ends. When a reactor thread panics (or its loop fails), its guard begins the graceful
//! shutdown of every other reactor at once (their clients get the going-away close), and
//! [`Reactors::join`] returns [`ReactorsError::Panicked`] once all have drained (the
//! panic's message was already printed on stderr by the panic hook): a process never goes
//! on silently with a reactor missing, and nothing restarts a reactor behind its clients'
//! backs.

use super::app::App;
use super::{Reactor, Remote, Stats};
use crate::config::Config;
use crate::error::Error;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Binds a non-blocking listener with `SO_REUSEADDR`, `SO_REUSEPORT` and our own backlog
/// (as the single reactor's `listen`, plus the shared port).
fn listen_shared(addr: SocketAddr, backlog: i32) -> io::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_tcp_nodelay(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    Ok(socket.into())
}

/// How many reactors `count` asks for: itself, or for 0 one per available core.
fn resolve_count(count: usize) -> usize {
    if count > 0 {
        return count;
    }
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Why [`Reactors::spawn`] or [`Reactors::join`] failed.
#[derive(Debug)]
pub enum ReactorsError {
    /// Reactor `reactor` could not be built or its loop failed (the others were shut down).
    Failed {
        /// Which reactor (0-based).
        reactor: usize,
        /// What failed.
        error: Error,
    },
    /// Reactor `reactor`'s thread panicked (the others were shut down gracefully first).
    Panicked {
        /// Which reactor (0-based).
        reactor: usize,
        /// The panic's message, when it was a string.
        message: String,
    },
    /// Binding the shared address failed before any reactor started.
    Bind(Error),
}

impl fmt::Display for ReactorsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReactorsError::Failed { reactor, error } => write!(f, "reactor {reactor}: {error}"),
            ReactorsError::Panicked { reactor, message } => {
                write!(f, "reactor {reactor} panicked: {message}")
            }
            ReactorsError::Bind(error) => error.fmt(f),
        }
    }
}

impl std::error::Error for ReactorsError {}

/// A reactor's published statistics: the runner fills it when asked, and at the end.
#[derive(Debug, Default)]
struct Probe {
    /// Set by a reader; the reactor thread publishes after its next turn.
    wanted: AtomicBool,
    state: Mutex<ProbeState>,
    published: Condvar,
}

#[derive(Debug, Default)]
struct ProbeState {
    /// Bumped at every publication.
    serial: u64,
    stats: Option<Stats>,
    /// The reactor thread has ended (the stats are its last).
    ended: bool,
}

impl Probe {
    fn lock(&self) -> std::sync::MutexGuard<'_, ProbeState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn publish(&self, stats: Stats) {
        let mut state = self.lock();
        state.serial += 1;
        state.stats = Some(stats);
        self.published.notify_all();
    }

    fn end(&self) {
        self.lock().ended = true;
        self.published.notify_all();
    }
}

/// One reactor as the other threads see it.
struct Member<C> {
    remote: Remote<C>,
    probe: Arc<Probe>,
}

/// A cross-thread handle to every reactor of a [`Reactors`]: `Send + Sync + Clone`.
pub struct ReactorsHandle<C> {
    members: Arc<[Member<C>]>,
}

impl<C> Clone for ReactorsHandle<C> {
    fn clone(&self) -> Self {
        ReactorsHandle {
            members: Arc::clone(&self.members),
        }
    }
}

impl<C> fmt::Debug for ReactorsHandle<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReactorsHandle")
            .field("reactors", &self.members.len())
            .finish()
    }
}

impl<C> ReactorsHandle<C> {
    /// How many reactors there are.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether there is no reactor (never, once spawned).
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Reactor `index`'s [`Remote`] (send to its connections, pass its application a
    /// command, stop it alone).
    pub fn remote(&self, index: usize) -> Option<&Remote<C>> {
        self.members.get(index).map(|m| &m.remote)
    }

    /// Begins a graceful shutdown of every reactor (each as [`Remote::shutdown`]). Never
    /// blocks; safe from a signal-watching thread.
    pub fn shutdown(&self) {
        for member in self.members.iter() {
            member.remote.shutdown();
        }
    }

    /// Reactor `index`'s [`Stats`], taken on its thread after its next turn (the reactor
    /// is woken for it). Waits at most `timeout`; `None` then, or for no such reactor. A
    /// reactor that has ended answers at once with its last figures (those taken when it
    /// stopped; after a panic, the last ones asked for, if any).
    pub fn stats(&self, index: usize, timeout: Duration) -> Option<Stats> {
        let member = self.members.get(index)?;
        let probe = &member.probe;
        let deadline = Instant::now() + timeout;
        let mut state = probe.lock();
        let asked = state.serial;
        probe.wanted.store(true, Ordering::Release);
        member.remote.wake();
        while state.serial == asked && !state.ended {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            state = probe
                .published
                .wait_timeout(state, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        state.stats
    }

    /// Every reactor's [`Stats`], in reactor order ([`stats`](Self::stats) each).
    pub fn all_stats(&self, timeout: Duration) -> Vec<Option<Stats>> {
        (0..self.len()).map(|i| self.stats(i, timeout)).collect()
    }
}

/// Reports a reactor thread's end to the runner, however it ends; an end that is not a
/// clean stop (a panic, a failed loop) also begins the graceful shutdown of every sibling
/// at once, whether or not anyone is in [`Reactors::join`] yet.
struct ExitGuard<C> {
    index: usize,
    probe: Arc<Probe>,
    exits: mpsc::Sender<usize>,
    /// Every reactor, once all are built.
    siblings: Arc<OnceLock<ReactorsHandle<C>>>,
    /// Set when the reactor stopped as asked.
    clean: bool,
}

impl<C> Drop for ExitGuard<C> {
    fn drop(&mut self) {
        self.probe.end();
        if !self.clean {
            if let Some(siblings) = self.siblings.get() {
                siblings.shutdown();
            }
        }
        let _ = self.exits.send(self.index);
    }
}

/// What a reactor thread hands the spawner once its reactor is built.
type Ready<C> = Result<Remote<C>, Error>;

/// N reactors of one application, one thread each, on one shared port (see the module
/// doc). Built by [`spawn`](Self::spawn), waited for by [`join`](Self::join); dropping it
/// without joining shuts every reactor down and waits for them.
pub struct Reactors<C> {
    handle: ReactorsHandle<C>,
    threads: Vec<Option<JoinHandle<Result<(), Error>>>>,
    exits: mpsc::Receiver<usize>,
    local_addr: SocketAddr,
}

impl<C> fmt::Debug for Reactors<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reactors")
            .field("local_addr", &self.local_addr)
            .field("reactors", &self.threads.len())
            .finish()
    }
}

/// What every reactor thread shares at start: the factory, the config, where to report
/// its end, and (once all are built) its siblings.
struct Start<F, C> {
    factory: Arc<F>,
    config: Config,
    exits: mpsc::Sender<usize>,
    siblings: Arc<OnceLock<ReactorsHandle<C>>>,
}

/// A reactor thread that was built and runs.
struct Started<C> {
    member: Member<C>,
    thread: JoinHandle<Result<(), Error>>,
}

impl<C: Send + 'static> Reactors<C> {
    /// Binds `count` listeners on `addr` with `SO_REUSEPORT` (`count` 0: one per available
    /// core; port 0: one free port, shared by all) and starts one reactor thread per
    /// listener, reactor `i` serving `factory(i)` with `config` (checked first). Returns once
    /// every reactor is built; if one cannot be, the others are shut down first.
    pub fn spawn<A, F>(
        addr: SocketAddr,
        config: Config,
        count: usize,
        factory: F,
    ) -> Result<Self, ReactorsError>
    where
        A: App<Command = C> + 'static,
        F: Fn(usize) -> A + Send + Sync + 'static,
    {
        config
            .validate()
            .map_err(|e| ReactorsError::Bind(e.into()))?;
        let count = resolve_count(count);
        let first = listen_shared(addr, config.listen_backlog).map_err(bind_error)?;
        let local_addr = first.local_addr().map_err(bind_error)?;
        let mut listeners = vec![first];
        for _ in 1..count {
            listeners.push(listen_shared(local_addr, config.listen_backlog).map_err(bind_error)?);
        }
        let (exits_tx, exits) = mpsc::channel();
        let start = Start {
            factory: Arc::new(factory),
            config,
            exits: exits_tx,
            siblings: Arc::new(OnceLock::new()),
        };
        let (mut threads, mut members) = (Vec::new(), Vec::new());
        let mut failure = None;
        for (index, listener) in listeners.into_iter().enumerate() {
            match start_one(&start, index, listener) {
                Ok(started) => {
                    members.push(started.member);
                    threads.push(Some(started.thread));
                }
                Err(error) => {
                    failure = Some(error);
                    break;
                }
            }
        }
        let handle = ReactorsHandle {
            members: members.into(),
        };
        let _ = start.siblings.set(handle.clone());
        let reactors = Reactors {
            handle,
            threads,
            exits,
            local_addr,
        };
        match failure {
            None => Ok(reactors),
            Some(error) => {
                // Dropping shuts the started ones down and waits for them.
                drop(reactors);
                Err(error)
            }
        }
    }
}

/// Starts reactor `index`'s thread on `listener` and waits until its reactor is built.
fn start_one<A, F>(
    start: &Start<F, A::Command>,
    index: usize,
    listener: std::net::TcpListener,
) -> Result<Started<A::Command>, ReactorsError>
where
    A: App + 'static,
    F: Fn(usize) -> A + Send + Sync + 'static,
{
    let probe = Arc::new(Probe::default());
    let (ready_tx, ready) = mpsc::channel::<Ready<A::Command>>();
    let guard = ExitGuard {
        index,
        probe: Arc::clone(&probe),
        exits: start.exits.clone(),
        siblings: Arc::clone(&start.siblings),
        clean: false,
    };
    let (factory, config) = (Arc::clone(&start.factory), start.config.clone());
    let thread = std::thread::Builder::new()
        .name(format!("reactor-{index}"))
        .spawn(move || reactor_thread(guard, listener, config, &*factory, ready_tx))
        .map_err(|e| ReactorsError::Failed {
            reactor: index,
            error: e.into(),
        })?;
    match ready.recv() {
        Ok(Ok(remote)) => Ok(Started {
            member: Member { remote, probe },
            thread,
        }),
        Ok(Err(error)) => {
            let _ = thread.join();
            Err(ReactorsError::Failed {
                reactor: index,
                error,
            })
        }
        // The factory (or the reactor's construction) panicked.
        Err(_) => Err(
            ended_error(index, thread.join()).unwrap_or_else(|| ReactorsError::Failed {
                reactor: index,
                error: Error::Io(io::Error::other("reactor thread ended early")),
            }),
        ),
    }
}

impl<C> Reactors<C> {
    /// The shared address (the port the kernel chose, after binding port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// How many reactors run.
    pub fn len(&self) -> usize {
        self.threads.len()
    }

    /// Whether no reactor runs (never, once spawned).
    pub fn is_empty(&self) -> bool {
        self.threads.is_empty()
    }

    /// A cross-thread handle: shutdown, per-reactor statistics and remotes.
    pub fn handle(&self) -> ReactorsHandle<C> {
        self.handle.clone()
    }

    /// Waits until every reactor has ended. A reactor that ends on its own after a graceful
    /// shutdown or a stop is fine; the first one that panics or fails makes the others shut
    /// down gracefully (they drain within `Config::shutdown_timeout`), and is returned once
    /// all have ended.
    pub fn join(mut self) -> Result<(), ReactorsError> {
        self.wait_all()
    }

    fn wait_all(&mut self) -> Result<(), ReactorsError> {
        let mut first_error = None;
        while self.threads.iter().any(Option::is_some) {
            // Every thread's guard sends once; a closed channel means none is left.
            let Ok(index) = self.exits.recv() else { break };
            let Some(thread) = self.threads.get_mut(index).and_then(Option::take) else {
                continue;
            };
            if let Some(error) = ended_error(index, thread.join()) {
                if first_error.is_none() {
                    log::error!("{error}: shutting the other reactors down");
                    self.handle.shutdown();
                    first_error = Some(error);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

impl<C> Drop for Reactors<C> {
    fn drop(&mut self) {
        if self.threads.iter().any(Option::is_some) {
            self.handle.shutdown();
            let _ = self.wait_all();
        }
    }
}

/// The error a reactor thread's end means, if any.
fn ended_error(
    index: usize,
    joined: std::thread::Result<Result<(), Error>>,
) -> Option<ReactorsError> {
    match joined {
        Ok(Ok(())) => None,
        Ok(Err(error)) => Some(ReactorsError::Failed {
            reactor: index,
            error,
        }),
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "(not a string)".to_owned());
            Some(ReactorsError::Panicked {
                reactor: index,
                message,
            })
        }
    }
}

fn bind_error(e: io::Error) -> ReactorsError {
    ReactorsError::Bind(e.into())
}

/// One reactor thread: build the application and the reactor, report ready, run turns
/// until the reactor stops, publishing statistics when asked. `guard` reports the end.
fn reactor_thread<A, F>(
    mut guard: ExitGuard<A::Command>,
    listener: std::net::TcpListener,
    config: Config,
    factory: &F,
    ready: mpsc::Sender<Ready<A::Command>>,
) -> Result<(), Error>
where
    A: App,
    F: Fn(usize) -> A,
{
    let app = factory(guard.index);
    let mut reactor = match Reactor::from_std(listener, config, app) {
        Ok(reactor) => reactor,
        Err(error) => {
            guard.clean = true;
            let _ = ready.send(Err(error));
            return Ok(());
        }
    };
    if ready.send(Ok(reactor.remote())).is_err() {
        guard.clean = true;
        return Ok(());
    }
    drop(ready);
    let probe = &guard.probe;
    while !reactor.is_stopped() {
        reactor.turn(None)?;
        if probe.wanted.load(Ordering::Relaxed) && probe.wanted.swap(false, Ordering::AcqRel) {
            probe.publish(reactor.stats());
        }
    }
    probe.publish(reactor.stats());
    guard.clean = true;
    Ok(())
}
