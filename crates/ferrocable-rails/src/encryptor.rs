//! `ActiveSupport::MessageEncryptor`: AES-256-GCM (`data--iv--tag`), and the legacy
//! AES-256-CBC + HMAC form.

use std::fmt;
use std::sync::Arc;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use serde_json::Value;

use crate::base64::{Base64Decoding, strict_encode};
use crate::envelope::{self, Envelope, Serializer, VerifyOptions};
use crate::verifier::{HmacDigest, MessageVerifier};
use crate::{Error, check_token_len};

/// Key length of AES-256 (`MessageEncryptor.key_len("aes-256-gcm")` and `"aes-256-cbc"`).
pub const AES_256_KEY_LEN: usize = 32;
/// Ruby's OpenSSL default GCM IV length.
const GCM_IV_LEN: usize = 12;
/// `MessageEncryptor::AUTH_TAG_LENGTH`.
const GCM_TAG_LEN: usize = 16;
const CBC_IV_LEN: usize = 16;
const SEPARATOR: &str = "--";

#[derive(Clone)]
enum Scheme {
    /// `aes-256-gcm`: authenticated, no separate verifier, empty associated data.
    Gcm(Arc<Aes256Gcm>),
    /// `aes-256-cbc` wrapped in a `MessageVerifier` over the sign secret (the pre-5.2
    /// encrypted cookies, still read by every later version as a rotation).
    CbcHmac {
        key: [u8; AES_256_KEY_LEN],
        verifier: MessageVerifier,
    },
}

/// A `MessageEncryptor` with one key.
#[derive(Clone)]
pub struct MessageEncryptor {
    scheme: Scheme,
    serializer: Serializer,
}

impl MessageEncryptor {
    /// `MessageEncryptor.new(key, cipher: "aes-256-gcm")`: the token is
    /// `base64(ciphertext)--base64(iv)--base64(tag)` with a 12-byte IV and a 16-byte tag.
    pub fn aes_256_gcm(key: &[u8; AES_256_KEY_LEN]) -> MessageEncryptor {
        MessageEncryptor {
            scheme: Scheme::Gcm(Arc::new(Aes256Gcm::new(key.into()))),
            serializer: Serializer::Json,
        }
    }

    /// `MessageEncryptor.new(key, sign_key, cipher: "aes-256-cbc", digest:)`: the token is a
    /// `MessageVerifier` token (HMAC with `sign_key`) whose payload is
    /// `base64(ciphertext)--base64(iv)`, PKCS#7-padded AES-256-CBC with a 16-byte IV.
    pub fn aes_256_cbc_hmac(
        key: &[u8; AES_256_KEY_LEN],
        sign_key: impl Into<Arc<[u8]>>,
        digest: HmacDigest,
    ) -> MessageEncryptor {
        MessageEncryptor {
            scheme: Scheme::CbcHmac {
                key: *key,
                verifier: MessageVerifier::new(sign_key, digest),
            },
            serializer: Serializer::Json,
        }
    }

    /// The app's serializer for these messages (only changes how a Marshal refusal is worded).
    pub fn with_serializer(mut self, serializer: Serializer) -> MessageEncryptor {
        self.serializer = serializer;
        self
    }

    /// The serializer.
    pub fn serializer(&self) -> Serializer {
        self.serializer
    }

    /// Authenticates and decrypts, returning the plaintext payload (not yet deserialized).
    /// [`Error::BadSignature`] means only that this key did not make it.
    pub fn decrypt_bytes(&self, token: &str) -> Result<Vec<u8>, Error> {
        self.authenticate(token)?
    }

    /// The two stages of [`MessageEncryptor::decrypt_bytes`], as
    /// `MessageVerifier::authenticate`: outer error, not made with this key; inner error,
    /// authenticated but undecryptable (only possible for CBC, whose HMAC comes first).
    pub(crate) fn authenticate(&self, token: &str) -> Result<Result<Vec<u8>, Error>, Error> {
        check_token_len(token)?;
        match &self.scheme {
            Scheme::Gcm(cipher) => decrypt_gcm(cipher, token).map(Ok),
            Scheme::CbcHmac { key, verifier } => {
                Ok(verifier.authenticate(token)?.and_then(|signed| {
                    let inner = std::str::from_utf8(&signed)
                        .map_err(|_| Error::InvalidFormat("CBC payload is not text"))?;
                    decrypt_cbc(key, inner)
                }))
            }
        }
    }

