//! Routed Redis channels: a service beside the Rails app publishes domain events on a Redis
//! channel of its own (`sales:completed`, or a pattern such as `sales:*`), not an Action Cable
//! stream. Each `[redis_routes.<name>]` picks the stream(s) from the payload with templates
//! (`sales_{payload.location_id}`, see `broker::route`) and optionally wraps the payload.
//! A payload that is not JSON, or for which a template has no value, is refused: counted,
//! logged, and never delivered anywhere else.

use std::collections::BTreeMap;

use bytes::Bytes;
use ferrocable_protocol::json;
use serde::{Deserialize, Serialize};

use crate::broker::route::{StreamTemplate, WrapTemplate};
use crate::error::ConfigError;

/// The one root a routed channel's templates read from: the message's JSON payload.
const ROOTS: &[&str] = &["payload"];

/// `[redis_routes.<name>]`
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RedisRouteSection {
    /// The Redis channel to SUBSCRIBE (exactly one of `channel` and `pattern`).
    pub channel: String,
    /// A Redis glob pattern to PSUBSCRIBE.
    pub pattern: String,
    /// Where each message goes: stream templates over `{payload.<path>}`.
    pub streams: Vec<String>,
    /// Optional JSON template for the delivered payload; `{payload}` is the message itself.
    /// Empty: deliver the message as published.
    pub wrap: String,
}

/// Which Redis channels a route listens to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `SUBSCRIBE channel`.
    Channel(String),
    /// `PSUBSCRIBE pattern`.
    Pattern(String),
}

/// One `[redis_routes.<name>]`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisRoute {
    /// The table's name (for logs and errors).
    pub name: String,
    /// Its channel or pattern.
    pub source: Source,
    streams: Vec<StreamTemplate>,
    wrap: Option<WrapTemplate>,
}

/// Why a routed message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unroutable {
    /// The payload is not JSON.
    #[error("payload is not JSON: {0}")]
    NotJson(String),
    /// A stream template has no value in this payload.
    #[error("{0:?} has no value in this payload")]
    NoValue(String),
}

impl RedisRoute {
    /// Checks every `[redis_routes.*]`; `has_redis`: whether `redis.url` is set.
    pub fn compile_all(
        raw: &BTreeMap<String, RedisRouteSection>,
        has_redis: bool,
    ) -> Result<Vec<RedisRoute>, ConfigError> {
        let mut routes = Vec::with_capacity(raw.len());
        for (name, section) in raw {
            let key = |k: &str| format!("redis_routes.{name}.{k}");
            if !has_redis {
                return Err(ConfigError::new(
                    format!("redis_routes.{name}"),
                    "routed channels are read from Redis: set redis.url (REDIS_URL)",
                ));
            }
            let source = match (section.channel.is_empty(), section.pattern.is_empty()) {
                (false, true) => Source::Channel(section.channel.clone()),
                (true, false) => Source::Pattern(section.pattern.clone()),
                _ => {
                    return Err(ConfigError::new(
                        format!("redis_routes.{name}"),
                        "set exactly one of channel and pattern",
                    ));
                }
            };
            if section.streams.is_empty() {
                return Err(ConfigError::new(
                    key("streams"),
                    "name at least one stream, e.g. [\"sales_{payload.location_id}\"]",
                ));
            }
            let streams = section
                .streams
                .iter()
                .enumerate()
                .map(|(i, text)| {
                    StreamTemplate::parse(text, &format!("{}[{i}]", key("streams")), ROOTS)
                })
                .collect::<Result<_, _>>()?;
            let wrap = (!section.wrap.is_empty())
                .then(|| WrapTemplate::parse(&section.wrap, &key("wrap"), ROOTS))
                .transpose()?;
            routes.push(RedisRoute {
                name: name.clone(),
                source,
                streams,
                wrap,
            });
        }
        Ok(routes)
    }

    /// Whether a message received on `channel` (through `pattern`, for a PSUBSCRIBE) is ours.
    pub fn matches(&self, channel: &str, pattern: Option<&str>) -> bool {
        match (&self.source, pattern) {
            (Source::Channel(c), None) => c == channel,
            (Source::Pattern(p), Some(got)) => p == got,
            _ => false,
        }
    }

