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
        release: &crate::compat::ProtocolSettings,
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
                cookie = Some(CookieSettings::compile(
                    &a.cookie,
                    &secret,
                    release.compat.rails_version,
                    release.load_defaults,
                )?);
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
pub(crate) fn secret_key_base(a: &AuthSection) -> Result<String, ConfigError> {
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
            AuthError::Cookie { .. } => "bad_cookie",
            AuthError::MissingCredential(_) => "missing_credential",
            AuthError::SignedId { .. } => "bad_signed_id",
            AuthError::UnusableCredential => "unusable_credential",
            AuthError::NoRow => "unknown_session",
            AuthError::Database(_) => "database_unavailable",
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
mod tests;
