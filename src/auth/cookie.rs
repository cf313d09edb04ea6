//! `[auth.cookie]`: who a connection is, from the cookies the Rails app set.
//!
//! The `Cookie` header is read as Rack reads it, the named cookie is verified (signed) or
//! decrypted (encrypted, or the cookie-store session) with keys derived from
//! `SECRET_KEY_BASE` by `ferrocable_rails`, and one value is taken out of it: the whole value
//! (`cookies.signed[:session_token]`), one key of it (`session[:user_id]`), Devise/Warden's
//! user id (`session["warden.user.user.key"]`), or the record id of an Active Record signed id
//! (`Session.find_signed(cookies.signed[:session_token])`). That value is the credential:
//! identifiers read it directly (`claim = "value"`), or `[auth.lookup]` turns it into a row.

use std::time::SystemTime;

use ferrocable_rails::{
    CookieConfig, CookieJar, CookieReader, DigestPolicy, HmacDigest, KeyDigest, KeyGenerator,
    RailsVersion, SecretKeyBase, SignedIdVerifier, warden_user_key,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::AuthError;
use crate::error::ConfigError;

/// Which of Rails' cookie jars holds the credential.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum CookieKind {
    /// `cookies.signed[name]`.
    #[default]
    Signed,
    /// `cookies.encrypted[name]`.
    Encrypted,
    /// The cookie-store session (`_<app>_session`), an encrypted cookie holding a JSON object.
    Session,
}

/// `[auth.cookie]`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct CookieSection {
    /// The cookie's name (`session_token`), or the session key (`_myapp_session`).
    pub name: String,
    /// `signed`, `encrypted` or `session`.
    pub kind: CookieKind,
    /// The app's `config.load_defaults`, if it differs from `protocol.load_defaults` (empty:
    /// that one, which itself defaults to `protocol.rails_version`).
    pub load_defaults: String,
    /// Pin the key generator's digest (`SHA1` or `SHA256`); empty tries both.
    pub key_digest: String,
    /// `config.action_dispatch.signed_cookie_digest` (`SHA1` unless the app changed it).
    pub signed_cookie_digest: String,
    /// Refuse cookies without a purpose (Rails accepts them under any name).
    pub require_purpose: bool,
    /// Key of the value inside the cookie's JSON object (`user_id`); empty: the whole value.
    pub key: String,
    /// Devise/Warden scope (`user`): the id in `session["warden.user.<scope>.key"]`.
    pub warden_scope: String,
    /// The value is an Active Record signed id of this model (`Session`).
    pub signed_id_model: String,
    /// The signed id's `purpose:` (empty: none).
    pub signed_id_purpose: String,
}

impl Default for CookieSection {
    fn default() -> Self {
        CookieSection {
            name: String::new(),
            kind: CookieKind::Signed,
            load_defaults: String::new(),
            key_digest: String::new(),
            signed_cookie_digest: "SHA1".into(),
            require_purpose: false,
            key: String::new(),
            warden_scope: String::new(),
            signed_id_model: String::new(),
            signed_id_purpose: String::new(),
        }
    }
}

/// What the credential is, inside the verified cookie.
#[derive(Debug, Clone)]
enum Extract {
    Whole,
    Key(String),
    Warden(String),
}

/// `[auth.cookie]`, checked, with its keys derived.
pub struct CookieSettings {
    name: String,
    kind: CookieKind,
    reader: CookieReader,
    extract: Extract,
    signed_id: Option<(SignedIdVerifier, String, Option<String>)>,
    /// The `load_defaults` the cookie formats follow (for logs and `config check`).
    load_defaults: RailsVersion,
}

impl std::fmt::Debug for CookieSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CookieSettings")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("extract", &self.extract)
            .field("load_defaults", &self.load_defaults.to_string())
            .finish_non_exhaustive()
    }
}

