//! The rows every server shares: WebSocket framing (RFC 6455) and the HTTP phase, both
//! refused by the reactor before any application sees them, and JSON nesting inputs.

use super::Row;
use crate::support::{close_frame, frame, masked, CLOSE, CONT, PING, TEXT};

/// A masked frame with a fixed key.
pub fn fr(fin: bool, rsv: u8, opcode: u8, payload: &[u8]) -> Vec<u8> {
    frame(fin, rsv, opcode, payload, Some([0x0F, 0xA5, 0x3C, 0x96]))
}

/// A masked Close frame with a raw payload.
pub fn close_raw(payload: &[u8]) -> Vec<u8> {
    masked(CLOSE, payload)
}

/// The WebSocket framing rows for a server whose largest message is `limit` bytes.
pub fn transport_rows(limit: usize) -> Vec<Row> {
    let over = limit + 1;
    // The header alone of a text frame announcing `over` bytes, and a little of its body:
    // the limit is enforced from the header.
    let mut announce = vec![0x81, 0x80 | 127];
    announce.extend_from_slice(&(over as u64).to_be_bytes());
    announce.extend_from_slice(&[1, 2, 3, 4, b'x', b'y']);
    let mut msb = vec![0x82, 0x80 | 127];
    msb.extend_from_slice(&(1u64 << 63).to_be_bytes());
    msb.extend_from_slice(&[1, 2, 3, 4]);
    let mut rows = vec![
        Row::open("unmasked client frame")
            .write(frame(true, 0, TEXT, b"hi", None))
            .close(1002),
        Row::open("RSV1 set")
            .write(fr(true, 4, TEXT, b"hi"))
            .close(1002),
        Row::open("RSV2 set")
            .write(fr(true, 2, TEXT, b"hi"))
            .close(1002),
        Row::open("RSV3 set")
            .write(fr(true, 1, TEXT, b"hi"))
            .close(1002),
        Row::open("reserved data opcode 0x3")
            .write(fr(true, 0, 0x3, b"hi"))
            .close(1002),
        Row::open("reserved data opcode 0x7")
            .write(fr(true, 0, 0x7, b""))
            .close(1002),
        Row::open("reserved control opcode 0xB")
            .write(fr(true, 0, 0xB, b""))
            .close(1002),
        Row::open("reserved control opcode 0xF")
            .write(fr(true, 0, 0xF, b"x"))
            .close(1002),
        Row::open("ping of 126 bytes")
            .write(fr(true, 0, PING, &[b'p'; 126]))
            .close(1002),
        Row::open("close of 126 bytes")
            .write(fr(true, 0, CLOSE, &[3; 126]))
            .close(1002),
        Row::open("fragmented ping")
            .write(fr(false, 0, PING, b"p"))
            .close(1002),
        Row::open("continuation without a start")
            .write(fr(true, 0, CONT, b"x"))
            .close(1002),
        Row::open("new text inside a fragmented one")
            .write([fr(false, 0, TEXT, b"{"), fr(true, 0, TEXT, b"{}")].concat())
            .close(1002),
        Row::open("64-bit length with its top bit set")
            .write(msb)
            .close(1002),
        Row::open(format!("frame header announcing {over} bytes"))
            .write(announce)
            .close(1009),
        Row::open("invalid UTF-8 text")
            .write(fr(true, 0, TEXT, b"{\"x\":\"\xC3\x28\"}"))
            .close(1007),
        Row::open("invalid UTF-8 across fragments")
            .write(
                [
                    fr(false, 0, TEXT, b"{\"x\":\"\xE2\x82"),
                    fr(true, 0, CONT, b"(\"}"),
                ]
                .concat(),
            )
            .close(1007),
        Row::open("text ending inside a UTF-8 sequence")
            .write(fr(true, 0, TEXT, b"{\xF0\x9F\x98"))
            .close(1007),
        Row::open("UTF-8 surrogate U+D800 (ED A0 80)")
            .write(fr(true, 0, TEXT, b"\"\xED\xA0\x80\""))
            .close(1007),
        Row::open("overlong UTF-8 (C0 AF)")
            .write(fr(true, 0, TEXT, b"\"\xC0\xAF\""))
            .close(1007),
        Row::open("UTF-8 above U+10FFFF (F4 90 80 80)")
            .write(fr(true, 0, TEXT, b"\xF4\x90\x80\x80"))
            .close(1007),
        Row::open("close code 1005")
            .write(close_frame(1005, ""))
            .close(1002),
        Row::open("close code 1006")
            .write(close_frame(1006, ""))
            .close(1002),
        Row::open("close code 1015")
            .write(close_frame(1015, ""))
            .close(1002),
        Row::open("close code 999")
            .write(close_frame(999, ""))
            .close(1002),
        Row::open("close code 2999")
            .write(close_frame(2999, ""))
            .close(1002),
        Row::open("close code 5000")
            .write(close_frame(5000, ""))
            .close(1002),
        Row::open("close with a 1-byte payload")
            .write(close_raw(&[0x03]))
            .close(1002),
        Row::open("close reason not UTF-8")
            .write(close_raw(b"\x03\xE8\xFF\xFE"))
            .close(1007),
        Row::open("close without payload is echoed empty")
            .write(close_raw(b""))
            .close_empty(),
        Row::open("close 4999 is echoed")
            .write(close_frame(4999, "bye"))
            .close(4999),
        Row::open("ping of 125 bytes is answered")
            .write(fr(true, 0, PING, &[7; 125]))
            .pong([7; 125]),
        Row::open("ping split byte by byte is answered")
            .trickle(fr(true, 0, PING, b"slow"))
            .pong(b"slow"),
    ];
    if limit <= 64 * 1024 {
        let half = vec![b' '; limit / 2 + 1];
        rows.push(
            Row::open(format!("fragments adding up to {over} bytes"))
                .write([fr(false, 0, TEXT, &half), fr(true, 0, CONT, &half)].concat())
                .close(1009),
        );
    }
    rows
}

