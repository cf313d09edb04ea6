//! placeholder docs
mod base64;
mod encryptor;
mod envelope;
mod error;
mod key_generator;
mod time;
mod verifier;
mod version;

pub use base64::Base64Decoding;
pub use encryptor::{AES_256_KEY_LEN, MessageEncryptor};
pub use envelope::{Envelope, PurposeCheck, Serializer, VerifyOptions};
pub use error::Error;
pub use key_generator::{
    DEFAULT_KEY_SIZE, DigestPolicy, KEY_GENERATOR_ITERATIONS, KeyDigest, KeyGenerator, SecretKeyBase,
};
pub use verifier::{HmacDigest, MessageVerifier};
pub use version::RailsVersion;

/// Longest token accepted.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;
/// Longest Cookie header accepted.
pub const MAX_COOKIE_HEADER_LEN: usize = 64 * 1024;
