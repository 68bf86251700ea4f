//! Parsing a request head in place, and the questions asked of it.

use std::borrow::Cow;

use super::query::{find_param, target_decodes};
use super::HttpError;

/// The number of header fields a request may carry; a header array of this size passed to
/// [`parse_request`] makes a request with more fields fail with
/// [`HttpError::HeadersTooLarge`] (431). Browsers send well under this.
pub const MAX_HEADERS: usize = 64;

/// A parsed request head, borrowing the caller's read buffer (`'b`) and header array (`'h`) so
/// that parsing copies nothing. Produced by `parse_request`.
#[derive(Debug, Clone, Copy)]
pub struct Request<'h, 'b> {
    method: &'b str,
    target: &'b str,
    version_minor: u8,
    headers: &'h [httparse::Header<'b>],
}

/// The outcome of [`parse_request`] on the bytes received so far.
#[derive(Debug)]
pub enum Parsed<'h, 'b> {
    /// The head is not complete yet: read more bytes and parse again from the start of the
    /// buffer (the caller enforces its head-size cap and answers 431 when it is reached).
    Partial,
    /// The head is complete.
    Complete {
        /// The parsed head.
        request: Request<'h, 'b>,
        /// Length of the head in bytes, including the final blank line; any body starts here.
        head_len: usize,
    },
}

/// Parses an HTTP/1.x request head from the start of `buf` into `headers`, normally
/// `[httparse::EMPTY_HEADER; MAX_HEADERS]` (the array length is the header-count limit).
///
/// Returns [`Parsed::Partial`] while the head is incomplete. A malformed head is
/// [`HttpError::BadRequest`] (400) with a reason naming the offending part; more header
/// fields than `headers` can hold is [`HttpError::HeadersTooLarge`] (431). Only HTTP/1.0 and
/// HTTP/1.1 are accepted (httparse rejects other versions as malformed). A target with a
/// path segment or query component that does not percent-decode to UTF-8 (`%FE`) is 400
/// too, so that decoding is never lossy (see [`super::percent_decode`]).
pub fn parse_request<'h, 'b>(
    buf: &'b [u8],
    headers: &'h mut [httparse::Header<'b>],
) -> Result<Parsed<'h, 'b>, HttpError> {
    let mut req = httparse::Request::new(headers);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Partial) => return Ok(Parsed::Partial),
        Ok(httparse::Status::Complete(n)) => n,
        Err(e) => return Err(map_parse_error(e)),
    };
    let httparse::Request {
        method,
        path,
        version,
        headers,
    } = req;
    match (method, path, version) {
        (Some(_), Some(target), Some(_)) if !target_decodes(target) => Err(HttpError::BadRequest(
            "request target is not UTF-8 once percent-decoded",
        )),
        (Some(method), Some(target), Some(version_minor)) => Ok(Parsed::Complete {
            request: Request {
                method,
                target,
                version_minor,
                headers,
            },
            head_len,
        }),
        _ => Err(HttpError::BadRequest("malformed request line")),
    }
}

/// Maps an httparse error to ours, with a reason saying which part was malformed.
fn map_parse_error(e: httparse::Error) -> HttpError {
    match e {
        httparse::Error::TooManyHeaders => HttpError::HeadersTooLarge,
        httparse::Error::HeaderName => HttpError::BadRequest("malformed header name"),
        httparse::Error::HeaderValue => HttpError::BadRequest("malformed header value"),
        httparse::Error::NewLine => HttpError::BadRequest("malformed line ending"),
        httparse::Error::Token => HttpError::BadRequest("malformed request line"),
        httparse::Error::Version => HttpError::BadRequest("unsupported or malformed HTTP version"),
        httparse::Error::Status => HttpError::BadRequest("malformed request"),
    }
}

