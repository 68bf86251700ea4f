//! Property tests (proptest) of the invariants the fuzz targets check, on stable Rust in the
//! normal test suite: header parse bounds, the UTF-8 validator against `std` at every split,
//! masking, split invariance of a connection's decoding, the upgrade parser at every prefix,
//! the dialects, the replay buffer's gaps, the token bucket's capacity, and the session
//! machine's deadlines, sequence numbers and resumes.
//!
//! The harnesses are the fuzz crate's own files (fuzz/src/*.rs), mounted with `#[path]`, so
//! a fuzz target and its property test can never drift apart. Case counts keep the file
//! under ~10 s in a debug build. See docs/FUZZING.md.

use postern::gateway::dialects::{
    discodo::Discodo, i386::I386, nexus::Nexus, nightingale::Nightingale, rooms::Rooms,
};
use postern::gateway::replay::ReplayBuffer;
use postern::gateway::TokenBucket;
use postern::http::{parse_request, validate_upgrade, HttpError, Parsed, MAX_HEADERS};
use postern::ws::SharedPayload;
use postern::Millis;
use proptest::prelude::*;
use stream::{check_split_invariance, client_frame, Got};

#[allow(dead_code)]
#[path = "../fuzz/src/checks.rs"]
mod checks;
#[allow(dead_code)]
#[path = "../fuzz/src/input.rs"]
mod input;
#[allow(dead_code)]
#[path = "../fuzz/src/model.rs"]
mod model;
#[allow(dead_code)]
#[path = "../fuzz/src/stream.rs"]
mod stream;

/// Cases per property: `default`, or `PROPTEST_CASES` when set (for longer soaks; an
/// explicit `with_cases` would otherwise ignore the variable).
fn cases(default: u32) -> u32 {
    let env = std::env::var("PROPTEST_CASES").ok();
    env.and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A message a client sends, and how: in `pieces` fragments (1: a single frame), with a
/// ping between the first two fragments when `ping` is set.
#[derive(Clone, Debug)]
struct Send {
    text: bool,
    payload: Vec<u8>,
    pieces: usize,
    ping: bool,
    key: [u8; 4],
}

fn send() -> impl Strategy<Value = Send> {
    let payload = prop_oneof![
        ".{0,40}".prop_map(|s: String| (true, s.into_bytes())),
        prop::collection::vec(any::<u8>(), 0..300).prop_map(|b| (false, b)),
    ];
    (payload, 1usize..5, any::<bool>(), any::<[u8; 4]>()).prop_map(
        |((text, payload), pieces, ping, key)| Send {
            text,
            payload,
            pieces,
            ping,
            key,
        },
    )
}

/// Encodes the messages as client frames, with what decoding them must deliver.
fn encode(messages: &[Send]) -> (Vec<u8>, Vec<Got>) {
    let (mut bytes, mut expected) = (Vec::new(), Vec::new());
    for m in messages {
        let n = m.pieces.min(m.payload.len().max(1));
        let step = m.payload.len().div_ceil(n).max(1);
        let chunks: Vec<&[u8]> = if m.payload.is_empty() {
            vec![&[]]
        } else {
            m.payload.chunks(step).collect()
        };
        for (i, chunk) in chunks.iter().enumerate() {
            let fin = if i + 1 == chunks.len() { 0x80 } else { 0 };
            let op = match (i, m.text) {
                (0, true) => 1,
                (0, false) => 2,
                _ => 0,
            };
            bytes.extend(client_frame(fin | op, m.key, chunk));
            if i == 0 && m.ping && chunks.len() > 1 {
                bytes.extend(client_frame(0x89, m.key, b"ping"));
                expected.push(Got::Ping(b"ping".to_vec()));
            }
        }
        expected.push(match (chunks.len(), m.text) {
            (1, true) => Got::Text(String::from_utf8(m.payload.clone()).unwrap()),
            (1, false) => Got::Binary(m.payload.clone()),
            (_, text) => Got::Assembled(text, m.payload.clone()),
        });
    }
    (bytes, expected)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(512)))]

    /// Header parsing: bounds, exact header length, monotonic in the bytes present.
    #[test]
    fn header_parse_bounds(buf in prop::collection::vec(any::<u8>(), 0..20), pick in 0usize..8) {
        checks::frame_header(&buf, stream::LIMITS[pick]);
    }

    /// Headers the server writes (or a client masks) parse back to what was encoded.
    #[test]
    fn header_round_trip(len in 0usize..70_000, op in prop::sample::select(vec![0u8, 1, 2]),
                         fin in any::<bool>(), key in any::<[u8; 4]>()) {
        let payload = vec![0u8; len];
        let frame = client_frame(u8::from(fin) << 7 | op, key, &payload);
        let h = postern::wire::header::parse(&frame, 70_000).unwrap().unwrap();
        prop_assert_eq!((h.payload_len, h.fin, h.mask), (len, fin, Some(key)));
        prop_assert_eq!(h.frame_len(), frame.len());
        checks::frame_header(&frame[..frame.len().min(20)], 70_000);
    }

    /// UTF-8 validator equals `std::str::from_utf8` at every split and byte by byte; masking
    /// is an involution and piecewise equals whole; close payloads round-trip.
    #[test]
    fn wire_codecs(text in ".{0,24}", noise in prop::collection::vec(any::<u8>(), 0..40),
                   at in any::<usize>(), key in any::<[u8; 4]>(), mix in 0u8..3) {
        let bytes = match mix {
            0 => text.into_bytes(),
            1 => noise,
            _ => {
                let mut b = text.into_bytes();
                let i = at % (b.len() + 1);
                b.splice(i..i, noise.into_iter().take(2));
                b
            }
        };
        checks::wire_codecs(&bytes, key, at);
    }

    /// Valid client messages (fragmented, with pings between fragments) decode to exactly
    /// what was sent, however the stream is split into reads.
    #[test]
    fn ws_valid_stream_decodes_exactly(messages in prop::collection::vec(send(), 0..6),
                                       sizes in prop::collection::vec(0usize..80, 0..6)) {
        let (bytes, expected) = encode(&messages);
        let outcome = check_split_invariance(&bytes, &sizes, 4096);
        prop_assert_eq!(outcome.error, None);
        prop_assert_eq!(outcome.leftover, 0);
        let got: Vec<Got> = outcome.frames.into_iter().map(|(_, g)| g)
            .filter(|g| *g != Got::Fragment).collect();
        prop_assert_eq!(got, expected);
    }

    /// A corrupted stream (one byte changed, or the limit lowered) gives the same frames and
    /// error however it is split.
    #[test]
    fn ws_corrupt_stream_is_split_invariant(messages in prop::collection::vec(send(), 1..4),
                                            at in any::<usize>(), xor in 1u8..,
                                            pick in 0usize..8,
                                            sizes in prop::collection::vec(0usize..40, 1..6)) {
        let (mut bytes, _) = encode(&messages);
        let i = at % bytes.len();
        bytes[i] ^= xor;
        check_split_invariance(&bytes, &sizes, stream::LIMITS[pick]);
    }

    /// Arbitrary bytes: same frames and error however split; the fuzz target's input format.
    #[test]
    fn ws_noise_is_split_invariant(data in prop::collection::vec(any::<u8>(), 0..200)) {
        stream::fuzz(&data);
    }
}

