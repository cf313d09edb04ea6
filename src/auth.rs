//! Connection authentication: token extraction, JWT verification, identifier mapping.
//!
//! Pure apart from the clock, which the caller passes in. The outcome is an [`Identity`] or an
//! [`AuthError`]; whatever the error, the wire answer is the same unauthorized disconnect
//! (protocol.md §1.5), so the variants exist for logs and tests, not for clients.
//!
//! Expiry follows ruby-jwt, which Rails apps verify with: `exp` and `nbf` are checked only when
//! present, a token is expired once `exp <= now - leeway`, immature while `nbf > now + leeway`.

use std::collections::HashMap;
use std::fmt;

use jsonwebtoken::{DecodingKey, Validation};
use serde_json::Value as ClaimValue;

/// JWT algorithms we verify. The configured one is the only one a token may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// HMAC-SHA256.
    Hs256,
    /// HMAC-SHA384.
    Hs384,
    /// HMAC-SHA512.
    Hs512,
    /// RSASSA-PKCS1-v1_5 SHA-256.
    Rs256,
    /// ECDSA P-256 SHA-256.
    Es256,
}

impl Algorithm {
    /// Parses the names JWT headers use.
    pub fn parse(name: &str) -> Option<Algorithm> {
        match name {
            "HS256" => Some(Algorithm::Hs256),
            "HS384" => Some(Algorithm::Hs384),
            "HS512" => Some(Algorithm::Hs512),
            "RS256" => Some(Algorithm::Rs256),
            "ES256" => Some(Algorithm::Es256),
            _ => None,
        }
    }

    /// Shared-secret algorithms.
    pub fn is_hmac(self) -> bool {
        matches!(self, Algorithm::Hs256 | Algorithm::Hs384 | Algorithm::Hs512)
    }

    fn to_jwt(self) -> jsonwebtoken::Algorithm {
        match self {
            Algorithm::Hs256 => jsonwebtoken::Algorithm::HS256,
            Algorithm::Hs384 => jsonwebtoken::Algorithm::HS384,
            Algorithm::Hs512 => jsonwebtoken::Algorithm::HS512,
            Algorithm::Rs256 => jsonwebtoken::Algorithm::RS256,
            Algorithm::Es256 => jsonwebtoken::Algorithm::ES256,
        }
    }
}

/// A key and the rules a token must satisfy.
pub struct Verifier {
    key: DecodingKey,
    validation: Validation,
    leeway: u64,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("algorithms", &self.validation.algorithms)
            .field("leeway", &self.leeway)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// A shared-secret verifier; the secret is used as raw bytes, as Rails apps do with
    /// `secret_key_base`.
    pub fn hmac(algorithm: Algorithm, secret: &[u8], leeway: u64) -> Result<Verifier, String> {
        Ok(Verifier::with_key(
            algorithm,
            DecodingKey::from_secret(secret),
            leeway,
        ))
    }

    /// A public-key verifier from PEM.
    pub fn public_key(algorithm: Algorithm, pem: &[u8], leeway: u64) -> Result<Verifier, String> {
        let key = match algorithm {
            Algorithm::Rs256 => DecodingKey::from_rsa_pem(pem),
            Algorithm::Es256 => DecodingKey::from_ec_pem(pem),
            _ => return Err("not a public-key algorithm".into()),
        }
        .map_err(|e| format!("not a usable PEM public key for {algorithm:?}: {e}"))?;
        Ok(Verifier::with_key(algorithm, key, leeway))
    }

    fn with_key(algorithm: Algorithm, key: DecodingKey, leeway: u64) -> Verifier {
        let mut validation = Validation::new(algorithm.to_jwt());
        // Expiry is checked by hand, the way ruby-jwt does it (see the module docs); audience,
        // issuer and the rest are not checked by Rails apps either.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        Verifier {
            key,
            validation,
            leeway,
        }
    }

    /// Verifies signature, algorithm and times; returns the claims.
    pub fn verify(
        &self,
        token: &str,
        now: u64,
    ) -> Result<serde_json::Map<String, ClaimValue>, AuthError> {
        use jsonwebtoken::errors::ErrorKind;
        let data = jsonwebtoken::decode::<serde_json::Map<String, ClaimValue>>(
            token,
            &self.key,
            &self.validation,
        )
        .map_err(|e| match e.kind() {
            ErrorKind::InvalidSignature => AuthError::BadSignature,
            ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                AuthError::WrongAlgorithm
            }
            _ => AuthError::Malformed(e.to_string()),
        })?;
        let claims = data.claims;
        let time = |name: &str| -> Result<Option<i64>, AuthError> {
            match claims.get(name) {
                None | Some(ClaimValue::Null) => Ok(None),
                Some(ClaimValue::Number(n)) => {
                    Ok(n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)))
                }
                Some(_) => Err(AuthError::InvalidClaim(name.to_string())),
            }
        };
        let now = now as i64;
        let leeway = self.leeway as i64;
        if let Some(exp) = time("exp")?
            && exp <= now - leeway
        {
            return Err(AuthError::Expired);
        }
        if let Some(nbf) = time("nbf")?
            && nbf > now + leeway
        {
            return Err(AuthError::NotYetValid);
        }
        Ok(claims)
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

