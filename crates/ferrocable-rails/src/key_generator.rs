//! `Rails.application.key_generator`: PBKDF2 keys derived from `secret_key_base`.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use crate::RailsVersion;

/// Rails' application key generator runs PBKDF2 with 1000 iterations
/// (`railties/lib/rails/application.rb`, 6.1 through 8.0).
pub const KEY_GENERATOR_ITERATIONS: u32 = 1000;

/// The default `key_size` of `generate_key` (64 bytes).
pub const DEFAULT_KEY_SIZE: usize = 64;

/// The hash PBKDF2 runs on (`ActiveSupport::KeyGenerator.hash_digest_class`).
///
/// Rails 6.1 always uses SHA1. From 7.0 the class attribute defaults to SHA1 and
/// `load_defaults 7.0` (or later) sets `key_generator_hash_digest_class = SHA256`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyDigest {
    /// PBKDF2-HMAC-SHA1.
    Sha1,
    /// PBKDF2-HMAC-SHA256.
    Sha256,
}

impl KeyDigest {
    /// `"SHA1"` or `"SHA256"`, as Rails' OpenSSL digest names.
    pub fn name(self) -> &'static str {
        match self {
            KeyDigest::Sha1 => "SHA1",
            KeyDigest::Sha256 => "SHA256",
        }
    }

    /// The digest `config.load_defaults <version>` gives the key generator.
    pub fn for_load_defaults(load_defaults: RailsVersion) -> KeyDigest {
        if load_defaults >= RailsVersion::V7_0 {
            KeyDigest::Sha256
        } else {
            KeyDigest::Sha1
        }
    }
}

/// Which key-generator digests to accept.
///
/// A Rails app uses exactly one, but which one is easy to get wrong from the outside: the
/// digest is applied in a `config.after_initialize` hook while generators capture it when
/// they are built, so an app on `load_defaults 7.0+` that touches
/// `Rails.application.key_generator` early keeps SHA1 for good (rails/rails#51750), and
/// turbo-rails before 1.1.1 derived its key before the hook (hotwired/turbo-rails#325).
/// Apps that upgraded also commonly rotate SHA1-keyed cookies (the snippet in
/// `new_framework_defaults_7_0.rb`). Trying both keys costs one more HMAC and no security:
/// both are derived from the same secret. Pin a digest to be exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DigestPolicy {
    /// Only keys derived with this digest.
    Pinned(KeyDigest),
    /// Both digests, this one first. The result says which one matched.
    TryBoth {
        /// The digest tried first.
        first: KeyDigest,
    },
}

impl DigestPolicy {
    /// Both digests, the app's own default for `load_defaults` first (SHA1 before 7.0, SHA256
    /// from 7.0).
    pub fn for_load_defaults(load_defaults: RailsVersion) -> DigestPolicy {
        DigestPolicy::TryBoth {
            first: KeyDigest::for_load_defaults(load_defaults),
        }
    }

    /// The digests to try, in order.
    pub fn digests(self) -> impl Iterator<Item = KeyDigest> {
        let (first, second) = match self {
            DigestPolicy::Pinned(digest) => (digest, None),
            DigestPolicy::TryBoth { first } => (
                first,
                Some(match first {
                    KeyDigest::Sha1 => KeyDigest::Sha256,
                    KeyDigest::Sha256 => KeyDigest::Sha1,
                }),
            ),
        };
        std::iter::once(first).chain(second)
    }
}

/// The app's `secret_key_base`. Its **text bytes** are the PBKDF2 password (the usual 128 hex
/// characters are not hex-decoded). `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKeyBase(Vec<u8>);

impl SecretKeyBase {
    /// Wraps the secret as given (an environment variable's value or a file's contents,
    /// already trimmed of a trailing newline by the caller if it has one).
    pub fn new(secret: impl Into<Vec<u8>>) -> SecretKeyBase {
        SecretKeyBase(secret.into())
    }

