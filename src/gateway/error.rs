//! What can go wrong between a client and the engine, and how a dialect answers it:
//! [`DecodeError`] (the message itself), [`GatewayError`] (everything the engine may have
//! to tell a client) and [`Answer`] (a dialect's payload and close for one error).

use crate::close::CloseCode;
use std::borrow::Cow;
use std::fmt;

/// A client message that could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// Not JSON, or not the envelope's shape.
    Malformed(String),
    /// A well-formed envelope with an operation the protocol does not know.
    UnknownOp(String),
    /// A binary message where the protocol speaks text.
    Binary,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Malformed(why) => write!(f, "malformed payload: {why}"),
            DecodeError::UnknownOp(op) => write!(f, "unknown operation {op}"),
            DecodeError::Binary => f.write_str("binary messages are not accepted"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Everything the engine may have to tell a client about a failure. The dialect decides
/// how each is spelled (an error payload, a close code, or both) and whether it is fatal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GatewayError {
    /// The message could not be decoded.
    Decode(DecodeError),
    /// A message other than identify/resume before identifying.
    NotIdentified,
    /// No identify within the identify deadline.
    IdentifyTimeout,
    /// The credentials were refused.
    AuthenticationFailed,
    /// A second identify on an identified connection.
    AlreadyIdentified,
    /// A resume of an unknown or expired session, with other credentials, or from a
    /// sequence the replay buffer no longer holds: identify afresh (not fatal).
    InvalidSession,
    /// A resume of a session that is live on another connection, refused.
    AlreadyConnected,
    /// The session was resumed on another connection (the old one is closed with this).
    SessionReplaced,
    /// Too many commands: `fatal` once the client keeps going.
    RateLimited {
        /// Whether the connection is closed.
        fatal: bool,
    },
    /// No heartbeat (or probe answer) in time.
    HeartbeatTimeout,
    /// A new session refused for the session bounds (fatal): its owner holds
    /// [`max_sessions_per_owner`](super::GatewayConfig::max_sessions_per_owner) sessions,
    /// all live (`per_owner`), or the server holds
    /// [`max_sessions`](super::GatewayConfig::max_sessions) and none of them may be ended
    /// for it.
    TooManySessions {
        /// Whether the owner's quota (rather than the server's bound) refused it.
        per_owner: bool,
    },
    /// An application-defined error with the protocol's code.
    App {
        /// The protocol's error code (its close code when fatal).
        code: CloseCode,
        /// Whether the connection is closed.
        fatal: bool,
        /// Text for the close reason or the payload, where the protocol carries one.
        reason: Cow<'static, str>,
    },
}

impl GatewayError {
    /// An application error.
    pub fn app(
        code: impl Into<CloseCode>,
        fatal: bool,
        reason: impl Into<Cow<'static, str>>,
    ) -> GatewayError {
        GatewayError::App {
            code: code.into(),
            fatal,
            reason: reason.into(),
        }
    }

    /// A short reason text for a Close frame or an error payload.
    pub fn reason(&self) -> Cow<'static, str> {
        Cow::Borrowed(match self {
            GatewayError::Decode(DecodeError::UnknownOp(_)) => "unknown operation",
            GatewayError::Decode(_) => "decode error",
            GatewayError::NotIdentified => "not identified",
            GatewayError::IdentifyTimeout => "not authenticated in time",
            GatewayError::AuthenticationFailed => "authentication failed",
            GatewayError::AlreadyIdentified => "already identified",
            GatewayError::InvalidSession => "invalid session",
            GatewayError::AlreadyConnected => "already connected",
            GatewayError::SessionReplaced => "session resumed elsewhere",
            GatewayError::RateLimited { .. } => "rate limited",
            GatewayError::HeartbeatTimeout => "heartbeat timeout",
            GatewayError::TooManySessions { per_owner: true } => {
                "too many sessions for this client"
            }
            GatewayError::TooManySessions { per_owner: false } => "too many sessions",
            GatewayError::App { reason, .. } => return reason.clone(),
        })
    }
}

/// How the dialect answers one [`GatewayError`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// Payload sent before anything else (an error event), if the protocol has one.
    pub payload: Option<String>,
    /// Close code and reason when the error is fatal; `None` keeps the connection open.
    pub close: Option<(CloseCode, String)>,
}
