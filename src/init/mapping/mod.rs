//! From what was read to a profile: each part of the app (the adapter, the origins, the
//! connection, every channel) becomes configuration and a [`Finding`]: mapped (with the
//! rules used), mapped with assumptions (listed), or not expressible (why, and what to do).

pub mod auth;
pub mod authorize;
pub mod channel;
pub mod cookie;
mod effects;
mod inputs;
mod jwt;
pub mod payload;
pub mod rules;
pub mod signed;
pub mod sql;

use std::collections::BTreeMap;

use ferrocable_rails::global_id_app_name;

use super::App;
use super::value::Value;
use crate::channels::ChannelSection;
use crate::config::RawConfig;

/// How well a part of the app maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    /// Mapped, with the rules used.
    Mapped,
    /// Mapped, with assumptions the user should check.
    Assumptions,
    /// Not expressible in this ferrocable.
    NotExpressible,
}

impl Verdict {
    /// Words for the report and the profile's comments.
    pub fn words(self) -> &'static str {
        match self {
            Verdict::Mapped => "mapped",
            Verdict::Assumptions => "mapped with assumptions",
            Verdict::NotExpressible => "not expressible",
        }
    }
}

/// Why something cannot be expressed, and what the user can do.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    /// Why.
    pub why: String,
    /// What to do.
    pub remedy: String,
}

/// The outcome for one part of the app.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// What it is about (`ChatChannel`, `cable.yml`).
    pub subject: String,
    /// Where (`app/channels/chat_channel.rb:3`).
    pub at: String,
    /// The verdict (set by [`Finding::settle`]).
    pub verdict: Verdict,
    /// Rules applied, in order.
    pub rules: Vec<String>,
    /// Assumptions made.
    pub assumptions: Vec<String>,
    /// What cannot be expressed.
    pub problems: Vec<Problem>,
    /// What was ignored on purpose (logging).
    pub ignored: Vec<String>,
}

impl Finding {
    /// An empty finding.
    pub fn new(subject: &str, at: &str) -> Finding {
        Finding {
            subject: subject.to_string(),
            at: at.to_string(),
            verdict: Verdict::Mapped,
            rules: Vec::new(),
            assumptions: Vec::new(),
            problems: Vec::new(),
            ignored: Vec::new(),
        }
    }

    /// Records a rule.
    pub fn rule(&mut self, text: &str) {
        if !self.rules.iter().any(|r| r == text) {
            self.rules.push(text.to_string());
        }
    }

    /// Records an assumption.
    pub fn assume(&mut self, text: String) {
        if !self.assumptions.contains(&text) {
            self.assumptions.push(text);
        }
    }

    /// Records a problem.
    pub fn problem(&mut self, p: Problem) {
        if !self.problems.contains(&p) {
            self.problems.push(p);
        }
    }

    /// Records something ignored on purpose.
    pub fn ignore(&mut self, text: &str) {
        if !self.ignored.iter().any(|i| i == text) {
            self.ignored.push(text.to_string());
        }
    }

    /// Sets the verdict from what was recorded.
    pub fn settle(&mut self) {
        self.verdict = if !self.problems.is_empty() {
            Verdict::NotExpressible
        } else if !self.assumptions.is_empty() {
            Verdict::Assumptions
        } else {
            Verdict::Mapped
        };
    }
}

/// The whole migration: the profile and what the report says about it.
#[derive(Debug, Clone)]
pub struct Migration {
    /// The profile (what validates).
    pub profile: RawConfig,
    /// Channels that could not be expressed, drafted as far as they go (written commented out).
    pub drafts: BTreeMap<String, ChannelSection>,
    /// Findings in report order: app settings, adapter, origins, connection, channels.
    pub findings: Vec<Finding>,
    /// Facts for the report's "What was read" section.
    pub read: Vec<String>,
    /// Things to do before running the profile (environment variables).
    pub next_steps: Vec<String>,
}

