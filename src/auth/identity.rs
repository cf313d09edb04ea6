//! Who a connection is: the `identified_by` identifiers (`[[auth.identifiers]]`), where each
//! value comes from, and Rails' connection identifier built from them.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ferrocable_protocol::json::Value as JsonValue;
use serde::{Deserialize, Serialize};
use serde_json::Value as ClaimValue;

use super::AuthMode;
use crate::error::ConfigError;

/// One `[[auth.identifiers]]` entry.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct IdentifierSection {
    /// Name used in templates and in remote disconnect.
    pub name: String,
    /// Claim to read the value from.
    pub claim: Option<String>,
    /// Query parameter to read the value from.
    pub query: Option<String>,
    /// Query parameter that must equal the value.
    pub match_query: Option<String>,
    /// GlobalID URI template, `{}` replaced by the value.
    pub gid: Option<String>,
    /// The model (`User`): the GlobalID is `gid://<auth.global_id_app>/User/<value>`.
    pub model: Option<String>,
    /// Refuse the connection when the value is missing (default true).
    pub required: Option<bool>,
}

/// Where an identifier's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentifierSource {
    /// A JWT claim, or a column of the cookie's lookup row (`value`: the cookie's value).
    Claim(String),
    /// A query parameter.
    Query(String),
}

/// One `identified_by` attribute.
#[derive(Debug, Clone)]
pub struct IdentifierRule {
    /// Name, as templates and remote disconnect use it.
    pub name: String,
    /// Value source.
    pub source: IdentifierSource,
    /// Query parameter that must equal the value.
    pub match_query: Option<String>,
    /// GlobalID template for the connection identifier.
    pub gid: Option<String>,
    /// Refuse when missing.
    pub required: bool,
}

impl IdentifierRule {
    /// Checks `[[auth.identifiers]]`: unique names, exactly one source each (claims only with
    /// JWTs), GlobalID templates of the form `gid://app/Model/{}`.
    pub fn compile_all(
        sections: &[IdentifierSection],
        mode: AuthMode,
        global_id_app: Option<&str>,
    ) -> Result<Vec<IdentifierRule>, ConfigError> {
        let mut identifiers: Vec<IdentifierRule> = Vec::new();
        for (i, ident) in sections.iter().enumerate() {
            let key = |field: &str| format!("auth.identifiers[{i}].{field}");
            if ident.name.is_empty()
                || !ident
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                return Err(ConfigError::new(
                    key("name"),
                    "must be a non-empty name of letters, digits and '_'",
                ));
            }
            if identifiers.iter().any(|r| r.name == ident.name) {
                return Err(ConfigError::new(
                    key("name"),
                    format!("{:?} is declared twice", ident.name),
                ));
            }
            let source = match (&ident.claim, &ident.query) {
                (Some(c), None) if !c.is_empty() => IdentifierSource::Claim(c.clone()),
                (None, Some(q)) if !q.is_empty() => IdentifierSource::Query(q.clone()),
                _ => {
                    return Err(ConfigError::new(
                        key("claim"),
                        "give exactly one of claim = \"...\" or query = \"...\"",
                    ));
                }
            };
            if matches!(source, IdentifierSource::Claim(_)) && mode == AuthMode::None {
                return Err(ConfigError::new(
                    key("claim"),
                    "claims need auth.mode = \"jwt\" or \"cookie\"; in mode \"none\" use query = \"...\"",
                ));
            }
            let gid = match (&ident.gid, &ident.model) {
                (Some(_), Some(_)) => {
                    return Err(ConfigError::new(
                        key("model"),
                        "give gid = \"gid://app/Model/{}\" or model = \"Model\", not both",
                    ));
                }
                (None, Some(model)) => {
                    let app = global_id_app.ok_or_else(|| {
                        ConfigError::new(
                            key("model"),
                            "needs the GlobalID app name: set auth.app_module (the app's module, e.g. \"Campfire\") or auth.global_id_app",
                        )
                    })?;
                    if !model.starts_with(|c: char| c.is_ascii_uppercase()) {
                        return Err(ConfigError::new(
                            key("model"),
                            "must be a class name like \"User\"",
                        ));
                    }
                    Some(format!("gid://{app}/{model}/{{}}"))
                }
                (gid, None) => gid.clone(),
            };
            if let Some(gid) = &gid
                && (!gid.starts_with("gid://") || gid.matches("{}").count() != 1)
            {
                return Err(ConfigError::new(
                    key("gid"),
                    "must look like \"gid://app-name/Model/{}\" with exactly one {}",
                ));
            }
            identifiers.push(IdentifierRule {
                name: ident.name.clone(),
                source,
                match_query: ident.match_query.clone().filter(|q| !q.is_empty()),
                gid,
                required: ident.required.unwrap_or(true),
            });
        }
        Ok(identifiers)
    }

    /// This identifier's part of the connection identifier: the GlobalID param where a
    /// template is configured, else the value itself.
    pub(super) fn identifier_part(&self, value: &str) -> String {
        match &self.gid {
            // GlobalID escapes the id (`CGI.escape`), which changes nothing for numbers.
            Some(template) => {
                global_id_param(&template.replacen("{}", &ferrocable_rails::cgi_escape(value), 1))
            }
            None => value.to_string(),
        }
    }
}

