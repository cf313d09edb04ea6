//! The one error type of the crate.

use std::fmt;

/// Why a token, cookie or stream name was not accepted.
///
/// Every refusal is one of these; nothing in this crate panics on input. Rails itself answers
/// most of these cases with `nil` (an absent cookie, a rejected subscription): the variants
/// say *why*, for logs and tests, and callers should generally treat them all as "not
/// authenticated".
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The input is longer than the crate accepts (see [`crate::MAX_TOKEN_LEN`] and
    /// [`crate::MAX_COOKIE_HEADER_LEN`]). Refused before any cryptographic work.
    TooLarge {
        /// Length of the input, in bytes.
        len: usize,
        /// The limit that applied, in bytes.
        limit: usize,
    },
    /// The token is not shaped like a Rails message: no separator where the digest length
    /// puts it, bad base64, wrong IV or tag length, not UTF-8, and so on.
    InvalidFormat(&'static str),
    /// The HMAC (or the AES-GCM authentication tag, or the CBC padding under a valid HMAC) does
    /// not match: the token was tampered with, or made with another secret or salt.
    BadSignature,
    /// The message carries another purpose than the one asked for: a cookie copied under
    /// another name, a signed id of another model or purpose. `found` is `None` for a message
    /// with no purpose at all where one was required.
    WrongPurpose {
        /// The purpose the caller required.
        expected: String,
        /// The purpose the message carries (`None`: no metadata envelope or a `null` purpose).
        found: Option<String>,
    },
    /// The message's `exp` is at or before the caller's clock.
    Expired {
        /// The `exp` value exactly as the message carries it.
        expired_at: String,
    },
    /// The metadata envelope's `exp` is neither `null` nor an ISO 8601 time with a zone.
    MalformedExpiry(String),
    /// The signed bytes are neither JSON nor a serialization format we recognise.
    NotJson,
    /// The payload is Ruby `Marshal` data (it starts with `\x04\x08`). This crate never
    /// decodes Marshal (it is not a data format, it rebuilds arbitrary Ruby objects).
    MarshalPayload {
        /// Whether the app, as configured, would have accepted it (`cookies_serializer`
        /// `:marshal` or `:hybrid`). When `false`, Rails rejects it as well.
        rails_accepts: bool,
    },
    /// The payload is in a serialization format this crate does not decode (MessagePack,
    /// written by `cookies_serializer = :message_pack` on Rails 7.1+), or the configuration asks
    /// for a cipher or serializer that is not supported.
    UnsupportedSerializer(&'static str),
    /// The message verified but holds the wrong kind of value for its use (a signed stream name
    /// that is not a JSON string, a session that is not a JSON object).
    UnexpectedPayload(&'static str),
    /// No cookie of that name in the `Cookie` header (or it has no value).
    Missing,
}

impl Error {
    /// A short stable name for the variant, used in logs and in the test vectors
    /// (`"bad_signature"`, `"expired"`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            Error::TooLarge { .. } => "too_large",
            Error::InvalidFormat(_) => "invalid_format",
            Error::BadSignature => "bad_signature",
            Error::WrongPurpose { .. } => "wrong_purpose",
            Error::Expired { .. } => "expired",
            Error::MalformedExpiry(_) => "malformed_expiry",
            Error::NotJson => "not_json",
            Error::MarshalPayload { .. } => "marshal_payload",
            Error::UnsupportedSerializer(_) => "unsupported_serializer",
            Error::UnexpectedPayload(_) => "unexpected_payload",
            Error::Missing => "missing",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::TooLarge { len, limit } => {
                write!(f, "input of {len} bytes is over the {limit}-byte limit")
            }
            Error::InvalidFormat(what) => write!(f, "not a Rails message: {what}"),
            Error::BadSignature => f.write_str(
                "signature does not match (tampered, or signed with another secret_key_base or salt)",
            ),
            Error::WrongPurpose { expected, found } => match found {
                Some(found) => write!(f, "purpose is {found:?}, expected {expected:?}"),
                None => write!(f, "message has no purpose, expected {expected:?}"),
            },
            Error::Expired { expired_at } => write!(f, "message expired at {expired_at}"),
            Error::MalformedExpiry(exp) => write!(f, "unreadable expiry {exp:?}"),
            Error::NotJson => f.write_str("payload is not JSON"),
            Error::MarshalPayload { rails_accepts: true } => f.write_str(
                "payload is Ruby Marshal data, which is never decoded here; the app reads it because \
                 `cookies_serializer` is :marshal or :hybrid. Set \
                 `Rails.application.config.action_dispatch.cookies_serializer = :json` (from :hybrid, \
                 Rails rewrites each cookie as JSON on the user's next request)",
            ),
            Error::MarshalPayload { rails_accepts: false } => f.write_str(
                "payload is Ruby Marshal data; with `cookies_serializer = :json` Rails rejects it too",
            ),
            Error::UnsupportedSerializer(what) => write!(f, "unsupported: {what}"),
            Error::UnexpectedPayload(what) => write!(f, "unexpected payload: {what}"),
            Error::Missing => f.write_str("no such cookie"),
        }
    }
}

impl std::error::Error for Error {}
