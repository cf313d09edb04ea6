//! `command`: see `ferrocable_fuzz::properties::command` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ferrocable_fuzz::properties::command(data));
