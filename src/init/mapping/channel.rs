//! One channel's facts → a `[channels.<Name>]` section and a verdict.

use std::collections::BTreeMap;

use ferrocable_rails::channel_name_with_acronyms;

use super::super::analysis::{ActionFacts, ChannelFacts};
use super::super::interp::{Effect, Path, StreamKind};
use super::super::sym::Sym;
use super::rules::{
    Applied, CONDITIONS, IdentifierInfo, conjuncts, template, unmapped_condition, why_not,
};
use super::{Finding, Problem};
use crate::channels::{ActionSection, ChannelSection, SignedStreamSection};

/// A mapped channel: the section (also drafted when not expressible) and the finding.
#[derive(Debug, Clone)]
pub struct MappedChannel {
    /// The section as far as it could be built.
    pub section: ChannelSection,
    /// Verdict, rules, assumptions, problems.
    pub finding: Finding,
}

/// Maps one channel.
pub fn map(facts: &ChannelFacts, info: &IdentifierInfo, acronyms: &[&str]) -> MappedChannel {
    let mut finding = Finding::new(&facts.name, &format!("{}:{}", facts.file, facts.line));
    let mut section = ChannelSection::default();
    let channel_name = channel_name_with_acronyms(&facts.name, acronyms);
    let turbo_subclass = facts
        .superclasses
        .iter()
        .any(|s| s == crate::channels::TURBO_STREAMS_CHANNEL);
    match &facts.subscribe {
        None if turbo_subclass => {
            section.signed_stream = Some(turbo_signed_stream());
            finding.rule(
                "a Turbo::StreamsChannel subclass without its own `subscribed`: it streams the \
                 verified signed_stream_name → signed_stream.verifier = \"turbo\"",
            );
        }
        None => finding.rule(
            "no `subscribed`: Rails confirms the subscription and streams nothing; so does \
             `streams = []`",
        ),
        Some(paths) => subscribe(paths, info, &channel_name, &mut section, &mut finding),
    }
    for action in &facts.actions {
        map_action(action, info, &mut section, &mut finding);
    }
    for p in &facts.unsubscribe {
        for e in &p.effects {
            side_effect(e, "unsubscribed", &mut finding);
        }
    }
    for (timer, line) in &facts.timers {
        finding.problem(Problem {
            why: format!("`{timer}` (line {line}) runs Ruby on a timer for each subscription"),
            remedy:
                "move the periodic work to a job that broadcasts, or keep this channel on Rails"
                    .into(),
        });
    }
    for (statement, line) in &facts.unread {
        finding.assume(format!(
            "the class-level statement `{statement}` (line {line}) is not reproduced"
        ));
    }
    finding.settle();
    MappedChannel { section, finding }
}

