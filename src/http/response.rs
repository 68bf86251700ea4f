//! Owned responses and their serialisation, including the `101 Switching Protocols` answer.
//!
//! Header names must be HTTP tokens and values must not contain CR, LF or NUL; any header
//! breaking that rule is silently dropped, so application input can never split a response.
//! Framing headers (`Content-Length`, `Transfer-Encoding`, `Connection`) are always written
//! by this module and dropped if the application supplies them.

use super::HttpError;

/// The standard reason phrase for a status code (`404` → `"Not Found"`), or `"Unknown"` for
/// codes this server has no business sending.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        413 => "Payload Too Large",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// An owned HTTP response: what an application returns for a plain request or to refuse an
/// upgrade, serialised by `write_response`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code; outside `100..=999` it is written as 500.
    pub status: u16,
    /// Extra headers in order (framing headers are added by `write_response`).
    pub headers: Vec<(String, String)>,
    /// The body; its length becomes `Content-Length`.
    pub body: Vec<u8>,
}

impl Response {
    /// A response with `status`, no headers and an empty body.
    pub fn new(status: u16) -> Self {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A `text/plain; charset=utf-8` response.
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Response::new(status)
            .header("Content-Type", "text/plain; charset=utf-8")
            .body(body.into().into_bytes())
    }

    /// An `application/json` response (the body is taken as already-serialised JSON).
    pub fn json(status: u16, body: impl Into<String>) -> Self {
        Response::new(status)
            .header("Content-Type", "application/json")
            .body(body.into().into_bytes())
    }

    /// Appends a header (builder style).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Replaces the body (builder style).
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// The response refusing with `err`: its status and its reason as a text body, plus
    /// `Sec-WebSocket-Version: 13` for [`HttpError::UnsupportedVersion`] (426), as RFC 6455
    /// requires.
    pub fn from_error(err: &HttpError) -> Self {
        let response = Response::text(err.status(), err.reason());
        match err {
            HttpError::UnsupportedVersion => response.header("Sec-WebSocket-Version", "13"),
            _ => response,
        }
    }
}

impl From<&HttpError> for Response {
    fn from(err: &HttpError) -> Self {
        Response::from_error(err)
    }
}

/// Whether `name` is a non-empty HTTP token (RFC 9110 `tchar`s only).
fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Whether `value` is safe to write as a header value (no CR, LF or NUL).
fn is_safe_value(value: &str) -> bool {
    !value.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0))
}

