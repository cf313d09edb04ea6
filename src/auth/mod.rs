//! Connection authentication: who may connect, and who they are.
//!
//! - [`jwt`]: the pinned algorithm, the [`Verifier`], and token minting for `ferrocable token`;
//! - [`identity`]: the `identified_by` identifiers and Rails' connection identifier.
//!
//! [`AuthSettings::authenticate`] is the entry point: pure apart from the clock, which the
//! caller passes in. The outcome is an [`Identity`] or an [`AuthError`]; whatever the error,
//! the wire answer is the same unauthorized disconnect (docs/PROTOCOL.md §1.5), so the variants
//! exist for logs and tests, not for clients. A new way to authenticate (a cookie, a database
//! lookup) is a module here, selected by [`AuthMode`] and compiled in [`AuthSettings::compile`].

pub mod identity;
pub mod jwt;

use std::collections::HashMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use serde_json::Value as ClaimValue;

pub use identity::{IdentifierRule, IdentifierSection, IdentifierSource, Identity, KeptClaim};
pub use jwt::{Algorithm, Verifier};

use crate::error::ConfigError;
use identity::claim_to_ruby_string;

/// `[auth]`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSection {
    /// `jwt` or `none`.
    pub mode: AuthMode,
    /// Allow `none` on a non-loopback address.
    pub allow_unauthenticated_public: bool,
    /// Query parameter carrying the token.
    pub token_param: String,
    /// Fall back to `Authorization: Bearer`.
    pub accept_bearer_header: bool,
    /// Pinned JWT algorithm.
    pub algorithm: String,
    /// HMAC secret (raw bytes).
    pub secret: String,
    /// PEM public key, inline.
    pub public_key: String,
    /// PEM public key, from a file.
    pub public_key_file: String,
    /// Clock skew allowed for exp/nbf.
    pub leeway_secs: u64,
    /// Connection identifiers, in declaration order.
    pub identifiers: Vec<IdentifierSection>,
}

impl Default for AuthSection {
    fn default() -> Self {
        AuthSection {
            mode: AuthMode::None,
            allow_unauthenticated_public: false,
            token_param: "token".into(),
            accept_bearer_header: true,
            algorithm: "HS256".into(),
            secret: String::new(),
            public_key: String::new(),
            public_key_file: String::new(),
            leeway_secs: 0,
            identifiers: Vec::new(),
        }
    }
}

/// Whether connections must authenticate.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// A valid JWT is required.
    Jwt,
    /// Everyone is accepted (development only).
    None,
}

/// The `[auth]` section, checked: how connections are authenticated.
#[derive(Debug)]
pub struct AuthSettings {
    /// `None` in the development "no auth" mode.
    pub verifier: Option<Verifier>,
    /// Query parameter with the token.
    pub token_param: String,
    /// Accept `Authorization: Bearer`.
    pub accept_bearer_header: bool,
    /// Identifiers in declaration order.
    pub identifiers: Vec<IdentifierRule>,
    /// Longest token accepted.
    pub max_token_bytes: usize,
}

impl AuthSettings {
    /// Checks `[auth]`. `host` is the listen address (mode `none` is refused on a public one
    /// unless explicitly allowed); `max_token_bytes` comes from `[limits]`.
    pub fn compile(
        a: &AuthSection,
        host: IpAddr,
        max_token_bytes: usize,
    ) -> Result<AuthSettings, ConfigError> {
        let identifiers = IdentifierRule::compile_all(&a.identifiers, a.mode)?;
        let verifier = match a.mode {
            AuthMode::None => {
                if !host.is_loopback() && !a.allow_unauthenticated_public {
                    return Err(ConfigError::new(
                        "auth.mode",
                        format!(
                            "\"none\" accepts every connection without a token and the server \
                             listens on {host}, which is not a loopback address; configure \
                             auth.mode = \"jwt\" (and SECRET_KEY_BASE), or set \
                             auth.allow_unauthenticated_public = true if you really mean it"
                        ),
                    ));
                }
                None
            }
            AuthMode::Jwt => Some(Verifier::compile(a)?),
        };
        if a.token_param.is_empty() {
            return Err(ConfigError::new("auth.token_param", "must not be empty"));
        }
        Ok(AuthSettings {
            verifier,
            token_param: a.token_param.clone(),
            accept_bearer_header: a.accept_bearer_header,
            identifiers,
            max_token_bytes,
        })
    }

    /// The mode in a few words, for `config check` and the start-up log: `jwt HS256`, `none`.
    pub fn describe(&self) -> String {
        match &self.verifier {
            Some(verifier) => format!("jwt {}", verifier.algorithm()),
            None => "none".to_string(),
        }
    }

