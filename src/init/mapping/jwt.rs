//! JWT connections: where each identifier's value comes from (a claim, an object built
//! from a claim, a record found by a claim, a query parameter) and the `JWT.decode` call
//! itself (token source, algorithm, key) → `[auth]` in mode `"jwt"`.

use super::super::sym::{JwtCall, Sym, TokenSource};
use super::{Finding, Problem};
use crate::auth::{AuthMode, AuthSection};

/// Where an identifier's value comes from, as ferrocable can read it.
pub(super) enum Source {
    Claim(String),
    Query(String),
}

/// One rule for an identifier's value: `(rule name, conversion)`. The conversion gives the
/// source, the model (for a GlobalID) and an assumption, or `None` when it does not apply.
pub(super) type IdentRule = (
    &'static str,
    fn(&Sym, &[String]) -> Option<(Source, Option<String>, Option<String>)>,
);

/// Identifier sources, tried in order.
pub(super) const IDENTIFIER_RULES: &[IdentRule] = &[
    ("JWT claim", |s, _| match s {
        Sym::Claim(c) => Some((Source::Claim(c.clone()), None, None)),
        _ => None,
    }),
    ("object built from a claim", |s, _| match s {
        Sym::New(model, inner) => match &**inner {
            Sym::Claim(c) => Some((Source::Claim(c.clone()), Some(model.clone()), None)),
            _ => None,
        },
        _ => None,
    }),
    ("record found by a claim", |s, _| match s {
        Sym::Record {
            model,
            column,
            by,
            finder,
            scope: None,
            ..
        } if column == "id" && !model.contains('.') => match &**by {
            Sym::Claim(c) => Some((
                Source::Claim(c.clone()),
                Some(model.clone()),
                Some(format!(
                    "Rails loads the {model} with `{model}.{finder}` on every connection and \
                     refuses ids it cannot find; ferrocable trusts the signed claim `{c}`, so a \
                     deleted {model}'s token keeps working until it expires"
                )),
            )),
            _ => None,
        },
        _ => None,
    }),
    (
        "attribute of the record, also a claim",
        |s, issued| match s {
            Sym::Attr(record, attr) => match &**record {
                Sym::Record { model, by, .. } | Sym::New(model, by)
                    if matches!(**by, Sym::Claim(_)) =>
                {
                    let issued_note = if issued.is_empty() {
                        "the reader found no `JWT.encode` in the app to confirm it".to_string()
                    } else if issued.iter().any(|k| k == attr) {
                        "the app's `JWT.encode` puts it in the token".to_string()
                    } else {
                        return None;
                    };
                    Some((
                        Source::Claim(attr.clone()),
                        None,
                        Some(format!(
                            "Rails reads `{model}#{attr}` from the database; ferrocable reads the \
                         claim `{attr}` instead ({issued_note}), so a change to the column takes \
                         effect when a new token is issued"
                        )),
                    ))
                }
                _ => None,
            },
            _ => None,
        },
    ),
    ("query parameter", |s, _| match s {
        Sym::Token(TokenSource::Query(q)) => Some((Source::Query(q.clone()), None, None)),
        _ => None,
    }),
];

/// `JWT.decode(token, key, verify, options)` → mode, token source, algorithm, key.
pub(super) fn map_jwt(jwt: &JwtCall, section: &mut AuthSection, finding: &mut Finding) {
    section.mode = AuthMode::Jwt;
    finding.rule(&format!(
        "line {}: JWT.decode → auth.mode = \"jwt\"",
        jwt.line
    ));
    match &jwt.token {
        Sym::Token(TokenSource::Query(q)) => {
            section.token_param = q.clone();
            section.accept_bearer_header = false;
            finding.rule(&format!(
                "token from request.params[:{q}] → token_param = \"{q}\", accept_bearer_header = false"
            ));
        }
        Sym::Token(TokenSource::AuthorizationHeader) => {
            section.accept_bearer_header = true;
            finding.rule("token from the Authorization header → accept_bearer_header = true");
            finding.assume(
                "ferrocable also accepts the token as the `token` query parameter (browsers \
                 cannot set headers on a WebSocket)"
                    .into(),
            );
        }
        Sym::Token(TokenSource::Cookie(name, _)) | Sym::Cookie(name, _) => {
            finding.problem(Problem {
                why: format!(
                    "the JWT is read from the cookie `{name}`; ferrocable reads a JWT from the \
                     query or the Authorization header, and cookies only as Rails signs them"
                ),
                remedy: "send the token as ?token= (an app change), or have the connection read \
                         a signed cookie (auth.mode = \"cookie\")"
                    .into(),
            })
        }
        other => finding.problem(Problem {
            why: format!("the token comes from {other}, which ferrocable cannot read"),
            remedy: "send it as a query parameter or an Authorization header".into(),
        }),
    }
    match jwt.algorithms.as_slice() {
        [one] => {
            section.algorithm = one.clone();
            finding.rule(&format!("algorithm {one} → algorithm = \"{one}\""));
        }
        [] => finding
            .assume("JWT.decode names no algorithm; ruby-jwt's default HS256 is assumed".into()),
        [first, ..] => {
            section.algorithm = first.clone();
            finding.assume(format!(
                "JWT.decode accepts {}; ferrocable pins one algorithm: {first}",
                jwt.algorithms.join(", ")
            ));
        }
    }
    if !jwt.verify {
        finding.assume(
            "JWT.decode is called without verification; ferrocable always verifies the \
             signature (stricter)"
                .into(),
        );
    }
    let key = jwt.key.as_str();
    let from_secret_key_base = [
        "Rails.application.secret_key_base",
        "Rails.application.credentials.secret_key_base",
        "Rails.application.secrets.secret_key_base",
        "ENV[\"SECRET_KEY_BASE\"]",
        "ENV.fetch(\"SECRET_KEY_BASE\")",
    ];
    if from_secret_key_base.contains(&key) {
        finding.rule(&format!(
            "key `{key}` → auth.secret from SECRET_KEY_BASE (the raw string, as ruby-jwt uses it)"
        ));
    } else if let Some(var) = key
        .strip_prefix("ENV[\"")
        .or_else(|| key.strip_prefix("ENV.fetch(\""))
        .and_then(|k| k.split('"').next())
    {
        finding.assume(format!(
            "the key is ENV[{var:?}]: run ferrocable with FERROCABLE_AUTH__SECRET=\"${var}\""
        ));
    } else {
        finding.assume(format!(
            "the key is `{key}`: supply its value as FERROCABLE_AUTH__SECRET (or SECRET_KEY_BASE)"
        ));
    }
}
