//! `ActiveSupport::MessageVerifier`: `base64(payload) + "--" + hex(HMAC(key, base64 text))`.

use std::fmt;
use std::sync::Arc;

use hmac::{Hmac, Mac};
use serde_json::Value;
use subtle::ConstantTimeEq;

use crate::base64::{Base64Decoding, strict_encode, url_safe_encode};
use crate::envelope::{self, Envelope, Serializer, VerifyOptions};
use crate::{Error, check_token_len};

const SEPARATOR: &str = "--";

/// The HMAC digest of a verifier (`digest:`; Rails' default is SHA1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum HmacDigest {
    /// HMAC-SHA1, 40 hex characters (`MessageVerifier`'s default, signed cookies' default).
    #[default]
    Sha1,
    /// HMAC-SHA256, 64 hex characters (Turbo, CableReady, Active Record signed ids).
    Sha256,
    /// HMAC-SHA384, 96 hex characters.
    Sha384,
    /// HMAC-SHA512, 128 hex characters.
    Sha512,
}

impl HmacDigest {
    /// Parses an OpenSSL digest name as Rails accepts it (`"SHA256"`, `"sha256"`).
    pub fn parse(name: &str) -> Option<HmacDigest> {
        match name.to_ascii_uppercase().as_str() {
            "SHA1" => Some(HmacDigest::Sha1),
            "SHA256" => Some(HmacDigest::Sha256),
            "SHA384" => Some(HmacDigest::Sha384),
            "SHA512" => Some(HmacDigest::Sha512),
            _ => None,
        }
    }

    /// Length of the lowercase hex digest in a token.
    pub fn hex_len(self) -> usize {
        match self {
            HmacDigest::Sha1 => 40,
            HmacDigest::Sha256 => 64,
            HmacDigest::Sha384 => 96,
            HmacDigest::Sha512 => 128,
        }
    }

    fn hex_mac(self, key: &[u8], data: &[u8]) -> String {
        fn run<M: Mac + hmac::digest::KeyInit>(key: &[u8], data: &[u8]) -> Vec<u8> {
            // HMAC takes keys of any length, so this cannot fail.
            let mut mac = <M as Mac>::new_from_slice(key)
                .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
            mac.update(data);
            mac.finalize().into_bytes().to_vec()
        }
        let raw = match self {
            HmacDigest::Sha1 => run::<Hmac<sha1::Sha1>>(key, data),
            HmacDigest::Sha256 => run::<Hmac<sha2::Sha256>>(key, data),
            HmacDigest::Sha384 => run::<Hmac<sha2::Sha384>>(key, data),
            HmacDigest::Sha512 => run::<Hmac<sha2::Sha512>>(key, data),
        };
        let mut hex = String::with_capacity(raw.len() * 2);
        for byte in raw {
            hex.push(char::from(b"0123456789abcdef"[usize::from(byte >> 4)]));
            hex.push(char::from(b"0123456789abcdef"[usize::from(byte & 0xf)]));
        }
        hex
    }
}

/// A `MessageVerifier` with one key.
///
/// Verification follows Rails 7.0+ (`message_verifier.rb`): the separator is found at
/// `len - hex_len - 2` (Rails 6.1 split on `--`, which also accepted trailing `--junk`; real
/// tokens never have it), the digest is compared in constant time against the lowercase hex
/// HMAC of the base64 **text**, then the text is base64-decoded and the payload deserialized
/// and checked (purpose, expiry) as [`envelope`](crate::Envelope) describes.
#[derive(Clone)]
pub struct MessageVerifier {
    key: Arc<[u8]>,
    digest: HmacDigest,
    base64: Base64Decoding,
    serializer: Serializer,
}

impl MessageVerifier {
    /// A verifier for `key` (raw bytes, as Rails' `secret`) with this HMAC digest, strict
    /// base64 and the JSON serializer.
    pub fn new(key: impl Into<Arc<[u8]>>, digest: HmacDigest) -> MessageVerifier {
        MessageVerifier {
            key: key.into(),
            digest,
            base64: Base64Decoding::Strict,
            serializer: Serializer::Json,
        }
    }