/// Strips optional whitespace (SP / HTAB) from both ends of a header value.
pub(crate) fn trim_ows(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

/// The comma-separated elements of a header value, trimmed, empty elements skipped.
pub(crate) fn list_elements(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(trim_ows)
        .filter(|e| !e.is_empty())
}

impl<'h, 'b> Request<'h, 'b> {
    /// The request method, e.g. `GET` (case-sensitive, as sent).
    pub fn method(&self) -> &'b str {
        self.method
    }

    /// The raw request target as sent, e.g. `/gateway?roomId=1`.
    pub fn target(&self) -> &'b str {
        self.target
    }

    /// The target before any `?` (not percent-decoded; see [`super::percent_decode`]).
    pub fn path(&self) -> &'b str {
        match self.target.split_once('?') {
            Some((path, _)) => path,
            None => self.target,
        }
    }

    /// The target after the first `?`, or `""` if there is none.
    pub fn query(&self) -> &'b str {
        match self.target.split_once('?') {
            Some((_, query)) => query,
            None => "",
        }
    }

    /// The first value of query parameter `name`, percent-decoded with `+` as space (invalid
    /// escapes kept literally); `None` if absent. `?a=` and `?a` both give `Some("")`.
    /// Borrowed from the buffer when nothing needed decoding. Exact: `parse_request`
    /// refused any target with a component that does not decode to UTF-8.
    pub fn query_param(&self, name: &str) -> Option<Cow<'b, str>> {
        find_param(self.query(), name).and_then(Result::ok)
    }

    /// The HTTP minor version: 1 for HTTP/1.1, 0 for HTTP/1.0.
    pub fn version_minor(&self) -> u8 {
        self.version_minor
    }

    /// The header slice with the lifetime of `&self`, so iterators over it capture only that.
    fn fields(&self) -> &[httparse::Header<'b>] {
        self.headers
    }

    /// The raw value of the first header named `name` (case-insensitive), as httparse
    /// delimited it (surrounding whitespace already dropped).
    pub fn header(&self, name: &str) -> Option<&'b [u8]> {
        self.header_values(name).next()
    }

    /// The first header named `name` (case-insensitive) as a string with surrounding
    /// whitespace trimmed; `None` if absent or not valid UTF-8.
    pub fn header_str(&self, name: &str) -> Option<&'b str> {
        std::str::from_utf8(trim_ows(self.header(name)?)).ok()
    }

    /// The raw values of every header named `name` (case-insensitive), in order: repeated
    /// fields are one comma-separated list semantically, so list-valued lookups use this.
    pub fn header_values<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'b [u8]> + 's {
        self.fields()
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    }

    /// Every header field as `(name, raw value)`, in the order received.
    pub fn headers(&self) -> impl Iterator<Item = (&'b str, &'b [u8])> + '_ {
        self.fields().iter().map(|h| (h.name, h.value))
    }

    /// Whether any `name` header's comma-separated elements include `token`
    /// (case-insensitive), e.g. `has_token("connection", "upgrade")`.
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.header_values(name)
            .flat_map(list_elements)
            .any(|e| e.eq_ignore_ascii_case(token.as_bytes()))
    }

    /// The body size declared by `Content-Length`: `Ok(0)` if absent.
    ///
    /// Any `Transfer-Encoding` is [`HttpError::LengthRequired`] (411): only `Content-Length`
    /// bodies are accepted, which also rules out the TE/CL request-smuggling ambiguity.
    /// A value that is not plain decimal digits, or repeated values that disagree, is
    /// [`HttpError::BadRequest`] (identical repeats such as `5, 5` are accepted, per RFC 9110).
    /// A value too big for a `usize` is [`HttpError::PayloadTooLarge`].
    pub fn content_length(&self) -> Result<usize, HttpError> {
        if self.header("transfer-encoding").is_some() {
            return Err(HttpError::LengthRequired);
        }
        let mut length: Option<usize> = None;
        for value in self.header_values("content-length") {
            // Split by hand (not `list_elements`) so that empty elements are errors.
            for element in value.split(|&b| b == b',').map(trim_ows) {
                let n = parse_decimal(element)?;
                match length {
                    Some(prev) if prev != n => {
                        return Err(HttpError::BadRequest("conflicting Content-Length values"))
                    }
                    _ => length = Some(n),
                }
            }
        }
        Ok(length.unwrap_or(0))
    }

    /// Whether the client wants the connection kept open after this request: for HTTP/1.1
    /// unless a `Connection` header has the `close` token; for HTTP/1.0 only with a
    /// `keep-alive` token (and no `close`).
    pub fn keep_alive(&self) -> bool {
        if self.has_token("connection", "close") {
            return false;
        }
        self.version_minor >= 1 || self.has_token("connection", "keep-alive")
    }

    /// Whether the request asks for a WebSocket upgrade at all: an `Upgrade` header whose
    /// comma-separated tokens include `websocket` (case-insensitive). Such a request goes to
    /// `super::validate_upgrade`; others are plain HTTP requests.
    pub fn wants_websocket(&self) -> bool {
        self.has_token("upgrade", "websocket")
    }

    /// Whether the request is an attempt at a WebSocket upgrade, well-formed or not: it asks
    /// for `Upgrade: websocket`, or carries `Sec-WebSocket-Key` or `Sec-WebSocket-Version`.
    /// Such a request is validated (and refused with 400/426 when broken) rather than served
    /// as plain HTTP.
    pub fn attempts_websocket(&self) -> bool {
        self.wants_websocket()
            || self.header("sec-websocket-key").is_some()
            || self.header("sec-websocket-version").is_some()
    }
}

