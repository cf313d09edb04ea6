//! The connection class → `[auth]` and `[[auth.identifiers]]`, with a verdict.

use super::super::analysis::ConnectionFacts;
use super::super::interp::Effect;
use super::super::sym::{JwtCall, Sym, TokenSource};
use super::rules::IdentifierInfo;
use super::{Finding, Problem};
use crate::auth::{AuthMode, AuthSection, IdentifierSection};

/// What the connection maps to.
#[derive(Debug, Clone)]
pub struct MappedAuth {
    /// The `[auth]` section.
    pub section: AuthSection,
    /// The finding for the report.
    pub finding: Finding,
    /// What channels may use.
    pub info: IdentifierInfo,
}

/// Where an identifier's value comes from, as ferrocable can read it.
enum Source {
    Claim(String),
    Query(String),
}

/// One rule for an identifier's value: `(rule name, conversion)`. The conversion gives the
/// source, the model (for a GlobalID) and an assumption, or `None` when it does not apply.
type IdentRule = (
    &'static str,
    fn(&Sym, &[String]) -> Option<(Source, Option<String>, Option<String>)>,
);

/// Identifier sources, tried in order.
const IDENTIFIER_RULES: &[IdentRule] = &[
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

/// Maps the connection. `issued_claims`: keys of `JWT.encode` payloads found in the app;
/// `gid_app`: the GlobalID app name.
pub fn map(conn: Option<&ConnectionFacts>, issued_claims: &[String], gid_app: &str) -> MappedAuth {
    let Some(conn) = conn else {
        let mut finding = Finding::new("ApplicationCable::Connection", "(none)");
        finding.rule(
            "no connection class: Rails uses ActionCable::Connection::Base, which accepts \
             everyone → auth.mode = \"none\"",
        );
        finding.settle();
        return open_to_everyone(finding);
    };
    let line = if conn.connect_line > 0 {
        conn.connect_line
    } else {
        conn.line
    };
    let mut finding = Finding::new(&conn.name, &format!("{}:{line}", conn.file));
    let Some(paths) = &conn.connect else {
        finding.rule(
            "no `connect`: Rails accepts every connection → auth.mode = \"none\" with \
             allow_unauthenticated_public = true",
        );
        if !conn.identifiers.is_empty() {
            finding.assume(format!(
                "identified_by {} without `connect`: every identifier is nil in Rails; none is \
                 declared here",
                conn.identifiers.join(", ")
            ));
        }
        finding.settle();
        return open_to_everyone(finding);
    };
    let accepted: Vec<_> = paths.iter().filter(|p| !p.rejected).collect();
    let mut section = AuthSection::default();
    let mut info = IdentifierInfo::default();
    let Some(path) = accepted.first() else {
        finding.problem(Problem {
            why: "every path through `connect` rejects the connection".into(),
            remedy: "check the connection class; the reader may have misread it".into(),
        });
        section.mode = AuthMode::Jwt;
        finding.settle();
        return MappedAuth {
            section,
            finding,
            info,
        };
    };
    if accepted.len() > 1 {
        finding.assume(format!(
            "`connect` accepts on {} paths; the identifiers come from the first",
            accepted.len()
        ));
    }
    let mut uses_claims = false;
    for name in &conn.identifiers {
        let value = path.effects.iter().rev().find_map(|e| match e {
            Effect::Identify(n, v, line) if n == name => Some((v, *line)),
            _ => None,
        });
        let Some((value, line)) = value else {
            finding.problem(Problem {
                why: format!("`connect` never sets {name}"),
                remedy: "set it in connect, or drop it from identified_by".into(),
            });
            continue;
        };
        let mapped = IDENTIFIER_RULES
            .iter()
            .find_map(|(rule, f)| f(value, issued_claims).map(|m| (rule, m)));
        match mapped {
            Some((rule, (source, model, assumption))) => {
                let mut ident = IdentifierSection {
                    name: name.clone(),
                    ..IdentifierSection::default()
                };
                match source {
                    Source::Claim(c) => {
                        uses_claims = true;
                        ident.claim = Some(c);
                    }
                    Source::Query(q) => ident.query = Some(q),
                }
                let model = model.or_else(|| model_of(name));
                if let Some(m) = &model {
                    ident.gid = Some(format!("gid://{gid_app}/{m}/{{}}"));
                    info.models.push(name.clone());
                }
                info.names.push(name.clone());
                finding.rule(&format!("line {line}: {name} = {value} → {rule}"));
                if let Some(a) = assumption {
                    finding.assume(a);
                }
                section.identifiers.push(ident);
            }
            None => {
                info.unmapped.push(name.clone());
                finding.problem(identifier_problem(name, value, line));
            }
        }
    }
    match &conn.jwt {
        Some(jwt) => map_jwt(jwt, &mut section, &mut finding),
        None if uses_claims => finding.problem(Problem {
            why: "identifiers read claims but the reader found no `JWT.decode`".into(),
            remedy: "check the connection class".into(),
        }),
        None if section.identifiers.len() == conn.identifiers.len() => {
            section.mode = AuthMode::None;
            section.allow_unauthenticated_public = true;
            finding.rule(
                "no token is verified: Rails accepts anyone who sends the identifiers → \
                 auth.mode = \"none\" (allow_unauthenticated_public = true)",
            );
        }
        None => {
            // Fail closed: nobody has a token until the profile is finished.
            section.mode = AuthMode::Jwt;
        }
    }
    for (cond, outcome, line) in &path.conds {
        if !covered_by_verification(cond) {
            finding.assume(format!(
                "the check `{cond}` = {outcome} (line {line}) in `connect` is not reproduced"
            ));
        }
    }
    for e in &path.effects {
        match e {
            Effect::SideEffect(what, line) => finding.assume(format!(
                "`{what}` (line {line}) in `connect` is not reproduced"
            )),
            Effect::Unknown(what, line) => finding.problem(Problem {
                why: format!("the reader does not understand `{what}` (line {line}) in `connect`"),
                remedy: "check the connection class by hand".into(),
            }),
            Effect::Logging(_) => finding.ignore("logging"),
            Effect::Rescue(_, line) => finding.rule(&format!(
                "the `rescue` on line {line} rejects on errors; ferrocable refuses a bad token too"
            )),
            _ => {}
        }
    }
    finding.settle();
    MappedAuth {
        section,
        finding,
        info,
    }
}

fn open_to_everyone(finding: Finding) -> MappedAuth {
    MappedAuth {
        section: AuthSection {
            mode: AuthMode::None,
            allow_unauthenticated_public: true,
            ..AuthSection::default()
        },
        finding,
        info: IdentifierInfo::default(),
    }
}

fn map_jwt(jwt: &JwtCall, section: &mut AuthSection, finding: &mut Finding) {
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
                why: format!("the token is read from the cookie `{name}`"),
                remedy: "cookie authentication comes with issue 10; until then clients must send \
                         the token as ?token=, an app change"
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

/// Conditions in `connect` that ferrocable's own checks already enforce: the token's
/// presence and validity, and the identifiers' presence.
fn covered_by_verification(cond: &Sym) -> bool {
    match cond {
        Sym::Not(inner) | Sym::Present(inner) => covered_by_verification(inner),
        Sym::And(a, b) | Sym::Or(a, b) => covered_by_verification(a) && covered_by_verification(b),
        Sym::Token(_) | Sym::Claims(_) | Sym::Claim(_) | Sym::JwtDecoded(_) => true,
        // `if user && user.restaurant_id`: the identifiers' presence, which ferrocable requires
        Sym::Record { by, .. } | Sym::New(_, by) | Sym::Attr(by, _) => covered_by_verification(by),
        Sym::Unknown(src) => src.contains("is_a?(Hash)"),
        _ => false,
    }
}

fn identifier_problem(name: &str, value: &Sym, line: u32) -> Problem {
    let cookie_remedy = "cookie authentication with a database lookup comes with issue 10; until \
                         then the app would have to hand clients a JWT (an app change), or keep \
                         the connection on Rails";
    match value {
        Sym::Attr(inner, _) | Sym::Record { by: inner, .. } if mentions_cookie(inner) => Problem {
            why: format!("line {line}: {name} = {value}: found through a cookie"),
            remedy: cookie_remedy.into(),
        },
        Sym::WardenUser(_) | Sym::SessionValue(_) | Sym::SessionId => Problem {
            why: format!("line {line}: {name} = {value}: read from the Rails session"),
            remedy: cookie_remedy.into(),
        },
        Sym::Attr(..) | Sym::Record { .. } => Problem {
            why: format!("line {line}: {name} = {value}: needs a database lookup"),
            remedy: "database identity lookups come with issue 10; or put the value in the \
                     token as a claim"
                .into(),
        },
        _ => Problem {
            why: format!("line {line}: {name} = {value}, which ferrocable cannot compute"),
            remedy: "derive it from a JWT claim or a query parameter".into(),
        },
    }
}

fn mentions_cookie(s: &Sym) -> bool {
    match s {
        Sym::Cookie(..) | Sym::Token(TokenSource::Cookie(..)) => true,
        Sym::Record { model, by, .. } => model.contains("cookies") || mentions_cookie(by),
        Sym::Attr(by, _) | Sym::New(_, by) => mentions_cookie(by),
        Sym::Unknown(src) => src.contains("cookies"),
        _ => false,
    }
}

/// `current_user` → `User`, `current_account` → `Account`: identifiers named after a model.
fn model_of(identifier: &str) -> Option<String> {
    let base = identifier.strip_prefix("current_").unwrap_or(identifier);
    if base.ends_with("_id") || base == "id" || base.ends_with("uuid") || base.ends_with("token") {
        return None;
    }
    if !identifier.starts_with("current_") {
        return None;
    }
    Some(
        base.split('_')
            .map(|w| {
                let mut c = w.chars();
                c.next()
                    .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                    .unwrap_or_default()
            })
            .collect(),
    )
}
