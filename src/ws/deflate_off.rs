//! Stand-in for [`deflate`](self) when the `deflate` cargo feature is off: the same names,
//! but a [`DeflateConn`] cannot exist, so no connection ever has permessage-deflate.

/// The permessage-deflate state of a connection: never built without the feature.
#[derive(Debug)]
pub enum DeflateConn {}

/// The most a compressed frame may exceed the payload limit (unused without the feature).
pub const fn wire_slack(limit: usize) -> usize {
    limit / 256 + 16
}

impl DeflateConn {
    /// Unreachable: no value exists.
    pub fn rx_compressed(&self) -> bool {
        match *self {}
    }

    /// Unreachable: no value exists.
    #[cfg(any(test, feature = "testing"))]
    pub fn heap_bytes(&self) -> usize {
        match *self {}
    }
}
