//! `ferrocable init --rails-root DIR`: the migration assistant. It reads a Rails app without
//! running any of it (the [`ruby`] pattern reader, ERB evaluated statically), turns what it
//! finds into facts ([`analysis`]), maps the facts to a profile with a verdict for every part
//! ([`mapping`]), and writes the profile ([`profile`], validated like any config) and a
//! report ([`report`]).
//!
//! Reading: `config/cable.yml` ([`cable_yml`]), `config/application.rb`, the environment's
//! file and initializers ([`app_config`]), the connection and channels under `app/channels`
//! ([`classes`], [`interp`], [`analysis`]), views ([`views`]).

pub mod analysis;
pub mod app_config;
pub mod cable_yml;
mod calls;
pub mod classes;
pub mod interp;
mod known;
pub mod mapping;
pub mod models;
pub mod profile;
pub mod report;
pub mod ruby;
pub mod sym;
mod symops;
pub mod value;
pub mod views;

use std::path::{Path, PathBuf};

use analysis::{ChannelFacts, ConnectionFacts};
use app_config::AppConfig;
use cable_yml::CableYml;
use ruby::Expr;
use views::ViewFacts;

use crate::config::Settings;

/// Everything read from the app.
#[derive(Debug, Clone)]
pub struct App {
    /// The Rails root as given.
    pub root: PathBuf,
    /// cable.yml for the environment.
    pub cable: CableYml,
    /// config/database.yml for the environment, as far as it reads statically.
    pub database_yml: CableYml,
    /// Configuration around Action Cable.
    pub config: AppConfig,
    /// The connection class, if any.
    pub connection: Option<ConnectionFacts>,
    /// Channels, sorted by name.
    pub channels: Vec<ChannelFacts>,
    /// Turbo and CableReady in views.
    pub views: ViewFacts,
    /// Keys of `JWT.encode` payloads found in the app (what tokens carry).
    pub issued_claims: Vec<String>,
    /// Statements the reader could not read, in files it read (`file:line: text`).
    pub unreadable: Vec<String>,
    /// The app's models (tables, associations), for the SQL of lookups and predicates.
    pub models: models::Models,
    /// Modules prepended to `Turbo::StreamsChannel`: name, where, and the paths through
    /// their `subscribed` (when the reader found it).
    pub turbo_guards: Vec<TurboGuard>,
}

/// A module the app prepends to (or includes in) `Turbo::StreamsChannel`.
#[derive(Debug, Clone)]
pub struct TurboGuard {
    /// The module.
    pub module: String,
    /// Where it is prepended (`file:line`).
    pub at: String,
    /// Every path through its `subscribed`, if the reader found the module.
    pub paths: Option<Vec<interp::Path>>,
}

/// What `init` reads and where.
#[derive(Debug, Clone)]
pub struct Options {
    /// The Rails root.
    pub rails_root: PathBuf,
    /// The environment (`production`).
    pub environment: String,
    /// Channel directories relative to the root (`app/channels`).
    pub channel_dirs: Vec<String>,
}

/// Reads the app.
pub fn read_app(opts: &Options) -> App {
    let root = &opts.rails_root;
    let mut config = app_config::read(root, &opts.environment);
    let files: Vec<String> = opts
        .channel_dirs
        .iter()
        .flat_map(|d| app_config::ruby_files_under(root, d))
        .collect();
    let index = classes::ClassIndex::new(root, &files);
    for class in index.all() {
        let file = ruby::SourceFile {
            namespaces: vec![class.ns.clone()],
            statements: Vec::new(),
        };
        app_config::collect_constants(&file, &mut config.scope);
    }
    let cable = cable_yml::read(root, &opts.environment, &config.scope);
    let connection = analysis::connection(&index, &config.scope);
    let mut channels: Vec<ChannelFacts> = index
        .all()
        .iter()
        .filter(|c| files.contains(&c.file) && analysis::is_channel(&index, c))
        .map(|c| analysis::channel(&index, c, connection.as_ref(), &config.scope))
        .collect();
    channels.sort_by(|a, b| a.name.cmp(&b.name));
    let views = views::read(root, &config.gems);
    let mut unreadable = Vec::new();
    for class in index.all() {
        let mut bodies = vec![&class.ns.statements];
        bodies.extend(class.ns.defs.iter().map(|d| &d.body));
        for body in bodies {
            for s in body {
                if let Expr::Unknown(text, line) = &s.expr {
                    unreadable.push(format!("{}:{line}: {text}", class.file));
                }
            }
        }
    }
    unreadable.sort();
    unreadable.dedup();
    let turbo_guards = config
        .turbo_patches
        .iter()
        .map(|(module, at)| TurboGuard {
            module: module.clone(),
            at: at.clone(),
            paths: analysis::guard(&index, module, &config.scope),
        })
        .collect();
    App {
        root: root.clone(),
        database_yml: cable_yml::read_file(
            root,
            "config/database.yml",
            &opts.environment,
            &config.scope,
        ),
        cable,
        config,
        connection,
        channels,
        views,
        issued_claims: issued_claims(root),
        unreadable,
        models: models::Models::read(root),
        turbo_guards,
    }
}