    /// Decode base64 this way instead (`url_safe: true` verifiers, or the 8.0.2+ leniency).
    pub fn with_base64(mut self, base64: Base64Decoding) -> MessageVerifier {
        self.base64 = base64;
        self
    }

    /// The app's serializer for these messages (only changes how a Marshal refusal is worded).
    pub fn with_serializer(mut self, serializer: Serializer) -> MessageVerifier {
        self.serializer = serializer;
        self
    }

    /// The HMAC digest.
    pub fn digest(&self) -> HmacDigest {
        self.digest
    }

    /// The serializer.
    pub fn serializer(&self) -> Serializer {
        self.serializer
    }

    /// Checks the signature and returns the signed payload bytes (base64-decoded, not yet
    /// deserialized). [`Error::BadSignature`] means only that this key did not sign it.
    pub fn verify_signature(&self, token: &str) -> Result<Vec<u8>, Error> {
        self.authenticate(token)?
    }

    /// The two stages of [`MessageVerifier::verify_signature`]: the outer error means the
    /// token was not authenticated by this key (malformed, or another key's signature); the
    /// inner one that it was, and its data then failed to decode. Callers trying several keys
    /// need the difference: only the outer kind lets another key have a go.
    pub(crate) fn authenticate(&self, token: &str) -> Result<Result<Vec<u8>, Error>, Error> {
        check_token_len(token)?;
        let hex_len = self.digest.hex_len();
        let Some(separator_at) = token.len().checked_sub(hex_len + SEPARATOR.len()) else {
            return Err(Error::InvalidFormat("shorter than a digest"));
        };
        // Byte offsets are safe to slice only at character boundaries; a token with non-ASCII
        // text fails base64 in Rails anyway.
        if !token.is_ascii() {
            return Err(Error::InvalidFormat("not ASCII"));
        }
        let (encoded, rest) = token.split_at(separator_at);
        let Some(given_digest) = rest.strip_prefix(SEPARATOR) else {
            return Err(Error::InvalidFormat(
                "no `--` where the digest length puts it",
            ));
        };
        if encoded.is_empty() {
            return Err(Error::InvalidFormat("empty data"));
        }
        let expected_digest = self.digest.hex_mac(&self.key, encoded.as_bytes());
        if !bool::from(given_digest.as_bytes().ct_eq(expected_digest.as_bytes())) {
            return Err(Error::BadSignature);
        }
        Ok(self
            .base64
            .decode(encoded)
            .ok_or(Error::InvalidFormat("data is not base64")))
    }

    /// `verified(token, purpose:)`: signature, then envelope, purpose, expiry and JSON.
    pub fn verified(&self, token: &str, options: &VerifyOptions) -> Result<Value, Error> {
        let payload = self.verify_signature(token)?;
        envelope::open(&payload, options, self.serializer)
    }

    /// `generate(value, ...)` with the JSON serializer: mints a token this verifier (and
    /// Rails, with the same key and digest) accepts. For tests and fixtures; Rails' own JSON
    /// escapes `<`, `>`, `&` and U+2028/9, serde_json does not, so the bytes can differ from
    /// Rails' for such strings while verifying the same.
    pub fn generate(&self, value: &Value, envelope: &Envelope) -> String {
        let sealed = envelope::seal(value, envelope);
        let encoded = match self.base64 {
            Base64Decoding::Strict => strict_encode(&sealed),
            Base64Decoding::UrlSafe => url_safe_encode(&sealed),
        };
        self.sign_encoded(encoded)
    }

    /// Appends `--` and the hex HMAC of `encoded` (Rails' `sign_encoded`).
    pub(crate) fn sign_encoded(&self, encoded: String) -> String {
        let digest = self.digest.hex_mac(&self.key, encoded.as_bytes());
        format!("{encoded}{SEPARATOR}{digest}")
    }
}

