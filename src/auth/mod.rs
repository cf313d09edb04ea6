//! Connection authentication: who may connect, and who they are.
//!
//! - [`jwt`]: the pinned algorithm, the [`Verifier`], and token minting for `ferrocable token`;
//! - [`cookie`]: Rails' signed and encrypted cookies and the cookie-store session
//!   (`[auth.cookie]`), verified with `SECRET_KEY_BASE` through `ferrocable_rails`;
//! - [`lookup`]: the cookie's credential turned into a row of the app's database
//!   (`[auth.lookup]`);
//! - [`identity`]: the `identified_by` identifiers and Rails' connection identifier.
//!
//! [`AuthSettings::authenticate`] is the entry point. What needs no I/O (a JWT, a cookie)
//! is decided at once, from the request and the clock the caller passes in; a database
//! lookup comes back as [`Authentication::Pending`], a future the connection's own task awaits
//! after the 101 (as Rails runs `connect` after the upgrade), so a slow database never holds
//! the accept path or another connection. The outcome is an [`Identity`] or an [`AuthError`];
//! whatever the error, the wire answer is the same unauthorized disconnect (docs/PROTOCOL.md
//! §1.5), so the variants exist for logs and tests, not for clients.

pub mod cookie;
pub mod identity;
pub mod jwt;
pub mod lookup;

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use serde_json::Value as ClaimValue;

pub use cookie::{CookieKind, CookieSection, CookieSettings};
pub use identity::{IdentifierRule, IdentifierSection, IdentifierSource, Identity, KeptClaim};
pub use jwt::{Algorithm, Verifier};
pub use lookup::{Lookup, LookupSection};

use crate::database::Database;
use crate::error::ConfigError;
use ferrocable_rails::RailsVersion;
use identity::{claim_to_ruby_string, claim_to_value};

/// `[auth]`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSection {
    /// `jwt`, `cookie` or `none`.
    pub mode: AuthMode,
    /// Allow `none` on a non-loopback address.
    pub allow_unauthenticated_public: bool,
    /// Query parameter carrying the token.
    pub token_param: String,
    /// Fall back to `Authorization: Bearer`.
    pub accept_bearer_header: bool,
    /// Pinned JWT algorithm.
    pub algorithm: String,
    /// HMAC secret (raw bytes); for cookies, the app's `secret_key_base` (`SECRET_KEY_BASE`).
    pub secret: String,
    /// Read the secret from this file instead (trailing newline dropped).
    pub secret_file: String,
    /// PEM public key, inline.
    pub public_key: String,
    /// PEM public key, from a file.
    pub public_key_file: String,
    /// Clock skew allowed for exp/nbf.
    pub leeway_secs: u64,
    /// The GlobalID app name (`config.global_id.app`); empty: from `app_module`.
    pub global_id_app: String,
    /// The app's module (`module Chat` in config/application.rb), for Rails' default app name.
    pub app_module: String,
    /// `[auth.cookie]`: the cookie that authenticates (mode `cookie`).
    pub cookie: CookieSection,
    /// `[auth.lookup]`: the database query that turns the cookie's value into a user.
    pub lookup: LookupSection,
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
            secret_file: String::new(),
            public_key: String::new(),
            public_key_file: String::new(),
            leeway_secs: 0,
            global_id_app: String::new(),
            app_module: String::new(),
            cookie: CookieSection::default(),
            lookup: LookupSection::default(),
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
    /// A valid Rails cookie is required (`[auth.cookie]`, optionally `[auth.lookup]`).
    Cookie,
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
    /// The cookie, in mode `cookie`.
    pub cookie: Option<CookieSettings>,
    /// The database lookup behind the cookie, if configured.
    pub lookup: Option<Lookup>,
    /// The GlobalID app name, when one is configured or derived.
    pub global_id_app: Option<String>,
}

/// The outcome of checking an upgrade request.
pub enum Authentication {
    /// Decided from the request alone.
    Done(Result<Identity, AuthError>),
    /// Waiting on the database: the connection's task awaits it after the 101.
    Pending(PendingAuth),
}