/// Maps the app read by [`super::read_app`].
pub fn map(app: &App) -> Migration {
    let mut profile = RawConfig::default();
    let mut read = Vec::new();
    let mut next_steps = Vec::new();
    let mut findings = Vec::new();

    findings.push(settings(app, &mut profile, &mut read));
    let mut adapter = Finding::new(
        "config/cable.yml",
        &format!("config/cable.yml ({})", app.cable.environment),
    );
    inputs::map(&mut inputs::Input {
        cable: &app.cable,
        database: &app.database_yml,
        profile: &mut profile,
        f: &mut adapter,
        next: &mut next_steps,
    });
    adapter.settle();
    findings.push(adapter);
    findings.push(origins(app, &mut profile));

    let gid_app = match &app.config.global_id_app {
        Some(Value::Text(t)) => t.clone(),
        _ => app
            .config
            .app_module
            .as_deref()
            .map(global_id_app_name)
            .unwrap_or_else(|| "app".into()),
    };
    read.push(format!("GlobalID app name: {gid_app:?}"));
    if let Some(store) = &app.config.session_store {
        read.push(format!(
            "session store :{}{} ({})",
            store.kind,
            store
                .key
                .as_ref()
                .map(|k| format!(", key {k}"))
                .unwrap_or_default(),
            store.at
        ));
    }
    if app.models.has_schema() {
        read.push("db/schema.rb (tables and column types for the queries)".into());
    }
    let mut auth = auth::map(
        app.connection.as_ref(),
        &auth::AuthContext {
            issued_claims: &app.issued_claims,
            gid_app: &gid_app,
            cookies: cookie::CookieContext {
                config: &app.config,
                models: &app.models,
            },
        },
    );
    profile.auth = auth.section.clone();
    match profile.auth.mode {
        crate::auth::AuthMode::Jwt => next_steps.push(
            "export SECRET_KEY_BASE (ferrocable verifies the JWT with it; see the connection's \
             rules for another key)"
                .into(),
        ),
        crate::auth::AuthMode::Cookie => next_steps.push(
            "export SECRET_KEY_BASE (the app's: ferrocable verifies its cookies with it)".into(),
        ),
        crate::auth::AuthMode::None => {}
    }

    let acronyms: Vec<&str> = app.config.acronyms.iter().map(String::as_str).collect();
    let mut drafts = BTreeMap::new();
    let mut channel_findings = Vec::new();
    let identifier_names: Vec<String> = profile
        .auth
        .identifiers
        .iter()
        .map(|i| i.name.clone())
        .collect();
    // Signed-stream channels compile against some key; the real one comes from SECRET_KEY_BASE.
    let signed = crate::channels::SignedStreamsSettings::compile(
        &crate::channels::SignedStreamsSection {
            secret_key_base: "placeholder-for-the-check".into(),
            ..Default::default()
        },
        &crate::channels::TurboSection::default(),
        ferrocable_rails::RailsVersion::V7_2,
    )
    .ok();
    // Predicates compile against a database that is never opened.
    let check_database = crate::database::Database::compile(&crate::database::DatabaseSection {
        url: "sqlite3::memory:".into(),
        ..Default::default()
    })
    .ok()
    .flatten();
    let ctx = channel::ChannelContext {
        info: &auth.info,
        acronyms: &acronyms,
        models: &app.models,
    };
    let mut app_stock_turbo = None;
    for facts in &app.channels {
        let mut mapped = channel::map(facts, &ctx);
        // The same check `config check` makes: a section that does not compile is not kept.
        if mapped.finding.verdict != Verdict::NotExpressible
            && let Some(signed) = &signed
            && let Err(e) = crate::channels::ChannelSpec::compile(
                &facts.name,
                &mapped.section,
                &crate::channels::CompileContext {
                    identifiers: &identifier_names,
                    global_id_app: Some(&gid_app),
                    database: check_database.as_ref(),
                    signed_streams: signed,
                },
            )
        {
            mapped.finding.problem(Problem {
                why: format!("the section does not validate: {e}"),
                remedy: "report this to ferrocable: the mapping should not produce it".into(),
            });
            mapped.finding.settle();
        }
        if facts.name == crate::channels::TURBO_STREAMS_CHANNEL && is_stock_turbo(&mapped) {
            // The app's own copy of the stock channel: the built-in one serves it.
            app_stock_turbo = Some(format!("{}:{}", facts.file, facts.line));
            continue;
        }
        if mapped.finding.verdict == Verdict::NotExpressible {
            drafts.insert(facts.name.clone(), mapped.section);
        } else {
            profile.channels.insert(facts.name.clone(), mapped.section);
        }
        channel_findings.push(mapped.finding);
    }
    channel_findings.extend(super::views::map(
        &app.views,
        &app.config,
        &app.turbo_guards,
        app_stock_turbo.as_deref(),
        &mut profile,
    ));
    channel_findings.sort_by(|a, b| a.subject.cmp(&b.subject));
    // Columns the channels read from the connection's row (`{claims.name}`).
    if let Some(lookup) = auth.lookup.as_mut()
        && auth.info.from_row
    {
        let before = lookup.columns.len();
        for column in claims_used(&profile.channels) {
            if !lookup.columns.contains(&column) {
                lookup.columns.push(column);
            }
        }
        profile.auth.lookup.query = lookup.query();
        if lookup.columns.len() > before {
            auth.finding.rule(&format!(
                "the channels read {} of the row → [auth.lookup] `{}`",
                lookup.columns[before..].join(", "),
                profile.auth.lookup.query
            ));
        }
    }
    findings.push(auth.finding.clone());
    findings.extend(channel_findings);
    global_id(app, &gid_app, &mut profile);
    if !profile.auth.lookup.query.is_empty()
        || profile.channels.values().any(|c| c.authorize.is_some())
    {
        next_steps.push(
            "export DATABASE_URL (the app's database: the connection's lookup and the channels' \
             authorize queries read it)"
                .into(),
        );
    }
    Migration {
        profile,
        drafts,
        findings,
        read,
        next_steps,
    }
}