/// One header line of an upgrade request, present or not, right or wrong.
fn line(keep: u8, right: &str, wrong: &str) -> String {
    match keep % 4 {
        0 => String::new(),
        1 => format!("{wrong}\r\n"),
        _ => format!("{right}\r\n"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(256)))]

    /// An upgrade request built from present / wrong / right parts is refused with exactly
    /// the first applicable answer of `validate_upgrade`'s documented order, and is
    /// `Partial` at every prefix of its head.
    #[test]
    fn upgrade_request_answer_and_prefixes(parts in any::<[u8; 6]>(), key in "[A-Za-z0-9+/]{22}",
                                           path in "/[a-z]{0,8}(\\?[a-z]{1,4}=[a-z%0-9]{0,6})?",
                                           extra in prop::collection::vec(("[A-Za-z-]{1,12}", "[ -~]{0,20}"), 0..4)) {
        let method = if parts[0] % 4 == 1 { "POST" } else { "GET" };
        let version = if parts[1] % 4 == 1 { "1.0" } else { "1.1" };
        let mut req = format!("{method} {path} HTTP/{version}\r\nHost: example\r\n");
        req += &line(parts[2], "Upgrade: WebSocket", "Upgrade: h2c");
        req += &line(parts[3], "Connection: keep-alive, Upgrade", "Connection: close");
        req += &line(parts[4], "Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8");
        req += &line(parts[5], &format!("Sec-WebSocket-Key: {key}=="), "Sec-WebSocket-Key: short");
        for (name, value) in &extra {
            req += &format!("X-{name}: {value}\r\n");
        }
        req += "\r\n";
        let right = |b: u8| b % 4 >= 2;
        let expected = if method != "GET" {
            Err(HttpError::BadRequest("websocket upgrade requires GET"))
        } else if version != "1.1" {
            Err(HttpError::BadRequest("websocket upgrade requires HTTP/1.1"))
        } else if !right(parts[2]) {
            Err(HttpError::BadRequest("missing Upgrade: websocket"))
        } else if !right(parts[3]) {
            Err(HttpError::BadRequest("missing Connection: upgrade"))
        } else if !right(parts[4]) {
            Err(HttpError::UnsupportedVersion)
        } else if parts[5] % 4 == 0 {
            Err(HttpError::BadRequest("missing Sec-WebSocket-Key"))
        } else if parts[5] % 4 == 1 {
            Err(HttpError::BadRequest("invalid Sec-WebSocket-Key"))
        } else {
            Ok(())
        };
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let parsed = parse_request(req.as_bytes(), &mut headers);
        if postern::http::percent_decode(&path).is_err() {
            // Before any upgrade check: a target that does not decode to UTF-8 is 400.
            let why = HttpError::BadRequest("request target is not UTF-8 once percent-decoded");
            prop_assert_eq!(parsed.err(), Some(why));
            checks::upgrade_request(req.as_bytes());
            return Ok(());
        }
        let Ok(Parsed::Complete { request, head_len }) = parsed else {
            panic!("not complete: {req:?}");
        };
        prop_assert_eq!(head_len, req.len());
        prop_assert_eq!(validate_upgrade(&request).map(|_| ()), expected);
        checks::upgrade_request(req.as_bytes());
        let mut body = req.into_bytes();
        body.extend_from_slice(b"GET / HTTP/1.1\r\n");
        checks::upgrade_request(&body);
    }

    /// Arbitrary bytes and damaged requests: no panic, prefixes consistent.
    #[test]
    fn upgrade_request_noise(noise in prop::collection::vec(any::<u8>(), 0..120), at in any::<usize>()) {
        checks::upgrade_request(&noise);
        let mut req = b"GET /chat?x=1 HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
            Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".to_vec();
        let i = at % req.len();
        req.splice(i..i + 1, noise.into_iter().take(3));
        checks::upgrade_request(&req);
    }
}

