//! `config/cable.yml` → where ferrocable reads broadcasts from. One table entry per Rails
//! adapter: Redis (with TLS and Sentinel), Solid Cable, the PostgreSQL adapter, AnyCable's;
//! what no entry reads is reported as not expressible.

use super::super::cable_yml::{CableYml, Node};
use super::super::value::Value;
use super::{Finding, Problem};
use crate::broker::redis::connect::{Role, SentinelEntry, VerifyMode};
use crate::config::RawConfig;

/// What an adapter's mapping reads and writes.
pub(super) struct Input<'a> {
    /// cable.yml for the environment.
    pub cable: &'a CableYml,
    /// config/database.yml for the environment (Solid Cable's database).
    pub database: &'a CableYml,
    /// The profile.
    pub profile: &'a mut RawConfig,
    /// The finding.
    pub f: &'a mut Finding,
    /// Things to do before running.
    pub next: &'a mut Vec<String>,
}

type AdapterMap = fn(&mut Input<'_>);

/// Rails' cable adapters and how each maps.
const ADAPTERS: &[(&str, AdapterMap)] = &[
    ("redis", redis),
    ("solid_cable", solid_cable),
    ("postgresql", postgresql),
    ("any_cable", anycable),
    ("anycable", anycable),
    ("async", |i| {
        i.f.problem(Problem {
            why: "the async adapter keeps broadcasts inside the Rails process; nothing leaves it \
                  for ferrocable to read"
                .into(),
            remedy: "switch cable.yml to the redis adapter (or solid_cable) in production".into(),
        })
    }),
    ("test", |i| {
        i.f.problem(Problem {
            why: "the test adapter broadcasts nowhere".into(),
            remedy: "read another environment with --environment".into(),
        })
    }),
];

/// Maps the adapter of the environment read.
pub(super) fn map(i: &mut Input<'_>) {
    for p in &i.cable.problems {
        i.f.assume(p.clone());
    }
    if !i.cable.found {
        i.f.problem(Problem {
            why: "no config/cable.yml".into(),
            remedy: "add one with the redis adapter for production".into(),
        });
        return;
    }
    let adapter = match i.cable.value("adapter") {
        Some(Value::Text(a)) => a.clone(),
        Some(other) => {
            i.f.problem(Problem {
                why: format!("the adapter is {other}, which the reader cannot decide"),
                remedy: "write the adapter name literally in cable.yml".into(),
            });
            return;
        }
        None => {
            if i.cable.keys.is_empty() {
                return;
            }
            i.f.problem(Problem {
                why: "cable.yml names no adapter".into(),
                remedy: "set adapter: redis".into(),
            });
            return;
        }
    };
    match ADAPTERS.iter().find(|(name, _)| *name == adapter) {
        Some((_, map)) => map(i),
        None => i.f.problem(Problem {
            why: format!("the {adapter:?} adapter is unknown to ferrocable"),
            remedy: "publish through Redis (adapter: redis) or Solid Cable".into(),
        }),
    }
}

/// Keys of a section that need nothing from ferrocable, with why.
const HARMLESS: &[(&str, &str)] = &[
    ("adapter", ""),
    ("url", ""),
    ("channel_prefix", ""),
    (
        "id",
        "the connection name Rails sets with CLIENT SETNAME (cosmetic)",
    ),
    (
        "driver",
        "redis-rb's driver choice (irrelevant to ferrocable)",
    ),
    (
        "reconnect_attempts",
        "ferrocable reconnects with its own back-off (100 ms to 5 s)",
    ),
    ("connect_timeout", "ferrocable's own timeouts apply"),
    ("read_timeout", "ferrocable's own timeouts apply"),
    ("write_timeout", "ferrocable's own timeouts apply"),
];

fn redis(i: &mut Input<'_>) {
    i.f.rule("adapter: redis → ferrocable reads Rails' Redis format ([redis])");
    redis_url(i);
    prefix(i, |p| &mut p.redis.channel_prefix, "redis.channel_prefix");
    let keys = i.cable.keys.clone();
    for (key, node) in &keys {
        match key.as_str() {
            "ssl_params" => ssl_params(i, node),
            "sentinels" => sentinels(i, node),
            "password" | "sentinel_password" => secret(i, key, node),
            "name" => match node.scalar() {
                Some(Value::Text(n)) => {
                    i.profile.redis.name = n.clone();
                    i.f.rule(&format!("name: {n:?} (the Sentinel master) → redis.name"));
                }
                _ => i.f.assume(format!("name: {node:?} is not read")),
            },
            "role" => match node.scalar().and_then(Value::text) {
                Some(r @ ("slave" | "replica")) => {
                    i.profile.redis.role = Role::Replica;
                    i.f.rule(&format!("role: {r} → redis.role = \"replica\""));
                }
                Some("master") => {}
                _ => {
                    i.f.assume(format!("role: {node:?} is not read; the master is used"))
                }
            },
            _ => match HARMLESS.iter().find(|(k, _)| k == key) {
                Some((_, "")) => {}
                Some((_, note)) if !is_nil(node) => i.f.assume(format!("{key}: {note}")),
                Some(_) => {}
                None => i.f.assume(format!("cable.yml key {key:?} is not read")),
            },
        }
    }
    if !i.profile.redis.sentinels.is_empty() && !i.profile.redis.url.is_empty() {
        let master = i.profile.redis.url.clone();
        i.f.rule(&format!(
            "with sentinels, {master:?} names the master group (redis-rb's reading): every \
             (re)connection asks the sentinels for it"
        ));
    }
}

fn redis_url(i: &mut Input<'_>) {
    match i.cable.value("url").cloned() {
        Some(Value::Text(url)) => set_url(&url, i),
        Some(Value::Env { name, default }) => {
            if let Some(d) = &default {
                set_url(d, i);
            }
            if name == "REDIS_URL" {
                i.f.rule(&format!(
                    "url: ENV[\"REDIS_URL\"]{} → ferrocable reads REDIS_URL too",
                    default
                        .as_ref()
                        .map(|d| format!(" (default {d:?})"))
                        .unwrap_or_default()
                ));
                if default.is_none() {
                    i.next
                        .push("export REDIS_URL (as the Rails app has it)".into());
                }
            } else {
                i.f.assume(format!(
                    "the URL comes from ENV[{name:?}]; ferrocable reads REDIS_URL: run it with \
                     REDIS_URL=\"${name}\"{}",
                    default
                        .as_ref()
                        .map(|d| format!(" (without it, the default {d:?} written here is used)"))
                        .unwrap_or_default()
                ));
                i.next.push(format!("export REDIS_URL=\"${name}\""));
            }
        }
        Some(Value::Nil) | None if !i.cable.keys.iter().any(|(k, _)| k == "sentinels") => {
            set_url("redis://localhost:6379", i);
            i.f.assume(
                "cable.yml gives no url: redis-rb's default redis://localhost:6379 is written"
                    .into(),
            );
        }
        Some(Value::Nil) | None => {}
        Some(other) => {
            i.f.assume(format!(
                "the URL is {other}: supply it as REDIS_URL when running ferrocable"
            ));
            i.next
                .push("export REDIS_URL (cable.yml computes it)".into());
        }
    }
}

fn set_url(url: &str, i: &mut Input<'_>) {
    i.profile.redis.url = url.to_string();
    i.f.rule(&format!("url {url:?} → redis.url (REDIS_URL overrides it)"));
    if url.starts_with("rediss://") {
        i.f.rule(
            "rediss:// → TLS to Redis, the server's certificate verified against the system's \
             roots unless ssl_params say otherwise",
        );
    }
}

fn prefix(i: &mut Input<'_>, key: fn(&mut RawConfig) -> &mut String, name: &str) {
    match i.cable.value("channel_prefix").cloned() {
        Some(Value::Text(p)) => {
            *key(i.profile) = p.clone();
            i.f.rule(&format!("channel_prefix: {p:?} → {name}"));
        }
        Some(Value::Nil) | None => {
            i.f.rule("no channel_prefix: streams are published unprefixed")
        }
        Some(other) => i.f.problem(Problem {
            why: format!("the channel_prefix is {other}, which the reader cannot decide"),
            remedy: format!(
                "set {name} (or FERROCABLE_{}) to what Rails uses",
                name.to_ascii_uppercase().replace('.', "__")
            ),
        }),
    }
}

/// `ssl_params:` → `[redis.ssl_params]`, when the URL written is a rediss:// one (they
/// apply to nothing else); otherwise what to set once REDIS_URL is rediss://.
fn ssl_params(i: &mut Input<'_>, node: &Node) {
    if is_nil(node) {
        return;
    }
    let Node::Map(pairs) = node else {
        i.f.assume(format!("ssl_params: {node:?} is not read"));
        return;
    };
    let tls_url = i.profile.redis.url.starts_with("rediss://");
    for (k, v) in pairs {
        let text = v.scalar().map(ToString::to_string).unwrap_or_default();
        match k.as_str() {
            "verify_mode" => {
                let none = text.contains("VERIFY_NONE") || text == "\"0\"" || text.contains("none");
                let peer = text.contains("VERIFY_PEER") || text == "\"1\"" || text.contains("peer");
                match (none, peer, tls_url) {
                    (true, _, true) => {
                        i.profile.redis.ssl_params.verify_mode = VerifyMode::None;
                        i.f.rule("ssl_params.verify_mode: VERIFY_NONE → redis.ssl_params.verify_mode = \"none\"");
                        i.f.assume(
                            "verify_mode none: the connection to Redis is encrypted but the \
                             server's certificate is not checked (as in the Rails app); prefer \
                             ssl_params.ca_file with the provider's CA"
                                .into(),
                        );
                    }
                    (true, _, false) => {
                        i.f.assume(
                            "ssl_params.verify_mode is VERIFY_NONE, which applies once the URL \
                             is rediss:// (as REDIS_URL often is on Heroku): then also set \
                             FERROCABLE_REDIS__SSL_PARAMS__VERIFY_MODE=none"
                                .into(),
                        );
                        i.next.push(
                            "if REDIS_URL is rediss://, export \
                             FERROCABLE_REDIS__SSL_PARAMS__VERIFY_MODE=none (cable.yml's \
                             ssl_params)"
                                .into(),
                        );
                    }
                    (false, true, _) => {
                        i.f.rule("ssl_params.verify_mode: VERIFY_PEER (ferrocable's default)")
                    }
                    _ => {
                        i.f.assume(format!("ssl_params.verify_mode {text} is not read"))
                    }
                }
            }
            "ca_file" => match v.scalar() {
                Some(Value::Text(path)) if tls_url => {
                    i.profile.redis.ssl_params.ca_file = path.clone();
                    i.f.rule(&format!(
                        "ssl_params.ca_file {path:?} → redis.ssl_params.ca_file"
                    ));
                    i.f.assume(format!(
                        "{path:?} is a path on the Rails app's machine: give ferrocable the same file"
                    ));
                }
                _ => i.f.assume(format!(
                    "ssl_params.ca_file {text}: set redis.ssl_params.ca_file by hand"
                )),
            },
            "cert" | "key" => i.f.assume(format!(
                "ssl_params.{k} (a client certificate for mutual TLS): set \
                 redis.ssl_params.cert_file and key_file to the PEM files by hand"
            )),
            other => i.f.assume(format!("ssl_params.{other} is not read")),
        }
    }
}

/// `sentinels:` → `redis.sentinels` (hosts and ports written, passwords left to the
/// environment).
fn sentinels(i: &mut Input<'_>, node: &Node) {
    let Node::List(items) = node else {
        if !is_nil(node) {
            i.f.problem(Problem {
                why: format!("sentinels: {node:?} is not a list the reader can read"),
                remedy: "write redis.sentinels by hand".into(),
            });
        }
        return;
    };
    for item in items {
        let host = item
            .get("host")
            .and_then(Node::scalar)
            .and_then(Value::text);
        let port = match item.get("port").and_then(Node::scalar) {
            None | Some(Value::Nil) => Some(26379),
            Some(v) => v.text().and_then(|p| p.parse::<u16>().ok()),
        };
        match (host, port) {
            (Some(host), Some(port)) => i.profile.redis.sentinels.push(SentinelEntry {
                host: host.to_string(),
                port,
                password: String::new(),
            }),
            _ => {
                i.f.problem(Problem {
                    why: format!(
                        "a sentinel entry ({item:?}) needs a value the reader cannot decide"
                    ),
                    remedy: "write redis.sentinels by hand".into(),
                });
                return;
            }
        }
        if item.get("password").is_some_and(|p| !is_nil(p)) {
            i.f.assume(
                "a sentinel's own password is not written into the profile: set \
                 redis.sentinel_password (FERROCABLE_REDIS__SENTINEL_PASSWORD)"
                    .into(),
            );
        }
    }
    i.f.rule(&format!(
        "sentinels: {} → redis.sentinels (Sentinel finds the master; a failover resubscribes)",
        i.profile
            .redis
            .sentinels
            .iter()
            .map(|s| format!("{}:{}", s.host, s.port))
            .collect::<Vec<_>>()
            .join(", ")
    ));
}

/// `password:`/`sentinel_password:` are secrets: never written, named as a next step.
fn secret(i: &mut Input<'_>, key: &str, node: &Node) {
    if is_nil(node) {
        return;
    }
    let var = format!("FERROCABLE_REDIS__{}", key.to_ascii_uppercase());
    match node.scalar() {
        Some(Value::Env { name, .. }) => {
            i.f.rule(&format!(
                "{key}: ENV[{name:?}] → {var} (secrets are not written)"
            ));
            i.next.push(format!("export {var}=\"${name}\""));
        }
        _ => {
            i.f.assume(format!(
                "cable.yml's {key} is not written into the profile: give it as {var}"
            ));
            i.next.push(format!("export {var} (cable.yml's {key})"));
        }
    }
}

fn solid_cable(i: &mut Input<'_>) {
    i.profile.solid_cable.enabled = true;
    i.f.rule(
        "adapter: solid_cable → [solid_cable] enabled: ferrocable polls solid_cable_messages as \
         Solid Cable does (SQLite or PostgreSQL)",
    );
    prefix(
        i,
        |p| &mut p.solid_cable.channel_prefix,
        "solid_cable.channel_prefix",
    );
    match i.cable.value("polling_interval").cloned() {
        None | Some(Value::Nil) => i.f.rule("no polling_interval: Solid Cable's 0.1 s"),
        Some(v) => match v.text().and_then(seconds) {
            Some(s) => {
                let ms = ((s * 1000.0).round() as u64).max(1);
                i.profile.solid_cable.polling_interval_ms = ms;
                i.f.rule(&format!(
                    "polling_interval: {} → solid_cable.polling_interval_ms = {ms}",
                    v.text().unwrap_or_default()
                ));
            }
            None => i.f.assume(format!(
                "polling_interval {v} is not read: Solid Cable's 0.1 s is kept"
            )),
        },
    }
    let writing = i
        .cable
        .get("connects_to")
        .and_then(|c| c.get("database"))
        .and_then(|d| d.get("writing"))
        .and_then(Node::scalar)
        .and_then(Value::text)
        .unwrap_or("cable")
        .to_string();
    let db = i.database.get(&writing);
    let adapter = db
        .and_then(|d| d.get("adapter"))
        .and_then(Node::scalar)
        .and_then(Value::text);
    let file = db
        .and_then(|d| d.get("database"))
        .and_then(Node::scalar)
        .and_then(Value::text);
    match (adapter, file) {
        (Some(a @ ("mysql2" | "trilogy")), _) => i.f.problem(Problem {
            why: format!(
                "config/database.yml: the {writing} database is {a} (MySQL); ferrocable reads \
                 Solid Cable from SQLite or PostgreSQL"
            ),
            remedy: "keep Action Cable on Rails, or move the cable database to SQLite or \
                     PostgreSQL"
                .into(),
        }),
        (Some("sqlite3"), Some(f)) => {
            i.f.rule(&format!(
                "config/database.yml: the {writing} database is {f:?} (SQLite, opened read-only)"
            ));
            i.next.push(format!(
                "point ferrocable at the cable database: DATABASE_URL=sqlite3:<app root>/{f} \
                 (FERROCABLE_SOLID_CABLE__DATABASE_URL if DATABASE_URL is the primary database)"
            ));
        }
        _ => i.next.push(format!(
            "point ferrocable at the cable database ({writing} in config/database.yml): \
             DATABASE_URL=sqlite3:<file> or postgres://... (FERROCABLE_SOLID_CABLE__DATABASE_URL \
             if DATABASE_URL is the primary database)"
        )),
    }
    for (key, node) in i.cable.keys.clone() {
        match key.as_str() {
            "adapter" | "channel_prefix" | "polling_interval" | "connects_to" => {}
            "message_retention" | "autotrim" | "trim_batch_size" | "trim_chance" => {
                i.f.ignore("trimming (Rails deletes old messages; ferrocable only reads)")
            }
            "silence_polling" | "use_skip_locked" => i.f.ignore("options of Rails' own polling"),
            other if !is_nil(&node) => i.f.assume(format!("cable.yml key {other:?} is not read")),
            _ => {}
        }
    }
}

/// `0.1.seconds`, `1.second`, `100.milliseconds`, `0.5`: seconds.
fn seconds(text: &str) -> Option<f64> {
    let t = text.trim();
    for (suffix, factor) in [
        (".seconds", 1.0),
        (".second", 1.0),
        (".milliseconds", 0.001),
        (".millisecond", 0.001),
    ] {
        if let Some(n) = t.strip_suffix(suffix) {
            return n.parse::<f64>().ok().map(|n| n * factor);
        }
    }
    t.parse::<f64>().ok().filter(|n| *n > 0.0)
}

fn postgresql(i: &mut Input<'_>) {
    i.profile.postgresql.enabled = true;
    i.f.rule(
        "adapter: postgresql → [postgresql] enabled: ferrocable LISTENs as Rails' adapter does \
         (and NOTIFYs for its relays)",
    );
    prefix(
        i,
        |p| &mut p.postgresql.channel_prefix,
        "postgresql.channel_prefix",
    );
    match i.cable.value("url").cloned() {
        None | Some(Value::Nil) => i.next.push(
            "export DATABASE_URL (the app's PostgreSQL database, which Rails' adapter LISTENs on)"
                .into(),
        ),
        Some(Value::Env { name, .. }) => {
            i.f.rule(&format!("url: ENV[{name:?}] → FERROCABLE_POSTGRESQL__URL"));
            i.next
                .push(format!("export FERROCABLE_POSTGRESQL__URL=\"${name}\""));
        }
        Some(other) => {
            i.f.assume(format!(
                "cable.yml's url {other} is not written into the profile (it may hold a \
                 password): give it as FERROCABLE_POSTGRESQL__URL"
            ));
            i.next
                .push("export FERROCABLE_POSTGRESQL__URL (cable.yml's url)".into());
        }
    }
}

fn anycable(i: &mut Input<'_>) {
    i.profile.anycable.enabled = true;
    i.profile.redis.streams = false;
    i.profile.redis.url = "redis://localhost:6379/5".into();
    i.f.rule(
        "adapter: any_cable → [anycable] enabled: the app publishes {\"stream\",\"data\"} for \
         AnyCable on __anycable__ (redis.streams = false)",
    );
    i.f.assume(
        "AnyCable's broadcast adapter is taken to be redis, with AnyCable's default redis_url \
         redis://localhost:6379/5 (config/anycable.yml and ANYCABLE_* variables are not read); \
         with the http adapter, point its URL at ferrocable's POST /_broadcast instead"
            .into(),
    );
    i.next
        .push("export REDIS_URL (AnyCable's redis_url, ANYCABLE_REDIS_URL in the app)".into());
}

fn is_nil(node: &Node) -> bool {
    matches!(node, Node::Scalar(Value::Nil))
        || matches!(node, Node::Map(pairs) if pairs.iter().all(|(_, v)| is_nil(v)))
}

#[cfg(test)]
mod tests {
    use super::super::super::cable_yml;
    use super::super::super::value::Scope;
    use super::*;

    /// Maps `production` of a cable.yml (and database.yml), and checks the profile the way
    /// `config check` does.
    fn mapped(cable: &str, database: &str) -> (RawConfig, Finding, Vec<String>) {
        static RUN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "ferrocable-inputs-{}-{}",
            std::process::id(),
            RUN.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("config")).unwrap();
        std::fs::write(dir.join("config/cable.yml"), cable).unwrap();
        std::fs::write(dir.join("config/database.yml"), database).unwrap();
        let scope = Scope {
            rails_env: "production".into(),
            ..Scope::default()
        };
        let cable = cable_yml::read(&dir, "production", &scope);
        let database = cable_yml::read_file(&dir, "config/database.yml", "production", &scope);
        std::fs::remove_dir_all(&dir).unwrap();
        let mut profile = RawConfig::default();
        let mut f = Finding::new("config/cable.yml", "");
        let mut next = Vec::new();
        map(&mut Input {
            cable: &cable,
            database: &database,
            profile: &mut profile,
            f: &mut f,
            next: &mut next,
        });
        f.settle();
        let mut check = profile.clone();
        for url in [
            &mut check.solid_cable.database_url,
            &mut check.postgresql.url,
        ] {
            if url.is_empty() {
                *url = "postgres://127.0.0.1:1/check".into();
            }
        }
        crate::config::Settings::from_raw(&check).unwrap();
        (profile, f, next)
    }

    #[test]
    fn redis_over_tls_and_through_sentinel() {
        let (p, f, next) = mapped(
            "production:\n  adapter: redis\n  url: rediss://cache.example.com:6380/0\n  \
             password: <%= ENV[\"REDIS_PASSWORD\"] %>\n  ssl_params:\n    verify_mode: \
             <%= OpenSSL::SSL::VERIFY_NONE %>\n  channel_prefix: app_production\n",
            "",
        );
        assert_eq!(p.redis.url, "rediss://cache.example.com:6380/0");
        assert_eq!(p.redis.ssl_params.verify_mode, VerifyMode::None);
        assert!(p.redis.password.is_empty(), "secrets are never written");
        assert_eq!(
            next,
            ["export FERROCABLE_REDIS__PASSWORD=\"$REDIS_PASSWORD\""]
        );
        assert!(f.problems.is_empty(), "{:?}", f.problems);
        let (p, f, _) = mapped(
            "production:\n  adapter: redis\n  url: redis://mymaster\n  role: replica\n  \
             sentinels:\n    - host: 10.0.0.1\n      port: 26380\n    - host: 10.0.0.2\n",
            "",
        );
        assert_eq!(p.redis.url, "redis://mymaster");
        assert_eq!(p.redis.role, Role::Replica);
        assert_eq!(
            p.redis
                .sentinels
                .iter()
                .map(|s| (s.host.as_str(), s.port))
                .collect::<Vec<_>>(),
            [("10.0.0.1", 26380), ("10.0.0.2", 26379)]
        );
        assert!(f.problems.is_empty() && f.assumptions.is_empty(), "{f:?}");
    }

    #[test]
    fn solid_cable_postgresql_and_anycable() {
        let (p, f, next) = mapped(
            "production:\n  adapter: solid_cable\n  connects_to:\n    database:\n      \
             writing: cable\n  polling_interval: 0.25.seconds\n  message_retention: 1.day\n",
            "production:\n  primary:\n    adapter: sqlite3\n    database: storage/production.sqlite3\n  \
             cable:\n    adapter: sqlite3\n    database: storage/production_cable.sqlite3\n",
        );
        assert!(p.solid_cable.enabled && p.redis.url.is_empty());
        assert_eq!(p.solid_cable.polling_interval_ms, 250);
        assert!(next[0].contains("sqlite3:<app root>/storage/production_cable.sqlite3"));
        assert_eq!(f.verdict, crate::init::mapping::Verdict::Mapped);
        let (_, mysql, _) = mapped(
            "production:\n  adapter: solid_cable\n",
            "production:\n  cable:\n    adapter: trilogy\n    database: app_cable\n",
        );
        assert_eq!(mysql.verdict, crate::init::mapping::Verdict::NotExpressible);
        let (p, _, next) = mapped(
            "production:\n  adapter: postgresql\n  channel_prefix: app\n",
            "",
        );
        assert!(p.postgresql.enabled);
        assert_eq!(p.postgresql.channel_prefix, "app");
        assert!(next[0].contains("DATABASE_URL"));
        let (p, f, _) = mapped("production:\n  adapter: any_cable\n", "");
        assert!(p.anycable.enabled && !p.redis.streams);
        assert_eq!(f.assumptions.len(), 1);
    }

    #[test]
    fn durations_as_cable_yml_writes_them() {
        assert_eq!(seconds("0.1.seconds"), Some(0.1));
        assert_eq!(seconds("1.second"), Some(1.0));
        assert_eq!(seconds("250.milliseconds"), Some(0.25));
        assert_eq!(seconds("0.5"), Some(0.5));
        assert_eq!(seconds("soon"), None);
    }
}
