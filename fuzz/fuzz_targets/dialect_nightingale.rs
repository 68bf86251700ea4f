//! Fuzz target `dialect_nightingale`: see docs/FUZZING.md and the harness it calls.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| postern_fuzz::dialect_nightingale(data));
