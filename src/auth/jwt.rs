//! JWTs: the pinned algorithm, the [`Verifier`] built from `[auth]`, and the development
//! token minting behind `ferrocable token`.
//!
//! Expiry follows ruby-jwt, which Rails apps verify with: `exp` and `nbf` are checked only when
//! present, a token is expired once `exp <= now - leeway`, immature while `nbf > now + leeway`.

use std::fmt;
use std::path::PathBuf;

use jsonwebtoken::{DecodingKey, Validation};
use serde_json::Value as ClaimValue;

use super::{AuthError, AuthSection};
use crate::error::ConfigError;

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

impl fmt::Display for Algorithm {
    /// The name JWT headers (and `auth.algorithm`) use.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Algorithm::Hs256 => "HS256",
            Algorithm::Hs384 => "HS384",
            Algorithm::Hs512 => "HS512",
            Algorithm::Rs256 => "RS256",
            Algorithm::Es256 => "ES256",
        })
    }
}

/// A key and the rules a token must satisfy.
pub struct Verifier {
    algorithm: Algorithm,
    key: DecodingKey,
    validation: Validation,
    leeway: u64,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("algorithm", &self.algorithm)
            .field("leeway", &self.leeway)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// Builds the verifier `[auth]` describes in mode `jwt`: a secret for HS*, exactly one
    /// of an inline or file PEM public key for RS256/ES256.
    pub fn compile(a: &AuthSection) -> Result<Verifier, ConfigError> {
        let algorithm = Algorithm::parse(&a.algorithm).ok_or_else(|| {
            ConfigError::new(
                "auth.algorithm",
                format!(
                    "{:?} is not supported; use HS256, HS384, HS512, RS256 or ES256",
                    a.algorithm
                ),
            )
        })?;
        if algorithm.is_hmac() {
            if a.secret.is_empty() {
                return Err(ConfigError::new(
                    "auth.secret",
                    format!(
                        "{} needs a secret: set SECRET_KEY_BASE (or FERROCABLE_AUTH__SECRET), or use \
                         auth.mode = \"none\" for development",
                        a.algorithm
                    ),
                ));
            }
            if !a.public_key.is_empty() || !a.public_key_file.is_empty() {
                return Err(ConfigError::new(
                    "auth.public_key",
                    format!("{} uses auth.secret, not a public key", a.algorithm),
                ));
            }
            return Ok(Verifier::hmac(
                algorithm,
                a.secret.as_bytes(),
                a.leeway_secs,
            ));
        }
        let pem = match (a.public_key.is_empty(), a.public_key_file.is_empty()) {
            (false, true) => a.public_key.clone(),
            (true, false) => {
                std::fs::read_to_string(PathBuf::from(&a.public_key_file)).map_err(|e| {
                    ConfigError::new(
                        "auth.public_key_file",
                        format!("cannot read {}: {e}", a.public_key_file),
                    )
                })?
            }
            _ => {
                return Err(ConfigError::new(
                    "auth.public_key",
                    format!(
                        "{} needs exactly one of auth.public_key or auth.public_key_file",
                        a.algorithm
                    ),
                ));
            }
        };
        Verifier::public_key(algorithm, pem.as_bytes(), a.leeway_secs)
            .map_err(|e| ConfigError::new("auth.public_key", e))
    }

    /// A shared-secret verifier; the secret is used as raw bytes, as Rails apps do with
    /// `secret_key_base`.
    pub fn hmac(algorithm: Algorithm, secret: &[u8], leeway: u64) -> Verifier {
        Verifier::with_key(algorithm, DecodingKey::from_secret(secret), leeway)
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
            algorithm,
            key,
            validation,
            leeway,
        }
    }

    /// The one algorithm tokens must name.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
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

/// Why `ferrocable token` cannot mint a token.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Only shared-secret algorithms can be signed here.
    #[error("token needs an HS* algorithm with a secret, not {0}")]
    NotHmac(String),
    /// `auth.secret` is empty.
    #[error("no secret configured: set SECRET_KEY_BASE (or auth.secret)")]
    NoSecret,
    /// A `--claim` without `=`.
    #[error("--claim {0:?} is not NAME=VALUE")]
    BadClaim(String),
    /// jsonwebtoken refused to sign.
    #[error("cannot sign: {0}")]
    Sign(#[source] jsonwebtoken::errors::Error),
}

/// Mints a token with `[auth]`'s HS* algorithm and secret (whatever `auth.mode` is), for
/// trying things out by hand. Each claim is `NAME=VALUE`, VALUE read as JSON when it parses,
/// else as a string; `iat` is `now`, and `exp` is `now + expires_in` unless that is 0.
pub fn mint(
    section: &AuthSection,
    claims: &[String],
    expires_in: u64,
    now: u64,
) -> Result<String, TokenError> {
    let algorithm = Algorithm::parse(&section.algorithm)
        .filter(|a| a.is_hmac())
        .ok_or_else(|| TokenError::NotHmac(section.algorithm.clone()))?;
    if section.secret.is_empty() {
        return Err(TokenError::NoSecret);
    }
    let mut map = serde_json::Map::new();
    for claim in claims {
        let (name, value) = claim
            .split_once('=')
            .ok_or_else(|| TokenError::BadClaim(claim.clone()))?;
        let value = serde_json::from_str(value)
            .unwrap_or_else(|_| serde_json::Value::String(value.to_string()));
        map.insert(name.to_string(), value);
    }
    map.insert("iat".into(), now.into());
    if expires_in > 0 {
        map.insert("exp".into(), (now + expires_in).into());
    }
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(algorithm.to_jwt()),
        &map,
        &jsonwebtoken::EncodingKey::from_secret(section.secret.as_bytes()),
    )
    .map_err(TokenError::Sign)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_tokens_verify_with_the_same_section() {
        let section = AuthSection {
            secret: "s3cret".into(),
            ..AuthSection::default()
        };
        let token = mint(
            &section,
            &["user_id=42".into(), "role=admin".into()],
            60,
            1000,
        )
        .unwrap();
        let claims = Verifier::hmac(Algorithm::Hs256, b"s3cret", 0)
            .verify(&token, 1000)
            .unwrap();
        assert_eq!(claims["user_id"], 42);
        assert_eq!(claims["role"], "admin");
        assert_eq!(claims["exp"], 1060);
        assert!(matches!(
            mint(&section, &["nope".into()], 0, 0),
            Err(TokenError::BadClaim(_))
        ));
        let rs = AuthSection {
            algorithm: "RS256".into(),
            ..section
        };
        assert!(matches!(mint(&rs, &[], 0, 0), Err(TokenError::NotHmac(_))));
    }
}