/// A `Turbo::StreamsChannel` in the app that only does what the gem's does.
fn is_stock_turbo(mapped: &channel::MappedChannel) -> bool {
    let stock = ChannelSection {
        signed_stream: Some(crate::channels::SignedStreamSection {
            verifier: "turbo".into(),
            ..Default::default()
        }),
        ..ChannelSection::default()
    };
    mapped.finding.verdict == Verdict::Mapped && mapped.section == stock
}

/// `claims.<name>` placeholders and binds in the channels.
fn claims_used(channels: &BTreeMap<String, ChannelSection>) -> Vec<String> {
    let mut texts: Vec<String> = Vec::new();
    for c in channels.values() {
        texts.extend(c.streams.iter().cloned());
        for a in c.actions.values() {
            texts.extend(a.broadcast_to.iter().cloned());
            texts.extend(a.payload.iter().cloned());
        }
        if let Some(a) = &c.authorize {
            texts.extend(
                a.bind
                    .iter()
                    .map(|b| format!("{{{}}}", b.split(':').next().unwrap_or(""))),
            );
        }
    }
    placeholder_names(texts.iter().map(String::as_str), "claims")
}

/// The names in `texts`' `{<prefix>.<name>}` placeholders, each once, in order of first use.
fn placeholder_names<'a>(texts: impl IntoIterator<Item = &'a str>, prefix: &str) -> Vec<String> {
    let open = format!("{{{prefix}.");
    let mut out: Vec<String> = Vec::new();
    for t in texts {
        for piece in t.split(open.as_str()).skip(1) {
            if let Some((name, _)) = piece.split_once('}')
                && !out.iter().any(|o| o == name)
            {
                out.push(name.to_string());
            }
        }
    }
    out
}

/// `auth.app_module` (or `global_id_app`) when an identifier or a stream name is a GlobalID.
fn global_id(app: &App, gid_app: &str, profile: &mut RawConfig) {
    let needed = profile.auth.identifiers.iter().any(|i| i.model.is_some())
        || profile.channels.values().any(|c| {
            c.streams
                .iter()
                .chain(c.actions.values().filter_map(|a| a.broadcast_to.as_ref()))
                .any(|s| s.contains("{gid:"))
        });
    if !needed {
        return;
    }
    match (&app.config.global_id_app, &app.config.app_module) {
        (Some(Value::Text(_)), _) | (_, None) => profile.auth.global_id_app = gid_app.to_string(),
        (_, Some(module)) => profile.auth.app_module = module.clone(),
    }
}

