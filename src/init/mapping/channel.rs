//! One channel's facts → a `[channels.<Name>]` section and a verdict: its streams
//! (templates, `stream_for` naming, a verified signed name), the conditions it accepts on
//! (the rule tables in [`super::rules`], a database record → [`super::authorize`], a test of
//! the signed name → `accept`/`refuse`), and its actions (transmit, relays with a payload
//! template).

use ferrocable_rails::channel_name_with_acronyms;

use super::super::analysis::{ActionFacts, ChannelFacts};
use super::super::interp::{Effect, Path, StreamKind};
use super::super::models::Models;
use super::super::sym::Sym;
use super::authorize::{Authorizer, is_lookup};
use super::effects::{effect_text, side_effect};
use super::payload;
use super::rules::{
    Applied, CONDITIONS, IdentifierInfo, conjuncts, template_with, unmapped_condition, why_not,
};
use super::{Finding, Problem};
use crate::channels::{ActionSection, ChannelSection, SignedStreamSection};

/// What mapping a channel reads besides the channel.
#[derive(Debug, Clone, Copy)]
pub struct ChannelContext<'a> {
    /// The connection's identifiers.
    pub info: &'a IdentifierInfo,
    /// `inflect.acronym` words (for `channel_name`).
    pub acronyms: &'a [&'a str],
    /// The app's models (for `authorize` queries).
    pub models: &'a Models,
}

/// A mapped channel: the section (also drafted when not expressible) and the finding.
#[derive(Debug, Clone)]
pub struct MappedChannel {
    /// The section as far as it could be built.
    pub section: ChannelSection,
    /// Verdict, rules, assumptions, problems.
    pub finding: Finding,
}

/// Maps one channel.
pub fn map(facts: &ChannelFacts, ctx: &ChannelContext<'_>) -> MappedChannel {
    let mut finding = Finding::new(&facts.name, &format!("{}:{}", facts.file, facts.line));
    let mut section = ChannelSection::default();
    let channel_name = channel_name_with_acronyms(&facts.name, ctx.acronyms);
    // `{channel_name}` is ferrocable's own reading of the class name (without the app's
    // acronyms): used when it gives Rails' name.
    let name_placeholder = if ferrocable_rails::channel_name(&facts.name) == channel_name {
        "{channel_name}".to_string()
    } else {
        channel_name.clone()
    };
    let names = Names {
        literal: &channel_name,
        placeholder: &name_placeholder,
    };
    let mut auth: Option<Authorizer> = None;
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
        Some(paths) => {
            let mut s = Subscribe {
                ctx,
                names,
                section: &mut section,
                finding: &mut finding,
                auth: &mut auth,
            };
            s.run(paths);
        }
    }
    for action in &facts.actions {
        map_action(action, ctx, names, &mut section, &mut finding, &mut auth);
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
    if let Some(mut a) = auth {
        for column in row_columns(&section) {
            a.use_column(&column);
        }
        let (authorize, note) = a.section(ctx.models);
        finding.rule(&format!(
            "`{}` must find a row → [authorize] query with bind = {:?}",
            a.record, authorize.bind
        ));
        // With an `accept` that pins the name to two parts (`<gid>:messages`), the first
        // part is the only one that can be a GlobalID: Rails and ferrocable read the same.
        let two_parts = section.signed_stream.as_ref().is_some_and(|s| {
            !s.accept.is_empty()
                && s.accept.iter().all(|a| {
                    a.strip_prefix("/^[^:]*:")
                        .is_some_and(|rest| !rest.contains(':') && !rest.contains(".*"))
                })
        });
        for n in a.assumptions.iter().cloned().chain([note]) {
            if two_parts && n.starts_with(super::authorize::FIRST_PART) {
                continue;
            }
            finding.assume(n);
        }
        section.authorize = Some(authorize);
    }
    finding.settle();
    MappedChannel { section, finding }
}

