//! The app's configuration around Action Cable: `Gemfile.lock` (the Rails release and the
//! gems that matter), `config/application.rb` (module, `load_defaults`, GlobalID app),
//! `config.action_cable.*` wherever production sets it (application.rb, then
//! `environments/<env>.rb`, then initializers, in Rails' load order), the routes' `mount`,
//! and inflection acronyms.

use std::path::{Path, PathBuf};

use super::ruby::{Body, Expr, SourceFile, Stmt, parse_file};
use super::value::{Scope, Value};

/// One `config.action_cable.<key>` statement.
#[derive(Debug, Clone, PartialEq)]
pub struct CableSetting {
    /// The key after `action_cable.`.
    pub key: String,
    /// `=`, `<<` (append one), `+=` (append a list).
    pub op: &'static str,
    /// Its static value.
    pub value: Value,
    /// Where: `config/application.rb:12`.
    pub at: String,
    /// Inside an `if`/`unless` the reader cannot decide.
    pub conditional: bool,
}

/// What the app's configuration says.
#[derive(Debug, Clone, Default)]
pub struct AppConfig {
    /// `module Campfire` around `class Application`.
    pub app_module: Option<String>,
    /// `config.load_defaults 7.2`
    pub load_defaults: Option<String>,
    /// `actioncable (7.2.2.1)` in Gemfile.lock.
    pub actioncable_version: Option<String>,
    /// Gems from Gemfile.lock that change the mapping (turbo-rails, cable_ready, ...).
    pub gems: Vec<(String, String)>,
    /// `config.global_id.app = "..."`
    pub global_id_app: Option<Value>,
    /// Every `config.action_cable.*` statement, in load order.
    pub cable_settings: Vec<CableSetting>,
    /// `mount ActionCable.server => "/path"` in config/routes.rb.
    pub routes_mount: Option<(String, String)>,
    /// `inflect.acronym "API"`
    pub acronyms: Vec<String>,
    /// Other settings the mapping reads (`turbo.signed_stream_verifier_key`,
    /// `active_support.escape_js_separators_in_json`), keyed without `config.`.
    pub other_settings: Vec<CableSetting>,
    /// `Turbo::StreamsChannel.prepend SomeModule` (and `include`): changes to the stock channel.
    pub turbo_patches: Vec<(String, String)>,
    /// `config.session_store :cookie_store, key: "_app_session"`, the last one read.
    pub session_store: Option<SessionStore>,
    /// Constants with a static value, for evaluating the rest.
    pub scope: Scope,
    /// What could not be read.
    pub problems: Vec<String>,
}

/// The session store the app configures.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionStore {
    /// `cookie_store`, `active_record_store`, `cache_store`, `redis_store`, `disabled`.
    pub kind: String,
    /// `key:`, when given.
    pub key: Option<Value>,
    /// `file:line`
    pub at: String,
}

impl AppConfig {
    /// The last value given to one of [`AppConfig::other_settings`].
    pub fn other(&self, key: &str) -> Option<&CableSetting> {
        self.other_settings.iter().rev().find(|s| s.key == key)
    }

    /// The effective value of a setting that is assigned (the last `=` wins).
    pub fn last(&self, key: &str) -> Option<&CableSetting> {
        self.cable_settings
            .iter()
            .rev()
            .find(|s| s.key == key && s.op == "=")
    }
}

/// A parsed Ruby file and its path relative to the app.
#[derive(Debug, Clone)]
pub struct RubyFile {
    /// Relative path.
    pub path: String,
    /// Its classes, modules and statements.
    pub parsed: SourceFile,
}

/// Reads and parses a Ruby file under `root`; `None` when absent.
pub fn read_ruby(root: &Path, rel: &str) -> Option<RubyFile> {
    let text = std::fs::read_to_string(root.join(rel)).ok()?;
    Some(RubyFile {
        path: rel.to_string(),
        parsed: parse_file(&text),
    })
}

/// Every `*.rb` under `root/rel`, sorted, as relative paths.
pub fn ruby_files_under(root: &Path, rel: &str) -> Vec<String> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rb") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&root.join(rel), &mut files);
    let mut rels: Vec<String> = files
        .iter()
        .filter_map(|p| p.strip_prefix(root).ok())
        .map(|p| p.to_string_lossy().replace('\\', "/"))
        .collect();
    rels.sort();
    rels
}