    /// `decrypt_and_verify(token, purpose:)`: decryption, then envelope, purpose, expiry and
    /// JSON.
    pub fn decrypt_and_verify(&self, token: &str, options: &VerifyOptions) -> Result<Value, Error> {
        let plaintext = self.decrypt_bytes(token)?;
        envelope::open(&plaintext, options, self.serializer)
    }

    /// `encrypt_and_sign(value, ...)` with a caller-chosen IV (12 bytes for GCM, 16 for CBC;
    /// this crate has no randomness source, and reusing an IV with the same GCM key breaks
    /// GCM: use a fresh random one). For tests and fixtures.
    pub fn encrypt_and_sign(
        &self,
        value: &Value,
        envelope: &Envelope,
        iv: &[u8],
    ) -> Result<String, Error> {
        let plaintext = envelope::seal(value, envelope);
        match &self.scheme {
            Scheme::Gcm(cipher) => {
                if iv.len() != GCM_IV_LEN {
                    return Err(Error::InvalidFormat("GCM IV must be 12 bytes"));
                }
                let sealed = cipher
                    .encrypt(
                        &gcm_nonce(iv)?,
                        Payload {
                            msg: &plaintext,
                            aad: b"",
                        },
                    )
                    .map_err(|_| Error::InvalidFormat("plaintext too long for GCM"))?;
                let (ciphertext, tag) = sealed.split_at(sealed.len() - GCM_TAG_LEN);
                Ok(format!(
                    "{}{SEPARATOR}{}{SEPARATOR}{}",
                    strict_encode(ciphertext),
                    strict_encode(iv),
                    strict_encode(tag)
                ))
            }
            Scheme::CbcHmac { key, verifier } => {
                let iv: &[u8; CBC_IV_LEN] = iv
                    .try_into()
                    .map_err(|_| Error::InvalidFormat("CBC IV must be 16 bytes"))?;
                let mut buffer = plaintext.clone();
                buffer.resize(plaintext.len() + CBC_IV_LEN, 0);
                let ciphertext = cbc::Encryptor::<aes::Aes256>::new(key.into(), iv.into())
                    .encrypt_padded_mut::<Pkcs7>(&mut buffer, plaintext.len())
                    .map_err(|_| Error::InvalidFormat("CBC padding buffer too small"))?;
                let inner = format!(
                    "{}{SEPARATOR}{}",
                    strict_encode(ciphertext),
                    strict_encode(iv)
                );
                // The outer verifier uses Rails' NullSerializer: it signs the text as is.
                Ok(verifier.sign_encoded(strict_encode(inner.as_bytes())))
            }
        }
    }
}

fn split_base64_parts(token: &str, count: usize) -> Option<Vec<&str>> {
    let mut parts: Vec<&str> = token.rsplitn(count, SEPARATOR).collect();
    if parts.len() != count {
        return None;
    }
    parts.reverse();
    Some(parts)
}

/// One `--`-separated part of an encrypted message: always strict base64, in both schemes.
fn decode_part(part: &str) -> Result<Vec<u8>, Error> {
    Base64Decoding::Strict
        .decode(part)
        .ok_or(Error::InvalidFormat("part is not base64"))
}

fn decrypt_gcm(cipher: &Aes256Gcm, token: &str) -> Result<Vec<u8>, Error> {
    let parts = split_base64_parts(token, 3).ok_or(Error::InvalidFormat("not data--iv--tag"))?;
    let mut ciphertext = decode_part(parts[0])?;
    let iv = decode_part(parts[1])?;
    let tag = decode_part(parts[2])?;
    if iv.len() != GCM_IV_LEN {
        return Err(Error::InvalidFormat("IV is not 12 bytes"));
    }
    if tag.len() != GCM_TAG_LEN {
        return Err(Error::InvalidFormat("auth tag is not 16 bytes"));
    }
    ciphertext.extend_from_slice(&tag);
    cipher
        .decrypt(
            &gcm_nonce(&iv)?,
            Payload {
                msg: &ciphertext,
                aad: b"",
            },
        )
        .map_err(|_| Error::BadSignature)
}

