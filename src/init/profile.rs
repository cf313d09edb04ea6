//! The profile as TOML: each section with the keys that differ from ferrocable's defaults
//! (plus the few worth seeing anyway), comments that point at the report, and the channels
//! that are not expressible written as commented-out drafts. Rendering is generic over the
//! section types, so keys added to them later appear without a change here.

use std::collections::BTreeMap;

use serde::Serialize;
use toml::Value;

use super::App;
use super::mapping::{Finding, Migration, Verdict};
use crate::channels::ChannelSection;
use crate::config::RawConfig;

/// Renders the profile.
pub fn render(m: &Migration, app: &App, report_name: &str) -> String {
    let p = &m.profile;
    let d = RawConfig::default();
    let mut out = String::new();
    out.push_str(&format!(
        "# ferrocable profile written by `ferrocable init` from the Rails app in {} ({} environment).\n\
         # Every value below is explained in {report_name}; parts marked \"not expressible\" are\n\
         # commented out with the reason. Check it with: ferrocable config check --config <this file>\n",
        app.root.display(),
        app.cable.environment
    ));
    let (ok, assumed, not) = counts(&m.findings);
    out.push_str(&format!(
        "# Verdicts: {ok} mapped, {assumed} mapped with assumptions, {not} not expressible.\n"
    ));
    for step in &m.next_steps {
        out.push_str(&format!("# Before running: {step}\n"));
    }
    let sections: [Section<'_>; 6] = [
        (
            "server",
            to_value(&p.server),
            to_value(&d.server),
            &["mount_path"],
            find(m, "Rails and the mount path"),
        ),
        (
            "protocol",
            to_value(&p.protocol),
            to_value(&d.protocol),
            &["rails_version"],
            None,
        ),
        (
            "origins",
            to_value(&p.origins),
            to_value(&d.origins),
            &["check", "allow_same_origin_as_host", "allowed"],
            find(m, "request origins"),
        ),
        (
            "auth",
            to_value(&p.auth),
            to_value(&d.auth),
            &["mode"],
            m.findings
                .iter()
                .find(|f| f.subject.ends_with("Connection")),
        ),
        (
            "redis",
            to_value(&p.redis),
            to_value(&d.redis),
            &["url", "channel_prefix"],
            find(m, "config/cable.yml"),
        ),
        (
            "turbo",
            to_value(&p.turbo),
            to_value(&d.turbo),
            &["streams_channel"],
            find(m, crate::channels::TURBO_STREAMS_CHANNEL),
        ),
    ];
    // With Solid Cable or the PostgreSQL adapter and no Redis, `[redis]` is left out and the
    // adapter's comment goes with the input's section.
    let other_input = p.solid_cable.enabled || p.postgresql.enabled;
    let skip_redis = other_input && to_value(&p.redis) == to_value(&d.redis);
    let mut input_finding = None;
    for (name, value, default, always, finding) in sections {
        if name == "redis" && skip_redis {
            input_finding = finding;
            continue;
        }
        out.push('\n');
        if let Some(f) = finding {
            comment_finding(&mut out, f, report_name, false);
        }
        table(&mut out, name, &value, Some(&default), always);
    }
    // The app's database and the broadcast inputs other than Redis: only when used.
    if !p.auth.lookup.query.is_empty() || p.channels.values().any(|c| c.authorize.is_some()) {
        out.push_str(
            "\n# The app's database: DATABASE_URL fills database.url (the connection's lookup \
             and the channels'\n# authorize queries read it; values are always bound).\n",
        );
        table(
            &mut out,
            "database",
            &to_value(&p.database),
            Some(&to_value(&d.database)),
            &[],
        );
    }
    let inputs: [(&str, bool, Value, Value, &str); 3] = [
        (
            "solid_cable",
            p.solid_cable.enabled,
            to_value(&p.solid_cable),
            to_value(&d.solid_cable),
            "# Solid Cable's table: DATABASE_URL (or FERROCABLE_SOLID_CABLE__DATABASE_URL) fills database_url.",
        ),
        (
            "postgresql",
            p.postgresql.enabled,
            to_value(&p.postgresql),
            to_value(&d.postgresql),
            "# Rails' PostgreSQL adapter: DATABASE_URL (or FERROCABLE_POSTGRESQL__URL) fills url.",
        ),
        (
            "anycable",
            p.anycable.enabled,
            to_value(&p.anycable),
            to_value(&d.anycable),
            "# AnyCable's broadcasts on Redis (REDIS_URL fills redis.url).",
        ),
    ];
    for (name, enabled, value, default, note) in inputs {
        if enabled {
            out.push('\n');
            if let Some(f) = input_finding.take() {
                comment_finding(&mut out, f, report_name, false);
            }
            out.push_str(note);
            out.push('\n');
            table(&mut out, name, &value, Some(&default), &["enabled"]);
        }
    }
    let default_channel = to_value(&ChannelSection::default());
    for f in m
        .findings
        .iter()
        .filter(|f| is_channel_finding(f) && f.subject != crate::channels::TURBO_STREAMS_CHANNEL)
    {
        out.push('\n');
        comment_finding(&mut out, f, report_name, true);
        if let Some(section) = p.channels.get(&f.subject) {
            table(
                &mut out,
                &format!("channels.{}", key(&f.subject)),
                &to_value(section),
                Some(&default_channel),
                &["streams"],
            );
        } else if let Some(draft) = m.drafts.get(&f.subject) {
            let mut text = String::new();
            table(
                &mut text,
                &format!("channels.{}", key(&f.subject)),
                &to_value(draft),
                Some(&default_channel),
                &["streams"],
            );
            out.push_str("# A draft, as far as it goes (commented out: not expressible):\n");
            for line in text.lines() {
                out.push_str("# ");
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

/// Tables written inline (`claims_in = { role = [...] }`); any other table gets a header.
const INLINE_TABLES: &[&str] = &["params_match", "claims_in"];

/// A top-level section: name, value, default value, keys always shown, its finding.
type Section<'a> = (&'a str, Value, Value, &'a [&'a str], Option<&'a Finding>);

fn is_channel_finding(f: &Finding) -> bool {
    f.subject.contains("Channel")
        || f.subject.starts_with("ApplicationCable::Channel")
        || f.subject.ends_with("::Stream")
}

fn find<'a>(m: &'a Migration, subject: &str) -> Option<&'a Finding> {
    m.findings.iter().find(|f| f.subject == subject)
}

/// (mapped, with assumptions, not expressible)
pub fn counts(findings: &[Finding]) -> (usize, usize, usize) {
    let n = |v| findings.iter().filter(|f| f.verdict == v).count();
    (
        n(Verdict::Mapped),
        n(Verdict::Assumptions),
        n(Verdict::NotExpressible),
    )
}

fn comment_finding(out: &mut String, f: &Finding, report_name: &str, heading: bool) {
    if heading {
        out.push_str(&format!(
            "# {} ({}): {}.",
            f.subject,
            f.at,
            f.verdict.words()
        ));
    } else {
        out.push_str(&format!("# {}: {}.", f.subject, f.verdict.words()));
    }
    out.push_str(&format!(" See \"{}\" in {report_name}.\n", f.subject));
    for r in &f.rules {
        out.push_str(&format!("#   {}\n", one_line(r)));
    }
    if !f.assumptions.is_empty() {
        out.push_str(&format!(
            "#   {} assumption(s) to check in the report.\n",
            f.assumptions.len()
        ));
    }
    for p in &f.problems {
        out.push_str(&format!("#   NOT EXPRESSIBLE: {}\n", one_line(&p.why)));
    }
}

fn one_line(s: &str) -> String {
    s.replace('\n', " ")
}

fn to_value<T: Serialize>(v: &T) -> Value {
    Value::try_from(v).unwrap_or(Value::Table(toml::map::Map::new()))
}

/// A TOML key, quoted unless bare.
fn key(k: &str) -> String {
    if !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        k.to_string()
    } else {
        Value::String(k.to_string()).to_string()
    }
}

