//! The rule tables: how a stream name, a subscribe condition and an identifier's source
//! become ferrocable configuration. Each table is a list of entries tried in order; a new
//! capability of the server (a cookie source, a database predicate, a signed-stream kind) is
//! one more entry, and what no entry matches is reported as not expressible.

use crate::channels::ChannelSection;

use super::super::sym::Sym;

/// What the mapping knows about the connection while mapping channels.
#[derive(Debug, Clone, Default)]
pub struct IdentifierInfo {
    /// Identifier names, in `identified_by` order.
    pub names: Vec<String>,
    /// Identifiers whose value stands for a record's id (`current_user`, a gid template).
    pub models: Vec<String>,
    /// Identifiers the connection declares but the mapping could not express.
    pub unmapped: Vec<String>,
    /// The model of each record identifier (`current_user` → `User`).
    pub model_of: std::collections::BTreeMap<String, String>,
    /// The claim each identifier's value is read from (`id`, a column of the cookie's
    /// lookup row; `user_id`, a JWT claim).
    pub id_claim: std::collections::BTreeMap<String, String>,
    /// Whether the identifiers' records are rows of the cookie's lookup (so any column of
    /// them can be selected and read as a claim).
    pub from_row: bool,
    /// Keys of the app's `JWT.encode` payloads (attributes a JWT carries).
    pub issued: Vec<String>,
}

impl IdentifierInfo {
    /// Where `identifier.attribute` is read from: a claim (a lookup column, or a JWT claim
    /// the app issues), with an assumption when it is not the identifier's own value.
    pub fn attribute(
        &self,
        identifier: &str,
        attribute: &str,
    ) -> Result<(String, Option<String>), String> {
        if !self.names.iter().any(|n| n == identifier) {
            return Err(format!(
                "it uses the identifier {identifier}, which the connection's mapping could not express"
            ));
        }
        let id_claim = self.id_claim.get(identifier);
        if attribute == "id"
            && self.models.iter().any(|m| m == identifier)
            && let Some(c) = id_claim
        {
            return Ok((format!("claims.{c}"), None));
        }
        if self.from_row {
            return Ok((
                format!("claims.{attribute}"),
                Some(format!(
                    "{identifier}.{attribute} is taken to be a column of the connection's lookup row (not a method the model computes); it is added to [auth.lookup]"
                )),
            ));
        }
        if self.issued.iter().any(|k| k == attribute) {
            return Ok((
                format!("claims.{attribute}"),
                Some(format!(
                    "{identifier}.{attribute} is read from the JWT's claim {attribute:?} (the app's JWT.encode puts it in); Rails reads the record"
                )),
            ));
        }
        Err(format!(
            "it reads `{identifier}.{attribute}`, an attribute of the connection's record, which ferrocable does not have (only the identifier's own value, or columns of a cookie's lookup row)"
        ))
    }
}

/// A stream name as a ferrocable template, or why it cannot be one.
pub type Templated = Result<(String, Vec<String>), String>;

/// One rule for a piece of a stream name: `(rule name, conversion)`.
type PartRule = (
    &'static str,
    fn(&Sym, &IdentifierInfo) -> Option<(String, Option<String>)>,
);

/// Pieces of stream names, tried in order.
pub const STREAM_PARTS: &[PartRule] = &[
    ("literal text", |s, _| {
        let t = s.lit()?;
        (!t.contains(['{', '}'])).then(|| (t.to_string(), None))
    }),
    ("subscription param", |s, _| match s {
        Sym::Param(p) => Some((format!("{{params.{p}}}"), None)),
        _ => None,
    }),
    ("connection identifier", |s, info| match s {
        Sym::Identifier(n) if info.names.contains(n) => Some((format!("{{{n}}}"), None)),
        _ => None,
    }),
    ("identifier's record id", |s, info| match s {
        Sym::Attr(inner, attr) if attr == "id" => match &**inner {
            Sym::Identifier(n) if info.models.contains(n) => Some((
                format!("{{{n}}}"),
                Some(format!(
                    "`{n}.id` is {n}'s value: the connection identifies {n} by its record id"
                )),
            )),
            _ => None,
        },
        _ => None,
    }),
    ("JWT claim", |s, _| match s {
        Sym::Claim(c) => Some((format!("{{claims.{c}}}"), None)),
        _ => None,
    }),
    ("attribute of the identifier's record", |s, info| match s {
        Sym::Attr(inner, attr) => match &**inner {
            Sym::Identifier(n) => info
                .attribute(n, attr)
                .ok()
                .map(|(claim, a)| (format!("{{{claim}}}"), a)),
            _ => None,
        },
        _ => None,
    }),
];

