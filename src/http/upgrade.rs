//! Validating a WebSocket upgrade request (RFC 6455 §4.2.1) and deriving the accept key.

use super::request::{trim_ows, Request};
use super::HttpError;

/// The validated parts of a WebSocket upgrade request that the server's answer depends on,
/// borrowed from the read buffer. Produced by [`validate_upgrade`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Upgrade<'b> {
    /// `Sec-WebSocket-Key`, trimmed: 24 base64 characters encoding 16 bytes. Feed it to
    /// [`accept_key`] (or [`Upgrade::accept_key`]).
    pub key: &'b [u8],
    /// `Sec-WebSocket-Protocol` as sent (first such header, trimmed), for the application to
    /// pick a subprotocol from; `None` if absent or empty.
    pub protocols: Option<&'b str>,
}

impl<'b> Upgrade<'b> {
    /// The `Sec-WebSocket-Accept` value answering this request's key.
    pub fn accept_key(&self) -> String {
        accept_key(self.key)
    }

    /// The subprotocols offered in [`Upgrade::protocols`], split on commas and trimmed, in
    /// the client's order of preference.
    #[cfg(any(test, feature = "testing"))]
    pub fn offered_protocols(&self) -> impl Iterator<Item = &'b str> {
        self.protocols
            .into_iter()
            .flat_map(|p| p.split(','))
            .map(|p| p.trim_matches([' ', '\t']))
            .filter(|p| !p.is_empty())
    }
}

/// Validates a request that [`Request::wants_websocket`], returning its [`Upgrade`] parts.
///
/// Checks, in this order, each refusal being [`HttpError::BadRequest`] (400) with exactly this
/// reason unless noted:
/// 1. method `GET`: `"websocket upgrade requires GET"`;
/// 2. HTTP/1.1 or later: `"websocket upgrade requires HTTP/1.1"`;
/// 3. an `Upgrade` header with the `websocket` token: `"missing Upgrade: websocket"`;
/// 4. a `Connection` header with the `upgrade` token (case-insensitive):
///    `"missing Connection: upgrade"`;
/// 5. `Sec-WebSocket-Version` present, and every such header exactly `13`: otherwise
///    [`HttpError::UnsupportedVersion`] (426, answered with `Sec-WebSocket-Version: 13`).
///    Checked before the key because a client of another version may form its key
///    differently, and the 426 tells it what to speak;
/// 6. exactly one `Sec-WebSocket-Key`: `"missing Sec-WebSocket-Key"` /
///    `"duplicate Sec-WebSocket-Key"`;
/// 7. the key is 24 base64 characters decoding to 16 bytes: `"invalid Sec-WebSocket-Key"`;
/// 8. `Sec-WebSocket-Protocol`, if present, is UTF-8: `"invalid Sec-WebSocket-Protocol"`.
pub fn validate_upgrade<'b>(req: &Request<'_, 'b>) -> Result<Upgrade<'b>, HttpError> {
    if req.method() != "GET" {
        return Err(HttpError::BadRequest("websocket upgrade requires GET"));
    }
    if req.version_minor() < 1 {
        return Err(HttpError::BadRequest("websocket upgrade requires HTTP/1.1"));
    }
    if !req.wants_websocket() {
        return Err(HttpError::BadRequest("missing Upgrade: websocket"));
    }
    if !req.has_token("connection", "upgrade") {
        return Err(HttpError::BadRequest("missing Connection: upgrade"));
    }
    let mut versions = req.header_values("sec-websocket-version").peekable();
    if versions.peek().is_none() || !versions.all(|v| trim_ows(v) == b"13") {
        return Err(HttpError::UnsupportedVersion);
    }
    let mut keys = req.header_values("sec-websocket-key");
    let key = match (keys.next(), keys.next()) {
        (None, _) => return Err(HttpError::BadRequest("missing Sec-WebSocket-Key")),
        (Some(_), Some(_)) => return Err(HttpError::BadRequest("duplicate Sec-WebSocket-Key")),
        (Some(key), None) => trim_ows(key),
    };
    if !is_valid_key(key) {
        return Err(HttpError::BadRequest("invalid Sec-WebSocket-Key"));
    }
    let protocols = match req.header("sec-websocket-protocol") {
        None => None,
        Some(raw) => match std::str::from_utf8(trim_ows(raw)) {
            Ok("") => None,
            Ok(s) => Some(s),
            Err(_) => return Err(HttpError::BadRequest("invalid Sec-WebSocket-Protocol")),
        },
    };
    Ok(Upgrade { key, protocols })
}