/// Reads the configuration for `environment`.
pub fn read(root: &Path, environment: &str) -> AppConfig {
    let mut config = AppConfig {
        scope: Scope {
            rails_env: environment.to_string(),
            ..Scope::default()
        },
        ..AppConfig::default()
    };
    read_gemfile_lock(root, &mut config);
    let application = read_ruby(root, "config/application.rb");
    match &application {
        Some(app) => {
            collect_constants(&app.parsed, &mut config.scope);
            if let Some(ns) = app
                .parsed
                .namespaces
                .iter()
                .find(|n| n.name.ends_with("::Application") || n.name == "Application")
            {
                config.app_module = ns.name.strip_suffix("::Application").map(String::from);
            }
        }
        None => config
            .problems
            .push("config/application.rb not found".to_string()),
    }
    let mut files: Vec<RubyFile> = application.into_iter().collect();
    let env_file = format!("config/environments/{environment}.rb");
    match read_ruby(root, &env_file) {
        Some(f) => files.push(f),
        None => config.problems.push(format!("{env_file} not found")),
    }
    for rel in ruby_files_under(root, "config/initializers") {
        if let Some(f) = read_ruby(root, &rel) {
            files.push(f);
        }
    }
    for file in &files {
        // Local variables are the file's own (`allowed = [...]` in an initializer).
        config.scope.locals.clear();
        walk(&file.parsed.statements, false, &file.path, &mut config);
        for ns in &file.parsed.namespaces {
            walk(&ns.statements, false, &file.path, &mut config);
        }
    }
    config.scope.locals.clear();
    read_routes(root, &mut config);
    config
}

fn read_gemfile_lock(root: &Path, config: &mut AppConfig) {
    let Ok(lock) = std::fs::read_to_string(root.join("Gemfile.lock")) else {
        return;
    };
    const WANTED: &[&str] = &[
        "actioncable",
        "turbo-rails",
        "cable_ready",
        "stimulus_reflex",
        "anycable-rails",
        "anycable",
        "solid_cable",
        "redis",
        "jwt",
        "devise",
        "warden",
    ];
    for line in lock.lines() {
        // "    actioncable (7.2.2.1)" at four spaces: a resolved gem
        let Some(spec) = line.strip_prefix("    ") else {
            continue;
        };
        if spec.starts_with(' ') {
            continue;
        }
        let Some((name, rest)) = spec.split_once(" (") else {
            continue;
        };
        let version = rest.trim_end_matches(')').to_string();
        if name == "actioncable" {
            config.actioncable_version = Some(version.clone());
        }
        if WANTED.contains(&name) && !config.gems.iter().any(|(n, _)| n == name) {
            config.gems.push((name.to_string(), version));
        }
    }
}

/// Constants assigned a static value anywhere in the file (`PREFIX = "x"`).
pub fn collect_constants(file: &SourceFile, scope: &mut Scope) {
    let add = |prefix: &str, body: &Body, scope: &mut Scope| {
        for s in body {
            if let Expr::Assign(target, "=", value) = &s.expr
                && let Expr::Const(segs) = &**target
            {
                let name = if prefix.is_empty() {
                    segs.join("::")
                } else {
                    format!("{prefix}::{}", segs.join("::"))
                };
                let value = scope.eval(value);
                scope.constants.insert(name, value);
            }
        }
    };
    add("", &file.statements, scope);
    for ns in &file.namespaces {
        add(&ns.name, &ns.statements, scope);
    }
}

