//! Fuzz target `frame_header`: see docs/FUZZING.md and the harness it calls.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| postern_fuzz::frame_header(data));
