//! Stream name templates: `order_channel_{restaurant_id}`, `chat_{params.room}`,
//! `role_{claims.role}`, `{channel_name}:{gid:Room/row.id}`, compiled once and filled per
//! subscription.
//!
//! Placeholders: an identifier's name; `params.<name>`; `claims.<name>`; `row.<column>` (the
//! row of the channel's `authorize` query); `channel_name` (Rails' `channel_name` of the class,
//! `TypingNotificationsChannel` → `typing_notifications`); and `gid:<Model>/<placeholder>`, the
//! GlobalID param of `gid://<app>/<Model>/<value>`. So `stream_for @room` is
//! `"{channel_name}:{gid:Room/row.id}"` and `stream_for current_user` is
//! `"{channel_name}:{gid:User/current_user}"`.

use ferrocable_protocol::INTERNAL_STREAM_PREFIX;
use ferrocable_protocol::json::Value;

use crate::auth::Identity;
use crate::error::ConfigError;

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Literal(String),
    Identifier(usize),
    Param(String),
    Claim(String),
    Row(String),
    /// `gid://<app>/<model>/` + the escaped value of the inner placeholder, as a param.
    Gid(String, Box<Part>),
}

/// What a template may refer to, besides the subscription's params.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    /// Declared identifier names, in order.
    pub identifiers: &'a [String],
    /// The channel class (for `{channel_name}`).
    pub class_name: &'a str,
    /// The GlobalID app (for `{gid:...}`), if configured.
    pub global_id_app: Option<&'a str>,
    /// Whether the channel has an `authorize` query (for `{row.*}`).
    pub has_row: bool,
}

/// What a template is filled from.
#[derive(Debug, Clone, Copy)]
pub struct Fill<'a> {
    /// The connection's identity.
    pub identity: &'a Identity,
    /// The subscription's params (the identifier's JSON object).
    pub params: &'a Value,
    /// The `authorize` row, if the channel has one.
    pub row: Option<&'a Value>,
}

/// A stream name with placeholders.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    parts: Vec<Part>,
}

impl Template {
    pub(super) fn parse(
        text: &str,
        scope: &Scope<'_>,
        key: &str,
        claims: &mut Vec<String>,
    ) -> Result<Template, ConfigError> {
        let err = |problem: String| ConfigError::new(key, problem);
        let mut parts = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            match rest.find(['{', '}']) {
                None => {
                    parts.push(Part::Literal(rest.to_string()));
                    break;
                }
                Some(i) if rest.as_bytes()[i] == b'}' => {
                    return Err(err(format!("{text:?}: '}}' without '{{'")));
                }
                Some(i) => {
                    if i > 0 {
                        parts.push(Part::Literal(rest[..i].to_string()));
                    }
                    let close = rest[i..]
                        .find('}')
                        .ok_or_else(|| err(format!("{text:?}: '{{' is never closed")))?;
                    let name = &rest[i + 1..i + close];
                    if name == "channel_name" {
                        parts.push(Part::Literal(ferrocable_rails::channel_name(
                            scope.class_name,
                        )));
                    } else if let Some(gid) = name.strip_prefix("gid:") {
                        let (model, inner) = gid.split_once('/').ok_or_else(|| {
                            err(format!("{text:?}: write {{gid:Model/<placeholder>}}, e.g. {{gid:Room/row.id}}"))
                        })?;
                        let app = scope.global_id_app.ok_or_else(|| {
                            err(format!(
                                "{text:?}: {{gid:...}} needs the GlobalID app name: set auth.app_module or auth.global_id_app"
                            ))
                        })?;
                        if !model.starts_with(|c: char| c.is_ascii_uppercase()) {
                            return Err(err(format!(
                                "{text:?}: {model:?} is not a model class name"
                            )));
                        }
                        let inner = placeholder(inner, scope, claims)
                            .map_err(|p| err(format!("{text:?}: {p}")))?;
                        parts.push(Part::Gid(format!("gid://{app}/{model}/"), Box::new(inner)));
                    } else {
                        parts.push(
                            placeholder(name, scope, claims)
                                .map_err(|p| err(format!("{text:?}: {p}")))?,
                        );
                    }
                    rest = &rest[i + close + 1..];
                }
            }
        }
        if parts.is_empty() {
            return Err(err("empty stream name".into()));
        }
        if let Some(Part::Literal(first)) = parts.first()
            && first.starts_with(INTERNAL_STREAM_PREFIX)
        {
            return Err(err(format!(
                "{text:?}: streams starting with {INTERNAL_STREAM_PREFIX:?} are reserved for remote disconnect"
            )));
        }
        Ok(Template { parts })
    }

    /// Fills the placeholders; `None` when one has no usable value: absent, not a scalar,
    /// or blank in Ruby's sense (`nil`, `false`, `""`, only whitespace), which is how Rails
    /// channels decide to `reject` (`present?`).
    pub fn render(&self, fill: &Fill<'_>) -> Option<String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(s) => out.push_str(s),
                Part::Gid(prefix, inner) => {
                    let id = inner.value(fill)?;
                    let gid = format!("{prefix}{}", ferrocable_rails::cgi_escape(&id));
                    out.push_str(&ferrocable_rails::global_id_param(&gid));
                }
                other => out.push_str(&other.value(fill)?),
            }
        }
        if out.starts_with(INTERNAL_STREAM_PREFIX) {
            // A param must not smuggle a subscription to someone's remote-disconnect channel.
            return None;
        }
        Some(out)
    }
}

