//! Values read from Ruby without running it: literals, `ENV` look-ups with their defaults,
//! `Rails.env`, constants the app defines, and everything else as "needs a value" with its
//! source, so the report can say what the user has to supply.

use std::collections::BTreeMap;
use std::fmt;

use super::ruby::print::source;
use super::ruby::{Expr, StrPart};

/// What a Ruby expression is worth when read statically.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `nil`
    Nil,
    /// A known text (strings, symbols, numbers, booleans as Ruby prints them).
    Text(String),
    /// A list of values.
    List(Vec<Value>),
    /// A regexp: its source and flags.
    Regex(String, String),
    /// `ENV["NAME"]`, `ENV.fetch("NAME") { default }`: set at run time.
    Env {
        /// The variable.
        name: String,
        /// The value used when it is unset (`None`: nil, or an error for `fetch`).
        default: Option<String>,
    },
    /// Anything else (credentials, method calls): the Ruby source, for the report.
    NeedsValue(String),
}

impl Value {
    /// The text, when it is known for sure.
    pub fn text(&self) -> Option<&str> {
        match self {
            Value::Text(t) => Some(t),
            _ => None,
        }
    }

    /// Whether this is a known value (no environment, nothing unknown inside).
    pub fn is_known(&self) -> bool {
        match self {
            Value::Nil | Value::Text(_) | Value::Regex(..) => true,
            Value::List(items) => items.iter().all(Value::is_known),
            Value::Env { .. } | Value::NeedsValue(_) => false,
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Nil => f.write_str("nil"),
            Value::Text(t) => write!(f, "{t:?}"),
            Value::List(items) => {
                f.write_str("[")?;
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_str("]")
            }
            Value::Regex(src, flags) => write!(f, "/{src}/{flags}"),
            Value::Env {
                name,
                default: Some(d),
            } => write!(f, "ENV[{name:?}] (default {d:?})"),
            Value::Env {
                name,
                default: None,
            } => write!(f, "ENV[{name:?}]"),
            Value::NeedsValue(src) => write!(f, "`{src}`"),
        }
    }
}

/// What static evaluation knows: the Rails environment and the app's simple constants.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// `Rails.env`
    pub rails_env: String,
    /// Constants by name (`CHANNEL_PREFIX`, `Chat::ROLES`), already evaluated.
    pub constants: BTreeMap<String, Value>,
    /// Local variables of the file being read.
    pub locals: BTreeMap<String, Value>,
}

impl Scope {
    /// Evaluates an expression as far as it can be without running Ruby.
    pub fn eval(&self, e: &Expr) -> Value {
        match e {
            Expr::Nil => Value::Nil,
            Expr::Bool(b) => Value::Text(b.to_string()),
            Expr::Number(n) => Value::Text(n.clone()),
            Expr::Sym(s) => Value::Text(s.clone()),
            Expr::Str(parts) => self.string(parts).unwrap_or_else(|| needs(e)),
            Expr::Regex(parts, flags) => match self.string(parts) {
                Some(Value::Text(src)) => Value::Regex(src, flags.clone()),
                _ => needs(e),
            },
            Expr::Array(items) => Value::List(items.iter().map(|i| self.eval(i)).collect()),
            Expr::Name(n) => self.locals.get(n).cloned().unwrap_or_else(|| needs(e)),
            Expr::Binary("+", a, b) => match (self.eval(a), self.eval(b)) {
                (Value::List(mut x), Value::List(y)) => {
                    x.extend(y);
                    Value::List(x)
                }
                (Value::Text(x), Value::Text(y)) => Value::Text(x + &y),
                _ => needs(e),
            },
            Expr::Const(segments) => self
                .constant(&segments.join("::"))
                .cloned()
                .unwrap_or_else(|| needs(e)),
            Expr::Or(a, b) => match self.eval(a) {
                Value::Env {
                    name,
                    default: None,
                } => match self.eval(b) {
                    Value::Text(d) => Value::Env {
                        name,
                        default: Some(d),
                    },
                    _ => needs(e),
                },
                Value::Nil => self.eval(b),
                v @ Value::Text(_) => v,
                _ => needs(e),
            },
            Expr::Index(recv, args) if is_env(recv) && args.len() == 1 => {
                match self.eval(&args[0]) {
                    Value::Text(name) => Value::Env {
                        name,
                        default: None,
                    },
                    _ => needs(e),
                }
            }
            Expr::Call(c) => self.call(c, e),
            _ => needs(e),
        }
    }