    /// The secret's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SecretKeyBase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKeyBase(<{} bytes, redacted>)", self.0.len())
    }
}

type CacheKey = (String, usize, KeyDigest);

/// Rails' `CachingKeyGenerator.new(KeyGenerator.new(secret_key_base, iterations: 1000))`, for
/// both digests.
///
/// `generate_key(salt, size)` is PBKDF2-HMAC(secret_key_base, salt, 1000, size). Results are
/// cached per (salt, size, digest), as Rails caches them: a derivation costs 1000 HMACs per
/// output block, and the same few salts are asked for on every connection.
pub struct KeyGenerator {
    secret_key_base: SecretKeyBase,
    cache: Mutex<HashMap<CacheKey, Arc<[u8]>>>,
}

impl KeyGenerator {
    /// A generator over this secret.
    pub fn new(secret_key_base: SecretKeyBase) -> KeyGenerator {
        KeyGenerator {
            secret_key_base,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// `generate_key(salt, key_size)` with the given digest (cached).
    pub fn generate_key(&self, salt: &str, key_size: usize, digest: KeyDigest) -> Arc<[u8]> {
        let cache_key = (salt.to_owned(), key_size, digest);
        // A poisoned lock can only come from a panic elsewhere while inserting; the map is
        // still consistent (insert is the only mutation), so keep using it.
        if let Some(key) = self
            .cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(&cache_key)
        {
            return Arc::clone(key);
        }
        let key: Arc<[u8]> = derive(
            self.secret_key_base.as_bytes(),
            salt.as_bytes(),
            key_size,
            digest,
        )
        .into();
        self.cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(cache_key, Arc::clone(&key));
        key
    }
}

impl fmt::Debug for KeyGenerator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyGenerator")
            .field("secret_key_base", &self.secret_key_base)
            .finish_non_exhaustive()
    }
}

fn derive(password: &[u8], salt: &[u8], key_size: usize, digest: KeyDigest) -> Vec<u8> {
    let mut key = vec![0u8; key_size];
    match digest {
        KeyDigest::Sha1 => {
            pbkdf2::pbkdf2_hmac::<sha1::Sha1>(password, salt, KEY_GENERATOR_ITERATIONS, &mut key)
        }
        KeyDigest::Sha256 => {
            pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password, salt, KEY_GENERATOR_ITERATIONS, &mut key)
        }
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_order_follows_load_defaults() {
        let before_7 = DigestPolicy::for_load_defaults(RailsVersion::V6_1);
        assert_eq!(
            before_7.digests().collect::<Vec<_>>(),
            [KeyDigest::Sha1, KeyDigest::Sha256]
        );
        let from_7 = DigestPolicy::for_load_defaults(RailsVersion::V7_0);
        assert_eq!(
            from_7.digests().collect::<Vec<_>>(),
            [KeyDigest::Sha256, KeyDigest::Sha1]
        );
        assert_eq!(
            DigestPolicy::Pinned(KeyDigest::Sha1)
                .digests()
                .collect::<Vec<_>>(),
            [KeyDigest::Sha1]
        );
    }

    #[test]
    fn cache_returns_the_same_key_and_distinguishes_size_and_digest() {
        let generator = KeyGenerator::new(SecretKeyBase::new("hunter2hunter2"));
        let a = generator.generate_key("salt", 64, KeyDigest::Sha256);
        let b = generator.generate_key("salt", 64, KeyDigest::Sha256);
        assert!(Arc::ptr_eq(&a, &b));
        let short = generator.generate_key("salt", 32, KeyDigest::Sha256);
        // PBKDF2 output blocks are independent of the requested length.
        assert_eq!(&a[..32], &short[..]);
        assert_ne!(a, generator.generate_key("salt", 64, KeyDigest::Sha1));
        assert!(!format!("{generator:?}").contains("hunter2"));
    }
}