impl Part {
    /// A placeholder's text, `None` when blank or absent.
    fn value(&self, fill: &Fill<'_>) -> Option<String> {
        let scalar = |value: &Value| {
            if matches!(value, Value::Bool(false)) {
                return None;
            }
            value.to_ruby_string().filter(|t| present(t).is_some())
        };
        match self {
            Part::Literal(s) => Some(s.clone()),
            Part::Identifier(i) => {
                present(fill.identity.values.get(*i)?.as_deref()?).map(str::to_string)
            }
            Part::Param(p) => scalar(fill.params.get(p)?),
            Part::Claim(c) => present(fill.identity.claim(c)?).map(str::to_string),
            Part::Row(c) => scalar(fill.row?.get(c)?),
            Part::Gid(..) => None,
        }
    }
}

/// One `{...}` placeholder other than `channel_name` and `gid:`.
fn placeholder(name: &str, scope: &Scope<'_>, claims: &mut Vec<String>) -> Result<Part, String> {
    if let Some(param) = name.strip_prefix("params.") {
        if param.is_empty() {
            return Err("empty {params.}".into());
        }
        Ok(Part::Param(param.to_string()))
    } else if let Some(claim) = name.strip_prefix("claims.") {
        if claim.is_empty() {
            return Err("empty {claims.}".into());
        }
        if !claims.iter().any(|c| c == claim) {
            claims.push(claim.to_string());
        }
        Ok(Part::Claim(claim.to_string()))
    } else if let Some(column) = name.strip_prefix("row.") {
        if column.is_empty() {
            return Err("empty {row.}".into());
        }
        if !scope.has_row {
            return Err(format!(
                "{{row.{column}}} needs an [authorize] query on the channel"
            ));
        }
        Ok(Part::Row(column.to_string()))
    } else {
        let index = scope
            .identifiers
            .iter()
            .position(|n| n == name)
            .ok_or_else(|| {
                format!(
                    "{{{name}}} is not a declared identifier (declared: {}); \
                 use {{params.{name}}} for a subscription param",
                    if scope.identifiers.is_empty() {
                        "none".to_string()
                    } else {
                        scope.identifiers.join(", ")
                    }
                )
            })?;
        Ok(Part::Identifier(index))
    }
}

/// `Some(text)` unless Ruby's `blank?` would say true (empty or whitespace only).
fn present(text: &str) -> Option<&str> {
    (!text.chars().all(char::is_whitespace)).then_some(text)
}
