//! Fuzz targets for ferrocable's pure protocol codec (`fuzz_targets/`). The properties they
//! check live in the protocol crate ([`properties`]), whose unit tests replay the committed
//! corpus `fuzz/regressions/` through them.

pub use ferrocable_protocol::properties;
