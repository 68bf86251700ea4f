//! Stateless checks over one input: the frame header parser, the wire codecs (UTF-8,
//! masking, close payload), the HTTP upgrade parser and validator, and a dialect's decoder
//! and writers. Each panics (with the broken invariant in its message) on a bug.
//!
//! Dependency-free apart from `postern`, `httparse` and `serde_json` (all dependencies of
//! postern itself), so `tests/properties.rs` includes it with `#[path]`.

use postern::gateway::{Dialect, GatewayError, Op, Ready, SessionId};
use postern::http::{parse_request, validate_upgrade, write_response, HttpError, Parsed, Response};
use postern::wire::header::{self, FrameHeader, HeaderError};
use postern::wire::{apply_mask, decode_close, encode_close, Utf8Validator, MAX_HEADER_LEN};
use postern::{CloseCode, Millis};
use serde_json::value::RawValue;

/// One parse result of the header parser, comparable.
type HeaderResult = Result<Option<FrameHeader>, HeaderError>;

/// `wire::header::parse` never panics, and on `Ok(Some(h))`: `2 <= header_len <= 14`,
/// `header_len` is exactly what the length field and mask bit call for, the payload is
/// within the limit (125 for control frames), and every strict prefix of the header asks
/// for more. Results are monotonic in the bytes present: `Ok(None)` for a while, then one
/// final answer (a header or an error) that more bytes never change.
pub fn frame_header(buf: &[u8], limit: usize) {
    let full = header::parse(buf, limit);
    if let Ok(Some(h)) = full {
        assert!(
            (2..=MAX_HEADER_LEN).contains(&h.header_len),
            "header_len {}",
            h.header_len
        );
        assert!(h.header_len <= buf.len());
        let bound = if h.opcode.is_control() { 125 } else { limit };
        assert!(
            h.payload_len <= bound,
            "payload {} over {bound}",
            h.payload_len
        );
        let ext = match buf[1] & 0x7F {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let mask = if h.mask.is_some() { 4 } else { 0 };
        assert_eq!(h.header_len, 2 + ext + mask);
        assert_eq!(h.fin, buf[0] & 0x80 != 0);
        assert_eq!(h.opcode.as_u8(), buf[0] & 0x0F);
        assert!(
            !h.opcode.is_control() || h.fin,
            "fragmented control frame accepted"
        );
        // The server's encoder writes a header the parser reads back identically (unmasked).
        let mut out = [0u8; MAX_HEADER_LEN];
        let n = header::encode_header(&mut out, h.fin, h.opcode, h.payload_len);
        let back = header::parse(&out[..n], limit).expect("own header refused");
        let back = back.expect("own header incomplete");
        assert_eq!(
            (back.fin, back.opcode, back.payload_len, back.mask),
            (h.fin, h.opcode, h.payload_len, None)
        );
    }
    if let Err(HeaderError::TooLarge { len, limit: l }) = full {
        assert!(len > l as u64, "refused {len} bytes under a {l}-byte limit");
    }
    let mut answer: Option<HeaderResult> = None;
    for cut in 0..=buf.len().min(MAX_HEADER_LEN + 1) {
        let r = header::parse(&buf[..cut], limit);
        match (&answer, &r) {
            (None, Ok(None)) => {}
            (None, _) => answer = Some(r),
            (Some(a), _) => assert_eq!(a, &r, "answer changed at {cut} bytes"),
        }
    }
    match answer {
        Some(a) => assert_eq!(a, full, "a longer buffer changed the answer"),
        None => assert_eq!(full, Ok(None)),
    }
}

/// The UTF-8 validator equals `std::str::from_utf8` for every split of `bytes` in two and
/// for byte-at-a-time feeding; masking twice is the identity and masking piecewise equals
/// masking whole; a close payload decodes without panic and what the encoder writes decodes
/// back.
pub fn wire_codecs(bytes: &[u8], key: [u8; 4], cut: usize) {
    let expected = std::str::from_utf8(bytes).is_ok();
    let cuts = if bytes.len() <= 64 {
        (0..=bytes.len()).collect::<Vec<_>>()
    } else {
        vec![0, cut % (bytes.len() + 1), bytes.len()]
    };
    for at in cuts {
        let mut v = Utf8Validator::new();
        let ok = v.feed(&bytes[..at]).is_ok() && v.feed(&bytes[at..]).is_ok() && v.finish().is_ok();
        assert_eq!(
            ok, expected,
            "UTF-8 verdict differs from std when split at {at}"
        );
    }
    let mut v = Utf8Validator::new();
    let ok = bytes
        .iter()
        .all(|b| v.feed(std::slice::from_ref(b)).is_ok())
        && v.finish().is_ok();
    assert_eq!(ok, expected, "UTF-8 verdict differs from std byte by byte");

    let at = cut % (bytes.len() + 1);
    let mut whole = bytes.to_vec();
    apply_mask(&mut whole, key, 0);
    for (i, (m, b)) in whole.iter().zip(bytes).enumerate() {
        assert_eq!(
            *m,
            b ^ key[i % 4],
            "mask differs from the naive loop at {i}"
        );
    }
    let mut parts = bytes.to_vec();
    let (a, b) = parts.split_at_mut(at);
    apply_mask(a, key, 0);
    apply_mask(b, key, at);
    assert_eq!(parts, whole, "piecewise mask differs at {at}");
    apply_mask(&mut whole, key, 0);
    assert_eq!(whole, bytes, "masking twice is not the identity");

    if let Ok(close) = decode_close(bytes) {
        let code = close.code.unwrap_or(CloseCode::NORMAL);
        let mut out = [0u8; 125];
        let n = encode_close(&mut out, code, close.reason);
        let back = decode_close(&out[..n]).expect("own close payload refused");
        assert!(close.reason.starts_with(back.reason));
    }
}

/// Prefix lengths worth parsing: all of them for a short head, a sample of a long one.
fn prefix_points(len: usize) -> Vec<usize> {
    if len <= 256 {
        return (0..len).collect();
    }
    let step = len / 64;
    let mut points: Vec<usize> = (0..32)
        .chain((0..64).map(|i| i * step))
        .chain(len - 32..len)
        .collect();
    points.sort_unstable();
    points.dedup();
    points
}

/// How the parser answered one buffer, without borrows.
#[derive(Debug, PartialEq, Eq)]
enum Head {
    Partial,
    Complete(usize),
    Error(HttpError),
}

fn head(buf: &[u8]) -> Head {
    let mut headers = [httparse::EMPTY_HEADER; postern::http::MAX_HEADERS];
    match parse_request(buf, &mut headers) {
        Ok(Parsed::Partial) => Head::Partial,
        Ok(Parsed::Complete { head_len, .. }) => Head::Complete(head_len),
        Err(e) => Head::Error(e),
    }
}

/// `parse_request` and `validate_upgrade` never panic; a complete head is `Partial` at
/// every shorter prefix (the reactor re-parses each read from the start, so an earlier
/// answer must never differ from the later one) and `Complete` with the same length at
/// every longer one; an error never turns into `Complete`. Every accessor of a request is
/// exercised, and a response that echoes the request's headers cannot be split.
pub fn upgrade_request(buf: &[u8]) {
    let full = head(buf);
    match full {
        Head::Complete(head_len) => {
            assert!(head_len <= buf.len());
            for cut in prefix_points(head_len) {
                assert_eq!(head(&buf[..cut]), Head::Partial, "prefix of {cut} bytes");
            }
            for cut in [head_len, (head_len + buf.len()) / 2] {
                assert_eq!(head(&buf[..cut]), full, "prefix of {cut} bytes");
            }
        }
        Head::Partial => {
            for cut in prefix_points(buf.len()) {
                assert_eq!(head(&buf[..cut]), Head::Partial, "prefix of {cut} bytes");
            }
        }
        Head::Error(_) => {
            let mut erred = false;
            for cut in prefix_points(buf.len()) {
                match head(&buf[..cut]) {
                    Head::Partial => assert!(!erred, "error at a shorter prefix, not at {cut}"),
                    Head::Error(_) => erred = true,
                    Head::Complete(n) => panic!("complete ({n}) at {cut} but an error whole"),
                }
            }
        }
    }
    let mut headers = [httparse::EMPTY_HEADER; postern::http::MAX_HEADERS];
    let Ok(Parsed::Complete { request, .. }) = parse_request(buf, &mut headers) else {
        return;
    };
    let _ = (request.method(), request.target(), request.version_minor());
    assert!(request.target().starts_with(request.path()));
    assert!(
        postern::http::percent_decode(request.target()).is_ok(),
        "a parsed target decodes to UTF-8 (else 400)"
    );
    for pair in request.query().split('&').filter(|pair| !pair.is_empty()) {
        let name = pair.split('=').next().unwrap_or("");
        let _ = request.query_param(name);
        let decoded = postern::http::percent_decode(name).expect("a parsed name decodes");
        assert!(
            request.query_param(&decoded).is_some(),
            "{name:?} is present"
        );
    }
    let _ = (request.header("host"), request.header_str("upgrade"));
    let _ = request.header_values("connection").count();
    let _ = request.has_token("connection", "upgrade");
    let _ = (request.content_length(), request.keep_alive());
    let (wants, attempts) = (request.wants_websocket(), request.attempts_websocket());
    let status = match validate_upgrade(&request) {
        Ok(upgrade) => {
            assert!(wants, "an upgrade validated without Upgrade: websocket");
            assert_eq!(upgrade.key.len(), 24);
            assert_eq!(upgrade.accept_key().len(), 28);
            let _ = upgrade.offered_protocols().count();
            101
        }
        Err(e) => {
            assert!(!e.reason().is_empty());
            if attempts {
                assert!(matches!(e.status(), 400 | 426), "{e}");
            }
            e.status()
        }
    };
    // A response echoing the request's headers: unsafe names and values are dropped, so
    // the written head parses back whole with at most the headers given plus framing.
    let mut response = Response::new(status);
    for (name, value) in request.headers() {
        response = response.header(name, String::from_utf8_lossy(value).into_owned());
    }
    let given = response.headers.len();
    let mut out = Vec::new();
    write_response(&mut out, &response, false);
    let mut parsed = [httparse::EMPTY_HEADER; postern::http::MAX_HEADERS + 4];
    let mut back = httparse::Response::new(&mut parsed);
    match back.parse(&out) {
        Ok(httparse::Status::Complete(n)) => {
            assert!(back.headers.len() <= given + 2, "response grew headers");
            let connection = back.headers.iter();
            let connection = connection.filter(|h| h.name.eq_ignore_ascii_case("connection"));
            assert_eq!(connection.count(), 1, "Connection header injected");
            assert!(n <= out.len());
        }
        other => panic!("own response does not parse: {other:?}"),
    }
}

/// Whether `s` is one whole JSON value (syntax only: a number beyond `f64` is JSON).
fn is_json(s: &str) -> bool {
    serde_json::from_str::<&RawValue>(s).is_ok()
}

/// Every error the engine may hand a dialect, with an application reason from the input.
fn every_error(reason: &str) -> Vec<GatewayError> {
    use postern::gateway::DecodeError;
    vec![
        GatewayError::Decode(DecodeError::Malformed(reason.to_owned())),
        GatewayError::Decode(DecodeError::UnknownOp(reason.to_owned())),
        GatewayError::Decode(DecodeError::Binary),
        GatewayError::NotIdentified,
        GatewayError::IdentifyTimeout,
        GatewayError::AuthenticationFailed,
        GatewayError::AlreadyIdentified,
        GatewayError::InvalidSession,
        GatewayError::AlreadyConnected,
        GatewayError::SessionReplaced,
        GatewayError::RateLimited { fatal: false },
        GatewayError::RateLimited { fatal: true },
        GatewayError::HeartbeatTimeout,
        GatewayError::app(4010, true, reason.to_owned()),
        GatewayError::app(4011, false, reason.to_owned()),
    ]
}

/// Checks a borrowed JSON value from a decoded op: valid JSON, inside the message.
fn check_raw(text: &str, raw: &RawValue) {
    assert!(is_json(raw.get()), "raw value is not JSON: {}", raw.get());
    let range = text.as_bytes().as_ptr_range();
    let inside = range.contains(&raw.get().as_ptr()) || raw.get() == "null";
    assert!(
        inside || raw.get().is_empty(),
        "raw value not borrowed from the message"
    );
}

/// A dialect's decoder never panics on any text, and what it decodes is sound; every
/// server payload it writes is JSON (for any event name and JSON data); each error's answer
/// carries a JSON payload (if any) and a close code the server may send (application codes
/// aside). With `echoes_dispatch`, the dialect's clients send events in the very envelope
/// the server dispatches in, so decoding a dispatch the server wrote gives back its event
/// name and data.
pub fn dialect<D: Dialect>(d: &D, data: &[u8], echoes_dispatch: bool) {
    let text = String::from_utf8_lossy(data);
    match d.decode(&text) {
        Ok(Op::Identify(raw)) | Ok(Op::Heartbeat(Some(raw))) => check_raw(&text, raw),
        Ok(Op::Resume { payload, .. }) => check_raw(&text, payload),
        Ok(Op::Dispatch { data, .. }) => {
            if let Some(raw) = data {
                check_raw(&text, raw);
            }
        }
        Ok(Op::Heartbeat(None)) => {}
        Err(e) => {
            let _ = e.to_string();
        }
    }
    // Event name: the input cut at a char boundary; data: the input if it is JSON.
    let mut cut = text.len().min(40);
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let event = &text[..cut];
    let owned;
    let data = match serde_json::from_str::<&RawValue>(&text) {
        Ok(raw) => raw.get(),
        Err(_) => {
            owned = serde_json::to_string(&*text).expect("a string serialises");
            &owned
        }
    };
    let mut out = String::new();
    if let Some(prefix) = d.dispatch_prefix() {
        out.push_str(std::str::from_utf8(prefix).expect("prefix is UTF-8"));
        out.push_str(&data.len().to_string());
    }
    d.dispatch_tail(&mut out, event, data);
    // serde_json refuses nesting past 128 levels: data near that bound stops being JSON
    // once wrapped, whoever wraps it; only shallower data is held to the round trip.
    let shallow = data.bytes().filter(|b| matches!(b, b'[' | b'{')).count() < 64;
    assert!(!shallow || is_json(&out), "dispatch is not JSON: {out}");
    if echoes_dispatch && shallow {
        match d.decode(&out) {
            Ok(Op::Dispatch {
                event: e,
                data: got,
            }) => {
                assert_eq!(e, event, "event name changed on the way back");
                assert_eq!(got.map_or("null", RawValue::get), data, "data changed");
            }
            other => panic!("own dispatch {out} decoded as {other:?}"),
        }
    }
    for error in every_error(event) {
        let answer = d.answer(&error);
        if let Some(payload) = &answer.payload {
            assert!(is_json(payload), "answer payload is not JSON: {payload}");
        }
        if let (Some((code, _)), false) = (&answer.close, matches!(error, GatewayError::App { .. }))
        {
            assert!(
                code.is_sendable(),
                "{error:?} answered with close code {}",
                code.0
            );
        }
    }
    let (code, _) = d.shutdown_close();
    assert!(code.is_sendable());
    let raw = serde_json::from_str::<&RawValue>(data).ok();
    let extra = format!("\"x\":{data}");
    let ready = Ready {
        session: SessionId::new(data.len() as u64 + 1),
        resumed: data.len() % 2 == 0,
        extra: &extra,
    };
    let mut writes = vec![String::new(); 5];
    d.hello(&mut writes[0], Millis(41_250));
    d.heartbeat_ack(&mut writes[1], raw);
    d.heartbeat_ack(&mut writes[2], None);
    d.heartbeat_request(&mut writes[3]);
    d.ready(&mut writes[4], &ready);
    for w in writes {
        assert!(
            !shallow || w.is_empty() || is_json(&w),
            "server payload is not JSON: {w}"
        );
    }
}
