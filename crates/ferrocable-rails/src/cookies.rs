//! `cookies.signed`, `cookies.encrypted` and the cookie-store session
//! (`actionpack/lib/action_dispatch/middleware/cookies.rb`, `session/cookie_store.rb`).

use std::collections::HashMap;
use std::time::SystemTime;

use serde_json::{Map, Value};

use crate::envelope::{PurposeCheck, Serializer, VerifyOptions};
use crate::verified::{KeySource, Verified, open_with_any};
use crate::{
    AES_256_KEY_LEN, DEFAULT_KEY_SIZE, DigestPolicy, Error, HmacDigest, KeyGenerator,
    MAX_COOKIE_HEADER_LEN, MessageEncryptor, MessageVerifier, RailsVersion,
};

/// `config.action_dispatch.signed_cookie_salt`.
pub const SIGNED_COOKIE_SALT: &str = "signed cookie";
/// `config.action_dispatch.authenticated_encrypted_cookie_salt` (AES-256-GCM cookies).
pub const AUTHENTICATED_ENCRYPTED_COOKIE_SALT: &str = "authenticated encrypted cookie";
/// `config.action_dispatch.encrypted_cookie_salt` (legacy AES-256-CBC cookies).
pub const ENCRYPTED_COOKIE_SALT: &str = "encrypted cookie";
/// `config.action_dispatch.encrypted_signed_cookie_salt` (HMAC of legacy CBC cookies).
pub const ENCRYPTED_SIGNED_COOKIE_SALT: &str = "signed encrypted cookie";

/// A `Cookie` request header parsed as Rack parses it (`Rack::Utils.parse_cookies_header`,
/// Rack 2.2 and 3.x alike).
///
/// Pairs are split on `;` followed by any spaces; each pair on its first `=`; names are kept
/// verbatim; values are form-decoded (`+` is a space, `%XX` a byte), or kept raw when they hold
/// a `%` not followed by two hex digits. The first occurrence of a name wins. A pair without
/// `=` has no value, which Rails reads as no cookie.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CookieJar {
    cookies: HashMap<String, Option<Vec<u8>>>,
}

impl CookieJar {
    /// Parses a `Cookie` header value; refuses headers over [`MAX_COOKIE_HEADER_LEN`].
    pub fn parse(header: &str) -> Result<CookieJar, Error> {
        if header.len() > MAX_COOKIE_HEADER_LEN {
            return Err(Error::TooLarge {
                len: header.len(),
                limit: MAX_COOKIE_HEADER_LEN,
            });
        }
        let mut cookies = HashMap::new();
        for pair in split_pairs(header) {
            let (name, value) = match pair.split_once('=') {
                Some((name, raw)) => (
                    name,
                    Some(form_decode(raw).unwrap_or_else(|| raw.as_bytes().to_vec())),
                ),
                None => (pair, None),
            };
            cookies.entry(name.to_owned()).or_insert(value);
        }
        Ok(CookieJar { cookies })
    }

    /// The decoded value of cookie `name`, if present with a value.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.cookies.get(name).and_then(|value| value.as_deref())
    }

    /// Number of distinct cookie names.
    pub fn len(&self) -> usize {
        self.cookies.len()
    }

    /// Whether the header held no cookies.
    pub fn is_empty(&self) -> bool {
        self.cookies.is_empty()
    }
}

/// Ruby's `header.split(/; */)`: pieces between `;`+spaces, skipping empty ones (Rack skips
/// them, and Ruby's split drops trailing ones).
fn split_pairs(header: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(header);
    std::iter::from_fn(move || {
        let text = rest?;
        let (piece, after) = match text.find(';') {
            Some(at) => (&text[..at], Some(text[at + 1..].trim_start_matches(' '))),
            None => (text, None),
        };
        rest = after;
        Some(piece)
    })
    .filter(|piece| !piece.is_empty())
}

/// `URI.decode_www_form_component`: `None` where Ruby raises (a `%` without two hex digits).
fn form_decode(raw: &str) -> Option<Vec<u8>> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        match bytes[at] {
            b'+' => {
                out.push(b' ');
                at += 1;
            }
            b'%' => {
                let high = hex_value(*bytes.get(at + 1)?)?;
                let low = hex_value(*bytes.get(at + 2)?)?;
                out.push(high << 4 | low);
                at += 3;
            }
            other => {
                out.push(other);
                at += 1;
            }
        }
    }
    Some(out)
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