/// Appends `name: value\r\n` if both are safe, dropping it otherwise or when `name` is one of
/// `reserved` (headers this module writes itself).
fn push_header(out: &mut Vec<u8>, name: &str, value: &str, reserved: &[&str]) {
    if !is_token(name)
        || !is_safe_value(value)
        || reserved.iter().any(|r| r.eq_ignore_ascii_case(name))
    {
        return;
    }
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Appends the status line `HTTP/1.1 <status> <reason>\r\n`.
fn push_status_line(out: &mut Vec<u8>, status: u16) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(reason_phrase(status).as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Serialises `response` onto the end of `out`: the status line, the application's headers
/// (unsafe or framing ones dropped), `Content-Length`, `Connection: keep-alive` or
/// `Connection: close` per `keep_alive`, a blank line, then the body.
///
/// A status outside `100..=999` is written as 500. For 1xx, 204 and 304 no `Content-Length`
/// and no body are written, as those responses cannot carry one.
pub fn write_response(out: &mut Vec<u8>, response: &Response, keep_alive: bool) {
    let status = if (100..=999).contains(&response.status) {
        response.status
    } else {
        500
    };
    push_status_line(out, status);
    const FRAMING: &[&str] = &["content-length", "transfer-encoding", "connection"];
    for (name, value) in &response.headers {
        push_header(out, name, value, FRAMING);
    }
    let has_body = !matches!(status, 100..=199 | 204 | 304);
    if has_body {
        out.extend_from_slice(b"Content-Length: ");
        out.extend_from_slice(response.body.len().to_string().as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(if keep_alive {
        b"Connection: keep-alive\r\n\r\n"
    } else {
        b"Connection: close\r\n\r\n"
    });
    if has_body {
        out.extend_from_slice(&response.body);
    }
}

/// Appends the `101 Switching Protocols` answer to an upgrade: `Upgrade: websocket`,
/// `Connection: Upgrade`, `Sec-WebSocket-Accept: <accept>`, then `extra_headers` (e.g. the
/// chosen `Sec-WebSocket-Protocol`) and the blank line. Extra headers that are unsafe (see
/// the module notes) or that would duplicate the handshake or framing headers are dropped;
/// an `accept` containing CR/LF (impossible from [`super::accept_key`]) is dropped too, which
/// makes the client fail the handshake rather than the response split.
pub fn write_switching_protocols(
    out: &mut Vec<u8>,
    accept: &str,
    extra_headers: &[(String, String)],
) {
    push_status_line(out, 101);
    out.extend_from_slice(b"Upgrade: websocket\r\nConnection: Upgrade\r\n");
    push_header(out, "Sec-WebSocket-Accept", accept, &[]);
    const RESERVED: &[&str] = &[
        "upgrade",
        "connection",
        "sec-websocket-accept",
        "content-length",
        "transfer-encoding",
    ];
    for (name, value) in extra_headers {
        push_header(out, name, value, RESERVED);
    }
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(response: &Response, keep_alive: bool) -> String {
        let mut out = b"prefix|".to_vec();
        write_response(&mut out, response, keep_alive);
        let text = String::from_utf8(out).expect("utf8");
        text.strip_prefix("prefix|").expect("appends").to_owned()
    }

    #[test]
    fn reason_phrases() {
        for (code, phrase) in [
            (101, "Switching Protocols"),
            (200, "OK"),
            (201, "Created"),
            (204, "No Content"),
            (400, "Bad Request"),
            (401, "Unauthorized"),
            (403, "Forbidden"),
            (404, "Not Found"),
            (405, "Method Not Allowed"),
            (409, "Conflict"),
            (411, "Length Required"),
            (413, "Payload Too Large"),
            (426, "Upgrade Required"),
            (429, "Too Many Requests"),
            (431, "Request Header Fields Too Large"),
            (500, "Internal Server Error"),
            (503, "Service Unavailable"),
            (418, "Unknown"),
            (0, "Unknown"),
        ] {
            assert_eq!(reason_phrase(code), phrase);
        }
    }

    #[test]
    fn write_text_response_byte_exact() {
        assert_eq!(
            written(&Response::text(404, "no such room"), false),
            "HTTP/1.1 404 Not Found\r\n\
             Content-Type: text/plain; charset=utf-8\r\n\
             Content-Length: 12\r\n\
             Connection: close\r\n\
             \r\n\
             no such room"
        );
        assert_eq!(
            written(&Response::new(200), true),
            "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n"
        );
    }

    #[test]
    fn write_json_with_headers() {
        let r = Response::json(201, r#"{"id":1}"#).header("X-Request-Id", "abc");
        assert_eq!(
            written(&r, true),
            "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nX-Request-Id: abc\r\n\
             Content-Length: 8\r\nConnection: keep-alive\r\n\r\n{\"id\":1}"
        );
    }

    #[test]
    fn no_body_statuses_and_bad_status() {
        let r = Response::text(204, "ignored");
        assert_eq!(written(&r, true), "HTTP/1.1 204 No Content\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: keep-alive\r\n\r\n");
        assert!(
            written(&Response::new(7), false).starts_with("HTTP/1.1 500 Internal Server Error\r\n")
        );
        assert!(written(&Response::new(1000), false).starts_with("HTTP/1.1 500 "));
        assert!(written(&Response::new(599), false).starts_with("HTTP/1.1 599 Unknown\r\n"));
    }

    #[test]
    fn crlf_injection_dropped() {
        let r = Response::new(200)
            .header("X-Ok", "fine")
            .header("X-Evil", "a\r\nSet-Cookie: pwned=1")
            .header("X-Evil-LF", "a\nb")
            .header("X-Evil-CR", "a\rb")
            .header("X-Nul", "a\0b")
            .header("X-Bad\r\nName", "v")
            .header("Bad Name", "v")
            .header("Bad:Name", "v")
            .header("", "v")
            .header("Content-Length", "999")
            .header("transfer-encoding", "chunked")
            .header("Connection", "upgrade");
        assert_eq!(
            written(&r, false),
            "HTTP/1.1 200 OK\r\nX-Ok: fine\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
    }

    #[test]
    fn from_error_responses() {
        let r = Response::from_error(&HttpError::UnsupportedVersion);
        assert_eq!(r.status, 426);
        assert_eq!(
            r.headers,
            vec![
                (
                    "Content-Type".to_owned(),
                    "text/plain; charset=utf-8".to_owned()
                ),
                ("Sec-WebSocket-Version".to_owned(), "13".to_owned()),
            ]
        );
        assert_eq!(r.body, HttpError::UnsupportedVersion.reason().as_bytes());
        let r = Response::from(&HttpError::BadRequest("websocket upgrade requires GET"));
        assert_eq!(r.status, 400);
        assert_eq!(r.body, b"websocket upgrade requires GET");
        assert_eq!(r.headers.len(), 1);
        assert_eq!(
            Response::from_error(&HttpError::HeadersTooLarge).status,
            431
        );
    }

    #[test]
    fn switching_protocols_byte_exact() {
        let mut out = Vec::new();
        let extra = vec![
            ("Sec-WebSocket-Protocol".to_owned(), "chat".to_owned()),
            ("X-Evil".to_owned(), "x\r\n\r\nHTTP/1.1 200 OK".to_owned()),
            ("Connection".to_owned(), "close".to_owned()),
            ("sec-websocket-accept".to_owned(), "forged".to_owned()),
        ];
        write_switching_protocols(&mut out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", &extra);
        assert_eq!(
            String::from_utf8(out).expect("utf8"),
            "HTTP/1.1 101 Switching Protocols\r\n\
             Upgrade: websocket\r\n\
             Connection: Upgrade\r\n\
             Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
             Sec-WebSocket-Protocol: chat\r\n\
             \r\n"
        );
        let mut out = Vec::new();
        write_switching_protocols(&mut out, "bad\r\nX: y", &[]);
        assert_eq!(
            out,
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
        );
    }
}