impl CookieSettings {
    /// Checks `[auth.cookie]` and derives the keys from `secret_key_base` (once: PBKDF2 is
    /// deliberately slow). `rails_version` is the framework's (`protocol.rails_version`):
    /// signed ids are URL-safe from 7.2; `app_load_defaults` is `protocol.load_defaults`, used
    /// unless the section names its own.
    pub fn compile(
        section: &CookieSection,
        secret_key_base: &str,
        rails_version: RailsVersion,
        app_load_defaults: RailsVersion,
    ) -> Result<CookieSettings, ConfigError> {
        let key = |k: &str| format!("auth.cookie.{k}");
        if section.name.is_empty() {
            return Err(ConfigError::new(
                key("name"),
                "name the cookie (`session_token`) or the session key (`_myapp_session`)",
            ));
        }
        if secret_key_base.is_empty() {
            return Err(ConfigError::new(
                "auth.secret",
                "cookie authentication needs the app's secret_key_base: set SECRET_KEY_BASE or auth.secret_file",
            ));
        }
        let load_defaults = if section.load_defaults.is_empty() {
            app_load_defaults
        } else {
            RailsVersion::parse(&section.load_defaults).ok_or_else(|| {
                ConfigError::new(key("load_defaults"), "must be a Rails version like \"7.2\"")
            })?
        };
        let mut config = CookieConfig::for_load_defaults(load_defaults);
        config.key_digests = match section.key_digest.to_ascii_uppercase().as_str() {
            "" => DigestPolicy::for_load_defaults(load_defaults),
            "SHA1" => DigestPolicy::Pinned(KeyDigest::Sha1),
            "SHA256" => DigestPolicy::Pinned(KeyDigest::Sha256),
            _ => {
                return Err(ConfigError::new(
                    key("key_digest"),
                    "must be \"SHA1\", \"SHA256\" or empty (try both)",
                ));
            }
        };
        config.signed_cookie_digest =
            HmacDigest::parse(&section.signed_cookie_digest).ok_or_else(|| {
                ConfigError::new(
                    key("signed_cookie_digest"),
                    "must be SHA1, SHA256, SHA384 or SHA512",
                )
            })?;
        config.require_purpose = section.require_purpose;
        let generator = KeyGenerator::new(SecretKeyBase::new(secret_key_base.to_string()));
        let extract = match (section.key.is_empty(), section.warden_scope.is_empty()) {
            (true, true) => Extract::Whole,
            (false, true) => Extract::Key(section.key.clone()),
            (true, false) => Extract::Warden(section.warden_scope.clone()),
            (false, false) => {
                return Err(ConfigError::new(
                    key("warden_scope"),
                    "give key = \"...\" or warden_scope = \"...\", not both",
                ));
            }
        };
        if matches!(extract, Extract::Warden(_)) && section.kind != CookieKind::Session {
            return Err(ConfigError::new(
                key("warden_scope"),
                "Warden keeps its key in the session: use kind = \"session\"",
            ));
        }
        let signed_id = (!section.signed_id_model.is_empty()).then(|| {
            (
                SignedIdVerifier::new(&generator, config.key_digests, rails_version),
                section.signed_id_model.clone(),
                Some(section.signed_id_purpose.clone()).filter(|p| !p.is_empty()),
            )
        });
        Ok(CookieSettings {
            name: section.name.clone(),
            kind: section.kind,
            reader: CookieReader::new(&generator, &config),
            extract,
            signed_id,
            load_defaults,
        })
    }

    /// `kind name`, for `config check`.
    pub fn describe(&self) -> String {
        let kind = match self.kind {
            CookieKind::Signed => "signed",
            CookieKind::Encrypted => "encrypted",
            CookieKind::Session => "session",
        };
        format!("cookie {kind} {:?}", self.name)
    }

