//! Rails' signed and encrypted message formats, verified in Rust with nothing but the app's
//! `SECRET_KEY_BASE`: signed and encrypted cookies, the cookie-store session, Active Record
//! signed ids, and Turbo / CableReady signed stream names. No I/O, no async, no Ruby.
//!
//! Every format was settled in Rails' source at v6.1.7, v7.0.8, v7.1.5, v7.2.2 and v8.0.2
//! (`activesupport/lib/active_support/{message_verifier,message_encryptor,key_generator}.rb`,
//! `messages/{codec,metadata,rotator,serializer_with_fallback}.rb`,
//! `actionpack/lib/action_dispatch/middleware/cookies.rb`, `activerecord/lib/active_record/signed_id.rb`,
//! turbo-rails `lib/turbo-rails.rb`, cable_ready `lib/cable_ready/config.rb`) and is checked
//! against vectors written by real Rails 6.1.7.10 and 7.2.2.2 (`fixtures/rails/`, regenerated
//! by `bin/gen-rails-vectors`; `tests/rails_vectors.rs` checks every file it finds).
//!
//! # Example
//!
//! ```
//! use std::time::SystemTime;
//! use ferrocable_rails::*;
//!
//! let generator = KeyGenerator::new(SecretKeyBase::new("0123456789abcdef".repeat(8)));
//! let load_defaults = RailsVersion::parse("7.2").unwrap();
//!
//! // `turbo_stream_from @room, :messages` (docs/rails-apps.md §1.6).
//! let turbo = SignedStreamVerifier::turbo(&generator, DigestPolicy::for_load_defaults(load_defaults));
//! let stream = turbo.verify(
//!     "IloybGtPaTh2YlhrdFlYQndMMUp2YjIwdk1ROm1lc3NhZ2VzIg==--280b6f6b8e1c2642a168d7dbdac207f45092e565ca0c120cf09051eca8a6e87a",
//!     SystemTime::now(),
//! )?;
//! assert_eq!(stream.value, "Z2lkOi8vbXktYXBwL1Jvb20vMQ:messages");
//! assert_eq!(stream.key, KeySource::Derived(KeyDigest::Sha256));
//!
//! // Cookies: `cookies.signed[:session_token]`, `session["user_id"]`.
//! let cookies = CookieReader::new(&generator, &CookieConfig::for_load_defaults(load_defaults));
//! let jar = CookieJar::parse("_my_app_session=...; session_token=...")?;
//! match cookies.session(&jar, "_my_app_session", SystemTime::now()) {
//!     Ok(session) => println!("user {:?}", session.value.get("user_id")),
//!     // Every refusal is typed; "..." is not a Rails message at all.
//!     Err(refused) => assert_eq!(refused, Error::InvalidFormat("not data--iv--tag")),
//! }
//! # Ok::<(), ferrocable_rails::Error>(())
//! ```
//!
//! # Formats by Rails version
//!
//! | | 6.1 | 7.0 | 7.1 | 7.2 | 8.0 |
//! |---|---|---|---|---|---|
//! | **Key generator** (`generate_key(salt, size = 64)`: PBKDF2-HMAC, password = `secret_key_base` text, 1000 iterations) | SHA1 only | SHA1; SHA256 from `load_defaults 7.0` | = 7.0 | = 7.0 | = 7.0 |
//! | **MessageVerifier** `base64(payload)--hex(HMAC(base64 text))` | separator by splitting on `--` | separator by position (`len - hex_len - 2`) | = 7.0 | = 7.0 | = 7.0 |
//! | verifier base64 | strict | strict | strict, or `url_safe:` (unpadded) | = 7.1 | 8.0.2+: either alphabet, whatever was configured |
//! | metadata envelope (purpose / expiry given) | legacy `{"_rails":{"message":b64,"exp":…,"pur":…}}` | legacy | legacy; `{"_rails":{"data":v,…}}` from `load_defaults 7.1` (`use_message_serializer_for_metadata`) | = 7.1 | = 7.1 |
//! | **Signed cookie** (salt `signed cookie`) | HMAC = `signed_cookie_digest` (SHA1); legacy envelope, `pur: "cookie.<name>"` when `use_cookies_with_metadata` (`load_defaults 6.0`+), `exp` always written | = 6.1 | = 6.1 (the cookie jars always use the legacy envelope) | = 6.1 | = 6.1 |
//! | **Encrypted cookie**, cookie-store **session** (salt `authenticated encrypted cookie`, 32 bytes) | AES-256-GCM `data--iv--tag`, same envelope; AES-256-CBC + HMAC-SHA1 (`encrypted cookie` / `signed encrypted cookie`) read as a fallback | = 6.1 | = 6.1 | = 6.1 | = 6.1 |
//! | `cookies_serializer` | from the generated initializer (`:json`), `:marshal` when absent, or `:hybrid` | `:json` from `load_defaults 7.0` | + `:message_pack` | = 7.1 | = 7.1 |
//! | Marshal cookie under `:json` | raises `JSON::ParserError` (a 500) | signed: raises; encrypted: no cookie | no cookie | no cookie | no cookie |
//! | **Signed id** (salt `active_record/signed_id`, HMAC-SHA256, `JSON`) | strict base64, legacy envelope, purpose `model[/purpose]` | = 6.1 | = 6.1; `data` envelope from `load_defaults 7.1`; `expires_at:` | URL-safe base64 | = 7.2 |
//! | **Turbo / CableReady** (salts `turbo/signed_stream_verifier_key`, `cable_ready/verifier_key`; or an explicit key) | HMAC-SHA256, JSON string, no envelope | = 6.1 | = 6.1 | = 6.1 | = 6.1 (+ 8.0.2 base64 fallback) |
//!
//! The cookie jars of every version read a cookie with purpose `cookie.<name>` **or with no
//! purpose at all** (a second attempt), so a cookie written without metadata (an app that was on
//! `load_defaults` < 6.0) is valid under any name; [`CookieConfig::require_purpose`] refuses that.
//! The cookie-store session is the encrypted cookie named by `session_store key:`
//! (`_<app>_session`), a JSON object with `session_id` and the app's keys. Rails 8.1 moves
//! signed ids to `Rails.application.message_verifiers`; that is not covered.
//!
//! # What is refused, and why
//!
//! - **Marshal** payloads (`\x04\x08`, from `cookies_serializer = :marshal`, or read through
//!   `:hybrid`): never decoded, since Marshal rebuilds arbitrary Ruby objects. The error,
//!   [`Error::MarshalPayload`], says whether the app itself would have read it and names the
//!   setting to change. A `:hybrid` app rewrites each cookie as JSON on its next request.
//! - **MessagePack** payloads (`:message_pack`, 7.1+): [`Error::UnsupportedSerializer`].
//! - Ciphers other than AES-256-GCM and the legacy AES-256-CBC (`encrypted_cookie_cipher`
//!   set to something else), and app-configured `cookies_rotations` with other secrets: not
//!   supported (build a second reader with the old secret).
//! - Inputs over [`MAX_TOKEN_LEN`] (16 KiB; Rails itself refuses to write cookies over 4 KiB)
//!   or a `Cookie` header over [`MAX_COOKIE_HEADER_LEN`] (64 KiB): [`Error::TooLarge`] before
//!   any cryptography. JSON nesting is capped by serde_json (128 levels). Nothing panics on
//!   input (`tests/garbage.rs`).
//!
//! # Where this is more lenient than a given app, on purpose
//!
//! - **Both key-generator digests** ([`DigestPolicy::TryBoth`], the default via
//!   [`DigestPolicy::for_load_defaults`]): an app uses one, but which one is easy to get wrong
//!   from outside (rails/rails#51750: touching the key generator before the `after_initialize`
//!   hook keeps SHA1 on 7.0+; turbo-rails < 1.1.1 always derived SHA1; upgraded apps rotate
//!   SHA1 cookies). Both keys come from the same secret, so nothing is weaker; results say
//!   which matched ([`KeySource`]). Pin one with [`DigestPolicy::Pinned`].
//! - **URL-safe base64 for stream names** ([`SignedStreamVerifier`]): Rails accepts it from
//!   8.0.2, AnyCable's Ruby signer writes it. [`SignedStreamVerifier::with_base64`] makes it
//!   strict.
//! - Envelopes are recognised by content, not by version (either style is read everywhere).
//!
//! And stricter in one place: a signed stream name must be a JSON string
//! ([`Error::UnexpectedPayload`]); Turbo would `stream_from` the text of any value, but its
//! helpers only ever sign strings.

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
    DEFAULT_KEY_SIZE, DigestPolicy, KEY_GENERATOR_ITERATIONS, KeyDigest, KeyGenerator,
    SecretKeyBase,
};
pub use naming::{
    GlobalIdRef, cgi_escape, channel_name, channel_name_with_acronyms, global_id,
    global_id_app_name, global_id_param, parse_global_id_param, underscore,
    underscore_with_acronyms,
};
pub use signed_id::{SIGNED_ID_SALT, SignedIdVerifier, signed_id_purpose};
pub use stream::{CABLE_READY_SALT, SignedStreamVerifier, TURBO_SALT};
pub use verified::{KeySource, Verified};
pub use verifier::{HmacDigest, MessageVerifier};
pub use version::RailsVersion;

/// Longest token (signed message, encrypted message, cookie value, stream name) accepted, in
/// bytes. Browsers keep cookies under 4 KiB and Rails refuses to write larger ones
/// (`CookieOverflow`); 16 KiB leaves room for other callers' tokens while bounding the work a
/// hostile input can cause.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// Refuses a token over [`MAX_TOKEN_LEN`] before any work is spent on it.
pub(crate) fn check_token_len(token: &str) -> Result<(), Error> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(Error::TooLarge {
            len: token.len(),
            limit: MAX_TOKEN_LEN,
        });
    }
    Ok(())
}
/// Longest `Cookie` header value accepted, in bytes (common servers cap all headers at 8–16 KiB).
pub const MAX_COOKIE_HEADER_LEN: usize = 64 * 1024;
