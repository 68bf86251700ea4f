//! Harnesses for postern's fuzz targets (`fuzz_targets/*.rs` are one line each).
//!
//! The modules depend on nothing but postern and its own dependencies, so that
//! `tests/properties.rs` mounts the very same files with `#[path]` and checks the same
//! invariants with proptest on stable Rust, in the normal test suite.
//!
//! - [`checks`]: frame header, wire codecs, HTTP upgrade, dialects (one input, no state).
//! - [`stream`]: a connection's bytes split at arbitrary points (split invariance).
//! - [`model`]: the session machine, registry and replay buffer under a client model.

pub mod checks;
pub mod input;
pub mod model;
pub mod stream;

use postern::gateway::dialects::{
    discodo::Discodo, i386::I386, nexus::Nexus, nightingale::Nightingale, rooms::Rooms,
};

/// `frame_header`: byte 0 picks the payload limit ([`stream::LIMITS`]), the rest is the
/// buffer.
pub fn frame_header(data: &[u8]) {
    if let Some((&pick, buf)) = data.split_first() {
        checks::frame_header(buf, stream::LIMITS[usize::from(pick & 7)]);
    }
}

/// `wire_codecs`: bytes 0-3 the masking key, byte 4 a cut point, the rest the payload.
pub fn wire_codecs(data: &[u8]) {
    if let [a, b, c, d, cut, bytes @ ..] = data {
        checks::wire_codecs(bytes, [*a, *b, *c, *d], usize::from(*cut));
    }
}

/// `dialect_i386`: clients send events in the server's dispatch envelope (`f` 130).
pub fn dialect_i386(data: &[u8]) {
    checks::dialect(&I386, data, true);
}

/// `dialect_rooms`: clients send only heartbeats.
pub fn dialect_rooms(data: &[u8]) {
    checks::dialect(&Rooms, data, false);
}

/// `dialect_discodo`: every `{"op","d"}` is a dispatch both ways.
pub fn dialect_discodo(data: &[u8]) {
    checks::dialect(&Discodo, data, true);
}

/// `dialect_nexus`: client events are `{"t","d"}` like the server's.
pub fn dialect_nexus(data: &[u8]) {
    checks::dialect(&Nexus, data, true);
}

/// `dialect_nightingale`: clients send nothing; every message is refused.
pub fn dialect_nightingale(data: &[u8]) {
    checks::dialect(&Nightingale, data, false);
}
