//! The report: what was read, the verdict for every part of the app with the rules used,
//! the assumptions and what cannot be expressed (and what to do about it), and the lines
//! the reader did not understand.

use super::App;
use super::mapping::{Finding, Migration, Verdict};
use super::profile::counts;

/// Renders the report as Markdown.
pub fn render(m: &Migration, app: &App, profile_name: &str) -> String {
    let mut out = String::new();
    let name = app.config.app_module.as_deref().unwrap_or("the Rails app");
    out.push_str(&format!("# `ferrocable init` report: {name}\n\n"));
    out.push_str(&format!(
        "Read from `{}` ({} environment) without running any of its code; the profile is \
         `{profile_name}`. Verdicts: **mapped** (the rule used is named), **mapped with \
         assumptions** (check each one), **not expressible** (why, and what you can do).\n\n",
        app.root.display(),
        app.cable.environment
    ));
    let (ok, assumed, not) = counts(&m.findings);
    out.push_str("## Summary\n\n| part | where | verdict |\n| --- | --- | --- |\n");
    for f in &m.findings {
        out.push_str(&format!(
            "| {} | `{}` | {} |\n",
            f.subject,
            f.at,
            match f.verdict {
                Verdict::Mapped => "mapped".to_string(),
                Verdict::Assumptions =>
                    format!("mapped with {} assumption(s)", f.assumptions.len()),
                Verdict::NotExpressible => "**not expressible**".to_string(),
            }
        ));
    }
    out.push_str(&format!(
        "\n{ok} mapped, {assumed} mapped with assumptions, {not} not expressible.\n"
    ));
    if !m.next_steps.is_empty() {
        out.push_str("\nBefore running the profile:\n\n");
        for s in &m.next_steps {
            out.push_str(&format!("- {s}\n"));
        }
    }
    out.push_str("\n## What was read\n\n");
    for r in &m.read {
        out.push_str(&format!("- {r}\n"));
    }
    if app.cable.found {
        out.push_str(&format!(
            "- config/cable.yml environments: {}\n",
            app.cable.environments.join(", ")
        ));
    }
    for s in &app.config.cable_settings {
        out.push_str(&format!(
            "- `config.action_cable.{} {} {}` ({}{})\n",
            s.key,
            s.op,
            s.value,
            s.at,
            if s.conditional {
                ", inside a condition"
            } else {
                ""
            }
        ));
    }
    if let Some(conn) = &app.connection {
        out.push_str(&format!(
            "- connection `{}` in `{}`: identified_by {}\n",
            conn.name,
            conn.file,
            if conn.identifiers.is_empty() {
                "nothing".to_string()
            } else {
                conn.identifiers.join(", ")
            }
        ));
    }
    out.push_str(&format!(
        "- {} channel class(es) under app/channels; {} `turbo_stream_from` and {} \
         `cable_ready_stream_from` in views\n",
        app.channels.len(),
        app.views.turbo.len(),
        app.views.cable_ready.len()
    ));
    if !app.issued_claims.is_empty() {
        out.push_str(&format!(
            "- claims the app puts in its JWTs (`JWT.encode`): {}\n",
            app.issued_claims.join(", ")
        ));
    }
    for g in &app.views.gems {
        out.push_str(&format!("- gem {g}\n"));
    }
    for f in &m.findings {
        finding(&mut out, f);
    }
    out.push_str("\n## Lines the reader did not understand\n\n");
    if app.unreadable.is_empty() {
        out.push_str("None in the connection and channel files.\n");
    } else {
        out.push_str("Each is also reported above where it matters; none was guessed at.\n\n");
        for u in &app.unreadable {
            out.push_str(&format!("- `{u}`\n"));
        }
    }
    out
}

fn finding(out: &mut String, f: &Finding) {
    out.push_str(&format!(
        "\n## {}\n\n`{}`: **{}**\n",
        f.subject,
        f.at,
        f.verdict.words()
    ));
    if !f.rules.is_empty() {
        out.push_str("\nRules used:\n\n");
        for r in &f.rules {
            out.push_str(&format!("- {r}\n"));
        }
    }
    if !f.assumptions.is_empty() {
        out.push_str("\nAssumptions:\n\n");
        for a in &f.assumptions {
            out.push_str(&format!("- {a}\n"));
        }
    }
    if !f.problems.is_empty() {
        out.push_str("\nNot expressible:\n\n");
        for p in &f.problems {
            out.push_str(&format!(
                "- {}. **What you can do:** {}.\n",
                p.why, p.remedy
            ));
        }
    }
    if !f.ignored.is_empty() {
        out.push_str(&format!(
            "\nIgnored on purpose: {}.\n",
            f.ignored.join("; ")
        ));
    }
}
