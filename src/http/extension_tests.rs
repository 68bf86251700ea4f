use super::*;
use crate::http::{parse_request, Parsed, MAX_HEADERS};

/// Negotiates against an upgrade request carrying `lines` as Sec-WebSocket-Extensions.
fn negotiate(lines: &[&str], config: &DeflateConfig) -> Option<DeflateParams> {
    let mut text = String::from(
        "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n",
    );
    for line in lines {
        text.push_str(&format!("Sec-WebSocket-Extensions: {line}\r\n"));
    }
    text.push_str("\r\n");
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    match parse_request(text.as_bytes(), &mut headers) {
        Ok(Parsed::Complete { request, .. }) => negotiate_deflate(&request, config),
        other => panic!("bad request: {other:?}"),
    }
}

fn answer(lines: &[&str]) -> Option<String> {
    negotiate(lines, &DeflateConfig::default()).map(|p| p.response())
}

const DEFAULT_ANSWER: &str =
    "permessage-deflate; server_no_context_takeover; client_no_context_takeover";

#[test]
fn plain_offer_gets_no_context_takeover_both_ways() {
    assert_eq!(
        answer(&["permessage-deflate"]).as_deref(),
        Some(DEFAULT_ANSWER)
    );
    let p = negotiate(&["permessage-deflate"], &DeflateConfig::default()).unwrap();
    assert_eq!(
        (p.server_max_window_bits, p.client_max_window_bits),
        (15, 15)
    );
    assert_eq!(answer(&[]), None);
    assert_eq!(answer(&["x-webkit-deflate-frame"]), None);
}

#[test]
fn browser_offer_with_client_max_window_bits() {
    assert_eq!(
        answer(&["permessage-deflate; client_max_window_bits"]).as_deref(),
        Some("permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits=15")
    );
    let small = DeflateConfig {
        client_max_window_bits: 10,
        ..DeflateConfig::default()
    };
    let p = negotiate(&["permessage-deflate; client_max_window_bits=12"], &small).unwrap();
    assert_eq!(p.client_max_window_bits, 10);
    assert!(p.response().ends_with("client_max_window_bits=10"));
}

#[test]
fn every_parameter_is_honoured() {
    let takeover = DeflateConfig {
        server_context_takeover: true,
        client_context_takeover: true,
        ..DeflateConfig::default()
    };
    let p = negotiate(&["permessage-deflate"], &takeover).unwrap();
    assert!(!p.server_no_context_takeover && !p.client_no_context_takeover);
    assert_eq!(p.response(), "permessage-deflate");
    let p = negotiate(
        &["permessage-deflate; server_no_context_takeover; client_no_context_takeover"],
        &takeover,
    )
    .unwrap();
    assert!(p.server_no_context_takeover && p.client_no_context_takeover);
    let p = negotiate(
        &["permessage-deflate; server_max_window_bits=10"],
        &takeover,
    )
    .unwrap();
    assert_eq!(p.server_max_window_bits, 10);
    assert_eq!(
        p.response(),
        "permessage-deflate; server_max_window_bits=10"
    );
    // 8 is answered 8 (compressed with zlib's 9-bit window, see the module notes).
    let p = negotiate(&["permessage-deflate; server_max_window_bits=8"], &takeover).unwrap();
    assert_eq!(p.server_max_window_bits, 8);
    let p = negotiate(&["permessage-deflate; client_max_window_bits=8"], &takeover).unwrap();
    assert_eq!(p.client_max_window_bits, 8);
    // Quoted values are unquoted (RFC 7692 §7.1: the value must still be a window size).
    let p = negotiate(
        &["permessage-deflate; server_max_window_bits=\"12\""],
        &takeover,
    )
    .unwrap();
    assert_eq!(p.server_max_window_bits, 12);
}

#[test]
fn first_acceptable_offer_wins() {
    let offers = "permessage-deflate; server_max_window_bits=7, \
                  permessage-deflate; client_max_window_bits=11, permessage-deflate";
    let p = negotiate(&[offers], &DeflateConfig::default()).unwrap();
    assert_eq!(p.client_max_window_bits, 11);
    // Across header lines too, in order.
    let p = negotiate(
        &[
            "foo, permessage-deflate; bogus",
            "permessage-deflate; server_max_window_bits=9",
        ],
        &DeflateConfig::default(),
    )
    .unwrap();
    assert_eq!(p.server_max_window_bits, 9);
}

#[test]
fn bad_offers_are_declined() {
    for bad in [
        "permessage-deflate; server_max_window_bits", // needs a value
        "permessage-deflate; server_max_window_bits=16", // out of range
        "permessage-deflate; server_max_window_bits=7", // out of range
        "permessage-deflate; server_max_window_bits=010", // leading zero
        "permessage-deflate; client_max_window_bits=0x9", // not decimal
        "permessage-deflate; server_no_context_takeover=1", // no value allowed
        "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
        "permessage-deflate; unknown_param",
    ] {
        assert_eq!(answer(&[bad]), None, "{bad}");
    }
}

#[test]
fn malformed_header_declines_everything() {
    for bad in [
        "permessage-deflate,",                             // trailing comma
        "permessage-deflate;",                             // empty parameter
        "permessage-deflate; server_max_window_bits=\"10", // open quote
        ", permessage-deflate",
        "permessage deflate",
    ] {
        assert_eq!(answer(&[bad]), None, "{bad}");
    }
    // A malformed second line spoils a good first one.
    assert_eq!(
        answer(&["permessage-deflate", "permessage-deflate;;"]),
        None
    );
}