/// The app's cookie settings (`config.action_dispatch.*`). Start from
/// [`CookieConfig::for_load_defaults`] and change what the app changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieConfig {
    /// Which key-generator digests to try (`key_generator_hash_digest_class`).
    pub key_digests: DigestPolicy,
    /// `signed_cookie_digest`: the HMAC of signed cookies. Default SHA1 in every version
    /// (independent of the key generator's digest).
    pub signed_cookie_digest: HmacDigest,
    /// `cookies_serializer`. Only JSON is ever decoded; this decides how a Marshal cookie is
    /// reported (see [`Serializer`]).
    pub cookies_serializer: Serializer,
    /// `use_authenticated_cookie_encryption` (`load_defaults` 5.2+): AES-256-GCM first, legacy
    /// CBC as the fallback; when `false`, the other way round. Rails reads both either way.
    pub use_authenticated_cookie_encryption: bool,
    /// `cookies_digest`: the HMAC of legacy CBC cookies when they are read as a fallback
    /// (default SHA1; CBC cookies read as the primary scheme always use SHA1).
    pub legacy_cbc_digest: HmacDigest,
    /// Stricter than Rails: refuse cookies that carry no purpose. Rails (every version)
    /// accepts a cookie without metadata under any name, because apps before
    /// `load_defaults 6.0` wrote them that way; set this when the app never did.
    pub require_purpose: bool,
    /// `signed_cookie_salt`.
    pub signed_cookie_salt: String,
    /// `authenticated_encrypted_cookie_salt`.
    pub authenticated_encrypted_cookie_salt: String,
    /// `encrypted_cookie_salt`.
    pub encrypted_cookie_salt: String,
    /// `encrypted_signed_cookie_salt`.
    pub encrypted_signed_cookie_salt: String,
}

impl CookieConfig {
    /// The settings a new app on `config.load_defaults <version>` has.
    ///
    /// Below 7.0 `cookies_serializer` comes from the generated
    /// `config/initializers/cookies_serializer.rb` (`:json` since Rails 4.1); set
    /// [`Serializer::Marshal`] for an app without it.
    pub fn for_load_defaults(load_defaults: RailsVersion) -> CookieConfig {
        CookieConfig {
            key_digests: DigestPolicy::for_load_defaults(load_defaults),
            signed_cookie_digest: HmacDigest::Sha1,
            cookies_serializer: Serializer::Json,
            use_authenticated_cookie_encryption: load_defaults >= RailsVersion::new(5, 2),
            legacy_cbc_digest: HmacDigest::Sha1,
            require_purpose: false,
            signed_cookie_salt: SIGNED_COOKIE_SALT.into(),
            authenticated_encrypted_cookie_salt: AUTHENTICATED_ENCRYPTED_COOKIE_SALT.into(),
            encrypted_cookie_salt: ENCRYPTED_COOKIE_SALT.into(),
            encrypted_signed_cookie_salt: ENCRYPTED_SIGNED_COOKIE_SALT.into(),
        }
    }
}

/// Reads `cookies.signed[name]`, `cookies.encrypted[name]` and the cookie-store session.
#[derive(Debug, Clone)]
pub struct CookieReader {
    signed: Vec<(KeySource, MessageVerifier)>,
    encrypted: Vec<(KeySource, MessageEncryptor)>,
    require_purpose: bool,
}

impl CookieReader {
    /// Derives every key the configuration can need (cached by `generator`).
    pub fn new(generator: &KeyGenerator, config: &CookieConfig) -> CookieReader {
        let mut signed = Vec::new();
        let mut gcm = Vec::new();
        let mut cbc = Vec::new();
        for digest in config.key_digests.digests() {
            let key = generator.generate_key(&config.signed_cookie_salt, DEFAULT_KEY_SIZE, digest);
            signed.push((
                KeySource::Derived(digest),
                MessageVerifier::new(key, config.signed_cookie_digest)
                    .with_serializer(config.cookies_serializer),
            ));
            let gcm_key = aes_key(
                generator,
                &config.authenticated_encrypted_cookie_salt,
                digest,
            );
            gcm.push((
                KeySource::Derived(digest),
                MessageEncryptor::aes_256_gcm(&gcm_key).with_serializer(config.cookies_serializer),
            ));
            let cbc_key = aes_key(generator, &config.encrypted_cookie_salt, digest);
            let sign_key = generator.generate_key(
                &config.encrypted_signed_cookie_salt,
                DEFAULT_KEY_SIZE,
                digest,
            );
            let cbc_digest = if config.use_authenticated_cookie_encryption {
                config.legacy_cbc_digest
            } else {
                HmacDigest::Sha1
            };
            cbc.push((
                KeySource::LegacyCbc(digest),
                MessageEncryptor::aes_256_cbc_hmac(&cbc_key, sign_key, cbc_digest)
                    .with_serializer(config.cookies_serializer),
            ));
        }
        let encrypted = if config.use_authenticated_cookie_encryption {
            gcm.into_iter().chain(cbc).collect()
        } else {
            cbc.into_iter().chain(gcm).collect()
        };
        CookieReader {
            signed,
            encrypted,
            require_purpose: config.require_purpose,
        }
    }

    fn options(&self, name: &str, now: SystemTime) -> VerifyOptions {
        let purpose = format!("cookie.{name}");
        VerifyOptions {
            purpose: if self.require_purpose {
                PurposeCheck::Exactly(purpose)
            } else {
                PurposeCheck::ExactlyOrNone(purpose)
            },
            now,
        }
    }

    /// `cookies.signed[name]`.
    pub fn signed(
        &self,
        jar: &CookieJar,
        name: &str,
        now: SystemTime,
    ) -> Result<Verified<Value>, Error> {
        let value = cookie_text(jar, name)?;
        self.verify_signed_value(name, value, now)
    }