/// Rails release, mount path: `[protocol]` and `[server]`.
fn settings(app: &App, profile: &mut RawConfig, read: &mut Vec<String>) -> Finding {
    let mut f = Finding::new("Rails and the mount path", "config/application.rb");
    let version = app
        .config
        .actioncable_version
        .as_ref()
        .map(|v| (v.clone(), "actioncable in Gemfile.lock"))
        .or_else(|| {
            app.config
                .load_defaults
                .as_ref()
                .map(|v| (v.clone(), "config.load_defaults"))
        });
    match version {
        Some((v, from)) => {
            read.push(format!("Rails release: {v} ({from})"));
            let minor: String = v.split('.').take(2).collect::<Vec<_>>().join(".");
            let (chosen, note) = match minor.as_str() {
                "6.1" | "7.0" | "7.1" | "7.2" | "8.0" | "8.1" => (minor.clone(), None),
                m if m.starts_with("8.") => (
                    "8.1".to_string(),
                    Some(format!(
                        "{m} is newer than the releases ferrocable lists; 8.1's wire rules are used"
                    )),
                ),
                m => (
                    "6.1".to_string(),
                    Some(format!(
                        "{m} is older than 6.1; 6.1's wire rules are the nearest"
                    )),
                ),
            };
            profile.protocol.rails_version = chosen.clone();
            f.rule(&format!(
                "{from} {v} → protocol.rails_version = \"{chosen}\""
            ));
            if from == "config.load_defaults" {
                f.assume(format!(
                    "no Gemfile.lock: the running release is taken from load_defaults {v}"
                ));
            }
            if let Some(n) = note {
                f.assume(n);
            }
        }
        None => f.assume(
            "neither Gemfile.lock nor load_defaults names the Rails release; 7.2 is assumed".into(),
        ),
    }
    load_defaults(app, profile, &mut f);
    if let Some(ld) = &app.config.load_defaults {
        read.push(format!("config.load_defaults {ld}"));
    }
    match app.config.last("mount_path") {
        Some(s) => match &s.value {
            Value::Text(p) => {
                profile.server.mount_path = p.clone();
                f.rule(&format!("{}: mount_path {p:?} → server.mount_path", s.at));
            }
            Value::Nil => match &app.config.routes_mount {
                Some((p, at)) => {
                    profile.server.mount_path = p.clone();
                    f.rule(&format!(
                        "{at}: mount ActionCable.server => {p:?} → server.mount_path"
                    ));
                    f.assume(
                        "the app mounts Action Cable in its routes, which Rails does not anchor: \
                         /cable/anything also reaches it there; ferrocable serves the exact path"
                            .into(),
                    );
                }
                None => f.assume(format!(
                    "{}: mount_path = nil and no `mount ActionCable.server` in routes: the \
                     default \"/cable\" is kept",
                    s.at
                )),
            },
            other => f.assume(format!(
                "{}: mount_path is {other}; the default \"/cable\" is kept",
                s.at
            )),
        },
        None => {
            if let Some((p, at)) = &app.config.routes_mount {
                profile.server.mount_path = p.clone();
                f.rule(&format!(
                    "{at}: mount ActionCable.server => {p:?} → server.mount_path"
                ));
            } else {
                f.rule("no mount_path setting: Rails' default \"/cable\"");
            }
        }
    }
    if let Some(url) = app.config.last("url") {
        f.rule(&format!(
            "{}: config.action_cable.url = {} is where clients connect: route that path to ferrocable",
            url.at, url.value
        ));
    }
    for key in [
        "worker_pool_size",
        "log_tags",
        "connection_class",
        "health_check_path",
    ] {
        if let Some(s) = app.config.cable_settings.iter().find(|s| s.key == key) {
            f.assume(format!(
                "{}: config.action_cable.{key} is not reproduced",
                s.at
            ));
        }
    }
    f.settle();
    f
}

/// `config.load_defaults` and `escape_js_separators_in_json` → `[protocol]`: they decide the
/// key digest of signed names and how U+2028/U+2029 are written.
fn load_defaults(app: &App, profile: &mut RawConfig, f: &mut Finding) {
    let rails = ferrocable_rails::RailsVersion::parse(&profile.protocol.rails_version);
    if let Some(ld) = &app.config.load_defaults {
        let parsed = ferrocable_rails::RailsVersion::parse(ld);
        match (parsed, rails) {
            (Some(l), Some(r)) if l == r => f.rule(&format!(
                "config.load_defaults {ld}: the same as the release (protocol.load_defaults left empty)"
            )),
            (Some(l), Some(r)) if l < r && l >= ferrocable_rails::RailsVersion::new(5, 0) => {
                profile.protocol.load_defaults = l.to_string();
                f.rule(&format!("config.load_defaults {ld} → protocol.load_defaults = \"{l}\""));
            }
            (Some(l), Some(r)) if l > r => f.assume(format!(
                "config.load_defaults {ld} is newer than the release used ({r}); left empty (the same)"
            )),
            _ => f.assume(format!("config.load_defaults {ld} is not read; left empty")),
        }
    }
    if let Some(s) = app
        .config
        .other("active_support.escape_js_separators_in_json")
    {
        match s.value.text() {
            Some(v @ ("true" | "false"))
                if rails >= Some(ferrocable_rails::RailsVersion::new(8, 1)) =>
            {
                profile.protocol.escape_js_separators_in_json = Some(v == "true");
                f.rule(&format!(
                    "{}: escape_js_separators_in_json = {v} → protocol.escape_js_separators_in_json",
                    s.at
                ));
            }
            _ => f.assume(format!(
                "{}: escape_js_separators_in_json = {} is not applied",
                s.at, s.value
            )),
        }
    }
}