/// `{row.<column>}` placeholders in the section's streams and actions.
fn row_columns(section: &ChannelSection) -> Vec<String> {
    let mut texts: Vec<&str> = section.streams.iter().map(String::as_str).collect();
    for a in section.actions.values() {
        texts.extend(a.broadcast_to.as_deref());
        texts.extend(a.payload.as_deref());
    }
    super::placeholder_names(texts, "row")
}

/// The channel's `channel_name`, as Rails computes it and as a template writes it.
#[derive(Debug, Clone, Copy)]
struct Names<'a> {
    literal: &'a str,
    placeholder: &'a str,
}

/// The walk through `subscribed`'s paths.
struct Subscribe<'a, 'b> {
    ctx: &'a ChannelContext<'a>,
    names: Names<'a>,
    section: &'b mut ChannelSection,
    finding: &'b mut Finding,
    auth: &'b mut Option<Authorizer>,
}

impl Subscribe<'_, '_> {
    fn run(&mut self, paths: &[Path]) {
        let accepted: Vec<&Path> = paths.iter().filter(|p| !p.rejected).collect();
        if accepted.is_empty() {
            self.finding.problem(Problem {
                why: "every path through `subscribed` rejects".into(),
                remedy: "leave the channel out (ferrocable then ignores it) or keep it on Rails"
                    .into(),
            });
            return;
        }
        // The accepting path with the fewest conditions decides the rules; another accepting
        // path with different conditions is an `||` that the rules cannot express.
        let Some(path) = accepted.iter().min_by_key(|p| p.conds.len()).copied() else {
            return;
        };
        let signed = accepted.iter().any(|p| {
            p.effects.iter().any(|e| {
                matches!(
                    e,
                    Effect::Stream {
                        kind: StreamKind::From,
                        target: Sym::SignedStreamName,
                        ..
                    }
                )
            })
        });
        self.find_record(path, signed);
        let Some(streams) = self.streams(&accepted) else {
            return;
        };
        self.section.streams = streams.clone();
        self.conditions(path, &streams);
        if accepted.len() > 1 && accepted.iter().any(|p| p.conds.len() != path.conds.len()) {
            self.finding.assume(
                "`subscribed` accepts on more than one path; the rules come from the simplest one"
                    .into(),
            );
        }
        for p in &accepted {
            for e in &p.effects {
                side_effect(e, "subscribed", self.finding);
            }
        }
    }

    /// The record the channel authorizes with: the first lookup among the accepting path's
    /// conditions, else the record its streams are named after.
    fn find_record(&mut self, path: &Path, signed: bool) {
        let from_conds = path
            .conds
            .iter()
            .flat_map(|(c, o, _)| conjuncts(c, *o))
            .find_map(|c| {
                let inner = match c {
                    Sym::Present(i) => *i,
                    other => other,
                };
                is_lookup(&inner).then_some(inner)
            });
        let from_streams = || {
            path.effects.iter().find_map(|e| match e {
                Effect::Stream { target, .. } if is_lookup(target) => Some(target.clone()),
                Effect::Stream {
                    target: Sym::Concat(parts),
                    ..
                } => parts.iter().find_map(|p| match p {
                    Sym::Attr(r, _) if is_lookup(r) => Some((**r).clone()),
                    _ => None,
                }),
                Effect::Stream {
                    target: Sym::Attr(r, _),
                    ..
                } if is_lookup(r) => Some((**r).clone()),
                _ => None,
            })
        };
        let Some(record) = from_conds.or_else(from_streams) else {
            return;
        };
        match Authorizer::plan(&record, self.ctx.models, self.ctx.info, signed) {
            Ok(a) => *self.auth = Some(a),
            Err(why) => self.finding.problem(Problem {
                why: format!(
                    "the subscription is authorized by a database lookup, `{record}`, that the \
                     reader cannot translate: {why}"
                ),
                remedy: "write [channels.<Name>.authorize] by hand (a SELECT that returns a row \
                         when Rails would find the record), or keep this channel on Rails"
                    .into(),
            }),
        }
    }

