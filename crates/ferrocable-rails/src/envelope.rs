//! What is inside a verified or decrypted message: the serializer and the metadata envelope
//! (`activesupport/lib/active_support/messages/{metadata,serializer_with_fallback}.rb`).

use std::time::SystemTime;

use serde_json::{Map, Value, json};

use crate::Error;
use crate::base64::{Base64Decoding, strict_encode};
use crate::time::{self, Instant};

/// Ruby's `Marshal` format version header, `"\x04\x08"`.
const MARSHAL_SIGNATURE: &[u8] = b"\x04\x08";
/// `ActiveSupport::MessagePack`'s header: the integer 128 packed (`"\xCC\x80"`).
const MESSAGE_PACK_SIGNATURE: &[u8] = b"\xcc\x80";

/// The serializer the app configured for these messages. It changes nothing in what this crate
/// accepts (JSON only, always): it decides whether a Marshal payload is something the app
/// itself would have read, which the [`Error::MarshalPayload`] refusal reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Serializer {
    /// `:json`, Ruby's `JSON`, or `ActiveSupport::JSON`. Rails rejects Marshal payloads.
    #[default]
    Json,
    /// `cookies_serializer = :hybrid` (`:json_allow_marshal` in 7.1+): writes JSON, still reads
    /// Marshal.
    JsonAllowMarshal,
    /// `:marshal`, or `cookies_serializer` unset (an app on `load_defaults` < 7.0 without the
    /// generated `cookies_serializer.rb` initializer). Rails falls back to JSON for payloads
    /// that are not Marshal.
    Marshal,
    /// `:message_pack` (7.1+). Falls back to JSON for JSON payloads.
    MessagePack,
}

impl Serializer {
    /// Parses a Rails serializer name: `json`, `hybrid`, `json_allow_marshal`, `marshal`,
    /// `message_pack`, `message_pack_allow_marshal` (leading `:` allowed).
    pub fn parse(name: &str) -> Option<Serializer> {
        match name.trim_start_matches(':') {
            "json" => Some(Serializer::Json),
            "hybrid" | "json_allow_marshal" | "message_pack_allow_marshal" => {
                Some(Serializer::JsonAllowMarshal)
            }
            "marshal" => Some(Serializer::Marshal),
            "message_pack" => Some(Serializer::MessagePack),
            _ => None,
        }
    }

    fn reads_marshal(self) -> bool {
        matches!(self, Serializer::JsonAllowMarshal | Serializer::Marshal)
    }
}

/// Which purposes a message may carry.
///
/// Rails compares `pur.to_s` with `purpose.to_s`, so "no purpose" and an empty purpose are the
/// same thing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum PurposeCheck {
    /// `verified(message)`: the message must carry no purpose.
    #[default]
    NoPurpose,
    /// `verified(message, purpose: p)`: exactly `p`.
    Exactly(String),
    /// What the cookie jars do (every version from 6.1 to 8.0): try purpose `p`, then no
    /// purpose. A cookie written without metadata (`use_cookies_with_metadata = false`, i.e.
    /// `load_defaults` < 6.0) is accepted under any name; one written for another name is not.
    ExactlyOrNone(String),
}

/// What a message must satisfy besides its signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyOptions {
    /// The purpose rule.
    pub purpose: PurposeCheck,
    /// The caller's clock: a message whose `exp` is at or before `now` is expired.
    pub now: SystemTime,
}

impl VerifyOptions {
    /// No purpose, checked at `now`.
    pub fn at(now: SystemTime) -> VerifyOptions {
        VerifyOptions {
            purpose: PurposeCheck::NoPurpose,
            now,
        }
    }

    /// The same, requiring purpose `purpose`.
    pub fn with_purpose(mut self, purpose: impl Into<String>) -> VerifyOptions {
        self.purpose = PurposeCheck::Exactly(purpose.into());
        self
    }
}