/// A database lookup on its way to an [`Identity`].
pub struct PendingAuth(Pin<Box<dyn Future<Output = Result<Identity, AuthError>> + Send>>);

impl PendingAuth {
    /// Waits for the lookup (bounded by `database.query_timeout_ms`).
    pub async fn finish(self) -> Result<Identity, AuthError> {
        self.0.await
    }
}

impl std::fmt::Debug for PendingAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PendingAuth")
    }
}

impl AuthError {
    /// Whether the refusal points at a setting of the app rather than at a client: a Marshal
    /// or MessagePack cookie (the app's `cookies_serializer`), or a database that failed.
    /// Those are logged as warnings.
    pub fn is_configuration_problem(&self) -> bool {
        use ferrocable_rails::Error as E;
        matches!(
            self,
            AuthError::Cookie {
                cause: E::MarshalPayload { .. } | E::UnsupportedSerializer(_),
                ..
            } | AuthError::Database(_)
        )
    }
}

impl std::fmt::Debug for Authentication {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Authentication::Done(r) => f.debug_tuple("Done").field(r).finish(),
            Authentication::Pending(_) => f.write_str("Pending"),
        }
    }
}

impl AuthSettings {
    /// Checks `[auth]`. `host` is the listen address (mode `none` is refused on a public one
    /// unless explicitly allowed); `max_token_bytes` comes from `[limits]`, `rails_version`
    /// from `[protocol]`, `database` from `[database]`.
    pub fn compile(
        a: &AuthSection,
        host: IpAddr,
        max_token_bytes: usize,
        rails_version: RailsVersion,
        database: Option<&Arc<Database>>,
    ) -> Result<AuthSettings, ConfigError> {
        let global_id_app = global_id_app(a)?;
        let identifiers =
            IdentifierRule::compile_all(&a.identifiers, a.mode, global_id_app.as_deref())?;
        let mut cookie = None;
        let mut lookup = None;
        let verifier = match a.mode {
            AuthMode::None => {
                if !host.is_loopback() && !a.allow_unauthenticated_public {
                    return Err(ConfigError::new(
                        "auth.mode",
                        format!(
                            "\"none\" accepts every connection without a token and the server \
                             listens on {host}, which is not a loopback address; configure \
                             auth.mode = \"jwt\" or \"cookie\" (and SECRET_KEY_BASE), or set \
                             auth.allow_unauthenticated_public = true if you really mean it"
                        ),
                    ));
                }
                None
            }
            AuthMode::Jwt => Some(Verifier::compile(a)?),
            AuthMode::Cookie => {
                let secret = secret_key_base(a)?;
                cookie = Some(CookieSettings::compile(&a.cookie, &secret, rails_version)?);
                lookup = Lookup::compile(&a.lookup, database)?;
                None
            }
        };
        if a.mode != AuthMode::Cookie && !a.lookup.query.trim().is_empty() {
            return Err(ConfigError::new(
                "auth.lookup.query",
                "a lookup reads the cookie's value: set auth.mode = \"cookie\"",
            ));
        }
        if a.token_param.is_empty() {
            return Err(ConfigError::new("auth.token_param", "must not be empty"));
        }
        Ok(AuthSettings {
            verifier,
            token_param: a.token_param.clone(),
            accept_bearer_header: a.accept_bearer_header,
            identifiers,
            max_token_bytes,
            cookie,
            lookup,
            global_id_app,
        })
    }

    /// The mode in a few words, for `config check` and the start-up log: `jwt HS256`, `none`.
    pub fn describe(&self) -> String {
        match (&self.verifier, &self.cookie) {
            (Some(verifier), _) => format!("jwt {}", verifier.algorithm()),
            (None, Some(cookie)) if self.lookup.is_some() => {
                format!("{} + database lookup", cookie.describe())
            }
            (None, Some(cookie)) => cookie.describe(),
            (None, None) => "none".to_string(),
        }
    }

