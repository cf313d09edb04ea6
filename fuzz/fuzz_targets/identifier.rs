//! `identifier`: see `ferrocable_fuzz::properties::identifier` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ferrocable_fuzz::properties::identifier(data));
