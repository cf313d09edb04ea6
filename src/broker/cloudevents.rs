//! CloudEvents over HTTP, with Dapr's pub/sub contract (docs.dapr.io, pub/sub API reference):
//! a service behind Dapr (fed by Kafka, say) publishes domain events on a topic; Dapr asks
//! the app which topics it wants (`GET /dapr/subscribe`), then POSTs each event, as a
//! structured CloudEvents 1.0 JSON document, to the route the app gave, and reads the answer
//! `{"status":"SUCCESS"|"RETRY"|"DROP"}`.
//!
//! Each `[dapr.topics.<topic>]` picks the stream(s) from the event with templates over its
//! attributes (`orders_{data.restaurant_id}`, see `broker::route`) and delivers the event's
//! `data` (or a `wrap` of it). An event that cannot route, or is not a CloudEvent, is
//! answered `DROP` (counted, logged, delivered nowhere); one that cannot be published right
//! now (Redis down, with a Redis publisher) is answered `RETRY`. Dapr sends the shared key in
//! the `dapr-api-token` header (its `APP_API_TOKEN`); without a key only loopback peers (a
//! sidecar) are accepted.
//!
//! This module decides; `http` serves the routes and publishes through the broker, so with
//! Redis every node delivers the event.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::health::{InputCounters, InputStatus, Rejection};
use super::route::{StreamTemplate, WrapTemplate};
use crate::broadcast_api::{Refusal, admit};
use crate::error::ConfigError;
use base64::Engine;
use bytes::Bytes;
use ferrocable_protocol::json::{self, Value};
use serde::{Deserialize, Serialize};

/// `[dapr]`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DaprSection {
    /// Serve `GET /dapr/subscribe` and the topics' routes.
    pub enabled: bool,
    /// The Dapr pub/sub component the topics belong to.
    pub pubsub_name: String,
    /// The key Dapr sends in `dapr-api-token` (`APP_API_TOKEN` fills it). Empty: loopback
    /// peers only.
    pub app_api_token: String,
    /// `[dapr.topics.<topic>]`, by topic name.
    pub topics: BTreeMap<String, DaprTopicSection>,
}

impl Default for DaprSection {
    fn default() -> Self {
        DaprSection {
            enabled: false,
            pubsub_name: "pubsub".into(),
            app_api_token: String::new(),
            topics: BTreeMap::new(),
        }
    }
}

/// `[dapr.topics.<topic>]`
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DaprTopicSection {
    /// Stream templates over the event's attributes: `{data.<path>}`, `{subject}`, ...
    pub streams: Vec<String>,
    /// Optional JSON template for the delivered payload; empty delivers `data` itself.
    pub wrap: String,
    /// The path Dapr POSTs this topic's events to; default `/dapr/<topic>`.
    pub route: String,
}

/// One topic, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaprTopic {
    /// The topic's name.
    pub name: String,
    /// Where Dapr delivers it.
    pub route: String,
    streams: Vec<StreamTemplate>,
    wrap: Option<WrapTemplate>,
}

/// The `[dapr]` section, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaprSettings {
    /// The pub/sub component's name.
    pub pubsub_name: String,
    token: Option<String>,
    /// The topics, in name order.
    pub topics: Vec<DaprTopic>,
}

/// What to answer Dapr for one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Publish these (stream, payload) pairs; `SUCCESS` once done, `RETRY` if publishing fails.
    Deliver(Vec<(String, Bytes)>),
    /// `DROP`, for this reason (logged).
    Drop(Rejection, String),
}

impl DaprSettings {
    /// `None` when the section is off.
    pub fn compile(raw: &DaprSection) -> Result<Option<DaprSettings>, ConfigError> {
        if !raw.enabled {
            return Ok(None);
        }
        if raw.pubsub_name.is_empty() {
            return Err(ConfigError::new("dapr.pubsub_name", "must not be empty"));
        }
        if raw.topics.is_empty() {
            return Err(ConfigError::new(
                "dapr.topics",
                "subscribe to at least one topic: [dapr.topics.orders] streams = [\"orders_{data.restaurant_id}\"]",
            ));
        }
        let mut topics: Vec<DaprTopic> = Vec::new();
        for (name, section) in &raw.topics {
            let key = |k: &str| format!("dapr.topics.{name}.{k}");
            if section.streams.is_empty() {
                return Err(ConfigError::new(key("streams"), "name at least one stream"));
            }
            let streams = section
                .streams
                .iter()
                .enumerate()
                .map(|(i, t)| StreamTemplate::parse(t, &format!("{}[{i}]", key("streams")), &[]))
                .collect::<Result<_, _>>()?;
            let wrap = (!section.wrap.is_empty())
                .then(|| WrapTemplate::parse(&section.wrap, &key("wrap"), &[]))
                .transpose()?;
            let route = if section.route.is_empty() {
                format!("/dapr/{name}")
            } else {
                section.route.clone()
            };
            if !route.starts_with('/') || route == "/dapr/subscribe" {
                return Err(ConfigError::new(
                    key("route"),
                    format!("{route:?}: a path starting with '/', not /dapr/subscribe"),
                ));
            }
            if let Some(other) = topics.iter().find(|t| t.route == route) {
                return Err(ConfigError::new(
                    key("route"),
                    format!("{route:?} is topic {}'s route already", other.name),
                ));
            }
            topics.push(DaprTopic {
                name: name.clone(),
                route,
                streams,
                wrap,
            });
        }
        Ok(Some(DaprSettings {
            pubsub_name: raw.pubsub_name.clone(),
            token: (!raw.app_api_token.is_empty()).then(|| raw.app_api_token.clone()),
            topics,
        }))
    }