    /// The streams of each accepting path, as templates: `None` when they differ.
    fn streams(&mut self, accepted: &[&Path]) -> Option<Vec<String>> {
        let mut variants: Vec<Vec<String>> = Vec::new();
        for p in accepted {
            let mut streams = Vec::new();
            for e in &p.effects {
                let Effect::Stream {
                    target,
                    kind,
                    callback,
                    line,
                } = e
                else {
                    continue;
                };
                if let Some(cb) = callback {
                    self.finding.problem(Problem {
                        why: format!(
                            "the stream on line {line} has a callback (`{cb}`) that runs Ruby for \
                             every message"
                        ),
                        remedy: "transform the payload before broadcasting instead, or keep this \
                                 channel on Rails"
                            .into(),
                    });
                }
                if let (StreamKind::From, Sym::SignedStreamName) = (kind, target) {
                    if self.section.signed_stream.is_none() {
                        self.section.signed_stream = Some(turbo_signed_stream());
                    }
                    self.finding.rule(&format!(
                        "line {line}: stream_from verified_stream_name_from_params → \
                         signed_stream.verifier = \"turbo\" (the verified name is the stream)"
                    ));
                    continue;
                }
                match stream_template(target, *kind, self.names, self.ctx.info, self.auth.as_ref())
                {
                    Ok((t, assumptions)) => {
                        self.finding.rule(&format!(
                            "line {line}: {} → \"{t}\"",
                            describe(*kind, target)
                        ));
                        for a in assumptions {
                            self.finding.assume(a);
                        }
                        streams.push(t);
                    }
                    Err(why) => self.finding.problem(Problem {
                        why: format!("the stream on line {line} cannot be a template: {why}"),
                        remedy: if why.contains("connection's mapping could not express") {
                            "see the connection's verdict: once it maps, this stream can too".into()
                        } else {
                            remedy_for_stream(target)
                        },
                    }),
                }
            }
            streams.dedup();
            if !variants.contains(&streams) {
                variants.push(streams);
            }
        }
        if variants.len() > 1 {
            let list: Vec<String> = variants.iter().map(|s| format!("{s:?}")).collect();
            self.finding.problem(Problem {
                why: format!(
                    "the streams depend on a condition: {} (ferrocable gives one subscription one \
                     set of streams)",
                    list.join(" or ")
                ),
                remedy: "split the channel in two, or keep it on Rails".into(),
            });
        }
        variants.into_iter().next()
    }

    fn conditions(&mut self, path: &Path, streams: &[String]) {
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
            if let Some((name, why)) = self.covered_by_record(&c) {
                self.finding
                    .rule(&format!("line {line}: `{c}` ({name}): {why}"));
                continue;
            }
            let applied = CONDITIONS
                .iter()
                .find_map(|(_, rule)| rule(&c, self.ctx.info, &used, self.section));
            match applied {
                Some(Applied::Rule(name, assumption)) => {
                    self.finding
                        .rule(&format!("line {line}: accept only if `{c}` → {name}"));
                    if let Some(a) = assumption {
                        self.finding.assume(a);
                    }
                }
                Some(Applied::Covered(name, why)) => {
                    self.finding
                        .rule(&format!("line {line}: `{c}` ({name}): {why}"));
                }
                None => {
                    let (why, remedy) = unmapped_condition(&c, self.ctx.info);
                    self.finding.problem(Problem {
                        why: format!("line {line}: {why}"),
                        remedy,
                    });
                }
            }
        }
        let or_reject: Vec<&str> = path
            .effects
            .iter()
            .filter_map(|e| match e {
                Effect::Stream {
                    kind: StreamKind::OrRejectFor,
                    target: Sym::Param(p),
                    ..
                } => Some(p.as_str()),
                _ => None,
            })
            .collect();
        for stream in streams {
            for param in stream
                .split("{params.")
                .skip(1)
                .filter_map(|p| p.split('}').next())
            {
                if !self.section.require_params.iter().any(|r| r == param)
                    && !or_reject.contains(&param)
                    && self.auth.is_none()
                {
                    self.finding.assume(format!(
                        "when params[:{param}] is missing or blank, Rails still streams {:?}; ferrocable rejects the subscription",
                        stream.replace(&format!("{{params.{param}}}"), "")
                    ));
                }
            }
        }
    }

    /// A condition the `authorize` query already decides: the record it finds, or the
    /// record its signed-name bind reads.
    fn covered_by_record(&self, c: &Sym) -> Option<(&'static str, String)> {
        let a = self.auth.as_ref()?;
        let inner = match c {
            Sym::Present(i) => &**i,
            other => other,
        };
        if *inner == a.record {
            return Some((
                "record found",
                "the [authorize] query must return a row, else the subscription is rejected".into(),
            ));
        }
        let binds_signed = a.record.to_string().contains("GlobalID::Locator.locate");
        if matches!(inner, Sym::Located { .. }) && binds_signed {
            return Some((
                "record named by the signed name",
                "a name that holds no such record binds nothing, and the [authorize] query \
                 rejects"
                    .into(),
            ));
        }
        None
    }
}

