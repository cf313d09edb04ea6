//! Tests of a verified signed stream name → `accept` and `refuse` patterns: Campfire's
//! `stream_name.split(":", 2).second == "messages"` is the pattern `/^[^:]*:messages$/`, and a
//! module prepended to `Turbo::StreamsChannel` that rejects such names becomes
//! `[turbo] refuse`. Patterns are written as ferrocable reads them: `/regex/`.

use super::super::interp::{Effect, Path};
use super::super::sym::{NamePart, Sym, TextTest};
use super::rules::conjuncts;

/// The regex for a test of the verified name, and whether the name must match it (`true`)
/// or must not (`false`). `None` when the condition is not such a test.
pub fn pattern(cond: &Sym) -> Option<(String, bool)> {
    if let Sym::Not(inner) = cond {
        return pattern(inner).map(|(p, positive)| (p, !positive));
    }
    let (part, test, text) = match cond {
        Sym::TextTest(inner, test, text) => (&**inner, Some(*test), text.as_str()),
        Sym::Eq(a, b) => match (&**a, &**b) {
            (p @ (Sym::SignedStreamName | Sym::NamePart(_)), Sym::Lit(Some(t)))
            | (Sym::Lit(Some(t)), p @ (Sym::SignedStreamName | Sym::NamePart(_))) => {
                (p, None, t.as_str())
            }
            _ => return None,
        },
        _ => return None,
    };
    let e = regex::escape(text);
    let colon = text.contains(':');
    let regex = match (part, test) {
        (Sym::SignedStreamName, None) => format!("^{e}$"),
        (Sym::SignedStreamName, Some(TextTest::EndsWith)) => format!("{e}$"),
        (Sym::SignedStreamName, Some(TextTest::StartsWith)) => format!("^{e}"),
        (Sym::SignedStreamName, Some(TextTest::Contains)) => e,
        (Sym::NamePart(NamePart::Rest), None) => format!("^[^:]*:{e}$"),
        (Sym::NamePart(NamePart::Rest), Some(TextTest::EndsWith)) => format!("^[^:]*:.*{e}$"),
        (Sym::NamePart(NamePart::Rest), Some(TextTest::StartsWith)) => format!("^[^:]*:{e}"),
        (Sym::NamePart(NamePart::Rest), Some(TextTest::Contains)) => format!("^[^:]*:.*{e}"),
        // The first and last parts hold no ':'; a text with one never matches them.
        (Sym::NamePart(_), _) if colon => return None,
        (Sym::NamePart(NamePart::First), None) => format!("^{e}(:|$)"),
        (Sym::NamePart(NamePart::First), Some(TextTest::EndsWith)) => format!("^[^:]*{e}(:|$)"),
        (Sym::NamePart(NamePart::First), Some(TextTest::StartsWith)) => format!("^{e}"),
        (Sym::NamePart(NamePart::First), Some(TextTest::Contains)) => format!("^[^:]*{e}"),
        (Sym::NamePart(NamePart::Last), None) => format!("(^|:){e}$"),
        (Sym::NamePart(NamePart::Last), Some(TextTest::EndsWith)) => format!("{e}$"),
        (Sym::NamePart(NamePart::Last), Some(TextTest::StartsWith)) => format!("(^|:){e}[^:]*$"),
        (Sym::NamePart(NamePart::Last), Some(TextTest::Contains)) => format!("{e}[^:]*$"),
        _ => return None,
    };
    Some((format!("/{regex}/"), true))
}

/// What a module prepended to (or included in) `Turbo::StreamsChannel` turns away, read from
/// every path through its `subscribed`: the names on which it rejects, as patterns, when
/// every other path only calls `super` (the stock behaviour). `Err` says why not.
pub fn refused_by_guard(paths: &[Path]) -> Result<Vec<String>, String> {
    let mut refuse = Vec::new();
    for p in paths {
        if p.rejected {
            let mut found = None;
            for (cond, outcome, _) in &p.conds {
                for c in conjuncts(cond, *outcome) {
                    if c == Sym::SignedStreamName
                        || matches!(&c, Sym::Present(i) if **i == Sym::SignedStreamName)
                    {
                        continue;
                    }
                    match pattern(&c) {
                        Some((regex, true)) if found.is_none() => found = Some(regex),
                        _ => {
                            return Err(format!(
                                "it rejects on `{c}`, which is not a test of the name alone"
                            ));
                        }
                    }
                }
            }
            match found {
                Some(r) if !refuse.contains(&r) => refuse.push(r),
                Some(_) => {}
                None => return Err("it rejects without testing the name".into()),
            }
        } else {
            for e in &p.effects {
                match e {
                    Effect::Unknown(what, _) if what.starts_with("super") => {}
                    Effect::Logging(_) => {}
                    other => return Err(format!("it also does {other:?}")),
                }
            }
        }
    }
    if refuse.is_empty() {
        return Err("it never rejects".into());
    }
    Ok(refuse)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_tests_become_patterns_that_match_what_ruby_matches() {
        let rest_is = Sym::Eq(
            Box::new(Sym::NamePart(NamePart::Rest)),
            Box::new(Sym::Lit(Some("messages".into()))),
        );
        let (p, positive) = pattern(&rest_is).unwrap();
        assert_eq!((p.as_str(), positive), ("/^[^:]*:messages$/", true));
        let re = regex::Regex::new(p.trim_matches('/')).unwrap();
        // "<gid>:messages".split(":", 2).second == "messages"
        assert!(re.is_match("Z2lkOi8vY2hhdC9Sb29tLzE:messages"));
        assert!(!re.is_match("Z2lk:messages:x"));
        assert!(!re.is_match("messages"));
        let ends = Sym::Not(Box::new(Sym::TextTest(
            Box::new(Sym::SignedStreamName),
            TextTest::EndsWith,
            ":messages".into(),
        )));
        assert_eq!(pattern(&ends), Some(("/:messages$/".into(), false)));
        let first = Sym::Eq(
            Box::new(Sym::NamePart(NamePart::First)),
            Box::new(Sym::Lit(Some("a.b".into()))),
        );
        let (p, _) = pattern(&first).unwrap();
        let re = regex::Regex::new(p.trim_matches('/')).unwrap();
        assert!(re.is_match("a.b") && re.is_match("a.b:c") && !re.is_match("axb:c"));
        assert_eq!(pattern(&Sym::Lit(Some("x".into()))), None);
    }
}