fn subscribe(
    paths: &[Path],
    info: &IdentifierInfo,
    channel_name: &str,
    section: &mut ChannelSection,
    finding: &mut Finding,
) {
    let accepted: Vec<&Path> = paths.iter().filter(|p| !p.rejected).collect();
    if accepted.is_empty() {
        finding.problem(Problem {
            why: "every path through `subscribed` rejects".into(),
            remedy: "leave the channel out (ferrocable then ignores it) or keep it on Rails".into(),
        });
        return;
    }
    // The streams of each accepting path, as templates.
    let mut variants: Vec<(Vec<String>, &Path)> = Vec::new();
    // stream_or_reject_for params[:x] already rejects a missing x, as ferrocable does
    let mut or_reject: Vec<String> = Vec::new();
    for p in &accepted {
        let mut streams = Vec::new();
        for e in &p.effects {
            if let Effect::Stream {
                target,
                kind,
                callback,
                line,
            } = e
            {
                if let Some(cb) = callback {
                    finding.problem(Problem {
                        why: format!(
                            "the stream on line {line} has a callback (`{cb}`) that runs Ruby for \
                             every message"
                        ),
                        remedy: "transform the payload before broadcasting instead, or keep this \
                                 channel on Rails"
                            .into(),
                    });
                }
                if let (StreamKind::OrRejectFor, Sym::Param(p)) = (kind, target) {
                    or_reject.push(p.clone());
                }
                if let (StreamKind::From, Sym::SignedStreamName) = (kind, target) {
                    section.signed_stream = Some(turbo_signed_stream());
                    finding.rule(&format!(
                        "line {line}: stream_from verified_stream_name_from_params → \
                         signed_stream.verifier = \"turbo\" (the verified name is the stream)"
                    ));
                    continue;
                }
                match stream_template(target, *kind, channel_name, info) {
                    Ok((t, assumptions)) => {
                        finding.rule(&format!(
                            "line {line}: {} → \"{t}\"",
                            describe(*kind, target)
                        ));
                        for a in assumptions {
                            finding.assume(a);
                        }
                        streams.push(t);
                    }
                    Err(why) => finding.problem(Problem {
                        why: format!("the stream on line {line} cannot be a template: {why}"),
                        remedy: if why.contains("connection's mapping could not express") {
                            "see the connection's verdict: once it maps, this stream can too".into()
                        } else {
                            remedy_for_stream(target)
                        },
                    }),
                }
            }
        }
        streams.dedup();
        if !variants.iter().any(|(s, _)| *s == streams) {
            variants.push((streams, p));
        }
    }
    if variants.len() > 1 {
        let list: Vec<String> = variants.iter().map(|(s, _)| format!("{s:?}")).collect();
        finding.problem(Problem {
            why: format!(
                "the streams depend on a condition: {} (ferrocable gives one subscription one set \
                 of streams)",
                list.join(" or ")
            ),
            remedy: "split the channel in two, or keep it on Rails".into(),
        });
    }
    let Some((streams, _)) = variants.first() else {
        return;
    };
    section.streams = streams.clone();
    // The accepting path with the fewest conditions decides the rules; another accepting
    // path with different conditions is an `||` that the rules cannot express.
    let Some(path) = accepted.iter().min_by_key(|p| p.conds.len()) else {
        return;
    };
    let used: Vec<String> = streams.iter().flat_map(|s| placeholders(s)).collect();
    let mut parts: Vec<(Sym, u32)> = path
        .conds
        .iter()
        .flat_map(|(cond, outcome, line)| {
            conjuncts(cond, *outcome)
                .into_iter()
                .map(move |c| (c, *line))
        })
        .collect();
    // key? checks after the comparisons that already imply them
    parts.sort_by_key(|(c, _)| matches!(c, Sym::HasKey(_)));
    for (c, line) in parts {
        {
            let applied = CONDITIONS
                .iter()
                .find_map(|(_, rule)| rule(&c, info, &used, section));
            match applied {
                Some(Applied::Rule(name, assumption)) => {
                    finding.rule(&format!("line {line}: accept only if `{c}` → {name}"));
                    if let Some(a) = assumption {
                        finding.assume(a);
                    }
                }
                Some(Applied::Covered(name, why)) => {
                    finding.rule(&format!("line {line}: `{c}` ({name}): {why}"));
                }
                None => {
                    let (why, remedy) = unmapped_condition(&c, info);
                    finding.problem(Problem {
                        why: format!("line {line}: {why}"),
                        remedy,
                    });
                }
            }
        }
    }
    for stream in streams {
        for param in stream
            .split("{params.")
            .skip(1)
            .filter_map(|p| p.split('}').next())
        {
            if !section.require_params.iter().any(|r| r == param)
                && !or_reject.iter().any(|r| r == param)
            {
                finding.assume(format!(
                    "when params[:{param}] is missing or blank, Rails still streams {:?}; ferrocable rejects the subscription",
                    stream.replace(&format!("{{params.{param}}}"), "")
                ));
            }
        }
    }
    if accepted.len() > 1 && accepted.iter().any(|p| p.conds.len() != path.conds.len()) {
        finding.assume(
            "`subscribed` accepts on more than one path; the rules come from the simplest one"
                .into(),
        );
    }
    for p in &accepted {
        for e in &p.effects {
            side_effect(e, "subscribed", finding);
        }
    }
}