/// A stream name (`stream_from` argument) as a template.
pub fn template(sym: &Sym, info: &IdentifierInfo) -> Templated {
    template_with(sym, info, &|_| None)
}

/// A piece of a stream name the caller knows (the channel's `authorize` row).
pub type Extra<'a> = dyn Fn(&Sym) -> Option<(String, Option<String>)> + 'a;

/// [`template`], with `extra` tried before the table (`room.id` → `{row.id}`).
pub fn template_with(sym: &Sym, info: &IdentifierInfo, extra: &Extra<'_>) -> Templated {
    let parts: Vec<&Sym> = match sym {
        Sym::Concat(parts) => parts.iter().collect(),
        one => vec![one],
    };
    let mut text = String::new();
    let mut assumptions = Vec::new();
    for part in parts {
        let mapped =
            extra(part).or_else(|| STREAM_PARTS.iter().find_map(|(_, rule)| rule(part, info)));
        match mapped {
            Some((t, assumption)) => {
                text.push_str(&t);
                assumptions.extend(assumption);
            }
            None => return Err(why_not(part, info)),
        }
    }
    if text.is_empty() {
        return Err("the stream name is empty".into());
    }
    Ok((text, assumptions))
}

/// Why a value cannot be part of a stream name, in the user's terms.
pub fn why_not(part: &Sym, info: &IdentifierInfo) -> String {
    let identifier = match part {
        Sym::Identifier(n) => Some(n),
        Sym::Attr(inner, _) => match &**inner {
            Sym::Identifier(n) => Some(n),
            _ => None,
        },
        _ => None,
    };
    if let Some(n) = identifier.filter(|n| !info.names.contains(n)) {
        return format!(
            "it uses the identifier {n}, which the connection's mapping could not express"
        );
    }
    match part {
        Sym::Record { .. } => format!("it needs a database lookup ({part})"),
        Sym::Attr(inner, attr) => match &**inner {
            Sym::Identifier(n) => info
                .attribute(n, attr)
                .err()
                .unwrap_or_else(|| format!("it reads `{n}.{attr}`")),
            _ => format!("it reads `{part}`, which ferrocable cannot compute"),
        },
        Sym::SignedStreamName => {
            "it is a Turbo signed stream name (`verified_stream_name_from_params`)".into()
        }
        Sym::Unknown(src) => format!("the reader does not understand `{src}`"),
        other => format!("it uses {other}, which ferrocable cannot compute"),
    }
}

