//! Turbo and CableReady: `turbo_stream_from` in views (Turbo::StreamsChannel, or the
//! channel its `channel:` option names) and CableReady's stream helpers. Their channels live
//! in gems, not in `app/channels`, so they are found here.

use std::path::Path;

use super::TurboGuard;
use super::app_config::AppConfig;
use super::mapping::Finding;
use super::ruby::print::source;
use super::ruby::{Expr, parse_body};
use super::value::Value;
use crate::channels::{ChannelSection, SignedStreamSection, TURBO_STREAMS_CHANNEL};
use crate::config::RawConfig;

/// One `turbo_stream_from` (or `cable_ready_stream_from`) call in a view.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamTag {
    /// `file:line`
    pub at: String,
    /// The streamables, as source.
    pub args: String,
    /// The `channel:` option, if any.
    pub channel: Option<String>,
    /// The last streamable when it is a literal (`:messages`): the end of the signed name.
    pub last_literal: Option<String>,
}

/// What the views use.
#[derive(Debug, Clone, Default)]
pub struct ViewFacts {
    /// `turbo_stream_from` calls.
    pub turbo: Vec<StreamTag>,
    /// `cable_ready_stream_from` calls.
    pub cable_ready: Vec<StreamTag>,
    /// Gems in Gemfile.lock (`turbo-rails`, `cable_ready`).
    pub gems: Vec<String>,
}

const VIEW_EXTENSIONS: &[&str] = &["erb", "haml", "slim", "rb"];

/// Scans `app/views` and `app/components`.
pub fn read(root: &Path, gems: &[(String, String)]) -> ViewFacts {
    let mut facts = ViewFacts {
        gems: gems
            .iter()
            .filter(|(n, _)| matches!(n.as_str(), "turbo-rails" | "cable_ready"))
            .map(|(n, v)| format!("{n} {v}"))
            .collect(),
        ..ViewFacts::default()
    };
    let mut files = Vec::new();
    for dir in ["app/views", "app/components"] {
        collect(&root.join(dir), &mut files);
    }
    files.sort();
    for file in files {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        let rel = file
            .strip_prefix(root)
            .map(|p| p.to_string_lossy().replace('\\', "/"))
            .unwrap_or_default();
        for (i, line) in text.lines().enumerate() {
            for (helper, list) in [
                ("turbo_stream_from", &mut facts.turbo),
                ("cable_ready_stream_from", &mut facts.cable_ready),
            ] {
                let Some(at) = line.find(helper) else {
                    continue;
                };
                list.push(tag(&line[at..], &format!("{rel}:{}", i + 1)));
            }
        }
    }
    facts
}

fn collect(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            collect(&p, out);
        } else if p
            .extension()
            .and_then(|x| x.to_str())
            .is_some_and(|x| VIEW_EXTENSIONS.contains(&x))
        {
            out.push(p);
        }
    }
}

/// Reads the helper call from the rest of the line (up to `%>` when inside ERB).
fn tag(rest: &str, at: &str) -> StreamTag {
    let code = rest.split("%>").next().unwrap_or(rest).trim();
    let body = parse_body(code);
    let call = body.first().and_then(|s| s.expr.as_call());
    let (args, channel, last_literal) = match call {
        Some(c) => {
            let mut channel = None;
            let mut args = Vec::new();
            let last_literal = c
                .args
                .iter()
                .rfind(|a| !matches!(a, Expr::Hash(_)))
                .and_then(Expr::literal_text);
            for a in &c.args {
                match a {
                    Expr::Hash(pairs) => {
                        for (k, v) in pairs {
                            if k.literal_text().as_deref() == Some("channel") {
                                channel = v.literal_text().or_else(|| v.dotted());
                            }
                        }
                    }
                    other => args.push(source(other)),
                }
            }
            (args.join(", "), channel, last_literal)
        }
        None => (code.to_string(), None, None),
    };
    StreamTag {
        at: at.to_string(),
        args,
        channel,
        last_literal,
    }
}