fn turbo_signed_stream() -> SignedStreamSection {
    SignedStreamSection {
        verifier: "turbo".into(),
        ..SignedStreamSection::default()
    }
}

/// A stream effect's template: `stream_from` names as they are, `stream_for` names under
/// the channel's `channel_name`.
fn stream_template(
    target: &Sym,
    kind: StreamKind,
    channel_name: &str,
    info: &IdentifierInfo,
) -> Result<(String, Vec<String>), String> {
    match kind {
        StreamKind::From => template(target, info),
        StreamKind::For | StreamKind::OrRejectFor => {
            // broadcasting_for(model): "<channel_name>:<model.to_gid_param or to_param>"
            let plain = matches!(target, Sym::Param(_) | Sym::Lit(_) | Sym::Claim(_))
                || matches!(target, Sym::Identifier(n) if !info.models.contains(n));
            if !plain {
                return Err(match target {
                    Sym::Identifier(n) => format!(
                        "`stream_for {n}` names the stream after {n}'s GlobalID, which this \
                         ferrocable cannot build in a template"
                    ),
                    other => why_not(other, info),
                });
            }
            let (t, mut assumptions) = template(target, info)?;
            if kind == StreamKind::OrRejectFor {
                assumptions.push(format!(
                    "`stream_or_reject_for {target}` streams `{channel_name}:` for an empty \
                     string in Rails; ferrocable rejects a blank value"
                ));
            }
            Ok((format!("{channel_name}:{t}"), assumptions))
        }
    }
}

fn describe(kind: StreamKind, target: &Sym) -> String {
    match kind {
        StreamKind::From => format!("stream_from {target}"),
        StreamKind::For => format!("stream_for {target}"),
        StreamKind::OrRejectFor => format!("stream_or_reject_for {target}"),
    }
}

fn remedy_for_stream(target: &Sym) -> String {
    match target {
        Sym::SignedStreamName => {
            "Turbo signed-stream channels come with issue 11; until then keep \
                                  this channel on Rails"
                .into()
        }
        Sym::Record { .. } => {
            "name the stream after a param or an identifier and authorize with a \
                               predicate (issue 10), or keep this channel on Rails"
                .into()
        }
        _ => "build the stream name from params, identifiers or claims only, or keep this \
              channel on Rails"
            .into(),
    }
}

/// Names used as `{placeholders}` in a template (identifiers only).
fn placeholders(template: &str) -> Vec<String> {
    template
        .split('{')
        .skip(1)
        .filter_map(|p| p.split_once('}').map(|(name, _)| name.to_string()))
        .filter(|n| !n.contains('.'))
        .collect()
}

/// Effects that ferrocable does not reproduce.
fn side_effect(e: &Effect, when: &str, finding: &mut Finding) {
    match e {
        Effect::SideEffect(what, line) => finding.problem(Problem {
            why: format!("{when} runs `{what}` (line {line}), which ferrocable cannot do"),
            remedy: "move it to the Rails side (a controller or job the client calls), or keep \
                     this channel on Rails"
                .into(),
        }),
        Effect::Broadcast { line, target, .. } => finding.problem(Problem {
            why: format!("{when} broadcasts to {target} (line {line})"),
            remedy: "broadcast from the Rails side when the client calls it, or keep this \
                     channel on Rails"
                .into(),
        }),
        Effect::Transmit(data, line) => finding.problem(Problem {
            why: format!("{when} transmits {data} (line {line})"),
            remedy: "send it from Rails with a broadcast, or keep this channel on Rails".into(),
        }),
        Effect::Unknown(what, line) => finding.problem(Problem {
            why: format!("the reader does not understand `{what}` (line {line}) in {when}"),
            remedy: "simplify it, or keep this channel on Rails".into(),
        }),
        Effect::Rescue(what, line) => finding.assume(format!(
            "the `rescue` on line {line} (`{what}`) is not reproduced: nothing raises there in \
             ferrocable"
        )),
        Effect::Logging(_) => finding.ignore("logging (ferrocable logs subscriptions itself)"),
        _ => {}
    }
}

