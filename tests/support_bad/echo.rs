//! The echo reactor's matrix: the transport and HTTP rows every server shares, plus rows
//! whose answer is an echo, and an observer that keeps echoing throughout.

use super::{fr, Protocol, Row};
use crate::support::{close_frame, masked, upgrade_request, Raw, CONT, PING, PONG, TEXT};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The echo reactor: any path, no greeting, no identify.
pub struct EchoWire;

impl Protocol for EchoWire {
    fn upgrade(&self, _: usize) -> String {
        upgrade_request("/", "")
    }
    fn opened(&self, _: &mut Raw) -> Option<String> {
        None
    }
}

/// Rows answered by an echo (or, for plain HTTP, by the default `on_http`).
pub fn rows() -> Vec<Row> {
    let full = "é".repeat(2048);
    vec![
        Row::open("text split byte by byte is echoed")
            .trickle(masked(TEXT, b"hello"))
            .answer("hello"),
        Row::open("empty text is echoed").text("").answer(""),
        Row::open("text of exactly 4096 bytes is echoed")
            .text(&full)
            .answer(full.as_str()),
        Row::open("fragments with a ping between are reassembled")
            .write(
                [
                    fr(false, 0, TEXT, "H\u{e9}".as_bytes()),
                    fr(true, 0, PING, b"mid"),
                ]
                .concat(),
            )
            .write(fr(true, 0, CONT, b"llo"))
            .pong(b"mid")
            .answer("Héllo"),
        Row::open("UTF-8 split across fragments is fine")
            .write([fr(false, 0, TEXT, b"\xE2\x82"), fr(true, 0, CONT, b"\xAC")].concat())
            .answer("€"),
        Row::open("an unsolicited pong is ignored")
            .write(fr(true, 0, PONG, b"?"))
            .text("after")
            .answer("after"),
        Row::open("data after our Close is ignored")
            .write([close_frame(1000, ""), masked(TEXT, b"late")].concat())
            .close(1000),
        Row::http("an upgrade and its first frame in one segment")
            .write([upgrade_request("/", "").as_bytes(), &masked(TEXT, b"first")].concat())
            .status(101)
            .answer("first"),
        Row::open("1,024 frames, 1,022 of them empty, make one message")
            .write(fr(false, 0, TEXT, b"a"))
            .write(fr(false, 0, CONT, b"").repeat(1_022))
            .write(fr(true, 0, CONT, b"b"))
            .answer("ab"),
        Row::open("10,000 empty fragments: the 1,025th frame is closed 1008")
            .write(fr(false, 0, TEXT, b"a"))
            .write(fr(false, 0, CONT, b"").repeat(10_000))
            .write(fr(true, 0, CONT, b"b"))
            .close_because(1008, "too many fragments"),
        Row::open("a close in the middle of a fragmented message")
            .write([fr(false, 0, TEXT, b"half"), close_frame(1000, "")].concat())
            .close(1000),
        Row::http("plain GET / is 426 with Upgrade: websocket")
            .write("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .status_with(426, "upgrade", "websocket"),
        Row::http("plain GET elsewhere is 404")
            .write("GET /nothing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .status(404),
    ]
}

/// Echoes numbered messages (and a ping every tenth) until stopped; returns how many.
pub fn observe(addr: std::net::SocketAddr, stop: &AtomicBool) -> usize {
    let mut raw = Raw::websocket(addr);
    let mut n = 0;
    while !stop.load(Ordering::Acquire) || n < super::AT_LEAST {
        let text = format!("observer message {n}");
        raw.send(&masked(TEXT, text.as_bytes()));
        let echo = raw.read_frame().expect("the observer's echo");
        assert_eq!(
            (echo.opcode, echo.payload),
            (TEXT, text.into_bytes()),
            "echo {n}"
        );
        if n % 10 == 0 {
            raw.send(&masked(PING, b"obs"));
            let pong = raw.read_frame().expect("the observer's pong");
            assert_eq!((pong.opcode, pong.payload.as_slice()), (PONG, &b"obs"[..]));
        }
        n += 1;
        std::thread::sleep(Duration::from_millis(2));
    }
    raw.send(&close_frame(1000, "done"));
    raw.expect_close(1000);
    raw.read_to_eof(Duration::from_secs(3));
    n
}
