//! Turbo and CableReady: `turbo_stream_from` in views (Turbo::StreamsChannel, or the
//! channel its `channel:` option names) and CableReady's stream helpers. Their channels live
//! in gems, not in `app/channels`, so they are found here.

use std::path::Path;

use super::mapping::{Finding, Problem};
use super::ruby::print::source;
use super::ruby::{Expr, parse_body};

/// One `turbo_stream_from` (or `cable_ready_stream_from`) call in a view.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamTag {
    /// `file:line`
    pub at: String,
    /// The streamables, as source.
    pub args: String,
    /// The `channel:` option, if any.
    pub channel: Option<String>,
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
    let (args, channel) = match call {
        Some(c) => {
            let mut channel = None;
            let mut args = Vec::new();
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
            (args.join(", "), channel)
        }
        None => (code.to_string(), None),
    };
    StreamTag {
        at: at.to_string(),
        args,
        channel,
    }
}

/// Findings for the gem channels the views use.
pub fn findings(views: &ViewFacts) -> Vec<Finding> {
    let mut out = Vec::new();
    let stock: Vec<&StreamTag> = views.turbo.iter().filter(|t| t.channel.is_none()).collect();
    if !stock.is_empty() {
        let mut f = Finding::new("Turbo::StreamsChannel", &stock[0].at);
        let places: Vec<String> = stock
            .iter()
            .map(|t| format!("{} ({})", t.at, t.args))
            .collect();
        f.problem(Problem {
            why: format!(
                "the views subscribe to Turbo's signed stream names in {} place(s): {}",
                stock.len(),
                places.join("; ")
            ),
            remedy: "Turbo::StreamsChannel comes with issue 11 (signed-stream channel kinds); \
                     until then keep /cable on Rails for Turbo pages"
                .into(),
        });
        f.settle();
        out.push(f);
    }
    if !views.cable_ready.is_empty() || views.gems.iter().any(|g| g.starts_with("cable_ready")) {
        let at = views
            .cable_ready
            .first()
            .map(|t| t.at.clone())
            .unwrap_or_else(|| "Gemfile.lock".into());
        let mut f = Finding::new("CableReady::Stream", &at);
        if views.cable_ready.is_empty() {
            f.assume(
                "the cable_ready gem is installed but no view calls cable_ready_stream_from; \
                 its broadcasts go to the app's own channels, mapped above"
                    .into(),
            );
        } else {
            f.problem(Problem {
                why: format!(
                    "{} view(s) subscribe with cable_ready_stream_from (signed stream names)",
                    views.cable_ready.len()
                ),
                remedy: "CableReady's stream channel comes with issue 11; until then keep those \
                         pages on Rails"
                    .into(),
            });
        }
        f.settle();
        out.push(f);
    }
    out
}
