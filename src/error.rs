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
