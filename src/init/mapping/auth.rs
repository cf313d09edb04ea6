//! The connection class → `[auth]` and `[[auth.identifiers]]`, with a verdict.

use super::super::analysis::ConnectionFacts;
use super::super::interp::Effect;
use super::super::models::camelize;
use super::super::sym::{Sym, TokenSource};
use super::cookie::{self, CookieContext, CookieIdentifier, LookupPlan};
use super::jwt::{IDENTIFIER_RULES, Source, map_jwt};
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
    /// The cookie's lookup, which channels may add columns to.
    pub lookup: Option<LookupPlan>,
}

/// What the connection mapping reads besides the connection.
#[derive(Debug, Clone, Copy)]
pub struct AuthContext<'a> {
    /// Keys of `JWT.encode` payloads found in the app.
    pub issued_claims: &'a [String],
    /// The GlobalID app name.
    pub gid_app: &'a str,
    /// The app's configuration and models (cookies, sessions, lookups).
    pub cookies: CookieContext<'a>,
}

/// Maps the connection.
pub fn map(conn: Option<&ConnectionFacts>, ctx: &AuthContext<'_>) -> MappedAuth {
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
    let mut info = IdentifierInfo {
        issued: ctx.issued_claims.to_vec(),
        ..IdentifierInfo::default()
    };
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
            lookup: None,
        };
    };
    if accepted.len() > 1 {
        finding.assume(format!(
            "`connect` accepts on {} paths; the identifiers come from the first",
            accepted.len()
        ));
    }
    let mut uses_claims = false;
    let mut cookies: Vec<CookieIdentifier> = Vec::new();
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
        if let Some(read) = cookie::identify(value, &ctx.cookies) {
            match read {
                Ok(c) => {
                    finding.rule(&format!("line {line}: {name} = {value}: {}", c.rule));
                    for a in &c.assumptions {
                        finding.assume(a.clone());
                    }
                    let model = c.model.clone().or_else(|| model_of(name));
                    info.names.push(name.clone());
                    if let Some(m) = &model {
                        info.models.push(name.clone());
                        info.model_of.insert(name.clone(), m.clone());
                    }
                    info.id_claim.insert(name.clone(), c.claim.clone());
                    section.identifiers.push(IdentifierSection {
                        name: name.clone(),
                        claim: Some(c.claim.clone()),
                        model,
                        ..IdentifierSection::default()
                    });
                    cookies.push(c);
                }
                Err(p) => {
                    info.unmapped.push(name.clone());
                    finding.problem(Problem {
                        why: format!("line {line}: {name} = {value}: {}", p.why),
                        remedy: p.remedy,
                    });
                }
            }
            continue;
        }
        let mapped = IDENTIFIER_RULES
            .iter()
            .find_map(|(rule, f)| f(value, ctx.issued_claims).map(|m| (rule, m)));
        match mapped {
            Some((rule, (source, model, assumption))) => {
                let mut ident = IdentifierSection {
                    name: name.clone(),
                    ..IdentifierSection::default()
                };
                match source {
                    Source::Claim(c) => {
                        uses_claims = true;
                        info.id_claim.insert(name.clone(), c.clone());
                        ident.claim = Some(c);
                    }
                    Source::Query(q) => ident.query = Some(q),
                }
                let model = model.or_else(|| model_of(name));
                if let Some(m) = &model {
                    ident.gid = Some(format!("gid://{}/{m}/{{}}", ctx.gid_app));
                    info.models.push(name.clone());
                    info.model_of.insert(name.clone(), m.clone());
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
    let lookup = if cookies.is_empty() {
        None
    } else {
        cookie_mode(&cookies, conn, &mut section, &mut info, &mut finding)
    };
    match &conn.jwt {
        _ if section.mode == AuthMode::Cookie => {}
        Some(jwt) => map_jwt(jwt, &mut section, &mut finding),
        None if uses_claims => finding.problem(Problem {
            why: "identifiers read claims but the reader found no `JWT.decode`".into(),
            remedy: "check the connection class".into(),
        }),
        None if section.identifiers.len() == conn.identifiers.len() && cookies.is_empty() => {
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
                "the `rescue` on line {line} rejects on errors; ferrocable refuses a bad {} too",
                if section.mode == AuthMode::Cookie {
                    "cookie"
                } else {
                    "token"
                }
            )),
            _ => {}
        }
    }
    finding.settle();
    if finding.verdict == super::Verdict::NotExpressible && section.mode == AuthMode::Cookie {
        // Fail closed: a half-mapped cookie profile is not written as one that accepts.
        section.mode = AuthMode::Jwt;
        section.cookie = Default::default();
        section.lookup = Default::default();
        return MappedAuth {
            section,
            finding,
            info,
            lookup: None,
        };
    }
    MappedAuth {
        section,
        finding,
        info,
        lookup,
    }
}