/// Who a connection is.
#[derive(Debug, Clone, Default)]
pub struct Identity {
    /// Identifier values by declaration index (`None` when optional and absent, and for a
    /// boolean `false` claim, which Ruby's `present?` calls blank: channel rules then reject,
    /// as a Rails channel checking `restaurant_id.present?` does; conformance `identifier_false`).
    pub values: Box<[Option<Box<str>>]>,
    /// Claims the channel rules need, and only those, as Ruby would print them.
    pub claims: Box<[KeptClaim]>,
    /// Rails' connection identifier: the values (GlobalID params where configured), sorted
    /// and joined with ':' (docs/PROTOCOL.md §5.1). Empty when there are no identifiers.
    pub connection_identifier: Box<str>,
}

/// A claim kept for channel rules.
#[derive(Debug, Clone)]
pub struct KeptClaim {
    /// Claim name.
    pub name: Box<str>,
    /// Its value as Ruby's `to_s` would print it; `None` when absent or not a scalar.
    pub value: Option<Box<str>>,
    /// Its value as JSON, typed (for payloads stamped with it); `None` when absent.
    pub typed: Option<JsonValue>,
}

impl Identity {
    /// The typed value of a claim kept for channel rules.
    pub fn typed_claim(&self, name: &str) -> Option<&JsonValue> {
        self.claims
            .iter()
            .find(|c| &*c.name == name)
            .and_then(|c| c.typed.as_ref())
    }

    /// The value of a claim kept for channel rules.
    pub fn claim(&self, name: &str) -> Option<&str> {
        self.claims
            .iter()
            .find(|c| &*c.name == name)
            .and_then(|c| c.value.as_deref())
    }
}

/// Ruby's `to_s` of a scalar claim; `None` for arrays and objects, which cannot name anything.
pub(super) fn claim_to_ruby_string(value: &ClaimValue) -> Option<String> {
    match value {
        ClaimValue::String(s) => Some(s.clone()),
        ClaimValue::Bool(b) => Some(b.to_string()),
        ClaimValue::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => Some(i.to_string()),
            (_, Some(u), _) => Some(u.to_string()),
            (_, _, Some(f)) => JsonValue::Float(f).to_ruby_string(),
            _ => None,
        },
        ClaimValue::Null | ClaimValue::Array(_) | ClaimValue::Object(_) => None,
    }
}

/// A claim as a Ruby-compatible JSON value (integers stay integers).
pub(super) fn claim_to_value(value: &ClaimValue) -> JsonValue {
    match value {
        ClaimValue::Null => JsonValue::Null,
        ClaimValue::Bool(b) => JsonValue::Bool(*b),
        ClaimValue::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => JsonValue::from(i),
            (None, _) if n.is_u64() => {
                ferrocable_protocol::json::Integer::from_decimal(&n.to_string())
                    .map(JsonValue::Integer)
                    .unwrap_or(JsonValue::Null)
            }
            (None, Some(f)) => JsonValue::Float(f),
            (None, None) => JsonValue::Null,
        },
        ClaimValue::String(s) => JsonValue::String(s.clone()),
        ClaimValue::Array(a) => JsonValue::Array(a.iter().map(claim_to_value).collect()),
        ClaimValue::Object(o) => JsonValue::Object(
            o.iter()
                .map(|(k, v)| (k.clone(), claim_to_value(v)))
                .collect(),
        ),
    }
}

/// `GlobalID#to_param`: URL-safe base64 of the URI, without padding.
pub(crate) fn global_id_param(uri: &str) -> String {
    URL_SAFE_NO_PAD.encode(uri)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn global_id_param_is_unpadded_urlsafe_base64() {
        assert_eq!(
            global_id_param("gid://shimizu-order-suite/User/42"),
            "Z2lkOi8vc2hpbWl6dS1vcmRlci1zdWl0ZS9Vc2VyLzQy"
        );
        assert_eq!(
            global_id_param("gid://my-app/Order/1"),
            "Z2lkOi8vbXktYXBwL09yZGVyLzE"
        );
    }
}
