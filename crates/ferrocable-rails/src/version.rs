//! Rails versions, for `load_defaults` and for the framework version itself.

use std::fmt;

/// A Rails `major.minor` version: the argument of `config.load_defaults`, or the version of
/// the framework an app runs (patch levels are ignored; where one matters the docs say so).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RailsVersion {
    /// Major version (`7` in `7.2`).
    pub major: u16,
    /// Minor version (`2` in `7.2`).
    pub minor: u16,
}

impl RailsVersion {
    /// Rails 6.0 (`use_cookies_with_metadata` from `load_defaults 6.0`).
    pub const V6_0: RailsVersion = RailsVersion::new(6, 0);
    /// Rails 6.1.
    pub const V6_1: RailsVersion = RailsVersion::new(6, 1);
    /// Rails 7.0 (PBKDF2-SHA256 keys and `:json` cookies from `load_defaults 7.0`).
    pub const V7_0: RailsVersion = RailsVersion::new(7, 0);
    /// Rails 7.1.
    pub const V7_1: RailsVersion = RailsVersion::new(7, 1);
    /// Rails 7.2 (url-safe Active Record signed ids).
    pub const V7_2: RailsVersion = RailsVersion::new(7, 2);
    /// Rails 8.0.
    pub const V8_0: RailsVersion = RailsVersion::new(8, 0);

    /// A version from its parts.
    pub const fn new(major: u16, minor: u16) -> RailsVersion {
        RailsVersion { major, minor }
    }

    /// Parses `"7.2"`, `"7.2.2.2"` or `"7"` (as `7.0`); `None` for anything else.
    pub fn parse(text: &str) -> Option<RailsVersion> {
        let mut parts = text.trim().split('.');
        let major = parse_component(parts.next()?)?;
        let minor = match parts.next() {
            Some(minor) => parse_component(minor)?,
            None => 0,
        };
        // Further components (patch, pre-release) must still be well-formed.
        for rest in parts {
            if rest.is_empty() || !rest.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return None;
            }
        }
        Some(RailsVersion::new(major, minor))
    }
}

fn parse_component(text: &str) -> Option<u16> {
    if text.is_empty() || text.len() > 4 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

impl fmt::Display for RailsVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_load_defaults_and_framework_versions() {
        assert_eq!(RailsVersion::parse("7.2"), Some(RailsVersion::V7_2));
        assert_eq!(RailsVersion::parse("6.1.7.10"), Some(RailsVersion::V6_1));
        assert_eq!(RailsVersion::parse("8"), Some(RailsVersion::V8_0));
        assert_eq!(
            RailsVersion::parse("8.1.0.beta1"),
            Some(RailsVersion::new(8, 1))
        );
        for bad in ["", "x", "7.", "7..2", ".7", "7.x", "99999.0", "7.2. "] {
            assert_eq!(RailsVersion::parse(bad), None, "{bad:?}");
        }
        assert!(RailsVersion::V6_1 < RailsVersion::V7_0);
        assert!(RailsVersion::new(7, 10) > RailsVersion::V7_2);
    }
}