    /// Authenticates a connection request at time `now`. `wanted_claims` are the claims
    /// channel rules refer to; only those are kept.
    pub fn authenticate(
        self: &Arc<Self>,
        credentials: Credentials<'_>,
        now: SystemTime,
        wanted_claims: &Arc<[String]>,
        drop_false_identifiers: bool,
    ) -> Authentication {
        let secs = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let query = parse_query(credentials.query.unwrap_or(""));
        let claims = match (&self.verifier, &self.cookie) {
            (None, None) => serde_json::Map::new(),
            (Some(verifier), _) => {
                let token = query
                    .get(self.token_param.as_str())
                    .map(String::as_str)
                    .filter(|t| !t.is_empty())
                    .or_else(|| {
                        credentials
                            .authorization
                            .filter(|_| self.accept_bearer_header)
                            .and_then(bearer_token)
                    });
                let verified = match token {
                    None => Err(AuthError::MissingToken),
                    Some(t) if t.len() > self.max_token_bytes => {
                        Err(AuthError::TokenTooLong(self.max_token_bytes))
                    }
                    Some(t) => verifier.verify(t, secs),
                };
                match verified {
                    Ok(claims) => claims,
                    Err(e) => return Authentication::Done(Err(e)),
                }
            }
            (None, Some(cookie)) => {
                let credential = match cookie.credential(credentials.cookie, now) {
                    Ok(c) => c,
                    Err(e) => return Authentication::Done(Err(e)),
                };
                if self.lookup.is_some() {
                    let settings = self.clone();
                    let wanted = wanted_claims.clone();
                    return Authentication::Pending(PendingAuth(Box::pin(async move {
                        let lookup = settings.lookup.as_ref().ok_or(AuthError::NoRow)?;
                        let claims = lookup.resolve(&credential).await?;
                        settings.identify(&claims, &query, &wanted, drop_false_identifiers)
                    })));
                }
                serde_json::Map::from_iter([("value".to_string(), credential)])
            }
        };
        Authentication::Done(self.identify(&claims, &query, wanted_claims, drop_false_identifiers))
    }

    /// The identity that verified `claims` (a JWT's claims, a cookie's value, a looked-up
    /// row) give, with the request's query parameters.
    fn identify(
        &self,
        claims: &serde_json::Map<String, ClaimValue>,
        query: &HashMap<String, String>,
        wanted_claims: &[String],
        drop_false_identifiers: bool,
    ) -> Result<Identity, AuthError> {
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
                let claim = claims.get(name);
                KeptClaim {
                    name: name.clone().into_boxed_str(),
                    value: claim
                        .and_then(claim_to_ruby_string)
                        .map(String::into_boxed_str),
                    typed: claim.map(claim_to_value),
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

/// `config.global_id.app`, or Rails' default from the app's module name.
fn global_id_app(a: &AuthSection) -> Result<Option<String>, ConfigError> {
    if !a.global_id_app.is_empty() {
        return Ok(Some(a.global_id_app.clone()));
    }
    if a.app_module.is_empty() {
        return Ok(None);
    }
    if !a.app_module.starts_with(|c: char| c.is_ascii_uppercase())
        || !a
            .app_module
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    {
        return Err(ConfigError::new(
            "auth.app_module",
            "must be the app's Ruby module name, e.g. \"Campfire\" or \"MyApp\"",
        ));
    }
    Ok(Some(ferrocable_rails::global_id_app_name(&a.app_module)))
}

/// `secret_key_base` from `auth.secret` (`SECRET_KEY_BASE`) or `auth.secret_file`.
fn secret_key_base(a: &AuthSection) -> Result<String, ConfigError> {
    if a.secret_file.is_empty() {
        return Ok(a.secret.clone());
    }
    if !a.secret.is_empty() {
        return Err(ConfigError::new(
            "auth.secret_file",
            "both SECRET_KEY_BASE (auth.secret) and auth.secret_file are set; keep one",
        ));
    }
    let text = std::fs::read_to_string(&a.secret_file)
        .map_err(|e| ConfigError::new("auth.secret_file", format!("{}: {e}", a.secret_file)))?;
    Ok(text.trim_end_matches(['\n', '\r']).to_string())
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
    /// The cookie is absent, forged, expired, under another name, or unreadable (Marshal).
    #[error("cookie {name:?}: {cause}")]
    Cookie {
        /// The configured cookie name.
        name: String,
        /// What `ferrocable_rails` found.
        cause: ferrocable_rails::Error,
    },
    /// The cookie verified but does not hold the configured value.
    #[error("cookie {0:?} holds no usable value where auth.cookie says")]
    MissingCredential(String),
    /// The cookie's Active Record signed id does not verify.
    #[error("signed id of {model}: {cause}")]
    SignedId {
        /// The model.
        model: String,
        /// What `ferrocable_rails` found.
        cause: ferrocable_rails::Error,
    },
    /// The credential is not a string or an integer, so it cannot be looked up.
    #[error("the cookie's value is not a string or an integer")]
    UnusableCredential,
    /// The lookup found no row (no such session, or it was revoked).
    #[error("no row for the cookie's value (unknown or revoked session)")]
    NoRow,
    /// The database failed or timed out.
    #[error("{0}")]
    Database(String),
}

/// The parts of the upgrade request authentication looks at.
#[derive(Debug, Clone, Copy)]
pub struct Credentials<'a> {
    /// Raw query string, without '?'.
    pub query: Option<&'a str>,
    /// `Authorization` header.
    pub authorization: Option<&'a str>,
    /// `Cookie` header (several joined with "; ").
    pub cookie: Option<&'a str>,
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

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs)
    }