    /// `cookies.signed[name]` for a value already taken out of the header (and decoded).
    pub fn verify_signed_value(
        &self,
        name: &str,
        value: &str,
        now: SystemTime,
    ) -> Result<Verified<Value>, Error> {
        open_with_any(&self.signed, value, &self.options(name, now))
    }

    /// `cookies.encrypted[name]`.
    pub fn encrypted(
        &self,
        jar: &CookieJar,
        name: &str,
        now: SystemTime,
    ) -> Result<Verified<Value>, Error> {
        let value = cookie_text(jar, name)?;
        self.decrypt_value(name, value, now)
    }

    /// `cookies.encrypted[name]` for a value already taken out of the header (and decoded).
    pub fn decrypt_value(
        &self,
        name: &str,
        value: &str,
        now: SystemTime,
    ) -> Result<Verified<Value>, Error> {
        open_with_any(&self.encrypted, value, &self.options(name, now))
    }

    /// The cookie-store session under `session_key` (`_myapp_session` by default: `_` plus
    /// the app's underscored module name plus `_session`). It is the encrypted cookie of that
    /// name holding a JSON object, with `"session_id"` and whatever the app stored
    /// (`session[:user_id]` is `"user_id"`; Devise/Warden stores `"warden.user.user.key"`,
    /// see [`warden_user_key`]).
    pub fn session(
        &self,
        jar: &CookieJar,
        session_key: &str,
        now: SystemTime,
    ) -> Result<Verified<Map<String, Value>>, Error> {
        let Verified { value, key } = self.encrypted(jar, session_key, now)?;
        match value {
            Value::Object(session) => Ok(Verified {
                value: session,
                key,
            }),
            _ => Err(Error::UnexpectedPayload("session is not a JSON object")),
        }
    }
}

fn aes_key(
    generator: &KeyGenerator,
    salt: &str,
    digest: crate::KeyDigest,
) -> [u8; AES_256_KEY_LEN] {
    let key = generator.generate_key(salt, AES_256_KEY_LEN, digest);
    let mut out = [0u8; AES_256_KEY_LEN];
    out.copy_from_slice(&key);
    out
}

fn cookie_text<'a>(jar: &'a CookieJar, name: &str) -> Result<&'a str, Error> {
    let bytes = jar.get(name).ok_or(Error::Missing)?;
    // Rails refuses messages that are not valid in their encoding (UTF-8 after Rack).
    std::str::from_utf8(bytes).map_err(|_| Error::InvalidFormat("cookie value is not UTF-8"))
}

/// The record id Devise stores through Warden in the session:
/// `session["warden.user.<scope>.key"] = [[id], authenticatable_salt]`; returns `id`.
///
/// Devise checks the salt against the user row on each request (so changing the password
/// logs sessions out); whoever uses this id must do the same to match it.
pub fn warden_user_key<'a>(session: &'a Map<String, Value>, scope: &str) -> Option<&'a Value> {
    let entry = session.get(&format!("warden.user.{scope}.key"))?;
    let key = entry.as_array()?.first()?.as_array()?;
    match key.as_slice() {
        [id] => Some(id),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_rack() {
        let jar = CookieJar::parse("a=1; b=x%3D%2F+y;c;  d=%zz; a=2;;e=; =f").unwrap();
        assert_eq!(jar.get("a"), Some(&b"1"[..])); // first wins
        assert_eq!(jar.get("b"), Some(&b"x=/ y"[..])); // '+' is a space, as in forms
        assert_eq!(jar.get("c"), None); // no '=': no value
        assert_eq!(jar.get("d"), Some(&b"%zz"[..])); // bad escape: kept raw
        assert_eq!(jar.get("e"), Some(&b""[..]));
        assert_eq!(jar.get(""), Some(&b"f"[..]));
        assert_eq!(jar.len(), 6);
        // Only spaces after ';' are skipped; names are otherwise verbatim.
        let jar = CookieJar::parse("a=1;\tb=2").unwrap();
        assert_eq!(jar.get("\tb"), Some(&b"2"[..]));
        assert!(CookieJar::parse("").unwrap().is_empty());
    }

    #[test]
    fn refuses_oversized_headers() {
        let header = "a=".to_owned() + &"x".repeat(MAX_COOKIE_HEADER_LEN);
        assert_eq!(
            CookieJar::parse(&header).map_err(|e| e.kind()),
            Err("too_large")
        );
    }

    #[test]
    fn reads_the_warden_key() {
        let session: Map<String, Value> = serde_json::from_str(
            r#"{"session_id":"abc","warden.user.user.key":[[42],"$2a$12$salt"]}"#,
        )
        .unwrap();
        assert_eq!(warden_user_key(&session, "user"), Some(&Value::from(42)));
        assert_eq!(warden_user_key(&session, "admin"), None);
        let odd: Map<String, Value> =
            serde_json::from_str(r#"{"warden.user.user.key":[42,"salt"]}"#).unwrap();
        assert_eq!(warden_user_key(&odd, "user"), None);
    }
}