/// Parses a non-empty run of ASCII digits (no sign, no whitespace) into a `usize`.
fn parse_decimal(digits: &[u8]) -> Result<usize, HttpError> {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(HttpError::BadRequest("malformed Content-Length"));
    }
    digits.iter().try_fold(0usize, |acc, &d| {
        acc.checked_mul(10)
            .and_then(|acc| acc.checked_add(usize::from(d - b'0')))
            .ok_or(HttpError::PayloadTooLarge)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &[u8] = b"GET /gateway?roomId=1&v=9 HTTP/1.1\r\n\
        Host: example.com\r\n\
        Upgrade: websocket\r\n\
        Connection: Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Sec-WebSocket-Version: 13\r\n\
        \r\n";

    /// Parses `buf` (which must be a complete head) and runs `f` on the request.
    fn with_request<T>(buf: &[u8], f: impl FnOnce(Request<'_, '_>) -> T) -> T {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        match parse_request(buf, &mut headers) {
            Ok(Parsed::Complete { request, .. }) => f(request),
            other => panic!("expected a complete request, got {other:?}"),
        }
    }

    fn parse_err(buf: &[u8]) -> HttpError {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        match parse_request(buf, &mut headers) {
            Err(e) => e,
            other => panic!("expected an error, got {other:?}"),
        }
    }

    fn head(extra: &str) -> Vec<u8> {
        format!("POST /x HTTP/1.1\r\nHost: h\r\n{extra}\r\n").into_bytes()
    }

    #[test]
    fn complete_request_fields() {
        let mut buf = VALID.to_vec();
        buf.extend_from_slice(b"trailing body bytes");
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let Ok(Parsed::Complete { request, head_len }) = parse_request(&buf, &mut headers) else {
            panic!("not complete");
        };
        assert_eq!(head_len, VALID.len());
        assert_eq!(request.method(), "GET");
        assert_eq!(request.target(), "/gateway?roomId=1&v=9");
        assert_eq!(request.path(), "/gateway");
        assert_eq!(request.query(), "roomId=1&v=9");
        assert_eq!(request.version_minor(), 1);
        assert_eq!(request.header("HOST"), Some(&b"example.com"[..]));
        assert_eq!(request.header_str("sec-websocket-version"), Some("13"));
        assert_eq!(request.header("missing"), None);
        assert_eq!(request.headers().count(), 5);
        assert_eq!(
            request.headers().next(),
            Some(("Host", &b"example.com"[..]))
        );
        assert!(request.wants_websocket());
        assert!(request.keep_alive());
        assert_eq!(request.content_length(), Ok(0));
    }

    #[test]
    fn partial_at_every_split_point() {
        for end in 0..VALID.len() {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            match parse_request(&VALID[..end], &mut headers) {
                Ok(Parsed::Partial) => {}
                other => panic!("prefix of {end} bytes: expected Partial, got {other:?}"),
            }
        }
        with_request(VALID, |r| assert_eq!(r.method(), "GET"));
    }

    #[test]
    fn too_many_headers_is_431() {
        let mut buf = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            buf.extend_from_slice(format!("X-H{i}: v\r\n").as_bytes());
        }
        buf.extend_from_slice(b"\r\n");
        assert_eq!(parse_err(&buf), HttpError::HeadersTooLarge);
        assert_eq!(parse_err(&buf).status(), 431);
        // Exactly MAX_HEADERS fields is fine.
        let mut ok = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..MAX_HEADERS {
            ok.extend_from_slice(format!("X-H{i}: v\r\n").as_bytes());
        }
        ok.extend_from_slice(b"\r\n");
        with_request(&ok, |r| assert_eq!(r.headers().count(), MAX_HEADERS));
    }

    #[test]
    fn malformed_heads_are_400() {
        for bad in [
            &b"GET\r\n\r\n"[..],
            b"GET / HTTP/1.1 extra\r\n\r\n",
            b"GET  / HTTP/1.1\r\n\r\n",
            b"GET / HTTP/2.0\r\n\r\n",
            b"GET / FTP/1.1\r\n\r\n",
            b"G(T / HTTP/1.1\r\n\r\n",
            b"GET /a b HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nBad Name: v\r\n\r\n",
            b"GET / HTTP/1.1\r\nName: v\x00x\r\n\r\n",
            b"GET / HTTP/1.1\r\n folded: v\r\n\r\n",
            b"GET / HTTP/1.1\r\nNoColon\r\n\r\n",
            b"GET / HTTP/1.1\rX\n\r\n",
        ] {
            let err = parse_err(bad);
            assert_eq!(
                err.status(),
                400,
                "{:?} -> {err:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn http10_and_target_forms() {
        with_request(b"GET / HTTP/1.0\r\n\r\n", |r| {
            assert_eq!(r.version_minor(), 0);
            assert_eq!(r.path(), "/");
            assert_eq!(r.query(), "");
        });
        with_request(b"GET /p? HTTP/1.1\r\n\r\n", |r| {
            assert_eq!(r.path(), "/p");
            assert_eq!(r.query(), "");
            assert_eq!(r.query_param("x"), None);
        });
        with_request(b"GET /p?a=1?b HTTP/1.1\r\n\r\n", |r| {
            assert_eq!(r.query(), "a=1?b");
            assert_eq!(r.query_param("a").as_deref(), Some("1?b"));
        });
    }

    #[test]
    fn query_params() {
        let buf =
            b"GET /gw?roomId=42&name=a%20b+c&e=&flag&bad=%zz%4&u=%EF%BF%BD&roomId=7 HTTP/1.1\r\n\r\n";
        with_request(buf, |r| {
            assert_eq!(r.query_param("roomId").as_deref(), Some("42"));
            assert!(matches!(r.query_param("roomId"), Some(Cow::Borrowed(_))));
            assert_eq!(r.query_param("name").as_deref(), Some("a b c"));
            assert_eq!(r.query_param("e").as_deref(), Some(""));
            assert_eq!(r.query_param("flag").as_deref(), Some(""));
            assert_eq!(r.query_param("bad").as_deref(), Some("%zz%4"));
            assert_eq!(r.query_param("u").as_deref(), Some("\u{FFFD}"));
            assert_eq!(r.query_param("absent"), None);
            assert_eq!(r.query_param("ROOMID"), None);
        });
    }

    #[test]
    fn a_target_that_does_not_decode_to_utf8_is_400() {
        let why = HttpError::BadRequest("request target is not UTF-8 once percent-decoded");
        for target in [
            "/gateway?roomId=%FE&participantId=p",
            "/gateway?roomId=r&participantId=%FF",
            "/rooms/%FE/participants/p",
            "/rooms/r/participants/a%C3",
            "/x?%FF=1",
        ] {
            let buf = format!("GET {target} HTTP/1.1\r\nHost: h\r\n\r\n");
            assert_eq!(parse_err(buf.as_bytes()), why, "{target}");
        }
        let raw = b"GET /x?a=\xFE HTTP/1.1\r\nHost: h\r\n\r\n";
        assert_eq!(parse_err(raw).status(), 400, "a raw non-UTF-8 byte");
        with_request(b"GET /r/%EF%BF%BD?a=%zz HTTP/1.1\r\n\r\n", |r| {
            assert_eq!(r.query_param("a").as_deref(), Some("%zz"));
        });
    }

    #[test]
    fn header_lookup_details() {
        let buf = b"GET / HTTP/1.1\r\nX-A: \t one \t\r\nx-a: two\r\nX-Bin: \xff\xfe\r\n\r\n";
        with_request(buf, |r| {
            assert_eq!(r.header_str("x-a"), Some("one"));
            let all: Vec<_> = r.header_values("X-A").collect();
            assert_eq!(all.len(), 2);
            assert_eq!(r.header("x-bin"), Some(&b"\xff\xfe"[..]));
            assert_eq!(r.header_str("x-bin"), None);
        });
    }

    #[test]
    fn content_length_variants() {
        let cl = |extra: &str| with_request(&head(extra), |r| r.content_length());
        assert_eq!(cl(""), Ok(0));
        assert_eq!(cl("Content-Length: 0\r\n"), Ok(0));
        assert_eq!(cl("Content-Length: 42\r\n"), Ok(42));
        assert_eq!(cl("content-length:  17 \r\n"), Ok(17));
        assert_eq!(cl("Content-Length: 5\r\nContent-Length: 5\r\n"), Ok(5));
        assert_eq!(cl("Content-Length: 5, 5\r\n"), Ok(5));
        assert_eq!(cl("Content-Length: 007\r\n"), Ok(7));
        let bad = |extra: &str| {
            let got = cl(extra);
            assert!(
                matches!(got, Err(HttpError::BadRequest(_))),
                "{extra:?} -> {got:?}"
            );
        };
        bad("Content-Length: 5\r\nContent-Length: 6\r\n");
        bad("Content-Length: 5, 6\r\n");
        bad("Content-Length: 5,\r\n");
        bad("Content-Length: \r\n");
        bad("Content-Length: -1\r\n");
        bad("Content-Length: +1\r\n");
        bad("Content-Length: 1 2\r\n");
        bad("Content-Length: 0x10\r\n");
        bad("Content-Length: abc\r\n");
        assert_eq!(
            cl("Content-Length: 99999999999999999999999999\r\n"),
            Err(HttpError::PayloadTooLarge)
        );
        assert_eq!(
            cl("Transfer-Encoding: chunked\r\n"),
            Err(HttpError::LengthRequired)
        );
        assert_eq!(
            cl("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n"),
            Err(HttpError::LengthRequired)
        );
        assert_eq!(HttpError::LengthRequired.status(), 411);
    }

    #[test]
    fn keep_alive_variants() {
        let ka = |line: &str| {
            let buf = format!("GET / {line}\r\n");
            with_request(buf.as_bytes(), |r| r.keep_alive())
        };
        assert!(ka("HTTP/1.1\r\n"));
        assert!(ka("HTTP/1.1\r\nConnection: keep-alive\r\n"));
        assert!(ka("HTTP/1.1\r\nConnection: Upgrade\r\n"));
        assert!(!ka("HTTP/1.1\r\nConnection: close\r\n"));
        assert!(!ka("HTTP/1.1\r\nConnection: Upgrade, CLOSE\r\n"));
        assert!(!ka(
            "HTTP/1.1\r\nConnection: upgrade\r\nConnection: close\r\n"
        ));
        assert!(!ka("HTTP/1.0\r\n"));
        assert!(ka("HTTP/1.0\r\nConnection: Keep-Alive\r\n"));
        assert!(!ka("HTTP/1.0\r\nConnection: keep-alive, close\r\n"));
        assert!(ka(
            "HTTP/1.1\r\nX-Connection: close\r\nConnection: closed\r\n"
        ));
    }

    #[test]
    fn wants_websocket_tokens() {
        let ws = |extra: &str| with_request(&head(extra), |r| r.wants_websocket());
        assert!(ws("Upgrade: websocket\r\n"));
        assert!(ws("Upgrade: WebSocket\r\n"));
        assert!(ws("Upgrade: h2c, websocket\r\n"));
        assert!(ws("Upgrade: h2c\r\nUpgrade: websocket\r\n"));
        assert!(!ws(""));
        assert!(!ws("Upgrade: h2c\r\n"));
        assert!(!ws("Upgrade: websockets\r\n"));
        assert!(!ws("Connection: websocket\r\n"));
    }

    #[test]
    fn trim_and_list_helpers() {
        assert_eq!(trim_ows(b" \t a b \t"), b"a b");
        assert_eq!(trim_ows(b"   "), b"");
        assert_eq!(trim_ows(b""), b"");
        let v: Vec<&[u8]> = list_elements(b" a, ,b ,,c").collect();
        assert_eq!(v, vec![&b"a"[..], b"b", b"c"]);
    }
}