fn turbo_signed_stream() -> SignedStreamSection {
    SignedStreamSection {
        verifier: "turbo".into(),
        ..SignedStreamSection::default()
    }
}

/// A stream effect's template: `stream_from` names as they are, `stream_for` names under
/// the channel's `channel_name` (a record's GlobalID param for a record).
fn stream_template(
    target: &Sym,
    kind: StreamKind,
    names: Names<'_>,
    info: &IdentifierInfo,
    auth: Option<&Authorizer>,
) -> Result<(String, Vec<String>), String> {
    let row = |part: &Sym| match (part, auth) {
        (Sym::Attr(r, col), Some(a)) if **r == a.record => Some((format!("{{row.{col}}}"), None)),
        _ => None,
    };
    match kind {
        StreamKind::From => template_with(target, info, &row),
        StreamKind::For | StreamKind::OrRejectFor => {
            let (t, mut assumptions) =
                for_template(target, names.placeholder, names.literal, info, auth)?;
            if kind == StreamKind::OrRejectFor && !t.contains("{gid:") {
                assumptions.push(format!(
                    "`stream_or_reject_for {target}` streams `{}:` for an empty string in Rails; \
                     ferrocable rejects a blank value",
                    names.literal
                ));
            }
            Ok((t, assumptions))
        }
    }
}

/// `broadcasting_for(target)`: `<channel_name>:<GlobalID param>` for a record,
/// `<channel_name>:<to_param>` for a plain value. `placeholder` names the channel in the
/// template when it is the channel itself (`{channel_name}`); `literal` otherwise.
fn for_template(
    target: &Sym,
    placeholder: &str,
    literal: &str,
    info: &IdentifierInfo,
    auth: Option<&Authorizer>,
) -> Result<(String, Vec<String>), String> {
    if let Some(a) = auth.filter(|a| *target == a.record) {
        return Ok((
            format!("{placeholder}:{{gid:{}/row.id}}", a.model),
            Vec::new(),
        ));
    }
    match target {
        Sym::Identifier(n) if info.models.contains(n) => {
            let model = info.model_of.get(n).ok_or_else(|| {
                format!(
                    "`stream_for {n}` names the stream after {n}'s GlobalID, whose model is unknown"
                )
            })?;
            Ok((format!("{placeholder}:{{gid:{model}/{n}}}"), Vec::new()))
        }
        Sym::Param(_) | Sym::Lit(_) | Sym::Claim(_) | Sym::Identifier(_) => {
            let (t, assumptions) = template_with(target, info, &|_| None)?;
            Ok((format!("{literal}:{t}"), assumptions))
        }
        Sym::Record { .. } => Err(match auth {
            Some(a) => format!(
                "it is a second database lookup ({target}) besides the one the channel \
                 authorizes with ({})",
                a.record
            ),
            None => why_not(target, info),
        }),
        other => Err(why_not(other, info)),
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
        Sym::Record { .. } => "name the stream after the record the channel authorizes with \
                               ([authorize] and {row.<column>}), or keep this channel on Rails"
            .into(),
        _ => "build the stream name from params, identifiers, claims or the authorized row, or \
              keep this channel on Rails"
            .into(),
    }
}