    fn call(&self, c: &super::ruby::Call, whole: &Expr) -> Value {
        let recv = c.recv.as_ref();
        if let Some(r) = recv
            && is_env(r)
            && c.name == "fetch"
        {
            let Some(Value::Text(name)) = c.args.first().map(|a| self.eval(a)) else {
                return needs(whole);
            };
            let default = match (c.args.get(1), &c.block) {
                (Some(d), _) => Some(self.eval(d)),
                (None, Some(block)) if block.body.len() == 1 => {
                    Some(self.eval(&block.body[0].expr))
                }
                (None, Some(_)) => return needs(whole),
                (None, None) => None,
            };
            return match default {
                None | Some(Value::Nil) => Value::Env {
                    name,
                    default: None,
                },
                Some(Value::Text(d)) => Value::Env {
                    name,
                    default: Some(d),
                },
                Some(_) => needs(whole),
            };
        }
        if recv.and_then(Expr::dotted).as_deref() == Some("Rails") && c.name == "env" {
            return Value::Text(self.rails_env.clone());
        }
        // Rails.env.production?
        if recv.and_then(Expr::dotted).as_deref() == Some("Rails.env")
            && let Some(env) = c.name.strip_suffix('?')
        {
            return Value::Text((env == self.rails_env).to_string());
        }
        // list.uniq, list.map { |o| o + "/" }
        if let Some(Value::List(items)) = recv.map(|r| self.eval(r)) {
            match (c.name.as_str(), &c.block) {
                ("uniq" | "compact" | "flatten" | "freeze" | "dup", None) => {
                    let mut out: Vec<Value> = Vec::new();
                    for i in items {
                        if !out.contains(&i) {
                            out.push(i);
                        }
                    }
                    return Value::List(out);
                }
                ("map", Some(block)) if block.params.len() == 1 && block.body.len() == 1 => {
                    let mut inner = self.clone();
                    let mut out = Vec::new();
                    for i in items {
                        inner.locals.insert(block.params[0].clone(), i);
                        out.push(inner.eval(&block.body[0].expr));
                    }
                    return Value::List(out);
                }
                _ => {}
            }
        }
        // Conversions and presence checks that keep the value as it is.
        if c.args.is_empty()
            && matches!(c.name.as_str(), "presence" | "to_s" | "freeze" | "to_str")
            && let Some(r) = recv
        {
            return match self.eval(r) {
                Value::Text(t) if c.name == "presence" && t.trim().is_empty() => Value::Nil,
                v => v,
            };
        }
        if c.name == "to_sym" && c.args.is_empty() {
            return recv.map_or_else(|| needs(whole), |r| self.eval(r));
        }
        needs(whole)
    }

    fn string(&self, parts: &[StrPart]) -> Option<Value> {
        let mut text = String::new();
        for p in parts {
            match p {
                StrPart::Text(t) => text.push_str(t),
                StrPart::Code(code) => match self.eval(code) {
                    Value::Text(t) => text.push_str(&t),
                    Value::Nil => {}
                    _ => return None,
                },
            }
        }
        Some(Value::Text(text))
    }

    fn constant(&self, name: &str) -> Option<&Value> {
        self.constants.get(name).or_else(|| {
            // `Chat::ROLES` referred to as `ROLES` inside `Chat`: try the last segment.
            let last = name.rsplit("::").next()?;
            self.constants
                .iter()
                .find(|(k, _)| k.rsplit("::").next() == Some(last))
                .map(|(_, v)| v)
        })
    }
}

fn is_env(e: &Expr) -> bool {
    matches!(e, Expr::Const(s) if s.len() == 1 && s[0] == "ENV")
}

fn needs(e: &Expr) -> Value {
    Value::NeedsValue(source(e))
}

#[cfg(test)]
mod tests {
    use super::super::ruby::parse_body;
    use super::*;

    fn eval(src: &str) -> Value {
        let scope = Scope {
            rails_env: "production".into(),
            constants: BTreeMap::from([("App::PREFIX".into(), Value::Text("app".into()))]),
            locals: BTreeMap::from([(
                "hosts".into(),
                Value::List(vec![Value::Text("https://a".into())]),
            )]),
        };
        scope.eval(&parse_body(src)[0].expr)
    }

    fn env(name: &str, default: Option<&str>) -> Value {
        Value::Env {
            name: name.into(),
            default: default.map(String::from),
        }
    }

    #[test]
    fn the_common_erb_forms() {
        assert_eq!(
            eval(r#"ENV.fetch("REDIS_URL") { "redis://localhost:6379/1" }"#),
            env("REDIS_URL", Some("redis://localhost:6379/1"))
        );
        assert_eq!(eval(r#"ENV["REDIS_URL"]"#), env("REDIS_URL", None));
        assert_eq!(eval("ENV.fetch('X', 'd')"), env("X", Some("d")));
        assert_eq!(eval("ENV.fetch('X', nil).presence"), env("X", None));
        assert_eq!(
            eval(r#"ENV["X"] || "redis://a""#),
            env("X", Some("redis://a"))
        );
        assert_eq!(
            eval(r##""chatwoot_#{Rails.env}_action_cable""##),
            Value::Text("chatwoot_production_action_cable".into())
        );
        assert_eq!(eval("PREFIX"), Value::Text("app".into()));
        assert_eq!(eval("Rails.env.production?"), Value::Text("true".into()));
        assert_eq!(eval("Rails.env.development?"), Value::Text("false".into()));
        assert_eq!(
            eval(r#"hosts + hosts.map { |h| h + "/" }"#),
            Value::List(vec![
                Value::Text("https://a".into()),
                Value::Text("https://a/".into())
            ])
        );
        assert_eq!(
            eval("Rails.application.credentials.redis_url"),
            Value::NeedsValue("Rails.application.credentials.redis_url".into())
        );
        assert_eq!(
            eval(r##""#{ENV['OFN_URL']}/cable""##),
            Value::NeedsValue(r##""#{ENV["OFN_URL"]}/cable""##.into())
        );
    }
}
