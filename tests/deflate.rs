//! permessage-deflate through the reactor over real sockets: a broadcast shares one
//! compressed frame among the members that negotiated it (and goes plain to the others),
//! and with context takeover allowed both directions keep their windows across messages.
#![cfg(feature = "deflate")]

mod support;

use postern::http::DeflateConfig;
use postern::ws::deflate::{Deflater, Inflater};
use postern::{Accept, App, Config, ConnId, Ctx, Message, Request, SharedFrame};
use support::*;

/// Broadcasts every message it receives to every connection, as one shared frame.
struct Fanout;

impl App for Fanout {
    type Conn = ();
    type Timer = ();
    type Command = ();

    fn on_upgrade(&mut self, _: &mut Ctx<'_, Self>, _: ConnId, _: &Request<'_, '_>) -> Accept<()> {
        Accept::new(())
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, Self>, _: ConnId, message: Message<'_>) {
        let frame = match message {
            Message::Text(t) => SharedFrame::text(t),
            Message::Binary(b) => SharedFrame::binary(b),
        };
        ctx.broadcast_all(&frame);
    }
}

fn server(deflate: DeflateConfig) -> Server<Fanout> {
    let config = Config {
        deflate: Some(deflate),
        ..Config::default()
    };
    spawn(config, Fanout)
}

/// Upgrades with `offer` (if any) as Sec-WebSocket-Extensions; returns the socket and the
/// server's answer.
fn connect(addr: std::net::SocketAddr, offer: Option<&str>) -> (Raw, Option<String>) {
    let mut raw = Raw::connect(addr);
    let extra = offer.map_or(String::new(), |o| {
        format!("Sec-WebSocket-Extensions: {o}\r\n")
    });
    raw.send(upgrade_request("/", &extra).as_bytes());
    let head = raw.read_head().expect("101");
    assert_eq!(status(&head), 101, "{head}");
    let answer = header(&head, "sec-websocket-extensions").map(str::to_owned);
    (raw, answer)
}

fn inflate(inflater: &mut Inflater, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    inflater
        .inflate(payload, true, &mut out, 1 << 20)
        .expect("inflates");
    out
}

#[test]
fn a_broadcast_shares_one_compressed_frame_and_goes_plain_where_not_negotiated() {
    let server = server(DeflateConfig::default());
    let mut members: Vec<(Raw, Option<String>)> = (0..3)
        .map(|_| connect(server.addr, Some("permessage-deflate")))
        .collect();
    members.push(connect(server.addr, None));
    let text = "an event for the whole room, ".repeat(20);
    members[3]
        .0
        .send(&frame(true, 0, 1, text.as_bytes(), Some([1, 2, 3, 4])));
    let mut compressed = Vec::new();
    for (raw, answer) in &mut members {
        let got = raw.read_frame().expect("the broadcast");
        assert_eq!(got.opcode, 1);
        match answer {
            Some(a) => {
                assert!(a.starts_with("permessage-deflate; server_no_context_takeover"));
                assert_eq!(got.rsv, 4, "RSV1 set");
                assert!(got.payload.len() < text.len() / 4, "{}", got.payload.len());
                assert_eq!(
                    inflate(&mut Inflater::new(15, false), &got.payload),
                    text.as_bytes()
                );
                compressed.push(got.payload);
            }
            None => {
                assert_eq!(got.rsv, 0);
                assert_eq!(got.payload, text.as_bytes());
            }
        }
    }
    assert!(
        compressed.windows(2).all(|w| w[0] == w[1]),
        "one compression, shared"
    );
    drop(members);
    server.stop();
}

#[test]
fn context_takeover_when_allowed_keeps_both_windows() {
    let server = server(DeflateConfig {
        server_context_takeover: true,
        client_context_takeover: true,
        ..DeflateConfig::default()
    });
    let (mut raw, answer) = connect(server.addr, Some("permessage-deflate"));
    assert_eq!(answer.as_deref(), Some("permessage-deflate"));
    // The client keeps its window too: its second message refers to its first.
    let mut client_deflater = Deflater::new(6, 15, true);
    let mut server_side = Inflater::new(15, true);
    let text = "the same words again and again, ".repeat(10);
    let mut sizes = Vec::new();
    for _ in 0..2 {
        let mut z = Vec::new();
        client_deflater.compress(text.as_bytes(), &mut z).unwrap();
        raw.send(&frame(true, 4, 1, &z, Some([9, 8, 7, 6])));
        let got = raw.read_frame().expect("echoed broadcast");
        assert_eq!(got.rsv, 4);
        sizes.push(got.payload.len());
        assert_eq!(inflate(&mut server_side, &got.payload), text.as_bytes());
    }
    assert!(
        sizes[1] < sizes[0],
        "the server's second frame refers to its first: {sizes:?}"
    );
    drop(raw);
    server.stop();
}