    /// Authenticates a connection request at time `now` (Unix seconds). `wanted_claims` are
    /// the claims channel rules refer to; only those are kept.
    pub fn authenticate(
        &self,
        credentials: Credentials<'_>,
        now: u64,
        wanted_claims: &[String],
        drop_false_identifiers: bool,
    ) -> Result<Identity, AuthError> {
        let query = parse_query(credentials.query.unwrap_or(""));
        let claims = match &self.verifier {
            None => serde_json::Map::new(),
            Some(verifier) => {
                let token = query
                    .get(self.token_param.as_str())
                    .map(String::as_str)
                    .filter(|t| !t.is_empty())
                    .or_else(|| {
                        credentials
                            .authorization
                            .filter(|_| self.accept_bearer_header)
                            .and_then(bearer_token)
                    })
                    .ok_or(AuthError::MissingToken)?;
                if token.len() > self.max_token_bytes {
                    return Err(AuthError::TokenTooLong(self.max_token_bytes));
                }
                verifier.verify(token, now)?
            }
        };
        let mut values = Vec::with_capacity(self.identifiers.len());
        let mut identifier_parts = Vec::new();
        for rule in &self.identifiers {
            // A JSON `false` (not the string "false"): Ruby's `false`, not `"false"`.
            let is_false = matches!(
                &rule.source,
                IdentifierSource::Claim(c) if matches!(claims.get(c), Some(ClaimValue::Bool(false)))
            );
            let value = match &rule.source {
                IdentifierSource::Claim(c) => match claims.get(c) {
                    None | Some(ClaimValue::Null) => None,
                    Some(v) => Some(
                        claim_to_ruby_string(v)
                            .ok_or_else(|| AuthError::InvalidClaim(c.clone()))?,
                    ),
                },
                IdentifierSource::Query(q) => query.get(q.as_str()).cloned(),
            };
            if let (Some(q), Some(v)) = (&rule.match_query, &value)
                && query.get(q.as_str()) != Some(v)
            {
                return Err(AuthError::QueryMismatch(rule.name.clone()));
            }
            match &value {
                None if rule.required => {
                    return Err(AuthError::MissingIdentifier(rule.name.clone()));
                }
                // 7.0+ builds the connection identifier with `filter_map`, which drops `false`;
                // 6.1 keeps it as "false" (conformance `identifier_false`, both versions).
                Some(_) if is_false && drop_false_identifiers => {}
                Some(v) => identifier_parts.push(rule.identifier_part(v)),
                None => {}
            }
            values.push(value.filter(|_| !is_false).map(String::into_boxed_str));
        }
        identifier_parts.sort();
        let kept_claims = wanted_claims
            .iter()
            .map(|name| {
                let value = claims
                    .get(name)
                    .and_then(claim_to_ruby_string)
                    .map(String::into_boxed_str);
                KeptClaim {
                    name: name.clone().into_boxed_str(),
                    value,
                }
            })
            .collect();
        Ok(Identity {
            values: values.into_boxed_slice(),
            claims: kept_claims,
            connection_identifier: identifier_parts.join(":").into_boxed_str(),
        })
    }
}

/// Why a connection was refused. All of them look the same on the wire.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Neither the query parameter nor a bearer header carried a token.
    #[error("no token")]
    MissingToken,
    /// The token is not a well-formed JWT.
    #[error("malformed token: {0}")]
    Malformed(String),
    /// The signature does not verify with the configured key.
    #[error("bad signature")]
    BadSignature,
    /// The header names another algorithm than the configured one (or `none`).
    #[error("token algorithm is not the configured one")]
    WrongAlgorithm,
    /// `exp` has passed.
    #[error("token expired")]
    Expired,
    /// `nbf` is in the future.
    #[error("token not yet valid")]
    NotYetValid,
    /// A claim has a type we cannot use.
    #[error("claim {0:?} has an unusable type")]
    InvalidClaim(String),
    /// The token is longer than `limits.max_token_bytes`.
    #[error("token longer than {0} bytes")]
    TokenTooLong(usize),
    /// A required identifier has no value.
    #[error("identifier {0:?} has no value")]
    MissingIdentifier(String),
    /// The query parameter that must equal the identifier does not.
    #[error("query parameter does not match identifier {0:?}")]
    QueryMismatch(String),
}

