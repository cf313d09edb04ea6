//! Signed stream names: Turbo's `signed_stream_name`, CableReady's `identifier`, and any
//! library of the same shape.

use std::sync::Arc;
use std::time::SystemTime;

use serde_json::Value;

use crate::envelope::VerifyOptions;
use crate::verified::{KeySource, Verified, open_with_any};
use crate::{
    Base64Decoding, DEFAULT_KEY_SIZE, DigestPolicy, Error, HmacDigest, KeyGenerator,
    MessageVerifier,
};

/// Turbo's key salt (`lib/turbo/engine.rb`, every turbo-rails version):
/// `key_generator.generate_key("turbo/signed_stream_verifier_key")`.
pub const TURBO_SALT: &str = "turbo/signed_stream_verifier_key";
/// CableReady's key salt (`lib/cable_ready/config.rb`):
/// `key_generator.generate_key("cable_ready/verifier_key")`.
pub const CABLE_READY_SALT: &str = "cable_ready/verifier_key";

/// Verifies signed stream names: `MessageVerifier.new(key, digest:, serializer: JSON)`,
/// no purpose, no expiry, and the value must be a JSON string (the name to stream from).
///
/// Turbo (`Turbo.signed_stream_verifier`) and CableReady (`CableReady.signed_stream_verifier`)
/// are both SHA256 verifiers over a 64-byte key from the app's key generator, unless the app
/// set the key explicitly (`config.turbo.signed_stream_verifier_key`,
/// `CableReady.config.verifier_key`), in which case the key is that string's bytes.
///
/// Base64 defaults to [`Base64Decoding::UrlSafe`], which also takes the standard alphabet:
/// Rails 8.0.2+ verifiers accept both, AnyCable's Ruby signer writes URL-safe, and Rails before
/// 8.0.2 only standard. Use [`SignedStreamVerifier::with_base64`] to be strict.
#[derive(Debug, Clone)]
pub struct SignedStreamVerifier {
    candidates: Vec<(KeySource, MessageVerifier)>,
}

impl SignedStreamVerifier {
    /// Turbo Streams, key derived from `secret_key_base`.
    pub fn turbo(generator: &KeyGenerator, key_digests: DigestPolicy) -> SignedStreamVerifier {
        SignedStreamVerifier::derived(generator, TURBO_SALT, HmacDigest::Sha256, key_digests)
    }

    /// CableReady's `CableReady::Stream`, key derived from `secret_key_base`.
    pub fn cable_ready(
        generator: &KeyGenerator,
        key_digests: DigestPolicy,
    ) -> SignedStreamVerifier {
        SignedStreamVerifier::derived(generator, CABLE_READY_SALT, HmacDigest::Sha256, key_digests)
    }

    /// Any library of the same shape: a 64-byte key from the key generator with `salt`, and a
    /// `digest` HMAC.
    pub fn derived(
        generator: &KeyGenerator,
        salt: &str,
        digest: HmacDigest,
        key_digests: DigestPolicy,
    ) -> SignedStreamVerifier {
        let candidates = key_digests
            .digests()
            .map(|key_digest| {
                let key = generator.generate_key(salt, DEFAULT_KEY_SIZE, key_digest);
                (
                    KeySource::Derived(key_digest),
                    MessageVerifier::new(key, digest).with_base64(Base64Decoding::UrlSafe),
                )
            })
            .collect();
        SignedStreamVerifier { candidates }
    }

    /// An explicitly configured key (its bytes are the HMAC key as is).
    pub fn explicit(key: impl Into<Arc<[u8]>>, digest: HmacDigest) -> SignedStreamVerifier {
        SignedStreamVerifier {
            candidates: vec![(
                KeySource::Explicit,
                MessageVerifier::new(key, digest).with_base64(Base64Decoding::UrlSafe),
            )],
        }
    }

    /// Decode base64 this way instead.
    pub fn with_base64(mut self, base64: Base64Decoding) -> SignedStreamVerifier {
        self.candidates = self
            .candidates
            .into_iter()
            .map(|(source, verifier)| (source, verifier.with_base64(base64)))
            .collect();
        self
    }

    /// The stream name a signed name stands for, and which key matched.
    ///
    /// `now` only matters for a name signed with an expiry, which Turbo and CableReady never
    /// do but the verifier honours like Rails.
    pub fn verify(&self, signed_name: &str, now: SystemTime) -> Result<Verified<String>, Error> {
        let Verified { value, key } =
            open_with_any(&self.candidates, signed_name, &VerifyOptions::at(now))?;
        match value {
            Value::String(name) => Ok(Verified { value: name, key }),
            _ => Err(Error::UnexpectedPayload(
                "signed stream name is not a JSON string",
            )),
        }
    }
}