/// A condition under which the subscription is accepted, turned into channel rules.
#[derive(Debug, Clone, PartialEq)]
pub enum Applied {
    /// Changed the section (rule name, assumption if any).
    Rule(&'static str, Option<String>),
    /// Already guaranteed (rule name and why).
    Covered(&'static str, String),
}

/// One rule for an accepting condition: `(rule name, conversion)`.
type CondRule = (
    &'static str,
    fn(&Sym, &IdentifierInfo, &[String], &mut ChannelSection) -> Option<Applied>,
);

/// Accepting conditions, tried in order (after `!`, `&&` and `||` are taken apart).
pub const CONDITIONS: &[CondRule] = &[
    ("signed name verified", |c, _, _, section| {
        let present = match c {
            Sym::SignedStreamName => false,
            Sym::Present(inner) if **inner == Sym::SignedStreamName => true,
            _ => return None,
        };
        let signed = section.signed_stream.as_mut()?;
        if present {
            signed.reject_blank_names = Some(true);
            Some(Applied::Rule(
                "signed_stream.reject_blank_names = true",
                None,
            ))
        } else {
            Some(Applied::Covered(
                "signed name verified",
                "a name that does not verify is rejected".into(),
            ))
        }
    }),
    ("signed name pattern (accept/refuse)", |c, _, _, section| {
        let (pattern, positive) = super::signed::pattern(c)?;
        let signed = section.signed_stream.as_mut()?;
        if positive {
            // Two tests that must both hold are not one `accept` list (any of which may).
            if !signed.accept.is_empty() && !signed.accept.contains(&pattern) {
                return None;
            }
            push_unique(&mut signed.accept, &pattern);
            Some(Applied::Rule("signed_stream.accept", None))
        } else {
            push_unique(&mut signed.refuse, &pattern);
            Some(Applied::Rule("signed_stream.refuse", None))
        }
    }),
    (
        "param present (require_params)",
        |c, _, _, section| match c {
            Sym::Present(inner) => match &**inner {
                Sym::Param(p) => {
                    push_unique(&mut section.require_params, p);
                    Some(Applied::Rule("require_params", None))
                }
                _ => None,
            },
            Sym::Param(p) => {
                push_unique(&mut section.require_params, p);
                Some(Applied::Rule(
                    "require_params",
                    Some(format!(
                        "`params[:{p}]` is tested for truth; ferrocable requires it present (an empty \
                     string or whitespace is rejected too, as `present?` would)"
                    )),
                ))
            }
            Sym::HasKey(p) if section.params_match.contains_key(p) => Some(Applied::Covered(
                "param present",
                format!("params_match on {p} rejects a missing param"),
            )),
            Sym::HasKey(p) => {
                push_unique(&mut section.require_params, p);
                Some(Applied::Rule(
                    "require_params",
                    Some(format!(
                        "`params.key?(:{p})` accepts an empty value; ferrocable requires a present one"
                    )),
                ))
            }
            _ => None,
        },
    ),
    ("identifier present", |c, info, used, _| {
        let name = match c {
            Sym::Present(inner) => match &**inner {
                Sym::Identifier(n) => n,
                Sym::Attr(i, a) if a == "id" => match &**i {
                    Sym::Identifier(n) => n,
                    _ => return None,
                },
                _ => return None,
            },
            Sym::Identifier(n) => n,
            _ => return None,
        };
        if !info.names.contains(name) {
            return None;
        }
        Some(if used.iter().any(|u| u == name) {
            Applied::Covered(
                "identifier present",
                format!("a stream template uses {{{name}}}, which rejects a blank value"),
            )
        } else {
            Applied::Covered(
                "identifier present",
                format!("{name} is required when connecting (identifiers are required by default)"),
            )
        })
    }),
    (
        "param equals identifier (params_match)",
        |c, info, _, section| {
            let Sym::Eq(a, b) = c else { return None };
            let ((Sym::Param(p), Sym::Identifier(n)) | (Sym::Identifier(n), Sym::Param(p))) =
                (&**a, &**b)
            else {
                return None;
            };
            if !info.names.contains(n) {
                return None;
            }
            section.params_match.insert(p.clone(), n.clone());
            Some(Applied::Rule("params_match", None))
        },
    ),
    ("claim in a list (claims_in)", |c, _, _, section| {
        let (claim, values) = match c {
            Sym::Includes(list, item) => match (&**list, &**item) {
                (Sym::List(items), Sym::Claim(claim)) => {
                    let values: Option<Vec<String>> =
                        items.iter().map(|i| i.lit().map(String::from)).collect();
                    (claim.clone(), values?)
                }
                _ => return None,
            },
            Sym::Eq(a, b) => match (&**a, &**b) {
                (Sym::Claim(claim), lit) | (lit, Sym::Claim(claim)) => {
                    (claim.clone(), vec![lit.lit()?.to_string()])
                }
                _ => return None,
            },
            _ => return None,
        };
        section.claims_in.insert(claim, values);
        Some(Applied::Rule("claims_in", None))
    }),
];

/// Splits a condition taken with `outcome` into conditions that must all be true.
pub fn conjuncts(cond: &Sym, outcome: bool) -> Vec<Sym> {
    match (cond, outcome) {
        (Sym::Not(inner), o) => conjuncts(inner, !o),
        (Sym::And(a, b), true) => {
            let mut v = conjuncts(a, true);
            v.extend(conjuncts(b, true));
            v
        }
        (Sym::Or(a, b), false) => {
            let mut v = conjuncts(a, false);
            v.extend(conjuncts(b, false));
            v
        }
        (c, true) => vec![c.clone()],
        (c, false) => vec![Sym::Not(Box::new(c.clone()))],
    }
}

/// Why an accepting condition cannot be a channel rule, and what the user can do.
pub fn unmapped_condition(cond: &Sym, info: &IdentifierInfo) -> (String, String) {
    if let Some(n) = info.unmapped.iter().find(|n| mentions(cond, n)) {
        return (
            format!(
                "the condition `{cond}` uses the identifier {n}, which the connection's mapping could not express"
            ),
            "see the connection's verdict: once it maps, this condition can too".into(),
        );
    }
    let lookup = |c: &Sym| {
        matches!(c, Sym::Record { .. })
            || matches!(c, Sym::Present(i) if matches!(**i, Sym::Record { .. }))
    };
    if lookup(cond) || cond.to_string().contains(".find") {
        (
            format!(
                "the subscription is authorized by a database lookup the reader does not translate: `{cond}`"
            ),
            "write it as the channel's [authorize] query by hand (one per channel: join a \
             second check into it), or keep this channel on Rails"
                .into(),
        )
    } else if cond.has_unknown() {
        (
            format!("the reader does not understand the condition `{cond}`"),
            "rewrite the check in terms of params, identifiers or JWT claims, or keep this \
             channel on Rails"
                .into(),
        )
    } else {
        (
            format!("no ferrocable rule expresses the condition `{cond}`"),
            "move the check into the token (a claim) and use claims_in, or keep this channel \
             on Rails"
                .into(),
        )
    }
}

/// Whether a condition reads the identifier `name`.
fn mentions(cond: &Sym, name: &str) -> bool {
    match cond {
        Sym::Identifier(n) => n == name,
        Sym::Not(i) | Sym::Present(i) | Sym::Attr(i, _) => mentions(i, name),
        Sym::Eq(a, b) | Sym::Includes(a, b) | Sym::And(a, b) | Sym::Or(a, b) => {
            mentions(a, name) || mentions(b, name)
        }
        _ => false,
    }
}

fn push_unique(list: &mut Vec<String>, item: &str) {
    if !list.iter().any(|i| i == item) {
        list.push(item.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> IdentifierInfo {
        IdentifierInfo {
            names: vec!["current_user".into(), "restaurant_id".into()],
            models: vec!["current_user".into()],
            unmapped: vec!["session_id".into()],
            ..IdentifierInfo::default()
        }
    }

    #[test]
    fn templates_from_the_common_shapes() {
        let s = Sym::Concat(vec![
            Sym::Lit(Some("user_".into())),
            Sym::Attr(
                Box::new(Sym::Identifier("current_user".into())),
                "id".into(),
            ),
            Sym::Lit(Some("_".into())),
            Sym::Param("room".into()),
        ]);
        let (t, assumptions) = template(&s, &info()).unwrap();
        assert_eq!(t, "user_{current_user}_{params.room}");
        assert_eq!(assumptions.len(), 1);
        let bad = Sym::Attr(
            Box::new(Sym::Identifier("current_user".into())),
            "account_id".into(),
        );
        assert!(
            template(&bad, &info())
                .unwrap_err()
                .contains("current_user.account_id")
        );
    }

    #[test]
    fn conditions_become_rules() {
        let mut section = ChannelSection::default();
        let cond = Sym::And(
            Box::new(Sym::HasKey("restaurant_id".into())),
            Box::new(Sym::Eq(
                Box::new(Sym::Param("restaurant_id".into())),
                Box::new(Sym::Identifier("restaurant_id".into())),
            )),
        );
        let parts = conjuncts(&cond, true);
        assert_eq!(parts.len(), 2);
        for p in &parts {
            assert!(
                CONDITIONS
                    .iter()
                    .any(|(_, r)| r(p, &info(), &[], &mut section).is_some())
            );
        }
        assert_eq!(section.params_match["restaurant_id"], "restaurant_id");
        let roles = Sym::Includes(
            Box::new(Sym::List(vec![
                Sym::Lit(Some("admin".into())),
                Sym::Lit(Some("staff".into())),
            ])),
            Box::new(Sym::Claim("role".into())),
        );
        let reject_unless = conjuncts(&Sym::Not(Box::new(roles)), false);
        assert!(
            CONDITIONS
                .iter()
                .any(|(_, r)| r(&reject_unless[0], &info(), &[], &mut section).is_some())
        );
        assert_eq!(section.claims_in["role"], ["admin", "staff"]);
        let (why, _) = unmapped_condition(
            &Sym::Present(Box::new(Sym::Identifier("session_id".into()))),
            &info(),
        );
        assert!(why.contains("could not express"), "{why}");
    }
}