/// JSON values shaped like the seed protocols' envelopes: their field names, their op
/// codes, strings and nesting.
fn json() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let names = "f cnf s t e d op data session_id seq token";
    let key = prop::sample::select(names.split(' ').collect::<Vec<_>>());
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        prop::sample::select(vec![0i64, 1, 2, 3, 10, 11, 12, 110, 120, 130, 150, -1])
            .prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "[A-Z_]{0,12}|[0-9]{1,3}|.{0,8}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..6).prop_map(|members| {
                Value::Object(
                    members
                        .into_iter()
                        .map(|(k, v)| (k.to_owned(), v))
                        .collect(),
                )
            }),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(384)))]

    /// Every seed dialect decodes envelope-shaped JSON (and its mangled text) without
    /// panic, writes JSON, and reads back its own dispatches where clients use that shape.
    #[test]
    fn dialects_decode_and_write(value in json(), cut in any::<usize>()) {
        let text = value.to_string();
        let mangled = &text.as_bytes()[..cut % (text.len() + 1)];
        for data in [text.as_bytes(), mangled] {
            checks::dialect(&I386, data, true);
            checks::dialect(&Rooms, data, false);
            checks::dialect(&Discodo, data, true);
            checks::dialect(&Nexus, data, true);
            checks::dialect(&Nightingale, data, false);
        }
    }

    /// The replay buffer holds a contiguous run of the latest events within its bounds, and
    /// `since` serves exactly `(seen, last]` or refuses: it never hides a gap.
    #[test]
    fn replay_buffer_never_hides_a_gap(sizes in prop::collection::vec(0usize..120, 0..40),
                                       max_events in 0usize..10, max_bytes in 0usize..400) {
        let mut replay = ReplayBuffer::default();
        let mut last = 0u64;
        for size in sizes {
            last += 1;
            replay.push(last, SharedPayload::new(vec![b'x'; size]), max_events, max_bytes);
            prop_assert!(replay.len() <= max_events);
            prop_assert!(replay.bytes() <= max_bytes || replay.len() == 1);
            let oldest = last + 1 - replay.len() as u64;
            for seen in 0..=last + 1 {
                let servable = seen == last || (seen < last && oldest <= seen + 1);
                match replay.since(seen, last) {
                    Some(events) => {
                        prop_assert!(servable, "since({}) served a gap", seen);
                        let events: Vec<(u64, usize)> = events.map(|(s, p)| (s, p.len())).collect();
                        let seqs: Vec<u64> = events.iter().map(|e| e.0).collect();
                        prop_assert_eq!(seqs, (seen + 1..=last).collect::<Vec<_>>());
                        if seen < oldest {
                            let held: usize = events.iter().map(|e| e.1).sum();
                            prop_assert_eq!(held, replay.bytes());
                        }
                    }
                    None => prop_assert!(!servable, "since({}) refused what it holds", seen),
                }
            }
        }
    }

    /// A token bucket grants at most `capacity` at once and `capacity + d * capacity /
    /// window` over any span `d`; after a full window of rest it grants `capacity` again.
    #[test]
    fn token_bucket_never_exceeds_capacity(capacity in 1u32..40, window in 1u64..50_000,
                                           steps in prop::collection::vec((0u64..3_000, 1usize..6), 1..60)) {
        let w = Millis(window);
        let mut bucket = TokenBucket::full(Millis(0), capacity, w);
        let mut granted: Vec<u64> = Vec::new();
        let mut now = 0;
        for (dt, tries) in steps {
            now += dt;
            for _ in 0..tries {
                if bucket.take(Millis(now), capacity, w) {
                    granted.push(now);
                }
            }
        }
        let cap = u64::from(capacity);
        for (i, &a) in granted.iter().enumerate() {
            let within = granted[i..].iter().take_while(|&&b| b - a <= window * 4);
            for (n, &b) in within.enumerate() {
                let bound = cap + (b - a) * cap / window;
                prop_assert!((n as u64) < bound, "{} grants in [{}, {}]", n + 1, a, b);
            }
        }
        now += window;
        for i in 0..capacity {
            prop_assert!(bucket.take(Millis(now), capacity, w), "refill: grant {} refused", i);
        }
        prop_assert!(!bucket.take(Millis(now), capacity, w));
    }

    /// The session machine under arbitrary operations and clock jumps: deadlines after
    /// now, sequence numbers read without gap or repeat across resumes, memory bounded.
    #[test]
    fn session_machine(data in prop::collection::vec(any::<u8>(), 0..600)) {
        model::fuzz(&data);
    }
}

