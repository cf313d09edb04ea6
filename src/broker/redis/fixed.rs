//! The Redis channels the input subscribes for their own sake rather than per stream:
//! AnyCable's channel (`anycable`) and routed channels and patterns (`routed`). They ride on
//! the same subscriber connection as Rails' per-stream channels, are subscribed again after
//! every reconnect, and their messages are handed to the hub in the same bursts.

use std::sync::Arc;

use super::anycable::{self, Publication, Refused};
use super::routed::{RedisRoute, Source, Unroutable};
use crate::broker::health::{InputCounters, Rejection};
use crate::hub::Burst;

/// AnyCable's channel and the routed channels, as the subscriber task reads them.
#[derive(Debug, Default)]
pub(crate) struct FixedChannels {
    anycable: Option<String>,
    routes: Vec<RedisRoute>,
    max_depth: usize,
    counters: Arc<InputCounters>,
}

impl FixedChannels {
    pub(crate) fn new(
        anycable: Option<String>,
        routes: Vec<RedisRoute>,
        max_depth: usize,
        counters: Arc<InputCounters>,
    ) -> FixedChannels {
        FixedChannels {
            anycable,
            routes,
            max_depth,
            counters,
        }
    }

    /// Channels to SUBSCRIBE on every connect.
    pub(crate) fn channels(&self) -> Vec<String> {
        let mut out: Vec<String> = self.anycable.iter().cloned().collect();
        for route in &self.routes {
            if let Source::Channel(c) = &route.source
                && !out.contains(c)
            {
                out.push(c.clone());
            }
        }
        out
    }

    /// Patterns to PSUBSCRIBE on every connect.
    pub(crate) fn patterns(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for route in &self.routes {
            if let Source::Pattern(p) = &route.source
                && !out.contains(p)
            {
                out.push(p.clone());
            }
        }
        out
    }

    /// Hands a message that arrived on one of these channels (or patterns) to the hub;
    /// `false` when it did not, so it is an Action Cable stream's.
    pub(crate) fn hand_on(&self, burst: &mut Burst<'_>, msg: &redis::Msg) -> bool {
        let channel = msg.get_channel_name();
        let pattern: Option<String> = if msg.from_pattern() {
            msg.get_pattern().ok()
        } else {
            None
        };
        let payload = msg.get_payload_bytes();
        let mut handled = false;
        if pattern.is_none() && self.anycable.as_deref() == Some(channel) {
            handled = true;
            self.anycable(burst, payload);
        }
        for route in &self.routes {
            if route.matches(channel, pattern.as_deref()) {
                handled = true;
                self.routed(burst, route, channel, payload);
            }
        }
        handled
    }

    fn anycable(&self, burst: &mut Burst<'_>, payload: &[u8]) {
        match anycable::parse(payload, self.max_depth) {
            Ok(publications) => {
                self.counters.message();
                for publication in publications {
                    match publication {
                        Publication::Broadcast { stream, data } => {
                            burst.dispatch(&stream, &data, None);
                        }
                        Publication::Disconnect { stream, payload } => {
                            burst.dispatch(&stream, &payload, None);
                        }
                    }
                }
            }
            Err(refused) => {
                let why = match refused {
                    Refused::Malformed(_) => Rejection::Malformed,
                    Refused::Unsupported(_) => Rejection::Unsupported,
                };
                self.counters.reject(why);
                if let Some(skipped) = self.counters.log_gate() {
                    tracing::warn!(cause = %refused, bytes = payload.len(), skipped, "refused a message on AnyCable's channel");
                }
            }
        }
    }

    fn routed(&self, burst: &mut Burst<'_>, route: &RedisRoute, channel: &str, payload: &[u8]) {
        match route.route(payload, self.max_depth) {
            Ok(deliveries) => {
                self.counters.message();
                for (stream, data) in deliveries {
                    burst.dispatch(&stream, &data, None);
                }
            }
            Err(e) => {
                self.counters.reject(match e {
                    Unroutable::NotJson(_) => Rejection::Malformed,
                    Unroutable::NoValue(_) => Rejection::Unroutable,
                });
                if let Some(skipped) = self.counters.log_gate() {
                    tracing::warn!(route = %route.name, channel, cause = %e, skipped, "refused a routed message: delivered nowhere");
                }
            }
        }
    }
}
