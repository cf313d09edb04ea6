//! `config/cable.yml`: ERB evaluated statically (never executed), then YAML with anchors,
//! aliases and merge keys, then the section of one environment.

use std::path::Path;

use yaml_rust2::{Yaml, YamlLoader};

use super::ruby::parse_body;
use super::value::{Scope, Value};

/// A YAML node whose scalars went through the ERB evaluation.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// A scalar.
    Scalar(Value),
    /// A mapping, in file order.
    Map(Vec<(String, Node)>),
    /// A sequence.
    List(Vec<Node>),
}

impl Node {
    /// The value of a scalar.
    pub fn scalar(&self) -> Option<&Value> {
        match self {
            Node::Scalar(v) => Some(v),
            _ => None,
        }
    }

    /// A key of a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Map(pairs) => pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
}

/// What cable.yml says for one environment.
#[derive(Debug, Clone, Default)]
pub struct CableYml {
    /// Whether the file exists.
    pub found: bool,
    /// The environment read.
    pub environment: String,
    /// Every environment in the file.
    pub environments: Vec<String>,
    /// The environment's keys (adapter, url, channel_prefix, and the rest).
    pub keys: Vec<(String, Node)>,
    /// What could not be read (ERB logic, YAML errors, a missing environment).
    pub problems: Vec<String>,
}

impl CableYml {
    /// A key of the environment's section.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.keys.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// A scalar key's value.
    pub fn value(&self, key: &str) -> Option<&Value> {
        self.get(key).and_then(Node::scalar)
    }
}

const HOLE: &str = "__FERROCABLE_ERB_";

/// Reads `config/cable.yml` under `root` for `environment`.
pub fn read(root: &Path, environment: &str, scope: &Scope) -> CableYml {
    let mut out = read_file(root, "config/cable.yml", environment, scope);
    if !out.found {
        out.problems.push(
            "config/cable.yml not found: Rails falls back to the async adapter (single process)"
                .into(),
        );
    }
    out
}

/// Reads a YAML file of environments (`config/database.yml`) the same way.
pub fn read_file(root: &Path, rel: &str, environment: &str, scope: &Scope) -> CableYml {
    let mut out = CableYml {
        environment: environment.to_string(),
        ..CableYml::default()
    };
    let Ok(text) = std::fs::read_to_string(root.join(rel)) else {
        return out;
    };
    out.found = true;
    let (text, holes) = render_erb(&text, scope, &mut out.problems);
    let docs = match YamlLoader::load_from_str(&text) {
        Ok(docs) => docs,
        Err(e) => {
            out.problems
                .push(format!("{rel} is not valid YAML after ERB: {e}"));
            return out;
        }
    };
    let Some(Yaml::Hash(top)) = docs.into_iter().next() else {
        out.problems
            .push(format!("{rel} is not a mapping of environments"));
        return out;
    };
    for (k, _) in &top {
        if let Some(name) = k.as_str() {
            out.environments.push(name.to_string());
        }
    }
    let section = top
        .iter()
        .find(|(k, _)| k.as_str() == Some(environment))
        .map(|(_, v)| v.clone());
    match section.map(|v| convert(&merge_keys(v), &holes)) {
        Some(Node::Map(pairs)) => out.keys = pairs,
        Some(_) => out
            .problems
            .push(format!("{rel}: {environment} is not a mapping")),
        None => out.problems.push(format!(
            "{rel} has no {environment:?} environment (it has: {})",
            out.environments.join(", ")
        )),
    }
    out
}

/// Replaces each `<%= code %>` by a placeholder whose statically evaluated value is kept
/// aside; `<%# %>` comments vanish; `<% %>` logic cannot be followed and is reported.
fn render_erb(text: &str, scope: &Scope, problems: &mut Vec<String>) -> (String, Vec<Value>) {
    let mut out = String::with_capacity(text.len());
    let mut holes = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find("<%") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let Some(close) = after.find("%>") else {
            problems.push("config/cable.yml: an ERB tag is never closed".into());
            rest = "";
            break;
        };
        let tag = &after[..close];
        rest = &after[close + 2..];
        let tag = tag.strip_suffix('-').unwrap_or(tag);
        if let Some(code) = tag.strip_prefix('=') {
            let body = parse_body(code.trim());
            let value = match body.as_slice() {
                [one] => scope.eval(&one.expr),
                _ => Value::NeedsValue(code.trim().to_string()),
            };
            out.push_str(&format!("{HOLE}{}__", holes.len()));
            holes.push(value);
        } else if tag.starts_with('#') {
            // an ERB comment
        } else {
            let code = tag.trim_start_matches('-').trim();
            problems.push(format!(
                "config/cable.yml: ERB logic `<% {code} %>` is not evaluated; both branches were read"
            ));
        }
    }
    out.push_str(rest);
    (out, holes)
}

