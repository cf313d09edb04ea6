//! placeholder docs
mod base64;
mod cookies;
mod encryptor;
mod envelope;
mod error;
mod key_generator;
mod naming;
mod signed_id;
mod stream;
mod time;
mod verified;
mod verifier;
mod version;

pub use base64::Base64Decoding;
pub use cookies::{
    AUTHENTICATED_ENCRYPTED_COOKIE_SALT, CookieConfig, CookieJar, CookieReader,
    ENCRYPTED_COOKIE_SALT, ENCRYPTED_SIGNED_COOKIE_SALT, SIGNED_COOKIE_SALT, warden_user_key,
};
pub use encryptor::{AES_256_KEY_LEN, MessageEncryptor};
pub use envelope::{Envelope, PurposeCheck, Serializer, VerifyOptions};
pub use error::Error;
pub use key_generator::{
    DEFAULT_KEY_SIZE, DigestPolicy, KEY_GENERATOR_ITERATIONS, KeyDigest, KeyGenerator, SecretKeyBase,
};
pub use naming::{
    cgi_escape, channel_name, channel_name_with_acronyms, global_id, global_id_app_name,
    global_id_param, underscore, underscore_with_acronyms,
};
pub use signed_id::{SIGNED_ID_SALT, SignedIdVerifier, signed_id_purpose};
pub use stream::{CABLE_READY_SALT, SignedStreamVerifier, TURBO_SALT};
pub use verified::{KeySource, Verified};
pub use verifier::{HmacDigest, MessageVerifier};
pub use version::RailsVersion;

/// Longest token accepted.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;
/// Longest Cookie header accepted.
pub const MAX_COOKIE_HEADER_LEN: usize = 64 * 1024;