/// Reads statements in order, descending into blocks (`configure do`) and `begin`; an `if`
/// whose condition is known (`Rails.env.development?`) takes its branch, any other takes both
/// (marked conditional). Assignments to locals are remembered.
fn walk(body: &Body, conditional: bool, path: &str, config: &mut AppConfig) {
    for s in body {
        match &s.expr {
            Expr::If(cond, yes, no) => match config.scope.eval(cond).text() {
                Some("true") => walk(yes, conditional, path, config),
                Some("false") => walk(no, conditional, path, config),
                _ => {
                    walk(yes, true, path, config);
                    walk(no, true, path, config);
                }
            },
            Expr::Call(c) if c.block.is_some() && c.name != "after_initialize" => {
                read_statement(s, conditional, path, config);
                if let Some(b) = &c.block {
                    walk(&b.body, conditional, path, config);
                }
            }
            Expr::Begin(b, _, ensure) => {
                walk(b, conditional, path, config);
                walk(ensure, conditional, path, config);
            }
            Expr::Assign(target, op, value) if matches!(**target, Expr::Name(_)) => {
                if let Expr::Name(n) = &**target {
                    let v = match *op {
                        "=" => config.scope.eval(value),
                        "+=" => {
                            config
                                .scope
                                .eval(&Expr::Binary("+", target.clone(), value.clone()))
                        }
                        _ => Value::NeedsValue(super::ruby::print::source(&s.expr)),
                    };
                    config.scope.locals.insert(n.clone(), v);
                }
            }
            _ => read_statement(s, conditional, path, config),
        }
    }
}

/// Settings outside `config.action_cable` that the mapping reads.
const OTHER_SETTINGS: &[&str] = &[
    "turbo.signed_stream_verifier_key",
    "active_support.escape_js_separators_in_json",
    // `config.default_scope = :spree_user` in Devise.setup: Warden's default scope.
    "default_scope",
];

/// The key of `config.action_cable.<key>`, `Rails.application.config.action_cable.<key>`,
/// `ActionCable.server.config.<key>`.
fn cable_key(target: &Expr) -> Option<String> {
    let dotted = target.dotted()?;
    for prefix in [
        "config.action_cable.",
        "Rails.application.config.action_cable.",
        "ActionCable.server.config.",
        "app.config.action_cable.",
    ] {
        if let Some(key) = dotted.strip_prefix(prefix) {
            return Some(key.to_string());
        }
    }
    None
}

fn read_statement(stmt: &Stmt, conditional: bool, path: &str, config: &mut AppConfig) {
    let at = format!("{path}:{}", stmt.line);
    match &stmt.expr {
        Expr::Assign(target, op, value) => {
            let dotted = target.dotted();
            if let Some(key) = cable_key(target) {
                let op = match *op {
                    "=" => "=",
                    "+=" => "+=",
                    "||=" => "||=",
                    _ => "?",
                };
                let value = config.scope.eval(value);
                config.cable_settings.push(CableSetting {
                    key,
                    op,
                    value,
                    at,
                    conditional,
                });
            } else if let Some(key) = dotted.as_deref().and_then(|d| {
                OTHER_SETTINGS
                    .iter()
                    .find(|k| d.ends_with(&format!("config.{k}")))
            }) {
                let value = config.scope.eval(value);
                config.other_settings.push(CableSetting {
                    key: key.to_string(),
                    op: "=",
                    value,
                    at,
                    conditional,
                });
            } else if dotted.as_deref() == Some("config.global_id.app")
                || dotted.as_deref() == Some("GlobalID.app")
            {
                config.global_id_app = Some(config.scope.eval(value));
            }
        }
        Expr::Call(c) => {
            let recv_key = c.recv.as_ref().and_then(cable_key);
            match (c.name.as_str(), recv_key) {
                ("<<" | "push" | "concat", Some(key)) => {
                    let value = match c.args.as_slice() {
                        [one] => config.scope.eval(one),
                        many => Value::List(many.iter().map(|a| config.scope.eval(a)).collect()),
                    };
                    config.cable_settings.push(CableSetting {
                        key,
                        op: if c.name == "concat" { "+=" } else { "<<" },
                        value,
                        at,
                        conditional,
                    });
                }
                ("load_defaults", _)
                    if c.recv.as_ref().and_then(Expr::dotted).as_deref() == Some("config") =>
                {
                    if let Some(v) = c.args.first() {
                        config.load_defaults = config.scope.eval(v).text().map(String::from);
                    }
                }
                ("prepend" | "include", _)
                    if c.recv.as_ref().and_then(Expr::dotted).as_deref()
                        == Some("Turbo::StreamsChannel") =>
                {
                    for a in c.args.iter().filter_map(Expr::dotted) {
                        config.turbo_patches.push((a, at.clone()));
                    }
                }
                ("session_store", _)
                    if c.recv
                        .as_ref()
                        .and_then(Expr::dotted)
                        .is_some_and(|r| r == "config" || r.ends_with(".config")) =>
                {
                    let kind = c.args.first().and_then(Expr::literal_text);
                    let key = c.args.iter().find_map(|a| match a {
                        Expr::Hash(pairs) => pairs
                            .iter()
                            .find(|(k, _)| k.literal_text().as_deref() == Some("key"))
                            .map(|(_, v)| config.scope.eval(v)),
                        _ => None,
                    });
                    if let Some(kind) = kind {
                        config.session_store = Some(SessionStore { kind, key, at });
                    }
                }
                ("acronym", _) => {
                    if let Some(Value::Text(a)) = c.args.first().map(|a| config.scope.eval(a)) {
                        config.acronyms.push(a);
                    }
                }
                _ => {}
            }
        }
        Expr::Binary("<<", target, value) => {
            if let Some(key) = cable_key(target) {
                let value = config.scope.eval(value);
                config.cable_settings.push(CableSetting {
                    key,
                    op: "<<",
                    value,
                    at,
                    conditional,
                });
            }
        }
        _ => {}
    }
}