/// Applies YAML merge keys (`<<: *default`), as Psych does for cable.yml.
fn merge_keys(node: Yaml) -> Yaml {
    match node {
        Yaml::Hash(hash) => {
            let mut merged = yaml_rust2::yaml::Hash::new();
            let mut inherited = Vec::new();
            for (k, v) in hash {
                if k.as_str() == Some("<<") {
                    match v {
                        Yaml::Array(items) => inherited.extend(items),
                        other => inherited.push(other),
                    }
                } else {
                    merged.insert(k, merge_keys(v));
                }
            }
            for source in inherited {
                if let Yaml::Hash(h) = merge_keys(source) {
                    for (k, v) in h {
                        merged.entry(k).or_insert(v);
                    }
                }
            }
            Yaml::Hash(merged)
        }
        Yaml::Array(items) => Yaml::Array(items.into_iter().map(merge_keys).collect()),
        other => other,
    }
}

fn convert(node: &Yaml, holes: &[Value]) -> Node {
    match node {
        Yaml::Hash(h) => Node::Map(
            h.iter()
                .map(|(k, v)| (scalar_text(k), convert(v, holes)))
                .collect(),
        ),
        Yaml::Array(items) => Node::List(items.iter().map(|i| convert(i, holes)).collect()),
        Yaml::Null => Node::Scalar(Value::Nil),
        other => Node::Scalar(fill(&scalar_text(other), holes)),
    }
}

fn scalar_text(y: &Yaml) -> String {
    match y {
        Yaml::String(s) | Yaml::Real(s) => s.clone(),
        Yaml::Integer(i) => i.to_string(),
        Yaml::Boolean(b) => b.to_string(),
        Yaml::Null => String::new(),
        _ => format!("{y:?}"),
    }
}

/// A scalar with placeholders back to a value: one placeholder alone is its value; known
/// text around known values is text; anything else needs a value.
fn fill(text: &str, holes: &[Value]) -> Value {
    if !text.contains(HOLE) {
        return Value::Text(text.to_string());
    }
    let mut out = String::new();
    let mut rest = text;
    let mut only: Option<&Value> = None;
    let mut pieces = 0;
    while let Some(at) = rest.find(HOLE) {
        out.push_str(&rest[..at]);
        if at > 0 {
            pieces += 1;
        }
        let after = &rest[at + HOLE.len()..];
        let end = after.find("__").unwrap_or(after.len());
        let hole = after[..end]
            .parse::<usize>()
            .ok()
            .and_then(|i| holes.get(i));
        rest = after.get(end + 2..).unwrap_or("");
        pieces += 1;
        match hole {
            Some(Value::Text(t)) => out.push_str(t),
            Some(Value::Nil) => {}
            Some(v) => {
                only = Some(v);
                out.push_str(&format!("<%= {v} %>"));
            }
            None => return Value::NeedsValue(text.into()),
        }
    }
    if !rest.is_empty() {
        pieces += 1;
    }
    out.push_str(rest);
    match only {
        None => Value::Text(out),
        Some(v) if pieces == 1 => v.clone(),
        Some(_) => Value::NeedsValue(out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_text(yml: &str, env: &str) -> CableYml {
        let dir = std::env::temp_dir().join(format!(
            "ferrocable-cable-yml-{}-{}",
            std::process::id(),
            yml.len()
        ));
        std::fs::create_dir_all(dir.join("config")).unwrap();
        std::fs::write(dir.join("config/cable.yml"), yml).unwrap();
        let scope = Scope {
            rails_env: env.into(),
            ..Scope::default()
        };
        let out = read(&dir, env, &scope);
        std::fs::remove_dir_all(&dir).unwrap();
        out
    }

    #[test]
    fn anchors_merge_keys_and_erb() {
        let c = read_text(
            "default: &default\n  adapter: redis\n  url: <%= ENV.fetch(\"REDIS_URL\") { \"redis://localhost:6379/1\" } %>\n\
             \n  channel_prefix: <%= \"app_#{Rails.env}\" %>\nproduction:\n  <<: *default\n  channel_prefix: app_prod\n",
            "production",
        );
        assert!(c.problems.is_empty(), "{:?}", c.problems);
        assert_eq!(c.value("adapter"), Some(&Value::Text("redis".into())));
        assert_eq!(
            c.value("url"),
            Some(&Value::Env {
                name: "REDIS_URL".into(),
                default: Some("redis://localhost:6379/1".into())
            })
        );
        assert_eq!(
            c.value("channel_prefix"),
            Some(&Value::Text("app_prod".into()))
        );
        assert_eq!(c.environments, ["default", "production"]);
    }

    #[test]
    fn aliases_holes_and_missing_environments() {
        let c = read_text(
            "cable: &cable\n  adapter: solid_cable\n  polling_interval: 0.1.seconds\nproduction: *cable\n",
            "production",
        );
        assert_eq!(c.value("adapter"), Some(&Value::Text("solid_cable".into())));
        let c = read_text(
            "production:\n  adapter: redis\n  url: redis://<%= ENV['HOST'] %>:6379\n  password: <%= Rails.application.credentials.redis_password %>\n",
            "production",
        );
        assert!(matches!(c.value("url"), Some(Value::NeedsValue(_))));
        assert_eq!(
            c.value("password"),
            Some(&Value::NeedsValue(
                "Rails.application.credentials.redis_password".into()
            ))
        );
        let c = read_text("development:\n  adapter: async\n", "production");
        assert_eq!(c.problems.len(), 1);
        assert!(c.problems[0].contains("development"));
    }
}