/// Where an identifier's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentifierSource {
    /// A JWT claim.
    Claim(String),
    /// A query parameter.
    Query(String),
}

/// One `identified_by` attribute.
#[derive(Debug, Clone)]
pub struct IdentifierRule {
    /// Name, as templates and remote disconnect use it.
    pub name: String,
    /// Value source.
    pub source: IdentifierSource,
    /// Query parameter that must equal the value.
    pub match_query: Option<String>,
    /// GlobalID template for the connection identifier.
    pub gid: Option<String>,
    /// Refuse when missing.
    pub required: bool,
}

/// Authentication settings.
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

/// Who a connection is.
#[derive(Debug, Clone, Default)]
pub struct Identity {
    /// Identifier values by declaration index (`None` when optional and absent, and for a
    /// boolean `false` claim, which Ruby's `present?` calls blank: channel rules then reject,
    /// as a Rails channel checking `restaurant_id.present?` does; conformance `identifier_false`).
    pub values: Box<[Option<Box<str>>]>,
    /// Claims the channel rules need, and only those, as Ruby would print them.
    pub claims: Box<[KeptClaim]>,
    /// Rails' connection identifier: the values (GlobalID params where configured), sorted
    /// and joined with ':' (protocol.md §5.1). Empty when there are no identifiers.
    pub connection_identifier: Box<str>,
}

/// A claim kept for channel rules.
#[derive(Debug, Clone)]
pub struct KeptClaim {
    /// Claim name.
    pub name: Box<str>,
    /// Its value as Ruby's `to_s` would print it; `None` when absent or not a scalar.
    pub value: Option<Box<str>>,
}

impl Identity {
    /// The value of a claim kept for channel rules.
    pub fn claim(&self, name: &str) -> Option<&str> {
        self.claims
            .iter()
            .find(|c| &*c.name == name)
            .and_then(|c| c.value.as_deref())
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

impl AuthSettings {
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
                Some(v) => identifier_parts.push(match &rule.gid {
                    Some(template) => global_id_param(&template.replacen("{}", v, 1)),
                    None => v.clone(),
                }),
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

/// Ruby's `to_s` of a scalar claim; `None` for arrays and objects, which cannot name anything.
fn claim_to_ruby_string(value: &ClaimValue) -> Option<String> {
    match value {
        ClaimValue::String(s) => Some(s.clone()),
        ClaimValue::Bool(b) => Some(b.to_string()),
        ClaimValue::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => Some(i.to_string()),
            (_, Some(u), _) => Some(u.to_string()),
            (_, _, Some(f)) => crate::protocol::json::Value::Float(f).to_ruby_string(),
            _ => None,
        },
        ClaimValue::Null | ClaimValue::Array(_) | ClaimValue::Object(_) => None,
    }
}

fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// `GlobalID#to_param`: URL-safe base64 of the URI, without padding.
pub(crate) fn global_id_param(uri: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = uri.as_bytes();
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// Parses a query string as Rack does for plain keys: `+` is a space, `%XX` is decoded, the
/// last occurrence of a key wins.
pub(crate) fn parse_query(query: &str) -> HashMap<String, String> {
    let mut map = HashMap::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        map.insert(percent_decode(k), percent_decode(v));
    }
    map
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
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
            verifier: Some(Verifier::hmac(Algorithm::Hs256, SECRET, 0).unwrap()),
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
        s.verifier = Some(Verifier::hmac(Algorithm::Hs256, SECRET, 30).unwrap());
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

    #[test]
    fn global_id_param_is_unpadded_urlsafe_base64() {
        assert_eq!(
            global_id_param("gid://shimizu-order-suite/User/42"),
            "Z2lkOi8vc2hpbWl6dS1vcmRlci1zdWl0ZS9Vc2VyLzQy"
        );
        assert_eq!(
            global_id_param("gid://my-app/Order/1"),
            "Z2lkOi8vbXktYXBwL09yZGVyLzE"
        );
    }
}