/// How [`crate::MessageVerifier::generate`] and [`crate::MessageEncryptor::encrypt_and_sign`]
/// wrap a value.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Envelope {
    /// The bare serialized value (Rails when no purpose or expiry is given).
    #[default]
    None,
    /// The 6.0–7.0 envelope, still used by cookies in 7.1+:
    /// `{"_rails":{"message":"<base64 of the serialized value>","exp":…,"pur":…}}`.
    Legacy {
        /// `pur`, `null` when `None`.
        purpose: Option<String>,
        /// `exp` as written (`2026-01-15T12:00:00.000Z`), `null` when `None`.
        expires_at: Option<String>,
    },
    /// The 7.1+ envelope (`use_message_serializer_for_metadata`):
    /// `{"_rails":{"data":<value>,"exp":…,"pur":…}}`, `exp`/`pur` only when set.
    Data {
        /// `pur`, omitted when `None`.
        purpose: Option<String>,
        /// `exp` as written, omitted when `None`.
        expires_at: Option<String>,
    },
}

/// Serializes `value` in `envelope` (JSON serializer).
pub(crate) fn seal(value: &Value, envelope: &Envelope) -> Vec<u8> {
    match envelope {
        Envelope::None => value.to_string().into_bytes(),
        Envelope::Legacy {
            purpose,
            expires_at,
        } => {
            // Written by hand because key order matters: Rails 7.1+ recognises this style by
            // the prefix `{"_rails":{"message":`, and serde_json's map may sort keys.
            let message = Value::String(strict_encode(value.to_string().as_bytes()));
            let exp = expires_at
                .as_ref()
                .map_or(Value::Null, |e| Value::String(e.clone()));
            let pur = purpose
                .as_ref()
                .map_or(Value::Null, |p| Value::String(p.clone()));
            format!(r#"{{"_rails":{{"message":{message},"exp":{exp},"pur":{pur}}}}}"#).into_bytes()
        }
        Envelope::Data {
            purpose,
            expires_at,
        } => {
            let mut metadata = Map::new();
            metadata.insert("data".into(), value.clone());
            if let Some(exp) = expires_at {
                metadata.insert("exp".into(), Value::String(exp.clone()));
            }
            if let Some(pur) = purpose {
                metadata.insert("pur".into(), Value::String(pur.clone()));
            }
            json!({ "_rails": metadata }).to_string().into_bytes()
        }
    }
}

/// Deserializes authenticated bytes and applies the envelope rules.
///
/// Envelopes are recognised by content, not by version: a JSON object with a `_rails` object
/// is an envelope, with `message` it is the legacy (6.0–7.0, and 7.1+ cookies) style, otherwise
/// the 7.1+ `data` style. Rails 7.1+ recognises the legacy style by the exact prefix
/// `{"_rails":{"message":`, Rails 6.1 only knows that style; both differ from this only for
/// hand-made payloads, which would need the app's key to be signed at all.
pub(crate) fn open(
    serialized: &[u8],
    options: &VerifyOptions,
    serializer: Serializer,
) -> Result<Value, Error> {
    let top = deserialize(serialized, serializer)?;
    let Some(metadata) = envelope_of(&top)? else {
        check_purpose(None, &options.purpose)?;
        return Ok(top);
    };
    check_expiry(metadata.get("exp"), options.now)?;
    check_purpose(metadata.get("pur"), &options.purpose)?;
    match metadata.get("message") {
        Some(Value::String(message)) => {
            // The inner part is always strict base64, url-safe verifiers included
            // (`serialize_to_json_safe_string` in 7.1+).
            let inner = Base64Decoding::Strict
                .decode(message)
                .ok_or(Error::InvalidFormat("envelope message is not base64"))?;
            deserialize(&inner, serializer)
        }
        Some(_) => Err(Error::InvalidFormat("envelope message is not a string")),
        None => Ok(metadata.get("data").cloned().unwrap_or(Value::Null)),
    }
}

fn envelope_of(top: &Value) -> Result<Option<&Map<String, Value>>, Error> {
    match top.as_object().and_then(|object| object.get("_rails")) {
        None => Ok(None),
        Some(Value::Object(metadata)) => Ok(Some(metadata)),
        Some(_) => Err(Error::InvalidFormat("_rails is not an object")),
    }
}

fn deserialize(serialized: &[u8], serializer: Serializer) -> Result<Value, Error> {
    if serialized.starts_with(MARSHAL_SIGNATURE) {
        return Err(Error::MarshalPayload {
            rails_accepts: serializer.reads_marshal(),
        });
    }
    if serialized.starts_with(MESSAGE_PACK_SIGNATURE) {
        return Err(Error::UnsupportedSerializer(
            "MessagePack payload (cookies_serializer = :message_pack); only JSON is decoded",
        ));
    }
    // serde_json refuses nesting deeper than 128, so a hostile payload cannot exhaust the stack.
    serde_json::from_slice(serialized).map_err(|_| Error::NotJson)
}

fn check_expiry(exp: Option<&Value>, now: SystemTime) -> Result<(), Error> {
    match exp {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(text)) => {
            let expires_at =
                time::parse_iso8601(text).ok_or_else(|| Error::MalformedExpiry(text.clone()))?;
            // Rails: expired when `Time.now.utc >= exp`.
            if Instant::from_system_time(now) >= expires_at {
                Err(Error::Expired {
                    expired_at: text.clone(),
                })
            } else {
                Ok(())
            }
        }
        Some(other) => Err(Error::MalformedExpiry(other.to_string())),
    }
}

