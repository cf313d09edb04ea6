//! Calls the walker knows beyond Action Cable's own, each turned into a value the mapping
//! can express: a Turbo signed stream name taken apart (`name.split(":", 2)`, `end_with?`),
//! `Turbo::StreamsChannel.verified_stream_name(params[:signed_stream_name])`, a GlobalID
//! lookup (`GlobalID::Locator.locate(gid, only: Room)`) and a record's `slice(:id, :name)`.
//! Everything else is left to `calls`, which reports it.

use super::ruby::{Call, Expr};
use super::sym::{NamePart, Sym, TextTest};

/// A call on a value: `Some` when this module knows what it gives.
pub(super) fn on_value(recv: &Sym, name: &str, args: &[Sym]) -> Option<Sym> {
    let text_arg = || match args {
        [Sym::Lit(Some(t))] => Some(t.clone()),
        _ => None,
    };
    match recv {
        Sym::SignedStreamName => match name {
            // A verified name is a String; an unverified one is nil.
            "is_a?" | "kind_of?" if args.iter().any(|a| a.to_string().contains("String")) => {
                Some(Sym::SignedStreamName)
            }
            "split" => split(args),
            _ => text_test(recv, name, text_arg()),
        },
        Sym::NamePart(_) => text_test(recv, name, text_arg()),
        // `name.split(":")` without a limit: only its ends are known.
        Sym::Unknown(src) if src == SPLIT_UNLIMITED => match name {
            "first" => Some(Sym::NamePart(NamePart::First)),
            "last" => Some(Sym::NamePart(NamePart::Last)),
            _ => None,
        },
        Sym::List(items) => match name {
            "first" => Some(items.first().cloned().unwrap_or(Sym::Lit(None))),
            "second" => Some(items.get(1).cloned().unwrap_or(Sym::Lit(None))),
            "last" => Some(items.last().cloned().unwrap_or(Sym::Lit(None))),
            _ => None,
        },
        Sym::Identifier(_) | Sym::Record { .. } | Sym::Attr(..) if name == "slice" => {
            let attrs: Option<Vec<String>> =
                args.iter().map(|a| a.lit().map(String::from)).collect();
            Some(Sym::Slice(Box::new(recv.clone()), attrs?))
        }
        Sym::Located { .. } if args.is_empty() && !name.ends_with(['?', '!']) => {
            Some(Sym::Attr(Box::new(recv.clone()), name.to_string()))
        }
        _ => None,
    }
}

/// `split(":")` of the unlimited kind, kept as a marker value.
const SPLIT_UNLIMITED: &str = "verified_stream_name_from_params.split(\":\")";

/// `name.split(":", 2)` is exactly `[first, rest]`; `name.split(":")` only has known ends.
fn split(args: &[Sym]) -> Option<Sym> {
    match args {
        [sep] if sep.lit() == Some(":") => Some(Sym::unknown(SPLIT_UNLIMITED)),
        [sep, limit] if sep.lit() == Some(":") && limit.lit() == Some("2") => {
            Some(Sym::List(vec![
                Sym::NamePart(NamePart::First),
                Sym::NamePart(NamePart::Rest),
            ]))
        }
        _ => None,
    }
}

fn text_test(recv: &Sym, name: &str, arg: Option<String>) -> Option<Sym> {
    let test = match name {
        "end_with?" => TextTest::EndsWith,
        "start_with?" => TextTest::StartsWith,
        "include?" => TextTest::Contains,
        _ => return None,
    };
    Some(Sym::TextTest(Box::new(recv.clone()), test, arg?))
}

/// `xs[i]` on a list of name parts.
pub(super) fn index(recv: &Sym, key: &str) -> Option<Sym> {
    match (recv, key) {
        (Sym::List(items), i) => i.parse::<usize>().ok().and_then(|i| items.get(i).cloned()),
        (Sym::Unknown(src), "0") if src == SPLIT_UNLIMITED => Some(Sym::NamePart(NamePart::First)),
        (Sym::Unknown(src), "-1") if src == SPLIT_UNLIMITED => Some(Sym::NamePart(NamePart::Last)),
        _ => None,
    }
}

/// A call on a constant (or `self.class`): `Some` when this module knows it.
pub(super) fn constant_call(recv: &str, c: &Call, args: &[Sym]) -> Option<Sym> {
    match c.name.as_str() {
        // Turbo's class method, from Turbo::StreamsChannel or a channel that extends
        // Turbo::Streams::StreamName: the same verification as verified_stream_name_from_params.
        "verified_stream_name" if matches!(args.first(), Some(Sym::Param(p)) if p == "signed_stream_name") => {
            Some(Sym::SignedStreamName)
        }
        "locate" | "find" if matches!(recv, "GlobalID::Locator" | "GlobalID") => {
            let only = c
                .args
                .iter()
                .filter_map(|a| match a {
                    Expr::Hash(pairs) => pairs
                        .iter()
                        .find(|(k, _)| k.literal_text().as_deref() == Some("only"))
                        .map(|(_, v)| v),
                    _ => None,
                })
                .flat_map(|v| match v {
                    Expr::Array(items) => items.iter().filter_map(Expr::dotted).collect(),
                    one => one.dotted().into_iter().collect::<Vec<_>>(),
                })
                .collect();
            Some(Sym::Located {
                gid: Box::new(args.first().cloned().unwrap_or(Sym::Lit(None))),
                only,
            })
        }
        _ => None,
    }
}