fn flatten<'a>(body: &'a Body, out: &mut Vec<&'a Stmt>) {
    for s in body {
        out.push(s);
        if let Expr::Call(c) = &s.expr
            && let Some(b) = &c.block
        {
            flatten(&b.body, out);
        }
    }
}

/// `mount ActionCable.server => "/cable"` (or `at: "/cable"`) in config/routes.rb.
fn read_routes(root: &Path, config: &mut AppConfig) {
    let Some(routes) = read_ruby(root, "config/routes.rb") else {
        return;
    };
    let mut statements = Vec::new();
    flatten(&routes.parsed.statements, &mut statements);
    for stmt in statements {
        let Some(call) = stmt.expr.call_named("mount") else {
            continue;
        };
        let Some(Expr::Hash(pairs)) = call.args.last() else {
            continue;
        };
        for (k, v) in pairs {
            if k.dotted().as_deref() == Some("ActionCable.server")
                && let Some(path) = v.literal_text()
            {
                config.routes_mount = Some((path, format!("config/routes.rb:{}", stmt.line)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_in_load_order_with_appends() {
        let dir =
            std::env::temp_dir().join(format!("ferrocable-app-config-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("config/environments")).unwrap();
        std::fs::create_dir_all(dir.join("config/initializers")).unwrap();
        std::fs::write(
            dir.join("config/application.rb"),
            "module MyApp\n  class Application < Rails::Application\n    config.load_defaults 7.2\n    \
             config.action_cable.mount_path = \"/ws\"\n  end\nend\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("config/environments/production.rb"),
            "Rails.application.configure do\n  config.action_cable.allowed_request_origins = [\"https://a\", /https:\\/\\/b/]\n  \
             # config.action_cable.url = \"wss://commented\"\nend\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("config/initializers/cable.rb"),
            "Rails.application.config.action_cable.allowed_request_origins << \"https://c\"\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("config/routes.rb"),
            "Rails.application.routes.draw do\n  mount ActionCable.server => \"/ws\"\nend\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("Gemfile.lock"),
            "GEM\n  specs:\n    actioncable (7.2.2.1)\n      actionpack (= 7.2.2.1)\n    turbo-rails (2.0.11)\n",
        )
        .unwrap();
        let c = read(&dir, "production");
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(c.app_module.as_deref(), Some("MyApp"));
        assert_eq!(c.load_defaults.as_deref(), Some("7.2"));
        assert_eq!(c.actioncable_version.as_deref(), Some("7.2.2.1"));
        assert!(c.gems.iter().any(|(n, _)| n == "turbo-rails"));
        let keys: Vec<_> = c
            .cable_settings
            .iter()
            .map(|s| (s.key.as_str(), s.op))
            .collect();
        assert_eq!(
            keys,
            [
                ("mount_path", "="),
                ("allowed_request_origins", "="),
                ("allowed_request_origins", "<<")
            ]
        );
        assert_eq!(
            c.cable_settings[1].value,
            Value::List(vec![
                Value::Text("https://a".into()),
                Value::Regex("https://b".into(), String::new())
            ])
        );
        assert_eq!(c.cable_settings[2].at, "config/initializers/cable.rb:1");
        assert_eq!(c.routes_mount.as_ref().map(|m| m.0.as_str()), Some("/ws"));
    }
}