    /// The answer to `GET /dapr/subscribe`: one programmatic subscription per topic.
    pub fn subscriptions(&self) -> serde_json::Value {
        serde_json::Value::Array(
            self.topics
                .iter()
                .map(|t| {
                    serde_json::json!({
                        "pubsubname": self.pubsub_name,
                        "topic": t.name,
                        "route": t.route,
                    })
                })
                .collect(),
        )
    }

    /// The topic delivered on `path`, if any.
    pub fn topic_at(&self, path: &str) -> Option<&DaprTopic> {
        self.topics.iter().find(|t| t.route == path)
    }

    /// Whether a request with this `dapr-api-token`, from `peer` (a sidecar is on loopback),
    /// may deliver.
    pub fn admits(&self, token: Option<&str>, peer: IpAddr) -> Result<(), Refusal> {
        admit(
            self.token.as_deref(),
            token,
            None,
            peer,
            "dapr.app_api_token",
        )
    }
}

impl DaprTopic {
    /// What one delivered body (a structured CloudEvent) becomes.
    pub fn judge(&self, body: &[u8], max_depth: usize) -> Verdict {
        let malformed = |why: String| Verdict::Drop(Rejection::Malformed, why);
        let event = match json::parse(body, max_depth) {
            Ok(event @ Value::Object(_)) => event,
            Ok(_) => return malformed("not a CloudEvent (a JSON object)".into()),
            Err(e) => return malformed(format!("not JSON: {e}")),
        };
        if event.get("specversion").and_then(Value::as_str) != Some("1.0") {
            return malformed("not a CloudEvents 1.0 event (specversion)".into());
        }
        for required in ["id", "source", "type"] {
            if event.get(required).and_then(Value::as_str).is_none() {
                return malformed(format!("missing the required attribute {required:?}"));
            }
        }
        let data = match data_of(&event, max_depth) {
            Ok(data) => data,
            Err(why) => return malformed(why),
        };
        let roots = |root: &str| {
            if root == "data" {
                data.as_ref()
            } else {
                event.get(root)
            }
        };
        let payload = match &self.wrap {
            Some(wrap) => Bytes::from(wrap.render(&roots)),
            None => {
                let mut out = Vec::new();
                json::write_value(&mut out, data.as_ref().unwrap_or(&Value::Null));
                Bytes::from(out)
            }
        };
        let mut out: Vec<(String, Bytes)> = Vec::with_capacity(self.streams.len());
        for (i, template) in self.streams.iter().enumerate() {
            let Some(stream) = template.render(&roots) else {
                return Verdict::Drop(
                    Rejection::Unroutable,
                    format!(
                        "dapr.topics.{}.streams[{i}] has no value in this event",
                        self.name
                    ),
                );
            };
            if !out.iter().any(|(s, _)| *s == stream) {
                out.push((stream, payload.clone()));
            }
        }
        Verdict::Deliver(out)
    }
}

/// The event's data: `data` as is, or `data_base64` decoded (and parsed when its content
/// type is JSON, else taken as a string).
fn data_of(event: &Value, max_depth: usize) -> Result<Option<Value>, String> {
    if let Some(data) = event.get("data") {
        return Ok(Some(data.clone()));
    }
    let Some(encoded) = event.get("data_base64") else {
        return Ok(None);
    };
    let bytes = encoded
        .as_str()
        .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
        .ok_or("data_base64 is not base64")?;
    let json_content = event
        .get("datacontenttype")
        .and_then(Value::as_str)
        .is_none_or(|t| t.contains("json"));
    if json_content {
        json::parse(&bytes, max_depth)
            .map(Some)
            .map_err(|e| format!("data_base64 is not JSON: {e}"))
    } else {
        String::from_utf8(bytes)
            .map(|s| Some(Value::String(s)))
            .map_err(|_| "data_base64 is not UTF-8 text".into())
    }
}

/// The CloudEvents input: nothing to connect, only its counters.
#[derive(Debug, Default)]
pub struct CloudEventsInput {
    counters: InputCounters,
}

impl CloudEventsInput {
    /// Records a delivery's verdict (and logs a drop).
    pub fn record(&self, topic: &str, verdict: &Verdict) {
        match verdict {
            Verdict::Deliver(_) => self.counters.message(),
            Verdict::Drop(why, cause) => {
                self.counters.reject(*why);
                if let Some(skipped) = self.counters.log_gate() {
                    tracing::warn!(topic, cause = %cause, skipped, "dropped a CloudEvent: delivered nowhere");
                }
            }
        }
    }