/// Identifiers read from cookies: one cookie, one value out of it, one row.
fn cookie_mode(
    cookies: &[CookieIdentifier],
    conn: &ConnectionFacts,
    section: &mut AuthSection,
    info: &mut IdentifierInfo,
    finding: &mut Finding,
) -> Option<LookupPlan> {
    if conn.jwt.is_some() {
        finding.problem(Problem {
            why: "`connect` reads both a JWT and the app's cookies".into(),
            remedy: "ferrocable authenticates one way per profile: keep one of them".into(),
        });
        return None;
    }
    let first = &cookies[0];
    let mut lookup = first.lookup.clone();
    for c in &cookies[1..] {
        let same_row = match (&lookup, &c.lookup) {
            (Some(a), Some(b)) => a.chain == b.chain && a.column == b.column,
            (None, None) => true,
            _ => false,
        };
        if c.cookie != first.cookie || !same_row {
            finding.problem(Problem {
                why: "the identifiers come from different cookies, keys or rows; ferrocable \
                      takes one value out of one cookie (and looks up one row)"
                    .into(),
                remedy: "identify the connection by one of them, or keep it on Rails".into(),
            });
            return None;
        }
        if let (Some(l), Some(b)) = (lookup.as_mut(), &c.lookup) {
            for col in &b.columns {
                if !l.columns.contains(col) {
                    l.columns.push(col.clone());
                }
            }
        }
    }
    section.mode = AuthMode::Cookie;
    section.cookie = first.cookie.clone();
    info.from_row = lookup.is_some();
    finding.rule(&format!(
        "→ auth.mode = \"cookie\": [auth.cookie] verified with SECRET_KEY_BASE as Rails verifies \
         it{}",
        if first.cookie.load_defaults.is_empty() {
            String::new()
        } else {
            format!(
                " (load_defaults = {:?}, from config.load_defaults)",
                first.cookie.load_defaults
            )
        }
    ));
    if let Some(l) = &lookup {
        section.lookup.query = l.query();
        finding.rule(
            "no row → refused, as Rails refuses a connection whose lookup finds nothing \
             (database.url from DATABASE_URL)",
        );
    }
    lookup
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
        lookup: None,
    }
}

/// Conditions in `connect` that ferrocable's own checks already enforce: the token's
/// presence and validity, and the identifiers' presence.
fn covered_by_verification(cond: &Sym) -> bool {
    match cond {
        Sym::Not(inner) | Sym::Present(inner) => covered_by_verification(inner),
        Sym::And(a, b) | Sym::Or(a, b) => covered_by_verification(a) && covered_by_verification(b),
        Sym::Token(_) | Sym::Claims(_) | Sym::Claim(_) | Sym::JwtDecoded(_) => true,
        // The cookie's presence and validity, which the cookie check requires.
        Sym::Cookie(_, kind) => *kind != super::super::sym::CookieKind::Plain,
        Sym::SessionValue(_) | Sym::SessionId | Sym::WardenUser(_) => true,
        // `if user && user.restaurant_id`, `if session = Session.find_by(token:)`: the
        // identifiers' presence (and the lookup's row), which ferrocable requires
        Sym::Record { keys, .. } => keys.iter().all(|(_, v)| covered_by_verification(v)),
        Sym::New(_, by) | Sym::Attr(by, _) => covered_by_verification(by),
        Sym::Unknown(src) => src.contains("is_a?(Hash)"),
        _ => false,
    }
}

fn identifier_problem(name: &str, value: &Sym, line: u32) -> Problem {
    match value {
        Sym::Attr(inner, _) | Sym::Record { by: inner, .. } if mentions_cookie(inner) => Problem {
            why: format!(
                "line {line}: {name} = {value}: found through a cookie in a way the reader does not map"
            ),
            remedy: "write [auth.cookie] and [auth.lookup] by hand (README: cookie-authenticated \
                     apps), or keep the connection on Rails"
                .into(),
        },
        Sym::Attr(..) | Sym::Record { .. } => Problem {
            why: format!(
                "line {line}: {name} = {value}: needs a database lookup from something other than a cookie"
            ),
            remedy: "put the value in the token as a claim, or look it up from a signed cookie \
                     (auth.mode = \"cookie\" with [auth.lookup])"
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
    Some(camelize(base))
}