fn decrypt_cbc(key: &[u8; AES_256_KEY_LEN], inner: &str) -> Result<Vec<u8>, Error> {
    let parts = split_base64_parts(inner, 2).ok_or(Error::InvalidFormat("not data--iv"))?;
    let mut ciphertext = decode_part(parts[0])?;
    let iv = decode_part(parts[1])?;
    let iv: &[u8; CBC_IV_LEN] = iv
        .as_slice()
        .try_into()
        .map_err(|_| Error::InvalidFormat("IV is not 16 bytes"))?;
    if ciphertext.is_empty() || ciphertext.len() % CBC_IV_LEN != 0 {
        return Err(Error::InvalidFormat("ciphertext is not whole AES blocks"));
    }
    let plaintext = cbc::Decryptor::<aes::Aes256>::new(key.into(), iv.into())
        .decrypt_padded_mut::<Pkcs7>(&mut ciphertext)
        // Under a valid HMAC this can only be a broken signer; report it as a format error.
        .map_err(|_| Error::InvalidFormat("bad CBC padding"))?;
    Ok(plaintext.to_vec())
}

impl fmt::Debug for MessageEncryptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cipher = match &self.scheme {
            Scheme::Gcm(_) => "aes-256-gcm",
            Scheme::CbcHmac { .. } => "aes-256-cbc+hmac",
        };
        f.debug_struct("MessageEncryptor")
            .field("cipher", &cipher)
            .field("key", &"<redacted>")
            .field("serializer", &self.serializer)
            .finish()
    }
}

/// The 12-byte GCM nonce; callers have checked the length, so the error is unreachable in
/// practice but keeps this panic-free.
fn gcm_nonce(iv: &[u8]) -> Result<Nonce<aes_gcm::aead::consts::U12>, Error> {
    let bytes: [u8; GCM_IV_LEN] = iv
        .try_into()
        .map_err(|_| Error::InvalidFormat("IV is not 12 bytes"))?;
    Ok(Nonce::from(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::SystemTime;

    fn options() -> VerifyOptions {
        VerifyOptions::at(SystemTime::now())
    }

    #[test]
    fn gcm_round_trip_and_wrong_key() {
        let encryptor = MessageEncryptor::aes_256_gcm(&[3u8; AES_256_KEY_LEN]);
        let value = json!({"session_id": "abc", "user_id": 42});
        let token = encryptor
            .encrypt_and_sign(&value, &Envelope::None, &[5u8; GCM_IV_LEN])
            .unwrap();
        assert_eq!(token.matches(SEPARATOR).count(), 2);
        assert_eq!(
            encryptor.decrypt_and_verify(&token, &options()),
            Ok(value.clone())
        );
        let other = MessageEncryptor::aes_256_gcm(&[4u8; AES_256_KEY_LEN]);
        assert_eq!(
            other.decrypt_and_verify(&token, &options()),
            Err(Error::BadSignature)
        );
        // A truncated tag is a format error (Rails checks its length before decrypting).
        let short_tag = format!(
            "{}{}",
            &token[..token.len() - 24],
            strict_encode(&[0u8; 15])
        );
        assert_eq!(
            encryptor.decrypt_bytes(&short_tag),
            Err(Error::InvalidFormat("auth tag is not 16 bytes"))
        );
        assert!(
            encryptor
                .encrypt_and_sign(&value, &Envelope::None, &[0u8; 16])
                .is_err()
        );
    }

    #[test]
    fn cbc_round_trip_and_tampering() {
        let encryptor =
            MessageEncryptor::aes_256_cbc_hmac(&[3u8; 32], vec![8u8; 64], HmacDigest::Sha1);
        let value = json!("legacy");
        let token = encryptor
            .encrypt_and_sign(&value, &Envelope::None, &[6u8; CBC_IV_LEN])
            .unwrap();
        assert_eq!(encryptor.decrypt_and_verify(&token, &options()), Ok(value));
        // Same encryption key, another signing key: the HMAC fails first.
        let other_sign =
            MessageEncryptor::aes_256_cbc_hmac(&[3u8; 32], vec![9u8; 64], HmacDigest::Sha1);
        assert_eq!(
            other_sign.decrypt_and_verify(&token, &options()),
            Err(Error::BadSignature)
        );
        // Same signing key, another encryption key: authentic, but the padding breaks (or the
        // plaintext is garbage); either way an error, never a value.
        let other_key =
            MessageEncryptor::aes_256_cbc_hmac(&[4u8; 32], vec![8u8; 64], HmacDigest::Sha1);
        assert!(other_key.decrypt_and_verify(&token, &options()).is_err());
    }
}
