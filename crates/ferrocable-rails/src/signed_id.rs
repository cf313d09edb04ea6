//! Active Record signed ids: `record.signed_id(purpose:, expires_in:)` and
//! `Model.find_signed(token, purpose:)` (`activerecord/lib/active_record/signed_id.rb`).

use std::sync::Arc;
use std::time::SystemTime;

use serde_json::Value;

use crate::envelope::{PurposeCheck, VerifyOptions};
use crate::naming::underscore;
use crate::verified::{KeySource, Verified, open_with_any};
use crate::{
    Base64Decoding, DEFAULT_KEY_SIZE, DigestPolicy, Error, HmacDigest, KeyGenerator,
    MessageVerifier, RailsVersion,
};

/// The salt of `signed_id_verifier_secret`
/// (`Rails.application.key_generator.generate_key("active_record/signed_id")`, 64 bytes).
pub const SIGNED_ID_SALT: &str = "active_record/signed_id";

/// `Model.signed_id_verifier`: `MessageVerifier.new(secret, digest: "SHA256", serializer: JSON)`,
/// plus `url_safe: true` from Rails 7.2.
///
/// Every signed id carries a purpose (the model's name at least), so every one has a metadata
/// envelope: the legacy one on Rails 6.1/7.0 and on 7.1+ apps below `load_defaults 7.1`, the
/// `data` one from `load_defaults 7.1` (`use_message_serializer_for_metadata`). Both are read.
/// Rails 8.1 moves signed ids to `Rails.application.message_verifiers` (not covered).
#[derive(Debug, Clone)]
pub struct SignedIdVerifier {
    candidates: Vec<(KeySource, MessageVerifier)>,
}

impl SignedIdVerifier {
    /// The verifier of an app on Rails `rails_version` (the framework, not `load_defaults`):
    /// url-safe base64 from 7.2 (whose decoder also takes the standard alphabet), strict
    /// before.
    pub fn new(
        generator: &KeyGenerator,
        key_digests: DigestPolicy,
        rails_version: RailsVersion,
    ) -> SignedIdVerifier {
        let base64 = base64_for(rails_version);
        let candidates = key_digests
            .digests()
            .map(|digest| {
                let key = generator.generate_key(SIGNED_ID_SALT, DEFAULT_KEY_SIZE, digest);
                (
                    KeySource::Derived(digest),
                    MessageVerifier::new(key, HmacDigest::Sha256).with_base64(base64),
                )
            })
            .collect();
        SignedIdVerifier { candidates }
    }

    /// For an app that set `ActiveRecord::Base.signed_id_verifier_secret` itself (raw bytes).
    pub fn with_secret(
        secret: impl Into<Arc<[u8]>>,
        rails_version: RailsVersion,
    ) -> SignedIdVerifier {
        SignedIdVerifier {
            candidates: vec![(
                KeySource::Explicit,
                MessageVerifier::new(secret, HmacDigest::Sha256)
                    .with_base64(base64_for(rails_version)),
            )],
        }
    }

    /// `ModelClass.find_signed(token, purpose:)` without the database lookup: the id the token
    /// was made for (a JSON number or string), or why not. `base_class_name` is the model's
    /// base class (`Session`, `Admin::Account`; for STI the parent class).
    pub fn verify(
        &self,
        token: &str,
        base_class_name: &str,
        purpose: Option<&str>,
        now: SystemTime,
    ) -> Result<Verified<Value>, Error> {
        let options = VerifyOptions {
            purpose: PurposeCheck::Exactly(signed_id_purpose(base_class_name, purpose)),
            now,
        };
        open_with_any(&self.candidates, token, &options)
    }
}

fn base64_for(rails_version: RailsVersion) -> Base64Decoding {
    if rails_version >= RailsVersion::V7_2 {
        Base64Decoding::UrlSafe
    } else {
        Base64Decoding::Strict
    }
}

/// `combine_signed_id_purposes`: `[base_class.name.underscore, purpose.to_s].compact_blank.join("/")`,
/// e.g. `"session"`, `"user/password_reset"`, `"admin/account"`.
pub fn signed_id_purpose(base_class_name: &str, purpose: Option<&str>) -> String {
    let model = underscore(base_class_name);
    // `compact_blank` drops empty and whitespace-only strings (`String#blank?`).
    let parts = [Some(model.as_str()), purpose];
    parts
        .into_iter()
        .flatten()
        .filter(|part| !part.chars().all(char::is_whitespace))
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purposes_combine_like_rails() {
        assert_eq!(signed_id_purpose("Session", None), "session");
        assert_eq!(
            signed_id_purpose("User", Some("password_reset")),
            "user/password_reset"
        );
        assert_eq!(
            signed_id_purpose("Admin::Account", Some("")),
            "admin/account"
        );
        assert_eq!(signed_id_purpose("User", Some("  ")), "user");
    }
}
