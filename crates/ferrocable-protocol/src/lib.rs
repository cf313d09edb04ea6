//! The Action Cable vocabulary and codec: no I/O, no tokio.
//!
//! What a server needs to speak Rails' `actioncable-v1-json` byte for byte, as values in and
//! bytes out (the wire rules are summarised in `docs/PROTOCOL.md` at the repository root):
//!
//! - [`json`]: Ruby `JSON.parse` semantics and the `ActiveSupport::JSON.encode` writer.
//! - [`incoming`]: client commands and subscription identifiers, decoded from text.
//! - [`outgoing`]: server frames, encoded to bytes once and shared.
//!
//! Everything here is a value in, a value out; the session and the hub decide what to do with
//! them. Expected conditions (an unknown command, a malformed identifier) are values too, so
//! the caller can log them the way Rails does and carry on.

pub mod incoming;
pub mod json;
pub mod outgoing;

/// The properties the fuzz targets check (`fuzz/`); `cargo test` replays the committed corpus
/// through them.
#[cfg(any(test, feature = "fuzzing"))]
pub mod properties;

#[cfg(test)]
mod fuzz_regressions;

/// Prefix of Rails' per-connection internal streams, `action_cable/<connection identifier>`,
/// on which remote disconnects arrive (docs/PROTOCOL.md §5). Subscriptions may not use it.
pub const INTERNAL_STREAM_PREFIX: &str = "action_cable/";

/// Subprotocols we speak, in the order Rails offers them (docs/PROTOCOL.md §1.4).
pub const SUBPROTOCOLS: [&str; 2] = ["actioncable-v1-json", "actioncable-unsupported"];

/// Picks the first protocol, in the client's order, that we support; `None` when the client
/// offered none we know (the upgrade still succeeds, without the header).
pub fn select_subprotocol<'a>(offers: impl IntoIterator<Item = &'a str>) -> Option<&'static str> {
    offers
        .into_iter()
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .find_map(|offer| SUBPROTOCOLS.iter().copied().find(|p| *p == offer))
}

/// JSON nesting Ruby's parser allows by default (`max_nesting: 100`), and our default for
/// `limits.max_json_depth`.
pub const MAX_JSON_DEPTH: usize = 100;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subprotocol_selection_follows_the_clients_order() {
        let pick = |offers: &[&str]| select_subprotocol(offers.iter().copied());
        assert_eq!(
            pick(&["actioncable-v1-json, actioncable-unsupported"]),
            Some("actioncable-v1-json")
        );
        assert_eq!(
            pick(&["actioncable-unsupported, actioncable-v1-json"]),
            Some("actioncable-unsupported")
        );
        assert_eq!(
            pick(&["actioncable-v1-json,actioncable-unsupported,token.abc"]),
            Some("actioncable-v1-json")
        );
        assert_eq!(
            pick(&["foo", "actioncable-v1-json"]),
            Some("actioncable-v1-json")
        );
        assert_eq!(pick(&["foo"]), None);
        assert_eq!(pick(&[]), None);
    }
}