/// The session model is not vacuous: over a few hundred pseudo-random inputs it goes
/// through every path it checks (resumes with replay, refusals, replacements, expiries,
/// probes, drops) and its clients read events.
#[test]
fn session_model_reaches_deep_states() {
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let mut total = model::Stats::default();
    for _ in 0..300 {
        let data: Vec<u8> = (0..500)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                (seed >> 24) as u8
            })
            .collect();
        let s = model::Model::run(&mut input::Input(&data)).stats;
        total.identified += s.identified;
        total.resumed += s.resumed;
        total.replayed += s.replayed;
        total.refused += s.refused;
        total.replaced += s.replaced;
        total.expired += s.expired;
        total.probes += s.probes;
        total.dropped += s.dropped;
        total.read += s.read;
    }
    let s = &total;
    let all = [
        s.identified,
        s.resumed,
        s.replayed,
        s.refused,
        s.replaced,
        s.expired,
    ];
    assert!(all.iter().all(|&n| n > 0), "{total:?}");
    assert!(s.probes > 0 && s.dropped > 0 && s.read > 0, "{total:?}");
    eprintln!("{total:?}");
}

/// Regression (found while bounding `session_machine`'s clock jumps): a token bucket's refill
/// overflows `u64` when the clock jumps past ~2^64 / capacity ms after its last take
/// (`credit + elapsed.saturating_mul(capacity)` in src/rate.rs), which panics in a debug
/// build and wraps to a near-empty bucket in release. Unreachable with the reactor's clock
/// (milliseconds since start), so low severity; a saturating add fixes it.
#[test]
fn token_bucket_survives_any_clock_jump() {
    let (capacity, w) = (120, Millis(60_000));
    let mut bucket = TokenBucket::full(Millis(0), capacity, w);
    assert!(bucket.take(Millis(0), capacity, w));
    assert!(bucket.is_full(Millis(u64::MAX / 2), capacity, w));
    assert!(bucket.take(Millis(u64::MAX / 2), capacity, w));
}

/// The committed seeds of `session_machine` (fuzz/corpus, written by fuzz/seeds.py) pass
/// through the model: the fuzz target's starting points stay valid inputs.
#[test]
fn session_machine_seed_corpus() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/session_machine");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).expect("the seed corpus") {
        let data = std::fs::read(entry.expect("an entry").path()).expect("a seed");
        let stats = model::Model::run(&mut input::Input(&data)).stats;
        assert!(stats.identified > 0, "{stats:?}");
        seen += 1;
    }
    assert!(seen >= 2, "{seen} seeds");
}
