//! Fuzz target `dialect_i386`: see docs/FUZZING.md and the harness it calls.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| postern_fuzz::dialect_i386(data));
