//! `encoder`: see `ferrocable_fuzz::properties::encoder` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(
    init: assert!(
        ferrocable_fuzz::properties::serde_floats_exact(),
        "serde_json must be built with float_roundtrip to compare floats bit for bit"
    ),
    |data: &[u8]| ferrocable_fuzz::properties::encoder(data)
);