    fn done(outcome: Authentication) -> Result<Identity, AuthError> {
        match outcome {
            Authentication::Done(result) => result,
            Authentication::Pending(_) => panic!("no lookup configured"),
        }
    }

    fn wanted(names: &[&str]) -> Arc<[String]> {
        names.iter().map(|n| n.to_string()).collect()
    }

    fn token(alg: jsonwebtoken::Algorithm, secret: &[u8], claims: serde_json::Value) -> String {
        encode(
            &Header::new(alg),
            &claims,
            &EncodingKey::from_secret(secret),
        )
        .unwrap()
    }

    fn hafaloha() -> Arc<AuthSettings> {
        Arc::new(AuthSettings {
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
            cookie: None,
            lookup: None,
            global_id_app: None,
        })
    }

    fn auth(settings: &Arc<AuthSettings>, query: &str) -> Result<Identity, AuthError> {
        done(settings.authenticate(
            Credentials {
                query: Some(query),
                authorization: None,
                cookie: None,
            },
            at(NOW),
            &wanted(&["role"]),
            true,
        ))
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
            cookie: None,
        };
        // Recorded: 7.2 "action_cable/<gid>", 6.1 "action_cable/<gid>:false".
        let modern = done(s.authenticate(creds, at(NOW), &wanted(&[]), true)).unwrap();
        assert_eq!(&*modern.connection_identifier, gid);
        let rails61 = done(s.authenticate(creds, at(NOW), &wanted(&[]), false)).unwrap();
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
            cookie: None,
        };
        let id = done(s.authenticate(creds, at(NOW), &wanted(&[]), true)).unwrap();
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
        Arc::get_mut(&mut s).unwrap().verifier = Some(Verifier::hmac(Algorithm::Hs256, SECRET, 30));
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
            cookie: None,
        };
        assert!(done(s.authenticate(creds, at(NOW), &wanted(&[]), true)).is_ok());
        let mut no_header = hafaloha();
        Arc::get_mut(&mut no_header).unwrap().accept_bearer_header = false;
        assert_eq!(
            done(no_header.authenticate(creds, at(NOW), &wanted(&[]), true)).unwrap_err(),
            AuthError::MissingToken
        );
    }

    #[test]
    fn match_query_requires_equal_parameter() {
        let mut s = hafaloha();
        Arc::get_mut(&mut s).unwrap().identifiers[1].match_query = Some("restaurant_id".into());
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