impl fmt::Debug for MessageVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessageVerifier")
            .field("key", &format_args!("<{} bytes, redacted>", self.key.len()))
            .field("digest", &self.digest)
            .field("base64", &self.base64)
            .field("serializer", &self.serializer)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MAX_TOKEN_LEN;
    use serde_json::json;
    use std::time::SystemTime;

    fn options() -> VerifyOptions {
        VerifyOptions::at(SystemTime::now())
    }

    #[test]
    fn anycable_vector_from_ruby_turbo_verifies() {
        // anycable-go utils/message_verifier_test.go: made by Ruby Turbo with
        // `signed_stream_verifier_key = 's3Krit'` and `signed_stream_name([:chat, "2021"])`.
        let verifier = MessageVerifier::new(&b"s3Krit"[..], HmacDigest::Sha256);
        let token =
            "ImNoYXQ6MjAyMSI=--f9ee45dbccb1da04d8ceb99cc820207804370ba0d06b46fc3b8b373af1315628";
        assert_eq!(verifier.verified(token, &options()), Ok(json!("chat:2021")));
        assert_eq!(
            verifier.generate(&json!("chat:2021"), &Envelope::None),
            token
        );
    }

    #[test]
    fn separator_is_found_by_digest_length_not_by_splitting() {
        let verifier = MessageVerifier::new(&b"k"[..], HmacDigest::Sha1);
        let token = verifier.generate(&json!("x"), &Envelope::None);
        assert!(verifier.verified(&token, &options()).is_ok());
        // Rails 6.1 split on "--" and ignored anything after the digest; position-based
        // parsing (7.0+) does not.
        assert_eq!(
            verifier
                .verified(&format!("{token}--junk"), &options())
                .map_err(|e| e.kind()),
            Err("invalid_format")
        );
        // The same token under a verifier of another digest length has no separator there.
        let sha256 = MessageVerifier::new(&b"k"[..], HmacDigest::Sha256);
        assert_eq!(
            sha256.verified(&token, &options()).map_err(|e| e.kind()),
            Err("invalid_format")
        );
    }

    #[test]
    fn any_flipped_character_is_refused() {
        let verifier = MessageVerifier::new(&b"k"[..], HmacDigest::Sha256);
        let token = verifier.generate(&json!({"a": 1}), &Envelope::None);
        for i in 0..token.len() {
            let mut bytes = token.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let tampered = String::from_utf8(bytes).unwrap();
            if tampered == token {
                continue;
            }
            assert!(
                verifier.verified(&tampered, &options()).is_err(),
                "position {i}"
            );
        }
        // Uppercase hex is not what Rails generates, and Rails compares the text.
        let (data, digest) = token.split_at(token.len() - 64);
        let upper = format!("{data}{}", digest.to_ascii_uppercase());
        assert_eq!(verifier.verify_signature(&upper), Err(Error::BadSignature));
    }

    #[test]
    fn url_safe_verifiers_also_read_strict_tokens() {
        let strict = MessageVerifier::new(&b"k"[..], HmacDigest::Sha256);
        let url_safe = strict.clone().with_base64(Base64Decoding::UrlSafe);
        // `>>>?` encodes with `+` and `/` in strict base64.
        let value = json!(">>>?");
        let strict_token = strict.generate(&value, &Envelope::None);
        let url_token = url_safe.generate(&value, &Envelope::None);
        assert!(strict_token.contains('+') || strict_token.contains('/'));
        assert!(url_token.contains('-') || url_token.contains('_'));
        assert_eq!(
            url_safe.verified(&strict_token, &options()),
            Ok(value.clone())
        );
        assert_eq!(url_safe.verified(&url_token, &options()), Ok(value));
        assert_eq!(
            strict
                .verified(&url_token, &options())
                .map_err(|e| e.kind()),
            Err("invalid_format")
        );
    }

    #[test]
    fn oversized_tokens_are_refused_before_hashing() {
        let verifier = MessageVerifier::new(&b"k"[..], HmacDigest::Sha1);
        let huge = "A".repeat(MAX_TOKEN_LEN + 1);
        assert_eq!(
            verifier.verify_signature(&huge),
            Err(Error::TooLarge {
                len: MAX_TOKEN_LEN + 1,
                limit: MAX_TOKEN_LEN
            })
        );
    }

    #[test]
    fn debug_does_not_show_the_key() {
        let verifier = MessageVerifier::new(&b"hunter2hunter2"[..], HmacDigest::Sha1);
        assert!(!format!("{verifier:?}").contains("hunter2"));
    }
}
