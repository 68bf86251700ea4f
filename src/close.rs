//! WebSocket close codes (RFC 6455 §7.4) and the rules for which may be sent or received.
//!
//! Gateway protocols use the private range 4000-4999 for their own codes; those are plain
//! [`CloseCode`] values built with [`CloseCode::new`] or named in each dialect.

use std::fmt;

/// A close code as carried in a Close frame's first two bytes.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CloseCode(pub u16);

impl CloseCode {
    /// 1000: the purpose of the connection has been fulfilled.
    pub const NORMAL: CloseCode = CloseCode(1000);
    /// 1001: the server is going down (graceful shutdown) or the client navigates away.
    pub const GOING_AWAY: CloseCode = CloseCode(1001);
    /// 1002: the peer broke the WebSocket protocol.
    pub const PROTOCOL_ERROR: CloseCode = CloseCode(1002);
    /// 1003: a data type the endpoint cannot accept.
    pub const UNSUPPORTED_DATA: CloseCode = CloseCode(1003);
    /// 1005: no code was present (never sent on the wire).
    pub const NO_STATUS: CloseCode = CloseCode(1005);
    /// 1006: the connection dropped without a close frame (never sent on the wire).
    pub const ABNORMAL: CloseCode = CloseCode(1006);
    /// 1007: a text message was not valid UTF-8.
    pub const INVALID_PAYLOAD: CloseCode = CloseCode(1007);
    /// 1008: a message violated the endpoint's policy (used for flooding and slow readers).
    pub const POLICY: CloseCode = CloseCode(1008);
    /// 1009: a frame or message over the payload limit.
    pub const TOO_BIG: CloseCode = CloseCode(1009);
    /// 1010: the client expected an extension the server did not negotiate.
    pub const MANDATORY_EXTENSION: CloseCode = CloseCode(1010);
    /// 1011: the server met an unexpected condition.
    pub const INTERNAL_ERROR: CloseCode = CloseCode(1011);
    /// 1012: the service is restarting.
    pub const SERVICE_RESTART: CloseCode = CloseCode(1012);
    /// 1013: try again later (overload).
    pub const TRY_AGAIN_LATER: CloseCode = CloseCode(1013);
    /// 1015: TLS handshake failure (never sent on the wire).
    pub const TLS_FAILURE: CloseCode = CloseCode(1015);

    /// Wraps any code; whether it may be sent is [`CloseCode::is_sendable`].
    pub const fn new(code: u16) -> CloseCode {
        CloseCode(code)
    }

    /// The numeric value.
    pub const fn get(self) -> u16 {
        self.0
    }

    /// Whether a peer may legitimately put this code in a Close frame (RFC 6455 §7.4.1 and
    /// the IANA registry): 1000-1003, 1007-1014, and the registered/private 3000-4999 ranges.
    /// A received Close frame carrying any other code is a protocol error (1002).
    pub const fn is_valid_on_wire(self) -> bool {
        matches!(self.0, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }

    /// Whether this endpoint may send the code: any wire-valid code. 1005, 1006 and 1015 are
    /// reserved for reporting locally and are never sent.
    pub const fn is_sendable(self) -> bool {
        self.is_valid_on_wire()
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl From<u16> for CloseCode {
    fn from(code: u16) -> CloseCode {
        CloseCode(code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_validity_follows_rfc_6455() {
        for ok in [
            1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 4000, 4999,
        ] {
            assert!(CloseCode(ok).is_valid_on_wire(), "{ok}");
        }
        for bad in [
            0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
        ] {
            assert!(!CloseCode(bad).is_valid_on_wire(), "{bad}");
        }
    }
}
