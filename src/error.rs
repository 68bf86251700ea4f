//! The reactor's error type: what can stop [`Reactor::bind`](crate::Reactor::bind) or
//! [`Reactor::turn`](crate::Reactor::turn). Errors of one connection never surface here:
//! they close that connection and the reactor goes on.

use crate::config::ConfigError;
use std::fmt;
use std::io;

/// A reactor-level failure.
#[derive(Debug)]
pub enum Error {
    /// Binding, polling or registering failed at the OS level.
    Io(io::Error),
    /// The configuration is out of range.
    Config(ConfigError),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => write!(f, "I/O error: {e}"),
            Error::Config(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            Error::Config(e) => Some(e),
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(e)
    }
}

impl From<ConfigError> for Error {
    fn from(e: ConfigError) -> Self {
        Error::Config(e)
    }
}

/// Why a send did not happen.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum SendError {
    /// No such connection (gone, or an id from another slot generation).
    Unknown,
    /// The connection is closing or closed: nothing more may be sent.
    Closing,
    /// The connection's outbox overflowed: it is a slow reader and is being closed (1008).
    Overflow,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SendError::Unknown => "unknown connection",
            SendError::Closing => "connection is closing",
            SendError::Overflow => "outbox overflow: slow reader closed",
        })
    }
}

impl std::error::Error for SendError {}