/// Writes `[header]` with the keys that differ from `default` (and those in `always`);
/// tables of tables become subtables, arrays of tables `[[...]]` blocks.
fn table(out: &mut String, header: &str, value: &Value, default: Option<&Value>, always: &[&str]) {
    let Value::Table(map) = value else { return };
    let defaults = default.and_then(Value::as_table);
    let mut subtables: BTreeMap<String, (&Value, Option<&Value>)> = BTreeMap::new();
    let mut arrays: Vec<(&String, &Vec<Value>)> = Vec::new();
    out.push_str(&format!("[{header}]\n"));
    for (k, v) in map {
        let is_default = defaults.and_then(|d| d.get(k)) == Some(v);
        match v {
            Value::Table(t) if !t.is_empty() && t.values().all(Value::is_table) => {
                for (name, sub) in t {
                    subtables.insert(format!("{header}.{}.{}", key(k), key(name)), (sub, None));
                }
            }
            // A section of its own (`signed_stream`, `cookie`), not a map of values
            // (`claims_in`); left out while it is all defaults.
            Value::Table(t) if !t.is_empty() && !INLINE_TABLES.contains(&k.as_str()) => {
                if !is_default {
                    let default = defaults.and_then(|d| d.get(k));
                    subtables.insert(format!("{header}.{}", key(k)), (v, default));
                }
            }
            Value::Array(items) if !items.is_empty() && items.iter().all(Value::is_table) => {
                arrays.push((k, items));
            }
            _ if is_default && !always.contains(&k.as_str()) => {}
            Value::Boolean(false) | Value::Integer(0) if defaults.is_none() => {}
            Value::Array(a) if a.is_empty() && defaults.is_none() => {}
            Value::String(t) if t.is_empty() && defaults.is_none() => {}
            Value::Table(t) if t.is_empty() && !always.contains(&k.as_str()) => {}
            _ => out.push_str(&format!("{} = {v}\n", key(k))),
        }
    }
    for (k, items) in arrays {
        for item in items {
            out.push_str(&format!("\n[[{header}.{}]]\n", key(k)));
            if let Value::Table(t) = item {
                for (ik, iv) in t {
                    out.push_str(&format!("{} = {iv}\n", key(ik)));
                }
            }
        }
    }
    for (h, (sub, default)) in subtables {
        out.push('\n');
        let always: &[&str] = if h.ends_with("auth.cookie") {
            &["name", "kind"]
        } else {
            &[]
        };
        table(out, &h, sub, default, always);
    }
}
