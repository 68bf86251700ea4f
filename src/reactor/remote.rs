//! [`Remote`]: the cross-thread handle, a bounded command queue plus a `mio::Waker`.

use super::token::ConnId;
use crate::close::CloseCode;
use mio::Waker;
use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// A command queued by another thread.
#[derive(Debug)]
pub(crate) enum Command<C> {
    Send(ConnId, Payload),
    Close(ConnId, CloseCode, String),
    Broadcast(Payload),
    App(C),
    Stop,
}

/// An owned message payload crossing threads.
#[derive(Debug)]
pub(crate) enum Payload {
    Text(String),
    Binary(Vec<u8>),
}

/// Shared between the reactor and every [`Remote`].
#[derive(Debug)]
pub(crate) struct RemoteInner<C> {
    queue: Mutex<VecDeque<Command<C>>>,
    capacity: usize,
    waker: Waker,
    shutdown: AtomicBool,
    stopped: AtomicBool,
}

/// Why a remote command was not queued.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum RemoteError {
    /// The queue is at its bound ([`Config::remote_queue`](crate::Config)); retry later.
    Full,
    /// The reactor has stopped.
    Stopped,
}

impl fmt::Display for RemoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RemoteError::Full => "remote queue full",
            RemoteError::Stopped => "reactor stopped",
        })
    }
}

impl std::error::Error for RemoteError {}

impl<C> RemoteInner<C> {
    pub(crate) fn new(waker: Waker, capacity: usize) -> Self {
        RemoteInner {
            queue: Mutex::new(VecDeque::new()),
            capacity,
            waker,
            shutdown: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
        }
    }

    fn push(&self, cmd: Command<C>) -> Result<(), RemoteError> {
        if self.stopped.load(Ordering::Acquire) {
            return Err(RemoteError::Stopped);
        }
        let was_empty = {
            let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
            if q.len() >= self.capacity {
                return Err(RemoteError::Full);
            }
            q.push_back(cmd);
            q.len() == 1
        };
        if was_empty {
            // One wake per batch: the reactor drains the whole queue when it wakes.
            let _ = self.waker.wake();
        }
        Ok(())
    }

    /// Takes every queued command (called by the reactor).
    pub(crate) fn drain(&self, into: &mut VecDeque<Command<C>>) {
        let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        into.append(&mut q);
    }

    /// Asks for a graceful shutdown (from any thread, signal handlers' threads included).
    pub(crate) fn request_shutdown(&self) {
        self.shutdown.store(true, Ordering::Release);
        let _ = self.waker.wake();
    }

    /// Takes a pending shutdown request.
    pub(crate) fn take_shutdown(&self) -> bool {
        self.shutdown.swap(false, Ordering::AcqRel)
    }

    pub(crate) fn mark_stopped(&self) {
        self.stopped.store(true, Ordering::Release);
    }
}

/// A handle to the reactor for other threads: send to a connection, close it, broadcast,
/// pass the application a command, shut down. `Send + Sync + Clone`; every call queues a
/// command (bounded) and wakes the reactor at most once per batch.
pub struct Remote<C> {
    inner: Arc<RemoteInner<C>>,
}

impl<C> Clone for Remote<C> {
    fn clone(&self) -> Self {
        Remote {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<C> fmt::Debug for Remote<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Remote")
            .field("stopped", &self.inner.stopped.load(Ordering::Relaxed))
            .finish()
    }
}

impl<C> Remote<C> {
    pub(crate) fn from_inner(inner: Arc<RemoteInner<C>>) -> Self {
        Remote { inner }
    }

    /// Sends a text message to a connection.
    #[must_use = "a command is refused when the queue is full or the reactor stopped"]
    pub fn send_text(&self, id: ConnId, text: impl Into<String>) -> Result<(), RemoteError> {
        self.inner
            .push(Command::Send(id, Payload::Text(text.into())))
    }

    /// Sends a binary message to a connection.
    #[must_use = "a command is refused when the queue is full or the reactor stopped"]
    pub fn send_binary(&self, id: ConnId, bytes: impl Into<Vec<u8>>) -> Result<(), RemoteError> {
        self.inner
            .push(Command::Send(id, Payload::Binary(bytes.into())))
    }

    /// Closes a connection with a code and reason.
    #[must_use = "a command is refused when the queue is full or the reactor stopped"]
    pub fn close(
        &self,
        id: ConnId,
        code: CloseCode,
        reason: impl Into<String>,
    ) -> Result<(), RemoteError> {
        self.inner.push(Command::Close(id, code, reason.into()))
    }

    /// Sends a text message to every open WebSocket connection (encoded once).
    #[must_use = "a command is refused when the queue is full or the reactor stopped"]
    pub fn broadcast_text(&self, text: impl Into<String>) -> Result<(), RemoteError> {
        self.inner
            .push(Command::Broadcast(Payload::Text(text.into())))
    }

    /// Sends a binary message to every open WebSocket connection (encoded once).
    #[must_use = "a command is refused when the queue is full or the reactor stopped"]
    pub fn broadcast_binary(&self, bytes: impl Into<Vec<u8>>) -> Result<(), RemoteError> {
        self.inner
            .push(Command::Broadcast(Payload::Binary(bytes.into())))
    }

    /// Passes a command to the application's [`App::on_command`](crate::App::on_command).
    #[must_use = "a command is refused when the queue is full or the reactor stopped"]
    pub fn command(&self, command: C) -> Result<(), RemoteError> {
        self.inner.push(Command::App(command))
    }

    /// Begins a graceful shutdown: the application's last words, close 1001 to everyone,
    /// flush within the deadline, then [`Reactor::run`](crate::Reactor::run) returns.
    /// Never blocks and never fails for a full queue (safe from a signal-watching thread).
    pub fn shutdown(&self) {
        self.inner.request_shutdown();
    }

    /// Stops the reactor at once: connections are dropped without a closing handshake.
    #[must_use = "a command is refused when the queue is full or the reactor stopped"]
    pub fn stop(&self) -> Result<(), RemoteError> {
        self.inner.push(Command::Stop)
    }

    /// Wakes the reactor for one turn, queueing nothing (the multi-reactor runner asks
    /// for a statistics snapshot this way).
    pub(crate) fn wake(&self) {
        let _ = self.inner.waker.wake();
    }

    /// Whether the reactor has stopped.
    pub fn is_stopped(&self) -> bool {
        self.inner.stopped.load(Ordering::Acquire)
    }
}