/// `allowed_request_origins`, `disable_request_forgery_protection`,
/// `allow_same_origin_as_host` → `[origins]`.
fn origins(app: &App, profile: &mut RawConfig) -> Finding {
    let mut f = Finding::new("request origins", "config.action_cable");
    let mut allowed: Vec<String> = Vec::new();
    let mut set = false;
    for s in app
        .config
        .cable_settings
        .iter()
        .filter(|s| s.key == "allowed_request_origins")
    {
        if s.conditional {
            f.assume(format!(
                "{}: set inside a condition the reader cannot decide; taken as run",
                s.at
            ));
        }
        if s.op == "||=" && set {
            continue;
        }
        if s.op == "=" || s.op == "||=" {
            allowed.clear();
        }
        set = true;
        let items: Vec<&Value> = match &s.value {
            Value::List(items) => items.iter().collect(),
            one => vec![one],
        };
        for item in items {
            match origin_entry(item) {
                Ok(entry) => allowed.push(entry),
                Err(why) => f.assume(format!(
                    "{}: the origin {item} is left out: {why}; add it to origins.allowed by hand",
                    s.at
                )),
            }
        }
        f.rule(&format!(
            "{}: allowed_request_origins {} → origins.allowed",
            s.at,
            if s.op == "=" || s.op == "||=" {
                "="
            } else {
                "appended"
            }
        ));
    }
    if !set {
        f.rule(
            "no allowed_request_origins: only the same origin as the Host header (Rails' default)",
        );
    }
    // Duplicates change nothing in Rails' check (`uniq!` is common); keep the first of each.
    let mut unique: Vec<String> = Vec::new();
    for a in allowed {
        if !unique.contains(&a) {
            unique.push(a);
        }
    }
    profile.origins.allowed = unique;
    if let Some(s) = app.config.last("disable_request_forgery_protection") {
        match s.value.text() {
            Some("true") => {
                profile.origins.check = false;
                f.rule(&format!(
                    "{}: disable_request_forgery_protection = true → origins.check = false",
                    s.at
                ));
            }
            Some("false") => f.rule(&format!(
                "{}: disable_request_forgery_protection = false",
                s.at
            )),
            _ => f.assume(format!(
                "{}: disable_request_forgery_protection is {}; the check stays on",
                s.at, s.value
            )),
        }
    }
    if let Some(s) = app.config.last("allow_same_origin_as_host") {
        match s.value.text() {
            Some(v @ ("true" | "false")) => {
                profile.origins.allow_same_origin_as_host = v == "true";
                f.rule(&format!("{}: allow_same_origin_as_host = {v}", s.at));
            }
            _ => f.assume(format!(
                "{}: allow_same_origin_as_host is {}; true is kept",
                s.at, s.value
            )),
        }
    }
    f.settle();
    f
}

/// One allowed origin in ferrocable's syntax: the exact string, or `/regex/` (Ruby regexp
/// flags become inline flags; the result must compile).
fn origin_entry(value: &Value) -> Result<String, String> {
    match value {
        Value::Text(t) => Ok(t.clone()),
        Value::Regex(src, flags) => {
            let mut inline = String::new();
            for (ruby, rust) in [('i', 'i'), ('m', 's'), ('x', 'x')] {
                if flags.contains(ruby) {
                    inline.push(rust);
                }
            }
            let pattern = if inline.is_empty() {
                src.clone()
            } else {
                format!("(?{inline}){src}")
            };
            regex::Regex::new(&pattern)
                .map_err(|e| format!("the regexp does not compile in Rust: {e}"))?;
            Ok(format!("/{pattern}/"))
        }
        Value::Env { name, .. } => Err(format!("it comes from ENV[{name:?}]")),
        Value::NeedsValue(src) => Err(format!("it needs a value ({src})")),
        other => Err(format!("{other} is not an origin")),
    }
}