    /// The status `/health` shows.
    pub fn status(&self) -> InputStatus {
        let mut status = InputStatus::ready("cloudevents");
        self.counters.fill(&mut status);
        status
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrocable_protocol::MAX_JSON_DEPTH;

    fn settings(wrap: &str) -> DaprSettings {
        DaprSettings::compile(&DaprSection {
            enabled: true,
            topics: BTreeMap::from([(
                "orders".to_string(),
                DaprTopicSection {
                    streams: vec!["orders_{data.restaurant_id}".into()],
                    wrap: wrap.into(),
                    route: String::new(),
                },
            )]),
            ..DaprSection::default()
        })
        .unwrap()
        .unwrap()
    }

    // The event of the Dapr docs' "Dapr-generated CloudEvents example", with our data.
    const EVENT: &str = r#"{"topic":"orders","pubsubname":"pubsub","traceid":"00-113ad9c4e42b27583ae98ba698d54255-e3743e35ff56f219-01","tracestate":"","data":{"orderId":1,"restaurant_id":7},"id":"5929aaac-a5e2-4ca1-859c-edfe73f11565","specversion":"1.0","datacontenttype":"application/json; charset=utf-8","source":"checkout","type":"com.dapr.event.sent","time":"2020-09-23T06:23:21Z","traceparent":"00-113ad9c4e42b27583ae98ba698d54255-e3743e35ff56f219-01"}"#;

    #[test]
    fn subscriptions_and_routes() {
        let s = settings("");
        assert_eq!(
            s.subscriptions().to_string(),
            r#"[{"pubsubname":"pubsub","route":"/dapr/orders","topic":"orders"}]"#
        );
        assert!(s.topic_at("/dapr/orders").is_some());
        assert!(s.topic_at("/dapr/other").is_none());
    }

    #[test]
    fn events_route_by_their_data() {
        let topic = &settings("").topics[0];
        assert_eq!(
            topic.judge(EVENT.as_bytes(), MAX_JSON_DEPTH),
            Verdict::Deliver(vec![(
                "orders_7".into(),
                Bytes::from_static(br#"{"orderId":1,"restaurant_id":7}"#)
            )])
        );
        let wrapped = &settings(r#"{"type":{type},"order":{data}}"#).topics[0];
        assert_eq!(
            wrapped.judge(EVENT.as_bytes(), MAX_JSON_DEPTH),
            Verdict::Deliver(vec![(
                "orders_7".into(),
                Bytes::from_static(
                    br#"{"type":"com.dapr.event.sent","order":{"orderId":1,"restaurant_id":7}}"#
                )
            )])
        );
        let encoded = base64::engine::general_purpose::STANDARD.encode(r#"{"restaurant_id":"9"}"#);
        let event = format!(
            r#"{{"specversion":"1.0","id":"1","source":"s","type":"t","datacontenttype":"application/json","data_base64":"{encoded}"}}"#
        );
        assert!(matches!(
            topic.judge(event.as_bytes(), MAX_JSON_DEPTH),
            Verdict::Deliver(d) if d[0].0 == "orders_9"
        ));
    }

    #[test]
    fn what_is_dropped() {
        let topic = &settings("").topics[0];
        let drop_kind = |body: &str| match topic.judge(body.as_bytes(), MAX_JSON_DEPTH) {
            Verdict::Drop(why, _) => Some(why),
            Verdict::Deliver(_) => None,
        };
        assert_eq!(drop_kind("nope"), Some(Rejection::Malformed));
        assert_eq!(
            drop_kind(r#"{"restaurant_id":1}"#),
            Some(Rejection::Malformed)
        );
        assert_eq!(
            drop_kind(&EVENT.replace(r#""specversion":"1.0""#, r#""specversion":"0.3""#)),
            Some(Rejection::Malformed)
        );
        assert_eq!(
            drop_kind(&EVENT.replace(r#","restaurant_id":7"#, "")),
            Some(Rejection::Unroutable)
        );
    }

    #[test]
    fn the_token_is_required_when_set() {
        let mut raw = DaprSection {
            enabled: true,
            app_api_token: "k".into(),
            ..DaprSection::default()
        };
        raw.topics.insert(
            "t".into(),
            DaprTopicSection {
                streams: vec!["s".into()],
                ..Default::default()
            },
        );
        let s = DaprSettings::compile(&raw).unwrap().unwrap();
        let lan: IpAddr = "10.0.0.2".parse().unwrap();
        assert_eq!(s.admits(Some("k"), lan), Ok(()));
        assert_eq!(s.admits(Some("x"), lan), Err(Refusal::WrongKey));
        assert_eq!(s.admits(None, lan), Err(Refusal::WrongKey));
        raw.app_api_token.clear();
        let open = DaprSettings::compile(&raw).unwrap().unwrap();
        assert_eq!(
            open.admits(None, lan),
            Err(Refusal::NotLoopback("dapr.app_api_token"))
        );
        assert_eq!(open.admits(None, "127.0.0.1".parse().unwrap()), Ok(()));
        raw.topics.clear();
        assert_eq!(DaprSettings::compile(&raw).unwrap_err().key, "dapr.topics");
    }
}
