//! Trying several keys, and saying which one matched.

use serde_json::Value;

use crate::envelope::{self, Serializer, VerifyOptions};
use crate::{Error, KeyDigest, MessageEncryptor, MessageVerifier};

/// Which key made a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeySource {
    /// Derived from `secret_key_base` by the key generator with this PBKDF2 digest.
    Derived(KeyDigest),
    /// The legacy AES-256-CBC + HMAC cookie keys (salts `"encrypted cookie"` and
    /// `"signed encrypted cookie"`), derived with this PBKDF2 digest.
    LegacyCbc(KeyDigest),
    /// A key configured explicitly (e.g. `config.turbo.signed_stream_verifier_key`).
    Explicit,
}

/// A verified value and the key that verified it (worth logging when several are tried: an app
/// whose tokens match the "other" digest shows the key-generator pitfall of
/// [`crate::DigestPolicy`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Verified<T> {
    /// The value.
    pub value: T,
    /// The key that matched.
    pub key: KeySource,
}

/// Something that authenticates a token, yielding its payload bytes.
pub(crate) trait Authenticator {
    /// Outer error: not authenticated by this key; inner: authenticated, then undecodable.
    fn authenticate(&self, token: &str) -> Result<Result<Vec<u8>, Error>, Error>;
    fn serializer(&self) -> Serializer;
}

impl Authenticator for MessageVerifier {
    fn authenticate(&self, token: &str) -> Result<Result<Vec<u8>, Error>, Error> {
        MessageVerifier::authenticate(self, token)
    }
    fn serializer(&self) -> Serializer {
        self.serializer()
    }
}

impl Authenticator for MessageEncryptor {
    fn authenticate(&self, token: &str) -> Result<Result<Vec<u8>, Error>, Error> {
        MessageEncryptor::authenticate(self, token)
    }
    fn serializer(&self) -> Serializer {
        self.serializer()
    }
}

/// Tries each candidate key in order; the first that authenticates the token decides.
///
/// Once a key has authenticated the token, its payload's fate (decoding, purpose, expiry,
/// Marshal) is final: another key cannot also have made it. When none authenticates, the error is
/// [`Error::BadSignature`] if any candidate got as far as checking a signature, else the first
/// candidate's format error (formats differ between GCM and CBC candidates, so a GCM token is a
/// format error for a CBC key and the reverse).
pub(crate) fn open_with_any<A: Authenticator>(
    candidates: &[(KeySource, A)],
    token: &str,
    options: &VerifyOptions,
) -> Result<Verified<Value>, Error> {
    let mut first_error = None;
    let mut any_bad_signature = false;
    for (source, candidate) in candidates {
        match candidate.authenticate(token) {
            Ok(payload) => {
                let value = envelope::open(&payload?, options, candidate.serializer())?;
                return Ok(Verified {
                    value,
                    key: *source,
                });
            }
            Err(Error::BadSignature) => any_bad_signature = true,
            Err(error) => {
                first_error.get_or_insert(error);
            }
        }
    }
    if any_bad_signature {
        return Err(Error::BadSignature);
    }
    Err(first_error.unwrap_or(Error::BadSignature))
}
