//! `GET /metrics`: the counters of [`Stats`](crate::stats::Stats), the hub's gauges and every
//! input's health in Prometheus' text format (0.0.4), or OpenMetrics when the scraper asks
//! for it, written by the `prometheus-client` crate (the Prometheus project's own Rust
//! client).
//!
//! Nothing is counted twice: the numbers live in `Stats` (striped atomics on the hot path),
//! the hub and the inputs, and a scrape reads them through a [`Collector`] and hands them to
//! the crate's encoder. So `/stats`, the console and `/metrics` can never disagree, and
//! exposing metrics adds nothing to the delivery path.
//!
//! Names follow AnyCable's (`anycable_go_clients_num` ... with our `ferrocable_` prefix)
//! where the concept is the same; the README lists each with its meaning.

use std::fmt;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::{Registry, Unit};

use crate::broker::InputStatus;
use crate::shared::Shared;
use crate::stats::LatencySnapshot;

/// The Prometheus text format's content type.
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";
/// OpenMetrics' content type.
pub const OPENMETRICS_TEXT: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The exposition for one scrape, and its content type: OpenMetrics when `accept` asks for
/// it (as Prometheus does), else the classic text format.
pub fn render(shared: &Shared, accept: Option<&str>) -> (String, &'static str) {
    let openmetrics = accept.is_some_and(|a| a.contains("application/openmetrics-text"));
    let mut registry = Registry::with_prefix("ferrocable");
    registry.register_collector(Box::new(Scrape::of(shared)));
    let mut out = String::new();
    let written = if openmetrics {
        prometheus_client::encoding::text::encode(&mut out, &registry)
    } else {
        prometheus_client::encoding::prometheus_text::encode(&mut out, &registry)
    };
    // Writing into a String cannot fail; an encoder error would be a naming bug, and an
    // empty answer is the honest result then.
    if written.is_err() {
        out.clear();
    }
    (
        out,
        if openmetrics {
            OPENMETRICS_TEXT
        } else {
            PROMETHEUS_TEXT
        },
    )
}

/// Every number of one scrape, read once.
#[derive(Debug)]
struct Scrape {
    gauges: Vec<(&'static str, &'static str, i64)>,
    counters: Vec<(&'static str, &'static str, u64)>,
    auth_refusals: Vec<(&'static str, u64)>,
    latency: LatencySnapshot,
    inputs: Vec<InputStatus>,
}

impl Scrape {
    fn of(shared: &Shared) -> Scrape {
        use std::sync::atomic::Ordering::Relaxed;
        let s = &shared.stats;
        let gauges = vec![
            (
                "clients_num",
                "Clients connected (welcomed WebSocket connections).",
                s.connections.load(Relaxed),
            ),
            (
                "clients_uniq_num",
                "Distinct connection identifiers among the connected clients.",
                shared.hub.identity_count() as i64,
            ),
            (
                "broadcast_streams_num",
                "Streams with at least one local subscriber.",
                shared.hub.stream_count() as i64,
            ),
            (
                "subscriptions_num",
                "Active subscriptions (confirmed or waiting for their streams).",
                s.subscriptions.load(Relaxed),
            ),
            (
                "draining",
                "1 while the server drains (SIGTERM): /health answers 503.",
                i64::from(shared.refuses_new_connections()),
            ),
        ];
        let counters = vec![
            (
                "client_msg",
                "Messages received from clients.",
                s.client_messages.get(),
            ),
            (
                "failed_client_msg",
                "Messages from clients that were not a command Rails would run (logged and ignored).",
                s.client_messages_failed.load(Relaxed),
            ),
            (
                "server_msg",
                "Frames written to clients (broadcasts, confirmations, pings...).",
                s.frames_delivered.get(),
            ),
            (
                "failed_server_msg",
                "Frames that never reached a client: dropped with a slow client's queue or lost with a failed write.",
                s.frames_failed.load(Relaxed),
            ),
            (
                "broadcast_msg",
                "Broadcasts received by the hub, from every input.",
                s.broadcasts_received.load(Relaxed),
            ),
            (
                "failed_broadcast_msg",
                "Broadcasts dropped because their payload is not valid JSON.",
                s.broadcasts_invalid.load(Relaxed),
            ),
            (
                "broadcasts_coalesced",
                "Broadcasts fanned out while behind: queued for the clients' tasks instead of written at once.",
                s.broadcasts_coalesced.load(Relaxed),
            ),
            (
                "failed_auths",
                "Connections refused by authentication.",
                s.unauthorized_connections.load(Relaxed),
            ),
            (
                "disconnected_slow_clients",
                "Clients disconnected for not keeping up (queue overflow or write timeout).",
                s.slow_client_disconnects.load(Relaxed),
            ),
            (
                "write_timeouts",
                "Slow-client disconnects whose write stayed blocked past limits.write_timeout_secs.",
                s.write_timeouts.load(Relaxed),
            ),
            (
                "connection_limit_refusals",
                "Upgrades refused because limits.max_connections were open.",
                s.connection_limit_refusals.load(Relaxed),
            ),
            (
                "oversized_messages",
                "Inbound messages over limits.max_message_bytes (connection closed 1009).",
                s.oversized_messages.load(Relaxed),
            ),
            (
                "subscription_limit_rejections",
                "Subscribes refused by limits.max_subscriptions_per_connection.",
                s.subscription_limit_rejections.load(Relaxed),
            ),
            (
                "rate_limited_disconnects",
                "Connections closed by limits.max_commands_per_second.",
                s.rate_limited_disconnects.load(Relaxed),
            ),
            (
                "deep_json_commands",
                "Commands ignored for nesting deeper than limits.max_json_depth.",
                s.deep_json_commands.load(Relaxed),
            ),
            (
                "oversized_tokens",
                "Tokens refused by limits.max_token_bytes.",
                s.oversized_tokens.load(Relaxed),
            ),
            (
                "handshake_timeouts",
                "Connections closed before sending their request headers in time.",
                s.handshake_timeouts.load(Relaxed),
            ),
        ];
        Scrape {
            gauges,
            counters,
            auth_refusals: s.auth_refusals.snapshot().into_iter().collect(),
            latency: s.delivery_latency.snapshot(),
            inputs: shared.broker.statuses(),
        }
    }
}

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> fmt::Result {
        for (name, help, value) in &self.gauges {
            let metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            ConstGauge::new(*value).encode(metric)?;
        }
        for (name, help, value) in &self.counters {
            let metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            ConstCounter::new(*value).encode(metric)?;
        }
        if !self.auth_refusals.is_empty() {
            let mut metric = encoder.encode_descriptor(
                "auth_refusals",
                "Connections refused by authentication, by reason.",
                None,
                MetricType::Counter,
            )?;
            for (reason, count) in &self.auth_refusals {
                ConstCounter::new(*count).encode(metric.encode_family(&[("reason", *reason)])?)?;
            }
        }
        let metric = encoder.encode_descriptor(
            "delivery_latency",
            "From a broadcast's arrival at the hub to the socket write that carried it: once per \
             broadcast fanned out at once, once per batch a client's task wrote (since the batch started).",
            Some(&Unit::Seconds),
            MetricType::Histogram,
        )?;
        Histogram(&self.latency).encode(metric)?;
        self.encode_inputs(&mut encoder)
    }
}