/// Keys of the hash literals passed to `JWT.encode` anywhere under `app/` and `lib/`.
fn issued_claims(root: &Path) -> Vec<String> {
    let mut keys = Vec::new();
    for dir in ["app", "lib"] {
        for rel in app_config::ruby_files_under(root, dir) {
            let Ok(text) = std::fs::read_to_string(root.join(&rel)) else {
                continue;
            };
            if !text.contains("JWT.encode") {
                continue;
            }
            let file = ruby::parse_file(&text);
            let mut bodies: Vec<&ruby::Body> = vec![&file.statements];
            for ns in &file.namespaces {
                bodies.push(&ns.statements);
                bodies.extend(ns.defs.iter().map(|d| &d.body));
            }
            for body in bodies {
                collect_encoded_keys(body, &mut keys);
            }
        }
    }
    keys.sort();
    keys.dedup();
    keys
}

fn collect_encoded_keys(body: &ruby::Body, keys: &mut Vec<String>) {
    // A payload built as a hash literal in the same method, or passed inline.
    let mut hashes: Vec<(Option<String>, &Expr)> = Vec::new();
    fn walk<'a>(
        e: &'a Expr,
        out: &mut Vec<(Option<String>, &'a Expr)>,
        encoded: &mut Vec<&'a Expr>,
    ) {
        match e {
            Expr::Assign(t, _, v) => {
                if let (Expr::Name(n), Expr::Hash(_)) = (&**t, &**v) {
                    out.push((Some(n.clone()), v));
                }
                walk(v, out, encoded);
            }
            Expr::Call(c) => {
                if c.name == "encode"
                    && c.recv.as_ref().and_then(Expr::dotted).as_deref() == Some("JWT")
                    && let Some(first) = c.args.first()
                {
                    encoded.push(first);
                }
                for a in &c.args {
                    walk(a, out, encoded);
                }
                if let Some(r) = &c.recv {
                    walk(r, out, encoded);
                }
                if let Some(b) = &c.block {
                    for s in &b.body {
                        walk(&s.expr, out, encoded);
                    }
                }
            }
            Expr::If(c, a, b) => {
                walk(c, out, encoded);
                for s in a.iter().chain(b) {
                    walk(&s.expr, out, encoded);
                }
            }
            Expr::Begin(b, _, _) => {
                for s in b {
                    walk(&s.expr, out, encoded);
                }
            }
            Expr::Return(Some(v)) => walk(v, out, encoded),
            _ => {}
        }
    }
    let mut encoded = Vec::new();
    for s in body {
        walk(&s.expr, &mut hashes, &mut encoded);
    }
    for payload in encoded {
        let hash = match payload {
            Expr::Hash(_) => Some(payload),
            Expr::Name(n) => hashes
                .iter()
                .find(|(name, _)| name.as_deref() == Some(n))
                .map(|(_, h)| *h),
            _ => None,
        };
        if let Some(Expr::Hash(pairs)) = hash {
            keys.extend(pairs.iter().filter_map(|(k, _)| k.literal_text()));
        }
    }
}

/// The result of a run: the texts written and whether the profile validates.
#[derive(Debug)]
pub struct Outcome {
    /// The profile's TOML.
    pub profile: String,
    /// The report's Markdown.
    pub report: String,
    /// Verdict counts: (mapped, with assumptions, not expressible).
    pub counts: (usize, usize, usize),
}

/// Reads, maps and renders; the profile is checked with the same code as
/// `ferrocable config check` (with a placeholder secret when it relies on SECRET_KEY_BASE).
pub fn run(opts: &Options, profile_name: &str, report_name: &str) -> Result<Outcome, String> {
    if !opts.rails_root.is_dir() {
        return Err(format!("{} is not a directory", opts.rails_root.display()));
    }
    let app = read_app(opts);
    let migration = mapping::map(&app);
    let profile_text = profile::render(&migration, &app, report_name);
    let parsed: crate::config::RawConfig = toml::from_str(&profile_text)
        .map_err(|e| format!("internal error: the generated profile does not parse: {e}"))?;
    if parsed != migration.profile {
        return Err("internal error: the generated profile does not read back as built".into());
    }
    let mut check = parsed;
    // SECRET_KEY_BASE fills both at run time.
    if check.auth.secret.is_empty() {
        check.auth.secret = "placeholder-for-the-check".into();
    }
    if check.signed_streams.secret_key_base.is_empty() {
        check.signed_streams.secret_key_base = "placeholder-for-the-check".into();
    }
    // DATABASE_URL and REDIS_URL fill these at run time; the check never connects.
    for url in [
        &mut check.database.url,
        &mut check.solid_cable.database_url,
        &mut check.postgresql.url,
    ] {
        if url.is_empty() {
            *url = "postgres://placeholder-for-the-check/app".into();
        }
    }
    if check.redis.url.is_empty() && check.anycable.enabled {
        check.redis.url = "redis://placeholder-for-the-check".into();
    }
    Settings::from_raw(&check)
        .map_err(|e| format!("internal error: the generated profile is invalid: {e}"))?;
    let report_text = report::render(&migration, &app, profile_name);
    let count = |v| migration.findings.iter().filter(|f| f.verdict == v).count();
    Ok(Outcome {
        profile: profile_text,
        report: report_text,
        counts: (
            count(mapping::Verdict::Mapped),
            count(mapping::Verdict::Assumptions),
            count(mapping::Verdict::NotExpressible),
        ),
    })
}