impl AuthError {
    /// The refusal's reason in a word, for metrics (`ferrocable_auth_refusals_total{reason}`)
    /// and `/stats`. Never includes the token or any part of it.
    pub fn reason(&self) -> &'static str {
        match self {
            AuthError::MissingToken => "no_token",
            AuthError::Malformed(_) => "malformed_token",
            AuthError::BadSignature => "bad_signature",
            AuthError::WrongAlgorithm => "wrong_algorithm",
            AuthError::Expired => "expired",
            AuthError::NotYetValid => "not_yet_valid",
            AuthError::InvalidClaim(_) => "invalid_claim",
            AuthError::TokenTooLong(_) => "token_too_long",
            AuthError::MissingIdentifier(_) => "missing_identifier",
            AuthError::QueryMismatch(_) => "query_mismatch",
        }
    }
}

/// The parts of the upgrade request authentication looks at.
#[derive(Debug, Clone, Copy)]
pub struct Credentials<'a> {
    /// Raw query string, without '?'.
    pub query: Option<&'a str>,
    /// `Authorization` header.
    pub authorization: Option<&'a str>,
}

fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Parses a query string as Rack does for plain keys: `+` is a space, `%XX` is decoded (a bad
/// escape is kept as written, invalid UTF-8 replaced), the last occurrence of a key wins.
pub(crate) fn parse_query(query: &str) -> HashMap<String, String> {
    form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header, encode};
    use serde_json::json;

    const SECRET: &[u8] = b"secret_key_base_value";
    const NOW: u64 = 1_800_000_000;

    fn token(alg: jsonwebtoken::Algorithm, secret: &[u8], claims: serde_json::Value) -> String {
        encode(
            &Header::new(alg),
            &claims,
            &EncodingKey::from_secret(secret),
        )
        .unwrap()
    }

    fn hafaloha() -> AuthSettings {
        AuthSettings {
            verifier: Some(Verifier::hmac(Algorithm::Hs256, SECRET, 0)),
            token_param: "token".into(),
            accept_bearer_header: true,
            identifiers: vec![
                IdentifierRule {
                    name: "current_user".into(),
                    source: IdentifierSource::Claim("user_id".into()),
                    match_query: None,
                    gid: Some("gid://shimizu-order-suite/User/{}".into()),
                    required: true,
                },
                IdentifierRule {
                    name: "restaurant_id".into(),
                    source: IdentifierSource::Claim("restaurant_id".into()),
                    match_query: None,
                    gid: None,
                    required: true,
                },
            ],
            max_token_bytes: 4096,
        }
    }

    fn auth(settings: &AuthSettings, query: &str) -> Result<Identity, AuthError> {
        settings.authenticate(
            Credentials {
                query: Some(query),
                authorization: None,
            },
            NOW,
            &["role".to_string()],
            true,
        )
    }

    #[test]
    fn builds_rails_connection_identifier() {
        let t = token(
            jsonwebtoken::Algorithm::HS256,
            SECRET,
            json!({"user_id": 42, "restaurant_id": 1, "role": "admin", "exp": NOW + 60}),
        );
        let id = auth(&hafaloha(), &format!("token={t}&restaurant_id=1")).unwrap();
        assert_eq!(
            &*id.connection_identifier,
            "1:Z2lkOi8vc2hpbWl6dS1vcmRlci1zdWl0ZS9Vc2VyLzQy"
        );
        assert_eq!(id.values[1].as_deref(), Some("1"));
        assert_eq!(id.claim("role"), Some("admin"));
    }

    #[test]
    fn a_false_identifier_is_dropped_from_7_0_and_blank_for_channels() {
        let s = hafaloha();
        let gid = "Z2lkOi8vc2hpbWl6dS1vcmRlci1zdWl0ZS9Vc2VyLzg0";
        let t = token(
            jsonwebtoken::Algorithm::HS256,
            SECRET,
            json!({"user_id": 84, "restaurant_id": false}),
        );
        let creds = Credentials {
            query: Some(&format!("token={t}")),
            authorization: None,
        };
        // Recorded: 7.2 "action_cable/<gid>", 6.1 "action_cable/<gid>:false".
        let modern = s.authenticate(creds, NOW, &[], true).unwrap();
        assert_eq!(&*modern.connection_identifier, gid);
        let rails61 = s.authenticate(creds, NOW, &[], false).unwrap();
        assert_eq!(&*rails61.connection_identifier, format!("{gid}:false"));
        assert_eq!(modern.values[1], None, "false is blank for channel rules");
        // The string "false" is a present value in Ruby, and part of the identifier.
        let t = token(
            jsonwebtoken::Algorithm::HS256,
            SECRET,
            json!({"user_id": 84, "restaurant_id": "false"}),
        );
        let query = format!("token={t}");
        let creds = Credentials {
            query: Some(&query),
            authorization: None,
        };
        let id = s.authenticate(creds, NOW, &[], true).unwrap();
        assert_eq!(&*id.connection_identifier, format!("{gid}:false"));
        assert_eq!(id.values[1].as_deref(), Some("false"));
    }

    #[test]
    fn refusals() {
        let s = hafaloha();
        let good = json!({"user_id": 42, "restaurant_id": 1});
        let hs = jsonwebtoken::Algorithm::HS256;
        assert_eq!(auth(&s, "").unwrap_err(), AuthError::MissingToken);
        assert!(matches!(
            auth(&s, "token=abc").unwrap_err(),
            AuthError::Malformed(_)
        ));
        let t = token(hs, b"wrong", good.clone());
        assert_eq!(
            auth(&s, &format!("token={t}")).unwrap_err(),
            AuthError::BadSignature
        );
        let t = token(jsonwebtoken::Algorithm::HS512, SECRET, good);
        assert_eq!(
            auth(&s, &format!("token={t}")).unwrap_err(),
            AuthError::WrongAlgorithm
        );
        let t = token(
            hs,
            SECRET,
            json!({"user_id": 42, "restaurant_id": 1, "exp": NOW}),
        );
        assert_eq!(
            auth(&s, &format!("token={t}")).unwrap_err(),
            AuthError::Expired
        );
        let t = token(
            hs,
            SECRET,
            json!({"user_id": 42, "restaurant_id": 1, "nbf": NOW + 10}),
        );
        assert_eq!(
            auth(&s, &format!("token={t}")).unwrap_err(),
            AuthError::NotYetValid
        );
        let t = token(hs, SECRET, json!({"user_id": 42}));
        assert_eq!(
            auth(&s, &format!("token={t}")).unwrap_err(),
            AuthError::MissingIdentifier("restaurant_id".into())
        );
        let t = token(hs, SECRET, json!({"user_id": [1], "restaurant_id": 1}));
        assert_eq!(
            auth(&s, &format!("token={t}")).unwrap_err(),
            AuthError::InvalidClaim("user_id".into())
        );
    }

    #[test]
    fn oversized_tokens_are_refused_before_decoding() {
        let long = "a".repeat(5000);
        assert_eq!(
            auth(&hafaloha(), &format!("token={long}")).unwrap_err(),
            AuthError::TokenTooLong(4096)
        );
    }

    #[test]
    fn alg_none_is_refused() {
        // header {"alg":"none","typ":"JWT"}, payload {"user_id":1,"restaurant_id":1}, no signature
        let t = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJ1c2VyX2lkIjoxLCJyZXN0YXVyYW50X2lkIjoxfQ.";
        assert!(auth(&hafaloha(), &format!("token={t}")).is_err());
    }

    #[test]
    fn leeway_extends_expiry() {
        let mut s = hafaloha();
        s.verifier = Some(Verifier::hmac(Algorithm::Hs256, SECRET, 30));
        let t = token(
            jsonwebtoken::Algorithm::HS256,
            SECRET,
            json!({"user_id": 1, "restaurant_id": 1, "exp": NOW - 10}),
        );
        assert!(auth(&s, &format!("token={t}")).is_ok());
    }

    #[test]
    fn bearer_header_is_the_fallback() {
        let s = hafaloha();
        let t = token(
            jsonwebtoken::Algorithm::HS256,
            SECRET,
            json!({"user_id": 1, "restaurant_id": 1}),
        );
        let header = format!("Bearer {t}");
        let creds = Credentials {
            query: None,
            authorization: Some(&header),
        };
        assert!(s.authenticate(creds, NOW, &[], true).is_ok());
        let mut no_header = hafaloha();
        no_header.accept_bearer_header = false;
        assert_eq!(
            no_header.authenticate(creds, NOW, &[], true).unwrap_err(),
            AuthError::MissingToken
        );
    }

    #[test]
    fn match_query_requires_equal_parameter() {
        let mut s = hafaloha();
        s.identifiers[1].match_query = Some("restaurant_id".into());
        let t = token(
            jsonwebtoken::Algorithm::HS256,
            SECRET,
            json!({"user_id": 1, "restaurant_id": 1}),
        );
        assert!(auth(&s, &format!("token={t}&restaurant_id=1")).is_ok());
        assert_eq!(
            auth(&s, &format!("token={t}&restaurant_id=2")).unwrap_err(),
            AuthError::QueryMismatch("restaurant_id".into())
        );
    }

    #[test]
    fn query_decoding_follows_rack() {
        let q = parse_query("a=1+2&b=%3C%3e&a=3&c&d=%zz");
        assert_eq!(q["a"], "3");
        assert_eq!(q["b"], "<>");
        assert_eq!(q["c"], "");
        assert_eq!(q["d"], "%zz");
        assert_eq!(parse_query("x=1%2")["x"], "1%2");
    }
}
