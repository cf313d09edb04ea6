//! `config/cable.yml` → where ferrocable reads broadcasts from. One table entry per Rails
//! adapter; an adapter ferrocable cannot read yet is an entry that says so.

use super::super::cable_yml::{CableYml, Node};
use super::super::value::Value;
use super::{Finding, Problem};
use crate::config::RawConfig;

type AdapterMap = fn(&CableYml, &mut RawConfig, &mut Finding, &mut Vec<String>);

/// Rails' cable adapters and how each maps.
const ADAPTERS: &[(&str, AdapterMap)] = &[
    ("redis", redis),
    ("async", |_, _, f, _| {
        f.problem(Problem {
            why: "the async adapter keeps broadcasts inside the Rails process; nothing leaves it \
                  for ferrocable to read"
                .into(),
            remedy: "switch cable.yml to the redis adapter in production".into(),
        })
    }),
    ("solid_cable", |_, _, f, _| {
        not_yet(f, "Solid Cable", "issue 12")
    }),
    ("postgresql", |_, _, f, _| {
        not_yet(f, "the PostgreSQL adapter", "issue 12")
    }),
    ("any_cable", |_, _, f, _| {
        not_yet(f, "AnyCable's broadcast adapter", "issue 12")
    }),
    ("anycable", |_, _, f, _| {
        not_yet(f, "AnyCable's broadcast adapter", "issue 12")
    }),
    ("test", |_, _, f, _| {
        f.problem(Problem {
            why: "the test adapter broadcasts nowhere".into(),
            remedy: "read another environment with --environment".into(),
        })
    }),
];

/// Keys of a redis section and what happens to each.
const REDIS_KEYS: &[(&str, &str)] = &[
    ("adapter", ""),
    ("url", ""),
    ("channel_prefix", ""),
    (
        "ssl_params",
        "TLS options (rediss:// support is issue 13, point 1)",
    ),
    ("sentinels", "Redis Sentinel (issue 13, point 1)"),
    (
        "password",
        "put the password in the URL (redis://:password@host:port)",
    ),
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
];

fn not_yet(f: &mut Finding, what: &str, issue: &str) {
    f.problem(Problem {
        why: format!("{what} is not an input of this ferrocable"),
        remedy: format!(
            "it comes with {issue}; until then publish through Redis (adapter: redis), or keep \
             Action Cable on Rails"
        ),
    });
}

/// Maps the adapter of the environment read.
pub(super) fn map(
    cable: &CableYml,
    profile: &mut RawConfig,
    f: &mut Finding,
    next: &mut Vec<String>,
) {
    for p in &cable.problems {
        f.assume(p.clone());
    }
    if !cable.found {
        f.problem(Problem {
            why: "no config/cable.yml".into(),
            remedy: "add one with the redis adapter for production".into(),
        });
        return;
    }
    let adapter = match cable.value("adapter") {
        Some(Value::Text(a)) => a.clone(),
        Some(other) => {
            f.problem(Problem {
                why: format!("the adapter is {other}, which the reader cannot decide"),
                remedy: "write the adapter name literally in cable.yml".into(),
            });
            return;
        }
        None => {
            if cable.keys.is_empty() {
                return;
            }
            f.problem(Problem {
                why: "cable.yml names no adapter".into(),
                remedy: "set adapter: redis".into(),
            });
            return;
        }
    };
    match ADAPTERS.iter().find(|(name, _)| *name == adapter) {
        Some((_, map)) => map(cable, profile, f, next),
        None => f.problem(Problem {
            why: format!("the {adapter:?} adapter is unknown to ferrocable"),
            remedy: "publish through Redis (adapter: redis)".into(),
        }),
    }
}

fn redis(cable: &CableYml, profile: &mut RawConfig, f: &mut Finding, next: &mut Vec<String>) {
    f.rule("adapter: redis → ferrocable reads Rails' Redis format ([redis])");
    match cable.value("url") {
        Some(Value::Text(url)) => set_url(url, profile, f),
        Some(Value::Env { name, default }) => {
            if let Some(d) = default {
                set_url(d, profile, f);
            }
            if name == "REDIS_URL" {
                f.rule(&format!(
                    "url: ENV[\"REDIS_URL\"]{} → ferrocable reads REDIS_URL too",
                    default
                        .as_ref()
                        .map(|d| format!(" (default {d:?})"))
                        .unwrap_or_default()
                ));
                if default.is_none() {
                    next.push("export REDIS_URL (as the Rails app has it)".into());
                }
            } else {
                f.assume(format!(
                    "the URL comes from ENV[{name:?}]; ferrocable reads REDIS_URL: run it with \
                     REDIS_URL=\"${name}\"{}",
                    default
                        .as_ref()
                        .map(|d| format!(" (without it, the default {d:?} written here is used)"))
                        .unwrap_or_default()
                ));
                next.push(format!("export REDIS_URL=\"${name}\""));
            }
        }
        Some(Value::Nil) | None => {
            set_url("redis://localhost:6379", profile, f);
            f.assume(
                "cable.yml gives no url: redis-rb's default redis://localhost:6379 is written"
                    .into(),
            );
        }
        Some(other) => {
            f.assume(format!(
                "the URL is {other}: supply it as REDIS_URL when running ferrocable"
            ));
            next.push("export REDIS_URL (cable.yml computes it)".into());
        }
    }
    match cable.value("channel_prefix") {
        Some(Value::Text(p)) => {
            profile.redis.channel_prefix = p.clone();
            f.rule(&format!("channel_prefix: {p:?} → redis.channel_prefix"));
        }
        Some(Value::Nil) | None => f.rule("no channel_prefix: streams are published unprefixed"),
        Some(other) => f.problem(Problem {
            why: format!("the channel_prefix is {other}, which the reader cannot decide"),
            remedy:
                "set redis.channel_prefix (or FERROCABLE_REDIS__CHANNEL_PREFIX) to what Rails uses"
                    .into(),
        }),
    }
    for (key, node) in &cable.keys {
        match REDIS_KEYS.iter().find(|(k, _)| k == key) {
            Some((_, "")) => {}
            Some((k, note)) if *k == "sentinels" || *k == "ssl_params" => {
                if *k == "ssl_params" && !is_nil(node) {
                    f.assume(format!("{key}: {note}; not applied"));
                } else if *k == "sentinels" {
                    f.problem(Problem {
                        why: format!("{key}: {note} is not in this ferrocable"),
                        remedy: "point ferrocable at the current master with REDIS_URL, or wait \
                                 for Sentinel support"
                            .into(),
                    });
                }
            }
            Some((_, note)) => {
                if !is_nil(node) {
                    f.assume(format!("{key}: {note}"));
                }
            }
            None => f.assume(format!("cable.yml key {key:?} is not read")),
        }
    }
}

fn is_nil(node: &Node) -> bool {
    matches!(node, Node::Scalar(Value::Nil))
        || matches!(node, Node::Map(pairs) if pairs.iter().all(|(_, v)| is_nil(v)))
}

fn set_url(url: &str, profile: &mut RawConfig, f: &mut Finding) {
    if url.starts_with("rediss://") {
        f.problem(Problem {
            why: format!("the URL {url:?} uses TLS (rediss://), which this ferrocable refuses"),
            remedy: "TLS to Redis is issue 13, point 1; until then use a TLS tunnel to a \
                     redis:// address"
                .into(),
        });
        return;
    }
    profile.redis.url = url.to_string();
    f.rule(&format!("url {url:?} → redis.url (REDIS_URL overrides it)"));
}