fn map_action(
    action: &ActionFacts,
    info: &IdentifierInfo,
    section: &mut ChannelSection,
    finding: &mut Finding,
) {
    let name = &action.name;
    let effects: Vec<&Effect> = action
        .paths
        .iter()
        .flat_map(|p| p.effects.iter())
        .filter(|e| !matches!(e, Effect::Logging(_)))
        .collect();
    if action.paths.len() > 1 {
        finding.problem(Problem {
            why: format!(
                "action `{name}` ({}) does different things depending on a condition",
                action.at
            ),
            remedy: "keep the logic on Rails (perform it over HTTP) or keep this channel on Rails"
                .into(),
        });
        return;
    }
    match effects.as_slice() {
        [] => finding.rule(&format!(
            "action `{name}` does nothing: left out (ferrocable ignores it, as Rails does nothing)"
        )),
        [Effect::Transmit(Sym::Data(None), _)] => {
            section.actions.insert(
                name.clone(),
                ActionSection {
                    transmit: true,
                    ..ActionSection::default()
                },
            );
            finding.rule(&format!("action `{name}`: transmit(data) → transmit = true"));
        }
        [Effect::Broadcast {
            target,
            data: Sym::Data(None),
            to_model_of: None,
            ..
        }] => match template(target, info) {
            Ok((t, assumptions)) => {
                section.actions.insert(
                    name.clone(),
                    ActionSection {
                        broadcast_to: Some(t.clone()),
                        ..ActionSection::default()
                    },
                );
                finding.rule(&format!(
                    "action `{name}`: ActionCable.server.broadcast({target}, data) → broadcast_to = \"{t}\""
                ));
                for a in assumptions {
                    finding.assume(a);
                }
            }
            Err(why) => finding.problem(Problem {
                why: format!("action `{name}` broadcasts to a stream that cannot be a template: {why}"),
                remedy: remedy_for_stream(target),
            }),
        },
        [Effect::Broadcast {
            data, to_model_of, ..
        }] => finding.problem(Problem {
            why: match to_model_of {
                Some(_) => format!(
                    "action `{name}` uses `broadcast_to` (a GlobalID-named stream) with {data}"
                ),
                None => format!("action `{name}` broadcasts a payload built in Ruby: {data}"),
            },
            remedy: "relay actions that stamp identity and stream_for naming come with issue 10; \
                     until then perform the action over HTTP on Rails, or keep this channel on Rails"
                .into(),
        }),
        _ => {
            let what: Vec<String> = effects.iter().map(|e| effect_text(e)).collect();
            finding.problem(Problem {
                why: format!("action `{name}` ({}) runs Ruby: {}", action.at, what.join("; ")),
                remedy: "perform it as an HTTP request to Rails (a controller), or keep this \
                         channel on Rails"
                    .into(),
            });
        }
    }
}

fn effect_text(e: &Effect) -> String {
    match e {
        Effect::SideEffect(w, l) | Effect::Unknown(w, l) => format!("`{w}` (line {l})"),
        Effect::Broadcast {
            target, data, line, ..
        } => {
            format!("broadcast {data} to {target} (line {line})")
        }
        Effect::Transmit(d, l) => format!("transmit {d} (line {l})"),
        Effect::Stream { target, line, .. } => format!("stream {target} (line {line})"),
        Effect::Reject(l) => format!("reject (line {l})"),
        other => format!("{other:?}"),
    }
}

/// Sorted, for stable output.
pub fn sorted(channels: Vec<MappedChannel>) -> BTreeMap<String, MappedChannel> {
    channels
        .into_iter()
        .map(|c| (c.finding.subject.clone(), c))
        .collect()
}