impl Scrape {
    /// Per-input health, labelled `input="redis"` (or `memory`).
    fn encode_inputs(&self, encoder: &mut DescriptorEncoder<'_>) -> fmt::Result {
        type Read = fn(&InputStatus) -> Option<u64>;
        let families: [(&str, &str, MetricType, Read); 5] = [
            (
                "input_up",
                "1 while the input can deliver broadcasts (its connection is up).",
                MetricType::Gauge,
                |i| Some(u64::from(i.healthy)),
            ),
            (
                "input_connects",
                "Times the input's connection was established.",
                MetricType::Counter,
                |i| i.connects,
            ),
            (
                "input_outages",
                "Times the input's connection was lost and re-established.",
                MetricType::Counter,
                |i| i.outages,
            ),
            (
                "input_failovers",
                "Reconnections that landed on another node (a Sentinel failover).",
                MetricType::Counter,
                |i| i.failovers,
            ),
            (
                "input_last_gap_milliseconds",
                "The last outage's gap, from the loss until every live stream was subscribed again; \
                 broadcasts published meanwhile were lost.",
                MetricType::Gauge,
                |i| i.last_gap_ms,
            ),
        ];
        for (name, help, kind, read) in families {
            let values: Vec<(&str, u64)> = self
                .inputs
                .iter()
                .filter_map(|i| read(i).map(|v| (i.kind, v)))
                .collect();
            if values.is_empty() {
                continue;
            }
            let mut metric = encoder.encode_descriptor(name, help, None, kind)?;
            for (input, value) in values {
                let labels = [("input", input)];
                let family = metric.encode_family(&labels)?;
                match kind {
                    MetricType::Counter => ConstCounter::new(value).encode(family)?,
                    _ => ConstGauge::new(value as i64).encode(family)?,
                }
            }
        }
        Ok(())
    }
}

/// A [`LatencySnapshot`] as a Prometheus histogram.
struct Histogram<'a>(&'a LatencySnapshot);

impl EncodeMetric for Histogram<'_> {
    fn encode(&self, mut encoder: MetricEncoder<'_>) -> fmt::Result {
        let snapshot = self.0;
        let buckets: Vec<(f64, u64)> = snapshot
            .bounds_secs
            .iter()
            .copied()
            .chain(std::iter::once(f64::INFINITY))
            .zip(snapshot.counts.iter().copied())
            .collect();
        encoder.encode_histogram::<NoLabelSet>(snapshot.sum_secs, snapshot.count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}
