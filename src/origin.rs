//! The Origin check Rails applies before upgrading (docs/PROTOCOL.md §1.3), as a pure policy.
//!
//! In order: the check may be disabled; an Origin equal to `<scheme>://<Host header>` passes
//! when `allow_same_origin_as_host` is on; then each allow-list entry is tried (exact string, or
//! a regular expression matched anywhere, as Ruby's `Regexp#===` does). Everything else,
//! including a missing Origin, is refused.

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

/// `[origins]`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct OriginsSection {
    /// false disables the check.
    pub check: bool,
    /// Accept `<scheme>://<Host>`.
    pub allow_same_origin_as_host: bool,
    /// Exact strings, or `/regex/`.
    pub allowed: Vec<String>,
}

impl Default for OriginsSection {
    fn default() -> Self {
        OriginsSection {
            check: true,
            allow_same_origin_as_host: true,
            allowed: Vec::new(),
        }
    }
}

/// One allow-list entry.
#[derive(Debug)]
enum Allowed {
    Exact(String),
    Pattern(Regex),
}

/// The compiled origin policy.
#[derive(Debug)]
pub struct OriginPolicy {
    check: bool,
    allow_same_origin_as_host: bool,
    allowed: Vec<Allowed>,
}

/// What the request says about where it comes from.
#[derive(Debug, Clone, Copy)]
pub struct RequestOrigin<'a> {
    /// The `Origin` header, if any.
    pub origin: Option<&'a str>,
    /// The raw `Host` header, port included.
    pub host: Option<&'a str>,
    /// Whether Rack would consider the request HTTPS (forwarded headers included).
    pub https: bool,
}

impl OriginPolicy {
    /// Compiles `[origins]`; a pattern that does not compile names its index.
    pub fn compile(raw: &OriginsSection) -> Result<OriginPolicy, ConfigError> {
        let mut allowed = Vec::new();
        for (i, entry) in raw.allowed.iter().enumerate() {
            let compiled = if entry.len() >= 2 && entry.starts_with('/') && entry.ends_with('/') {
                let source = &entry[1..entry.len() - 1];
                let regex = Regex::new(source).map_err(|e| {
                    ConfigError::new(
                        format!("origins.allowed[{i}]"),
                        format!("{entry:?} is not a valid regular expression: {e}"),
                    )
                })?;
                Allowed::Pattern(regex)
            } else {
                Allowed::Exact(entry.clone())
            };
            allowed.push(compiled);
        }
        Ok(OriginPolicy {
            check: raw.check,
            allow_same_origin_as_host: raw.allow_same_origin_as_host,
            allowed,
        })
    }

    /// Whether Rails would let this request upgrade.
    pub fn allows(&self, request: RequestOrigin<'_>) -> bool {
        if !self.check {
            return true;
        }
        let Some(origin) = request.origin else {
            return false;
        };
        if self.allow_same_origin_as_host
            && let Some(host) = request.host
        {
            let scheme = if request.https { "https" } else { "http" };
            if origin.len() == scheme.len() + 3 + host.len()
                && origin.starts_with(scheme)
                && origin[scheme.len()..].starts_with("://")
                && origin.ends_with(host)
            {
                return true;
            }
        }
        self.allowed.iter().any(|entry| match entry {
            Allowed::Exact(s) => s == origin,
            Allowed::Pattern(r) => r.is_match(origin),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allowed: &[&str], same_host: bool) -> OriginPolicy {
        OriginPolicy::compile(&OriginsSection {
            check: true,
            allow_same_origin_as_host: same_host,
            allowed: allowed.iter().map(|s| s.to_string()).collect(),
        })
        .unwrap()
    }

    fn req<'a>(origin: Option<&'a str>, host: &'a str, https: bool) -> RequestOrigin<'a> {
        RequestOrigin {
            origin,
            host: Some(host),
            https,
        }
    }

    #[test]
    fn exact_strings_compare_exactly() {
        let p = policy(
            &[
                "https://hafaloha-orders.com",
                "https://hafaloha-orders.com/",
            ],
            false,
        );
        assert!(p.allows(req(Some("https://hafaloha-orders.com"), "api", true)));
        assert!(p.allows(req(Some("https://hafaloha-orders.com/"), "api", true)));
        assert!(!p.allows(req(Some("https://HAFALOHA-orders.com"), "api", true)));
        assert!(!p.allows(req(Some("https://hafaloha-orders.com.evil"), "api", true)));
    }

    #[test]
    fn patterns_are_unanchored_like_ruby_regexps() {
        let p = policy(&["/https?:\\/\\/localhost:\\d+/"], false);
        assert!(p.allows(req(Some("http://localhost:5173"), "x", false)));
        assert!(p.allows(req(Some("http://evil.com/http://localhost:1"), "x", false)));
        let anchored = policy(&["/^https?:\\/\\/localhost:\\d+$/"], false);
        assert!(!anchored.allows(req(Some("http://evil.com/http://localhost:1"), "x", false)));
    }

    #[test]
    fn same_origin_uses_the_raw_host_and_scheme() {
        let p = policy(&[], true);
        assert!(p.allows(req(Some("http://api.local:3000"), "api.local:3000", false)));
        assert!(!p.allows(req(Some("http://api.local"), "api.local:3000", false)));
        assert!(!p.allows(req(Some("http://api.local:3000"), "api.local:3000", true)));
        assert!(p.allows(req(Some("https://api.local:3000"), "api.local:3000", true)));
        assert!(!p.allows(req(Some("https://API.local:3000"), "api.local:3000", true)));
        assert!(!policy(&[], false).allows(req(Some("http://a:1"), "a:1", false)));
    }

    #[test]
    fn a_missing_origin_is_refused_unless_the_check_is_off() {
        let p = policy(&["/.*/"], true);
        assert!(!p.allows(req(None, "a", false)));
        let off = OriginPolicy::compile(&OriginsSection {
            check: false,
            allow_same_origin_as_host: true,
            allowed: vec![],
        })
        .unwrap();
        assert!(off.allows(req(None, "a", false)));
    }
}