    /// The credential in the request's `Cookie` header, or why there is none.
    pub fn credential(
        &self,
        cookie_header: Option<&str>,
        now: SystemTime,
    ) -> Result<Value, AuthError> {
        let cookie_error = |cause: ferrocable_rails::Error| AuthError::Cookie {
            name: self.name.clone(),
            cause,
        };
        let jar = CookieJar::parse(cookie_header.unwrap_or("")).map_err(cookie_error)?;
        let value = match self.kind {
            CookieKind::Signed => self.reader.signed(&jar, &self.name, now),
            CookieKind::Encrypted => self.reader.encrypted(&jar, &self.name, now),
            CookieKind::Session => {
                self.reader
                    .session(&jar, &self.name, now)
                    .map(|v| ferrocable_rails::Verified {
                        value: Value::Object(v.value),
                        key: v.key,
                    })
            }
        }
        .map_err(cookie_error)?
        .value;
        let missing = || AuthError::MissingCredential(self.name.clone());
        let credential = match &self.extract {
            Extract::Whole => value,
            Extract::Key(k) => value.get(k).cloned().ok_or_else(missing)?,
            Extract::Warden(scope) => match &value {
                Value::Object(session) => warden_user_key(session, scope)
                    .cloned()
                    .ok_or_else(missing)?,
                _ => return Err(missing()),
            },
        };
        if credential.is_null() {
            return Err(missing());
        }
        match &self.signed_id {
            None => Ok(credential),
            Some((verifier, model, purpose)) => {
                let token = credential.as_str().ok_or_else(missing)?;
                verifier
                    .verify(token, model, purpose.as_deref(), now)
                    .map(|v| v.value)
                    .map_err(|cause| AuthError::SignedId {
                        model: model.clone(),
                        cause,
                    })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrocable_rails::{
        DEFAULT_KEY_SIZE, Envelope, MessageEncryptor, MessageVerifier, SIGNED_ID_SALT,
    };
    use serde_json::json;

    const SECRET: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn generator() -> KeyGenerator {
        KeyGenerator::new(SecretKeyBase::new(SECRET.to_string()))
    }

    fn signed(name: &str, value: serde_json::Value) -> String {
        let key = generator().generate_key("signed cookie", DEFAULT_KEY_SIZE, KeyDigest::Sha256);
        MessageVerifier::new(key, HmacDigest::Sha1).generate(
            &value,
            &Envelope::Legacy {
                purpose: Some(format!("cookie.{name}")),
                expires_at: None,
            },
        )
    }

    fn session(name: &str, value: serde_json::Value) -> String {
        let key = generator().generate_key("authenticated encrypted cookie", 32, KeyDigest::Sha256);
        let key: [u8; 32] = key[..].try_into().unwrap();
        MessageEncryptor::aes_256_gcm(&key)
            .encrypt_and_sign(
                &value,
                &Envelope::Legacy {
                    purpose: Some(format!("cookie.{name}")),
                    expires_at: None,
                },
                &[7u8; 12],
            )
            .unwrap()
            // As Rack writes it into Set-Cookie (a raw '+' would read back as a space).
            .replace('+', "%2B")
            .replace('/', "%2F")
            .replace('=', "%3D")
    }

    fn settings(section: CookieSection) -> CookieSettings {
        CookieSettings::compile(&section, SECRET, RailsVersion::V7_2, RailsVersion::V7_2).unwrap()
    }

    fn now() -> SystemTime {
        SystemTime::now()
    }

    #[test]
    fn load_defaults_comes_from_the_protocol_section_unless_named_here() {
        let section = CookieSection {
            name: "c".into(),
            ..CookieSection::default()
        };
        let sha1 =
            CookieSettings::compile(&section, SECRET, RailsVersion::V7_2, RailsVersion::V6_1)
                .unwrap();
        let sha256 =
            CookieSettings::compile(&section, SECRET, RailsVersion::V7_2, RailsVersion::V7_2)
                .unwrap();
        assert_ne!(format!("{sha1:?}"), format!("{sha256:?}"));
        let named_here = CookieSection {
            load_defaults: "7.2".into(),
            ..section
        };
        let overridden =
            CookieSettings::compile(&named_here, SECRET, RailsVersion::V7_2, RailsVersion::V6_1)
                .unwrap();
        assert_eq!(format!("{overridden:?}"), format!("{sha256:?}"));
    }

    #[test]
    fn reads_the_whole_signed_value() {
        let s = settings(CookieSection {
            name: "session_token".into(),
            ..CookieSection::default()
        });
        let header = format!(
            "a=1; session_token={}",
            signed("session_token", json!("tok"))
        );
        assert_eq!(s.credential(Some(&header), now()).unwrap(), json!("tok"));
        assert!(matches!(
            s.credential(None, now()),
            Err(AuthError::Cookie {
                cause: ferrocable_rails::Error::Missing,
                ..
            })
        ));
    }

    #[test]
    fn reads_a_session_key_and_the_warden_key() {
        let cookie = session(
            "_shop_session",
            json!({"session_id": "abc", "user_id": 7, "warden.user.user.key": [[9], "$2a$12$salt"]}),
        );
        let header = format!("_shop_session={cookie}");
        let by_key = settings(CookieSection {
            name: "_shop_session".into(),
            kind: CookieKind::Session,
            key: "user_id".into(),
            ..CookieSection::default()
        });
        assert_eq!(by_key.credential(Some(&header), now()).unwrap(), json!(7));
        let warden = settings(CookieSection {
            name: "_shop_session".into(),
            kind: CookieKind::Session,
            warden_scope: "user".into(),
            ..CookieSection::default()
        });
        assert_eq!(warden.credential(Some(&header), now()).unwrap(), json!(9));
        let absent = settings(CookieSection {
            name: "_shop_session".into(),
            kind: CookieKind::Session,
            key: "admin_id".into(),
            ..CookieSection::default()
        });
        assert_eq!(
            absent.credential(Some(&header), now()).unwrap_err(),
            AuthError::MissingCredential("_shop_session".into())
        );
    }

    #[test]
    fn verifies_an_active_record_signed_id_inside_the_cookie() {
        // Session.find_signed(cookies.signed[:session_token]) (Fizzy).
        let key = generator().generate_key(SIGNED_ID_SALT, DEFAULT_KEY_SIZE, KeyDigest::Sha256);
        let signed_id = MessageVerifier::new(key, HmacDigest::Sha256)
            .with_base64(ferrocable_rails::Base64Decoding::UrlSafe)
            .generate(
                &json!(42),
                &Envelope::Data {
                    purpose: Some("session".into()),
                    expires_at: None,
                },
            );
        let s = settings(CookieSection {
            name: "session_token".into(),
            signed_id_model: "Session".into(),
            ..CookieSection::default()
        });
        let header = format!(
            "session_token={}",
            signed("session_token", json!(signed_id))
        );
        assert_eq!(s.credential(Some(&header), now()).unwrap(), json!(42));
        let other_model = settings(CookieSection {
            name: "session_token".into(),
            signed_id_model: "User".into(),
            ..CookieSection::default()
        });
        assert!(matches!(
            other_model.credential(Some(&header), now()),
            Err(AuthError::SignedId { .. })
        ));
    }

    #[test]
    fn bad_sections_name_their_key() {
        let compile = |section: CookieSection| {
            CookieSettings::compile(&section, SECRET, RailsVersion::V7_2, RailsVersion::V7_2)
                .unwrap_err()
                .key
        };
        assert_eq!(compile(CookieSection::default()), "auth.cookie.name");
        let named = |f: fn(&mut CookieSection)| {
            let mut s = CookieSection {
                name: "c".into(),
                ..CookieSection::default()
            };
            f(&mut s);
            compile(s)
        };
        assert_eq!(
            named(|s| s.load_defaults = "x".into()),
            "auth.cookie.load_defaults"
        );
        assert_eq!(
            named(|s| s.key_digest = "MD5".into()),
            "auth.cookie.key_digest"
        );
        assert_eq!(
            named(|s| s.warden_scope = "user".into()),
            "auth.cookie.warden_scope"
        );
        assert_eq!(
            CookieSettings::compile(
                &CookieSection {
                    name: "c".into(),
                    ..CookieSection::default()
                },
                "",
                RailsVersion::V7_2,
                RailsVersion::V7_2
            )
            .unwrap_err()
            .key,
            "auth.secret"
        );
    }
}