fn check_purpose(found: Option<&Value>, rule: &PurposeCheck) -> Result<(), Error> {
    // Ruby's `to_s`: nil is "", a string is itself; a number is its decimal text (same as
    // JSON). Other JSON values never come from Rails and compare by their JSON text.
    let found: Option<String> = match found {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => Some(other.to_string()),
    };
    let found_text = found.as_deref().unwrap_or("");
    let accepted = match rule {
        PurposeCheck::NoPurpose => found_text.is_empty(),
        PurposeCheck::Exactly(expected) => found_text == expected,
        PurposeCheck::ExactlyOrNone(expected) => found_text == expected || found_text.is_empty(),
    };
    if accepted {
        return Ok(());
    }
    let expected = match rule {
        PurposeCheck::NoPurpose => String::new(),
        PurposeCheck::Exactly(expected) | PurposeCheck::ExactlyOrNone(expected) => expected.clone(),
    };
    Err(Error::WrongPurpose {
        expected,
        found: found.filter(|f| !f.is_empty()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    // 2026-01-15T12:00:00Z
    fn noon() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_768_478_400)
    }

    fn open_at(bytes: &[u8], purpose: PurposeCheck) -> Result<Value, Error> {
        open(
            bytes,
            &VerifyOptions {
                purpose,
                now: noon(),
            },
            Serializer::Json,
        )
    }

    #[test]
    fn bare_values_need_no_purpose() {
        assert_eq!(open_at(b"\"x\"", PurposeCheck::NoPurpose), Ok(json!("x")));
        assert_eq!(
            open_at(b"42", PurposeCheck::Exactly("p".into())),
            Err(Error::WrongPurpose {
                expected: "p".into(),
                found: None
            })
        );
        // The cookie jars' fallback: no metadata at all is accepted under any name.
        assert_eq!(
            open_at(b"42", PurposeCheck::ExactlyOrNone("cookie.a".into())),
            Ok(json!(42))
        );
        // Ruby compares `to_s`, so an empty purpose is no purpose.
        assert_eq!(
            open_at(b"42", PurposeCheck::Exactly(String::new())),
            Ok(json!(42))
        );
    }

    #[test]
    fn legacy_envelope_checks_purpose_and_expiry_then_decodes_the_inner_json() {
        let sealed = seal(
            &json!({"a": [1, 2]}),
            &Envelope::Legacy {
                purpose: Some("cookie.a".into()),
                expires_at: Some("2026-01-15T12:00:00.001Z".into()),
            },
        );
        assert!(sealed.starts_with(br#"{"_rails":{"message":""#));
        assert_eq!(
            open_at(&sealed, PurposeCheck::ExactlyOrNone("cookie.a".into())),
            Ok(json!({"a": [1, 2]}))
        );
        assert_eq!(
            open_at(&sealed, PurposeCheck::ExactlyOrNone("cookie.b".into())),
            Err(Error::WrongPurpose {
                expected: "cookie.b".into(),
                found: Some("cookie.a".into())
            })
        );
        assert_eq!(
            open_at(&sealed, PurposeCheck::NoPurpose).map_err(|e| e.kind()),
            Err("wrong_purpose")
        );
        let expired = seal(
            &json!(1),
            &Envelope::Legacy {
                purpose: None,
                expires_at: Some("2026-01-15T12:00:00.000Z".into()),
            },
        );
        // `exp` equal to now is already expired (Rails: `now >= exp`).
        assert_eq!(
            open_at(&expired, PurposeCheck::NoPurpose),
            Err(Error::Expired {
                expired_at: "2026-01-15T12:00:00.000Z".into()
            })
        );
    }

    #[test]
    fn data_envelope_returns_data() {
        let sealed = seal(
            &json!("id"),
            &Envelope::Data {
                purpose: Some("user/login".into()),
                expires_at: None,
            },
        );
        assert_eq!(
            std::str::from_utf8(&sealed).unwrap(),
            r#"{"_rails":{"data":"id","pur":"user/login"}}"#
        );
        assert_eq!(
            open_at(&sealed, PurposeCheck::Exactly("user/login".into())),
            Ok(json!("id"))
        );
        assert_eq!(
            open_at(
                br#"{"_rails":{"pur":"p"}}"#,
                PurposeCheck::Exactly("p".into())
            ),
            Ok(Value::Null)
        );
    }

    #[test]
    fn marshal_and_message_pack_are_refused_by_name() {
        let marshal = b"\x04\x08I\"\x06a\x06:\x06ET";
        assert_eq!(
            open(marshal, &VerifyOptions::at(noon()), Serializer::Json),
            Err(Error::MarshalPayload {
                rails_accepts: false
            })
        );
        assert_eq!(
            open(
                marshal,
                &VerifyOptions::at(noon()),
                Serializer::JsonAllowMarshal
            ),
            Err(Error::MarshalPayload {
                rails_accepts: true
            })
        );
        assert_eq!(
            open(
                b"\xcc\x80\xa1a",
                &VerifyOptions::at(noon()),
                Serializer::MessagePack
            )
            .map_err(|e| e.kind()),
            Err("unsupported_serializer")
        );
        assert_eq!(
            open_at(b"not json", PurposeCheck::NoPurpose),
            Err(Error::NotJson)
        );
    }

    #[test]
    fn malformed_metadata_is_a_typed_error() {
        for (bytes, kind) in [
            (&br#"{"_rails":"x"}"#[..], "invalid_format"),
            (br#"{"_rails":{"message":5}}"#, "invalid_format"),
            (br#"{"_rails":{"message":"%%%"}}"#, "invalid_format"),
            (
                br#"{"_rails":{"message":"eA==","exp":12}}"#,
                "malformed_expiry",
            ),
            (
                br#"{"_rails":{"message":"eA==","exp":"soon"}}"#,
                "malformed_expiry",
            ),
            (br#"{"_rails":{"message":"eA=="}}"#, "not_json"),
        ] {
            assert_eq!(
                open_at(bytes, PurposeCheck::NoPurpose).map_err(|e| e.kind()),
                Err(kind),
                "{}",
                String::from_utf8_lossy(bytes)
            );
        }
    }

    #[test]
    fn serializer_names_parse() {
        assert_eq!(
            Serializer::parse(":hybrid"),
            Some(Serializer::JsonAllowMarshal)
        );
        assert_eq!(Serializer::parse("json"), Some(Serializer::Json));
        assert_eq!(Serializer::parse("yaml"), None);
    }
}