/// Names used as `{placeholders}` in a template (identifiers only).
fn placeholders(template: &str) -> Vec<String> {
    template
        .split('{')
        .skip(1)
        .filter_map(|p| p.split_once('}').map(|(name, _)| name.to_string()))
        .filter(|n| !n.contains('.') && !n.contains(':') && n != "channel_name")
        .collect()
}

fn map_action(
    action: &ActionFacts,
    ctx: &ChannelContext<'_>,
    names: Names<'_>,
    section: &mut ChannelSection,
    finding: &mut Finding,
    auth: &mut Option<Authorizer>,
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
            finding.rule(&format!(
                "action `{name}`: transmit(data) → transmit = true"
            ));
        }
        [
            Effect::Broadcast {
                target,
                data,
                to_model_of,
                ..
            },
        ] => relay(
            name,
            (target, data, to_model_of.as_deref()),
            ctx,
            names,
            section,
            finding,
            auth.as_ref(),
        ),
        _ => {
            let what: Vec<String> = effects.iter().map(|e| effect_text(e)).collect();
            finding.problem(Problem {
                why: format!(
                    "action `{name}` ({}) runs Ruby: {}",
                    action.at,
                    what.join("; ")
                ),
                remedy: "perform it as an HTTP request to Rails (a controller), or keep this \
                         channel on Rails"
                    .into(),
            });
        }
    }
}

/// An action that broadcasts: `broadcast_to` + `payload` (a relay).
fn relay(
    name: &str,
    (target, data, to_model_of): (&Sym, &Sym, Option<&str>),
    ctx: &ChannelContext<'_>,
    names: Names<'_>,
    section: &mut ChannelSection,
    finding: &mut Finding,
    auth: Option<&Authorizer>,
) {
    let info = ctx.info;
    let stream = match to_model_of {
        None => template_with(target, info, &|part| match (part, auth) {
            (Sym::Attr(r, col), Some(a)) if **r == a.record => {
                Some((format!("{{row.{col}}}"), None))
            }
            _ => None,
        }),
        Some(class) => {
            // `OtherChannel.broadcast_to` names the stream after that class.
            let literal = channel_name_with_acronyms(class, ctx.acronyms);
            let placeholder = if literal == names.literal {
                names.placeholder
            } else {
                literal.as_str()
            };
            for_template(target, placeholder, &literal, info, auth)
        }
    };
    let row = |s: &Sym| match (s, auth) {
        (Sym::Attr(r, col), Some(a)) if **r == a.record => Some(col.clone()),
        _ => None,
    };
    let call = match to_model_of {
        Some(_) => format!("broadcast_to {target}, {data}"),
        None => format!("ActionCable.server.broadcast({target}, {data})"),
    };
    match (stream, payload::template(data, info, &row)) {
        (Ok((t, mut assumptions)), Ok(p)) => {
            let payload = p.map(|(json, more)| {
                assumptions.extend(more);
                json
            });
            finding.rule(&format!(
                "action `{name}`: {call} → broadcast_to = \"{t}\"{}",
                payload
                    .as_ref()
                    .map(|p| format!(", payload = '{p}'"))
                    .unwrap_or_default()
            ));
            for a in assumptions {
                finding.assume(a);
            }
            section.actions.insert(
                name.to_string(),
                ActionSection {
                    broadcast_to: Some(t),
                    payload,
                    ..ActionSection::default()
                },
            );
        }
        (Err(why), _) => finding.problem(Problem {
            why: format!("action `{name}` broadcasts to a stream that cannot be a template: {why}"),
            remedy: remedy_for_stream(target),
        }),
        (_, Err(why)) => finding.problem(Problem {
            why: format!("action `{name}` ({call}) cannot be a relay: {why}"),
            remedy: "perform the action over HTTP on Rails, or keep this channel on Rails".into(),
        }),
    }
}
