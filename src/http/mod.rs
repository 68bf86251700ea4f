//! The HTTP/1.1 side of the WebSocket upgrade, sans-IO: plain functions and types over byte
//! slices, with no sockets, no clock and no state between calls.
//!
//! - `parse_request` parses a request head in place with `httparse` over a caller-provided
//!   header array (normally `[httparse::EMPTY_HEADER; MAX_HEADERS]` on the stack). The
//!   resulting [`Request`] borrows the read buffer, so nothing is copied; it answers the
//!   questions the reactor asks (body length, keep-alive, does it want a WebSocket?) and the
//!   ones an application asks (path, query parameters, headers).
//! - `validate_upgrade` checks an upgrade request against RFC 6455 §4.2.1 and returns its
//!   `Upgrade` parts; `accept_key` derives `Sec-WebSocket-Accept`.
//! - `Response`, `write_response` and `write_switching_protocols` serialise the answers,
//! - [`negotiate_deflate`] picks the permessage-deflate offer to accept (RFC 7692), if any.
//! - [`OriginPolicy`] says which `Origin` may upgrade (checked before the application).
//!   never letting a CR or LF from an application header split the response.
//! - [`HttpError`] is the single error type of this layer: every variant knows its status code
//!   and a short reason used as the response body ([`Response::from_error`]).
//!
//! Any [`HttpError`] produced while reading a request means the byte stream can no longer be
//! trusted to be in sync, so the caller should answer it and close the connection.

mod extension;
mod origin;
mod query;
// The codec functions are public only with the `testing` feature (tests/, benches, fuzz);
// an embedder sees `Request`, `Response` and the query helpers.
#[cfg_attr(not(feature = "testing"), allow(unreachable_pub))]
mod request;
#[cfg_attr(not(feature = "testing"), allow(unreachable_pub))]
mod response;
#[cfg_attr(not(feature = "testing"), allow(unreachable_pub))]
mod upgrade;

pub use extension::{negotiate_deflate, DeflateConfig, DeflateParams};
pub use origin::OriginPolicy;
pub use query::{percent_decode, NotUtf8};
pub use request::Request;
#[cfg(feature = "testing")]
pub use request::{parse_request, Parsed, MAX_HEADERS};
#[cfg(not(feature = "testing"))]
pub(crate) use request::{parse_request, Parsed, MAX_HEADERS};
pub use response::Response;
#[cfg(feature = "testing")]
pub use response::{reason_phrase, write_response, write_switching_protocols};
#[cfg(not(feature = "testing"))]
pub(crate) use response::{reason_phrase, write_response, write_switching_protocols};
#[cfg(not(feature = "testing"))]
pub(crate) use upgrade::validate_upgrade;
#[cfg(feature = "testing")]
pub use upgrade::{accept_key, validate_upgrade, Upgrade};

use std::fmt;

/// Everything that can go wrong on the HTTP side of a connection, each variant mapping to the
/// status code the server answers with (see [`HttpError::status`]) and a short human-readable
/// reason for the body (see [`HttpError::reason`]), so one value drives the whole refusal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// `400 Bad Request`: the request is malformed or is not an acceptable WebSocket upgrade;
    /// the string says exactly what was wrong (it becomes the response body).
    BadRequest(&'static str),
    /// `408 Request Timeout`: the head (or body) did not arrive before the caller's deadline.
    /// Never produced by this module (it has no clock): the reactor answers it when its
    /// handshake deadline passes with part of a request received.
    RequestTimeout,
    /// `411 Length Required`: the request uses `Transfer-Encoding` (e.g. chunked); only
    /// `Content-Length` bodies are accepted.
    LengthRequired,
    /// `413 Payload Too Large`: the declared body exceeds what the caller accepts (or does not
    /// even fit in a `usize`).
    PayloadTooLarge,
    /// `426 Upgrade Required`: `Sec-WebSocket-Version` is missing or not `13`. The response must
    /// carry `Sec-WebSocket-Version: 13` ([`Response::from_error`] adds it).
    UnsupportedVersion,
    /// `431 Request Header Fields Too Large`: more than `MAX_HEADERS` header fields, or (as
    /// decided by the caller) a head that outgrew its buffer while still incomplete.
    HeadersTooLarge,
}

impl HttpError {
    /// The HTTP status code to answer this error with.
    pub fn status(&self) -> u16 {
        match self {
            HttpError::BadRequest(_) => 400,
            HttpError::RequestTimeout => 408,
            HttpError::LengthRequired => 411,
            HttpError::PayloadTooLarge => 413,
            HttpError::UnsupportedVersion => 426,
            HttpError::HeadersTooLarge => 431,
        }
    }

    /// A short explanation for the response body (plain text, no trailing newline).
    pub fn reason(&self) -> &'static str {
        match self {
            HttpError::BadRequest(reason) => reason,
            HttpError::RequestTimeout => "request not received in time",
            HttpError::LengthRequired => {
                "transfer-encoding is not supported; send a Content-Length body"
            }
            HttpError::PayloadTooLarge => "request body too large",
            HttpError::UnsupportedVersion => "unsupported websocket version; this server speaks 13",
            HttpError::HeadersTooLarge => "request header fields too large",
        }
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = self.status();
        write!(f, "{} {}: {}", status, reason_phrase(status), self.reason())
    }
}

impl std::error::Error for HttpError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_statuses_and_display() {
        assert_eq!(HttpError::BadRequest("x").status(), 400);
        assert_eq!(HttpError::BadRequest("x").reason(), "x");
        assert_eq!(HttpError::RequestTimeout.status(), 408);
        assert_eq!(HttpError::LengthRequired.status(), 411);
        assert_eq!(HttpError::PayloadTooLarge.status(), 413);
        assert_eq!(HttpError::UnsupportedVersion.status(), 426);
        assert_eq!(HttpError::HeadersTooLarge.status(), 431);
        assert_eq!(
            HttpError::BadRequest("bad thing").to_string(),
            "400 Bad Request: bad thing"
        );
        assert_eq!(
            HttpError::HeadersTooLarge.to_string(),
            "431 Request Header Fields Too Large: request header fields too large"
        );
    }
}