    /// The (stream, payload) pairs one message becomes.
    pub fn route(
        &self,
        payload: &[u8],
        max_depth: usize,
    ) -> Result<Vec<(String, Bytes)>, Unroutable> {
        let value =
            json::parse(payload, max_depth).map_err(|e| Unroutable::NotJson(e.to_string()))?;
        let roots = |root: &str| (root == "payload").then_some(&value);
        let delivered = match &self.wrap {
            Some(wrap) => Bytes::from(wrap.render(&roots)),
            None => Bytes::copy_from_slice(payload),
        };
        let mut out: Vec<(String, Bytes)> = Vec::with_capacity(self.streams.len());
        for (i, template) in self.streams.iter().enumerate() {
            let stream = template
                .render(&roots)
                .ok_or_else(|| Unroutable::NoValue(self.stream_text(i)))?;
            // Two templates naming the same stream deliver once.
            if !out.iter().any(|(s, _)| *s == stream) {
                out.push((stream, delivered.clone()));
            }
        }
        Ok(out)
    }

    fn stream_text(&self, i: usize) -> String {
        format!("redis_routes.{}.streams[{i}]", self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrocable_protocol::MAX_JSON_DEPTH;

    fn section(channel: &str, streams: &[&str], wrap: &str) -> RedisRouteSection {
        RedisRouteSection {
            channel: channel.into(),
            streams: streams.iter().map(|s| s.to_string()).collect(),
            wrap: wrap.into(),
            ..RedisRouteSection::default()
        }
    }

    fn compile(s: RedisRouteSection) -> Result<Vec<RedisRoute>, ConfigError> {
        RedisRoute::compile_all(&BTreeMap::from([("sales".to_string(), s)]), true)
    }

    #[test]
    fn routes_by_the_payload() {
        let route = compile(section(
            "sales:completed",
            &["sales_{payload.location_id}"],
            "",
        ))
        .unwrap()
        .remove(0);
        assert!(route.matches("sales:completed", None));
        assert!(!route.matches("sales:completed", Some("sales:*")));
        let payload = br#"{"location_id":4,"total":"12.50"}"#;
        assert_eq!(
            route.route(payload, MAX_JSON_DEPTH),
            Ok(vec![("sales_4".to_string(), Bytes::from_static(payload))])
        );
        assert_eq!(
            route.route(br#"{"total":1}"#, MAX_JSON_DEPTH),
            Err(Unroutable::NoValue("redis_routes.sales.streams[0]".into()))
        );
        assert!(matches!(
            route.route(b"not json", MAX_JSON_DEPTH),
            Err(Unroutable::NotJson(_))
        ));
    }

    #[test]
    fn wraps_and_fans_out_to_several_streams() {
        let route = compile(section(
            "sales:completed",
            &["sales_{payload.location_id}", "sales_all", "sales_all"],
            r#"{"type":"sale_completed","sale":{payload}}"#,
        ))
        .unwrap()
        .remove(0);
        let out = route
            .route(br#"{"location_id":"9"}"#, MAX_JSON_DEPTH)
            .unwrap();
        let wrapped =
            Bytes::from_static(br#"{"type":"sale_completed","sale":{"location_id":"9"}}"#);
        assert_eq!(
            out,
            vec![
                ("sales_9".to_string(), wrapped.clone()),
                ("sales_all".to_string(), wrapped)
            ]
        );
    }

    #[test]
    fn bad_tables_name_their_key() {
        let cases = [
            (section("", &["s"], ""), "redis_routes.sales"),
            (
                RedisRouteSection {
                    pattern: "p*".into(),
                    ..section("c", &["s"], "")
                },
                "redis_routes.sales",
            ),
            (section("c", &[], ""), "redis_routes.sales.streams"),
            (
                section("c", &["s_{data.x}"], ""),
                "redis_routes.sales.streams[0]",
            ),
            (section("c", &["s"], "{payload"), "redis_routes.sales.wrap"),
        ];
        for (s, key) in cases {
            assert_eq!(compile(s).unwrap_err().key, key);
        }
        let no_redis = RedisRoute::compile_all(
            &BTreeMap::from([("x".to_string(), section("c", &["s"], ""))]),
            false,
        )
        .unwrap_err();
        assert_eq!(no_redis.key, "redis_routes.x");
    }
}