/// Turbo's and CableReady's channels: `[turbo]` and `[channels."CableReady::Stream"]`, with
/// their findings. `guards`: modules the app prepends to `Turbo::StreamsChannel`;
/// `own_stock`: where the app defines a `Turbo::StreamsChannel` that only does what the
/// gem's does.
pub fn map(
    views: &ViewFacts,
    config: &AppConfig,
    guards: &[TurboGuard],
    own_stock: Option<&str>,
    profile: &mut RawConfig,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let stock: Vec<&StreamTag> = views.turbo.iter().filter(|t| t.channel.is_none()).collect();
    let gem = views.gems.iter().any(|g| g.starts_with("turbo-rails"));
    let at = stock
        .first()
        .map(|t| t.at.clone())
        .or_else(|| own_stock.map(String::from))
        .unwrap_or_else(|| "Gemfile.lock".to_string());
    let mut f = Finding::new(TURBO_STREAMS_CHANNEL, &at);
    if let Some(own) = own_stock {
        f.rule(&format!(
            "{own}: the app's own Turbo::StreamsChannel streams the verified signed_stream_name, \
             as turbo-rails' does → the built-in one serves it"
        ));
    }
    if stock.is_empty() && !gem && views.turbo.is_empty() && own_stock.is_none() {
        profile.turbo.streams_channel = Some(false);
        f.rule(
            "no turbo-rails and no turbo_stream_from: turbo.streams_channel = false (a subscribe \
             to Turbo::StreamsChannel stays ignored, as in the Rails app)",
        );
    } else {
        profile.turbo.streams_channel = Some(true);
        let places: Vec<String> = stock
            .iter()
            .map(|t| format!("{} ({})", t.at, t.args))
            .collect();
        f.rule(&if places.is_empty() {
            "turbo-rails is installed → turbo.streams_channel = true (Turbo::StreamsChannel built in)"
                .to_string()
        } else {
            format!(
                "turbo_stream_from in {} place(s) → turbo.streams_channel = true (Turbo::StreamsChannel \
                 built in): {}",
                places.len(),
                places.join("; ")
            )
        });
        match config.other("turbo.signed_stream_verifier_key") {
            None => f.rule(
                "no config.turbo.signed_stream_verifier_key: the key is derived from \
                 SECRET_KEY_BASE, as turbo-rails does",
            ),
            Some(s) => match &s.value {
                Value::Env { name, .. } => f.assume(format!(
                    "{}: the verifier key comes from ENV[{name:?}]: run ferrocable with \
                     FERROCABLE_TURBO__SIGNED_STREAM_VERIFIER_KEY=\"${name}\"",
                    s.at
                )),
                other => f.assume(format!(
                    "{}: config.turbo.signed_stream_verifier_key is {other}: give the same bytes \
                     as FERROCABLE_TURBO__SIGNED_STREAM_VERIFIER_KEY (not written into the profile)",
                    s.at
                )),
            },
        }
        for guard in guards {
            refuse_from_guard(guard, views, profile, &mut f);
        }
    }
    f.settle();
    out.push(f);
    let cable_ready_gem = views.gems.iter().any(|g| g.starts_with("cable_ready"));
    if !views.cable_ready.is_empty() || cable_ready_gem {
        let at = views
            .cable_ready
            .first()
            .map_or("Gemfile.lock".to_string(), |t| t.at.clone());
        let mut f = Finding::new(CABLE_READY_STREAM, &at);
        profile.channels.insert(
            CABLE_READY_STREAM.to_string(),
            ChannelSection {
                signed_stream: Some(SignedStreamSection {
                    verifier: "cable_ready".into(),
                    ..SignedStreamSection::default()
                }),
                ..ChannelSection::default()
            },
        );
        f.rule(&format!(
            "the cable_ready gem{} → [channels.\"{CABLE_READY_STREAM}\".signed_stream] verifier = \
             \"cable_ready\" (its names verified with a key from SECRET_KEY_BASE)",
            if views.cable_ready.is_empty() {
                String::new()
            } else {
                format!(
                    ", cable_ready_stream_from in {} view(s)",
                    views.cable_ready.len()
                )
            }
        ));
        f.settle();
        out.push(f);
    }
    out
}

/// CableReady's stream channel class.
pub const CABLE_READY_STREAM: &str = "CableReady::Stream";

/// A module prepended to `Turbo::StreamsChannel` → `turbo.refuse`: translated from its
/// `subscribed` when it only rejects on tests of the name and otherwise calls `super`; else
/// taken from the names the views hand to custom channels, as an assumption.
fn refuse_from_guard(
    guard: &TurboGuard,
    views: &ViewFacts,
    profile: &mut RawConfig,
    f: &mut Finding,
) {
    let (patch, at) = (&guard.module, &guard.at);
    let translated = match &guard.paths {
        Some(paths) => super::mapping::signed::refused_by_guard(paths),
        None => Err("the reader did not find the module".to_string()),
    };
    match translated {
        Ok(patterns) => {
            for p in &patterns {
                if !profile.turbo.refuse.contains(p) {
                    profile.turbo.refuse.push(p.clone());
                }
            }
            f.rule(&format!(
                "{at}: Turbo::StreamsChannel is changed by {patch}, which rejects names matching \
                 {patterns:?} and otherwise calls super → turbo.refuse"
            ));
        }
        Err(why) => {
            // Names a custom channel serves (`turbo_stream_from @room, :messages, channel: X`)
            // are what such a patch usually turns away from the stock channel.
            let suffixes: Vec<String> = views
                .turbo
                .iter()
                .filter(|t| t.channel.is_some())
                .filter_map(|t| t.last_literal.clone())
                .collect();
            for s in &suffixes {
                let entry = format!("/:{}$/", regex::escape(s));
                if !profile.turbo.refuse.contains(&entry) {
                    profile.turbo.refuse.push(entry);
                }
            }
            f.assume(format!(
                "{at}: Turbo::StreamsChannel is changed by {patch}, which the reader does not \
                 translate ({why}){}",
                if suffixes.is_empty() {
                    "; if it turns names away, list them in turbo.refuse".to_string()
                } else {
                    format!(
                        "; turbo.refuse = {:?} is taken from the names the views hand to custom \
                         channels: check it matches what {patch} rejects",
                        profile.turbo.refuse
                    )
                }
            ));
        }
    }
}
