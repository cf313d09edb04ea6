//! Fuzz targets for ferrocable's pure protocol codec (`fuzz_targets/`), and the properties
//! they check ([`properties`]), which `src/protocol/fuzz_regressions.rs` also compiles to
//! replay the committed corpus under `cargo test`.

pub use ferrocable::protocol::{MAX_JSON_DEPTH, incoming, json, outgoing};

pub mod properties;