/// Whether `key` is the base64 encoding of 16 bytes: 22 alphabet characters then `==`.
/// (The 4 unused bits of the last character are not required to be zero, as most decoders
/// accept them.)
fn is_valid_key(key: &[u8]) -> bool {
    match key {
        [data @ .., b'=', b'='] if key.len() == 24 => data
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/'),
        _ => false,
    }
}

/// The `Sec-WebSocket-Accept` value for a `Sec-WebSocket-Key`: base64(SHA-1(key + GUID)),
/// computed by `tungstenite::handshake::derive_accept_key`.
pub fn accept_key(key: &[u8]) -> String {
    tungstenite::handshake::derive_accept_key(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{parse_request, Parsed, Response, MAX_HEADERS};

    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

    /// A valid upgrade request with `replace` substitutions applied to its head.
    fn request_text(replace: &[(&str, &str)]) -> String {
        let mut text = format!(
            "GET /gateway?v=10 HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n\
             Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: {KEY}\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat, superchat\r\n\r\n"
        );
        for (from, to) in replace {
            assert!(text.contains(from), "{from:?} not in request");
            text = text.replacen(from, to, 1);
        }
        text
    }

    fn validate(text: &str) -> Result<(Vec<u8>, Option<String>), HttpError> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        match parse_request(text.as_bytes(), &mut headers) {
            Ok(Parsed::Complete { request, .. }) => {
                validate_upgrade(&request).map(|u| (u.key.to_vec(), u.protocols.map(str::to_owned)))
            }
            other => panic!("not a complete head: {other:?}"),
        }
    }

    fn refused(replace: &[(&str, &str)]) -> HttpError {
        match validate(&request_text(replace)) {
            Err(e) => e,
            Ok(u) => panic!("expected refusal for {replace:?}, got {u:?}"),
        }
    }

    #[test]
    fn rfc6455_sample_accept_key() {
        assert_eq!(accept_key(KEY.as_bytes()), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn full_valid_upgrade() {
        let text = request_text(&[]);
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let Ok(Parsed::Complete { request, head_len }) =
            parse_request(text.as_bytes(), &mut headers)
        else {
            panic!("incomplete");
        };
        assert_eq!(head_len, text.len());
        assert!(request.wants_websocket());
        let upgrade = validate_upgrade(&request).expect("valid upgrade");
        assert_eq!(upgrade.key, KEY.as_bytes());
        assert_eq!(upgrade.protocols, Some("chat, superchat"));
        assert_eq!(
            upgrade.offered_protocols().collect::<Vec<_>>(),
            ["chat", "superchat"]
        );
        assert_eq!(upgrade.accept_key(), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn lenient_but_valid_variants() {
        // Mixed case tokens, extra whitespace around the key, no protocol header.
        let ok = validate(&request_text(&[
            ("Upgrade: websocket", "upgrade: WebSocket"),
            ("Connection: keep-alive, Upgrade", "connection: UPGRADE"),
            (&format!("Key: {KEY}"), &format!("Key:   {KEY}  ")),
            ("Sec-WebSocket-Protocol: chat, superchat\r\n", ""),
        ]));
        assert_eq!(ok, Ok((KEY.as_bytes().to_vec(), None)));
        // Connection token in a second header.
        let ok = validate(&request_text(&[(
            "Connection: keep-alive, Upgrade",
            "Connection: keep-alive\r\nConnection: upgrade",
        )]));
        assert!(ok.is_ok());
        // Empty protocol header counts as absent.
        let ok = validate(&request_text(&[(
            "Protocol: chat, superchat",
            "Protocol: ",
        )]));
        assert_eq!(ok.map(|(_, p)| p), Ok(None));
    }

    #[test]
    fn refusals_with_exact_status() {
        let missing_upgrade = refused(&[("Upgrade: websocket", "Upgrade: h2c")]);
        assert_eq!(
            missing_upgrade,
            HttpError::BadRequest("missing Upgrade: websocket")
        );
        let no_upgrade_header = refused(&[("Upgrade: websocket\r\n", "")]);
        assert_eq!(no_upgrade_header.status(), 400);

        let no_conn = refused(&[("Connection: keep-alive, Upgrade", "Connection: keep-alive")]);
        assert_eq!(
            no_conn,
            HttpError::BadRequest("missing Connection: upgrade")
        );
        let no_conn_header = refused(&[("Connection: keep-alive, Upgrade\r\n", "")]);
        assert_eq!(
            no_conn_header,
            HttpError::BadRequest("missing Connection: upgrade")
        );

        let no_key = refused(&[(&format!("Sec-WebSocket-Key: {KEY}\r\n"), "")]);
        assert_eq!(no_key, HttpError::BadRequest("missing Sec-WebSocket-Key"));
        let dup_key = refused(&[(
            &format!("Sec-WebSocket-Key: {KEY}\r\n"),
            &format!("Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Key: {KEY}\r\n"),
        )]);
        assert_eq!(
            dup_key,
            HttpError::BadRequest("duplicate Sec-WebSocket-Key")
        );

        let invalid_key = HttpError::BadRequest("invalid Sec-WebSocket-Key");
        for bad in [
            "dGhlIHNhbXBsZSBub25jZQ=",   // 23 chars
            "dGhlIHNhbXBsZSBub25jZQ===", // 25 chars
            "dGhlIHNhbXBsZSBub25jZQ",    // no padding
            "dGhlIHNhbXBsZSBub25jZSE=",  // 24 chars but 17 bytes
            "dGhlIHNhbXBsZSBub25jZ-==",  // url-safe alphabet
            "dGhlIHNhbX BsZSBub25jZQ==", // inner space
            "c2hvcnQ=",                  // "short"
        ] {
            let got = refused(&[(KEY, bad)]);
            assert_eq!(got, invalid_key, "key {bad:?}");
        }

        let v12 = refused(&[("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 12")]);
        assert_eq!(v12, HttpError::UnsupportedVersion);
        assert_eq!(v12.status(), 426);
        let response = Response::from_error(&v12);
        assert_eq!(response.status, 426);
        assert!(response
            .headers
            .iter()
            .any(|(n, v)| n == "Sec-WebSocket-Version" && v == "13"));
        let no_version = refused(&[("Sec-WebSocket-Version: 13\r\n", "")]);
        assert_eq!(no_version, HttpError::UnsupportedVersion);
        let list_version = refused(&[("Version: 13", "Version: 13, 8")]);
        assert_eq!(list_version, HttpError::UnsupportedVersion);

        let post = refused(&[("GET /gateway", "POST /gateway")]);
        assert_eq!(
            post,
            HttpError::BadRequest("websocket upgrade requires GET")
        );
        assert_eq!(post.status(), 400);

        let http10 = refused(&[("HTTP/1.1", "HTTP/1.0")]);
        assert_eq!(
            http10,
            HttpError::BadRequest("websocket upgrade requires HTTP/1.1")
        );

        let bad_proto = validate(&request_text(&[("chat, superchat", "ch\u{e9}")]));
        assert!(bad_proto.is_ok(), "UTF-8 protocol bytes are passed through");
    }

    #[test]
    fn non_utf8_protocol_is_400() {
        let mut bytes = request_text(&[("chat, superchat", "PROTO")]).into_bytes();
        let at = bytes
            .windows(5)
            .position(|w| w == b"PROTO")
            .expect("marker");
        bytes[at] = 0xFF;
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let Ok(Parsed::Complete { request, .. }) = parse_request(&bytes, &mut headers) else {
            panic!("incomplete");
        };
        assert_eq!(
            validate_upgrade(&request),
            Err(HttpError::BadRequest("invalid Sec-WebSocket-Protocol"))
        );
    }

    #[test]
    fn key_shape() {
        assert!(is_valid_key(KEY.as_bytes()));
        assert!(is_valid_key(b"AAAAAAAAAAAAAAAAAAAAAA=="));
        assert!(is_valid_key(b"+/+/+/+/+/+/+/+/+/+/+/=="));
        assert!(!is_valid_key(b"AAAAAAAAAAAAAAAAAAAAA==="));
        assert!(!is_valid_key(b""));
    }
}