/// The HTTP-phase rows, refused by the reactor before any application sees them. `base` is
/// a well-formed upgrade request for the server; the last row sends it byte by byte.
pub fn http_rows(base: &str) -> Vec<Row> {
    let key_line = format!("Sec-WebSocket-Key: {}\r\n", crate::support::KEY);
    let version_line = "Sec-WebSocket-Version: 13\r\n";
    let edit = |from: &str, to: &str| {
        assert!(base.contains(from), "{from:?} not in {base:?}");
        base.replacen(from, to, 1)
    };
    let (line, _) = base.split_once("\r\n").expect("request line");
    let headers = base.strip_prefix(line).unwrap();
    let many: String = (0..65).map(|i| format!("X-H{i}: v\r\n")).collect();
    vec![
        Row::http("upgrade without Sec-WebSocket-Key")
            .write(edit(&key_line, ""))
            .status(400),
        Row::http("Sec-WebSocket-Version: 8")
            .write(edit(version_line, "Sec-WebSocket-Version: 8\r\n"))
            .status_with(426, "sec-websocket-version", "13"),
        Row::http("no Sec-WebSocket-Version")
            .write(edit(version_line, ""))
            .status_with(426, "sec-websocket-version", "13"),
        Row::http("two Sec-WebSocket-Keys")
            .write(edit(&key_line, &format!("{key_line}{key_line}")))
            .status(400),
        Row::http("key with a character outside base64")
            .write(edit(&key_line, "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ*=\r\n"))
            .status(400),
        Row::http("key of 15 bytes")
            .write(edit(
                &key_line,
                "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAA\r\n",
            ))
            .status(400),
        Row::http("upgrade by POST")
            .write(edit("GET ", "POST "))
            .status(400),
        Row::http("upgrade over HTTP/1.0")
            .write(edit(" HTTP/1.1\r\n", " HTTP/1.0\r\n"))
            .status(400),
        Row::http("Upgrade: h2c instead of websocket")
            .write(edit("Upgrade: websocket", "Upgrade: h2c"))
            .status(400),
        Row::http("complete head over 8 KiB")
            .write(edit(
                version_line,
                &format!("{version_line}X-Fill: {}\r\n", "f".repeat(8200)),
            ))
            .status(431),
        Row::http("head still growing past 8 KiB")
            .write(format!("{line}\r\nX-Fill: {}", "f".repeat(9000)))
            .status(431),
        Row::http("65 header fields")
            .write(format!("{line}\r\n{many}\r\n"))
            .status(431),
        Row::http("request target whose %FE does not decode to UTF-8")
            .write(format!("GET /%FE?a=%FF HTTP/1.1{headers}"))
            .status(400)
            .body("request target is not UTF-8 once percent-decoded"),
        Row::http("malformed request line: GARBAGE")
            .write("GARBAGE\r\n\r\n")
            .status(400),
        Row::http("request line without a version")
            .write("GET /\r\n\r\n")
            .status(400),
        Row::http("HTTP/2.0 request line")
            .write(format!("GET / HTTP/2.0{headers}"))
            .status(400),
        Row::http("header without a colon")
            .write(edit("Host: ", "Host "))
            .status(400),
        Row::http("NUL in a header value")
            .write(edit("Host: ", "X-Nul: a\0b\r\nHost: "))
            .status(400),
        Row::http("body over 64 KiB")
            .write("POST /api HTTP/1.1\r\nHost: x\r\nContent-Length: 65537\r\n\r\n")
            .status(413),
        Row::http("Content-Length beyond 64 bits")
            .write(
                "POST /api HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n",
            )
            .status(413),
        Row::http("Content-Length and Transfer-Encoding (smuggling)")
            .write("POST /api HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
            .status(411),
        Row::http("obsolete line folding")
            .write(edit("Host: ", "X-Folded: a\r\n b\r\nHost: "))
            .status(400),
        Row::http("chunked body")
            .write("POST /api HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
            .status(411),
        Row::http("Content-Length not a number")
            .write("POST /api HTTP/1.1\r\nHost: x\r\nContent-Length: 1e3\r\n\r\n")
            .status(400),
        Row::http("conflicting Content-Lengths")
            .write(
                "POST /api HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
            )
            .status(400),
        Row::http("handshake split byte by byte")
            .trickle(base)
            .status(101),
    ]
}

// ---------------------------------------------------------------------------------------
// JSON inputs that every protocol meets

/// `n` opening brackets and no closing one (fits in `n` bytes).
pub fn unclosed(n: usize) -> String {
    "[".repeat(n)
}

/// `n` nested arrays, closed.
pub fn nested(n: usize) -> String {
    format!("{}{}", "[".repeat(n), "]".repeat(n))
}
