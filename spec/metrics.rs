use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::*;

const ORDER: &str = r#"{"channel":"OrderChannel","restaurant_id":1}"#;
const CHANNEL: &str = "shimizu_order_suite_production:order_channel_1";
const KEY: &str = "ops-key-31415926";

/// `GET /metrics` (in the Prometheus text format, or OpenMetrics when `openmetrics`), parsed
/// by the official Prometheus Python client (spec/support/parse_metrics.py): every sample as
/// `name{labels}` → value. Panics if the parser rejects the exposition.
async fn scrape(
    server: &Server,
    openmetrics: bool,
    headers: &[(&str, &str)],
) -> Vec<(String, Value, f64)> {
    let mut headers = headers.to_vec();
    if openmetrics {
        headers.push(("Accept", "application/openmetrics-text; version=1.0.0"));
    }
    let reply = server.http("GET", "/metrics", &headers, b"").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let content_type = reply.header("content-type").unwrap_or("").to_string();
    assert!(
        content_type.starts_with(if openmetrics {
            "application/openmetrics-text"
        } else {
            "text/plain; version=0.0.4"
        }),
        "{content_type}"
    );
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/spec/support/parse_metrics.py");
    let mut child = Command::new("/usr/bin/python3")
        .args([
            script,
            if openmetrics {
                "openmetrics"
            } else {
                "prometheus"
            },
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("/usr/bin/python3 (bin/test installs python3-prometheus-client)");
    child.stdin.take().unwrap().write_all(&reply.body).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the Prometheus parser rejected the exposition: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        reply.text()
    );
    let families: serde_json::Map<String, Value> = serde_json::from_slice(&out.stdout).unwrap();
    families
        .values()
        .flat_map(|f| f["samples"].as_array().unwrap().clone())
        .map(|s| {
            (
                s[0].as_str().unwrap().to_string(),
                s[1].clone(),
                s[2].as_f64().unwrap(),
            )
        })
        .collect()
}

fn value(samples: &[(String, Value, f64)], name: &str, labels: Value) -> f64 {
    samples
        .iter()
        .find(|(n, l, _)| n == name && *l == labels)
        .map(|(_, _, v)| *v)
        .unwrap_or_else(|| panic!("no sample {name}{labels} in {samples:?}"))
}

#[tokio::test]
async fn metrics_are_read_by_a_real_prometheus_parser_with_anycable_names() {
    let redis = Redis::start();
    let server = Server::start(&redis_config(&redis.url()));
    let mut a = server.welcomed(1, 1).await;
    let mut b = server.welcomed(2, 1).await;
    for ws in [&mut a, &mut b] {
        ws.send_text(&subscribe(ORDER)).await;
        ws.expect(&confirm(ORDER)).await;
    }
    a.send_text("not a command").await;
    for i in 0..3 {
        redis.publish(CHANNEL, &i.to_string());
        a.expect(&data_frame(ORDER, &i.to_string())).await;
        b.expect(&data_frame(ORDER, &i.to_string())).await;
    }
    redis.publish(CHANNEL, "not json");
    let forged = token_with(
        jsonwebtoken::Algorithm::HS256,
        b"wrong",
        json!({"user_id": 3, "restaurant_id": 1}),
    );
    let expired = token(json!({"user_id": 4, "restaurant_id": 1, "exp": now() - 60}));
    for t in [&forged, &expired] {
        let (_, ws) = server.connect(&format!("/cable?token={t}"), &[]).await;
        ws.unwrap()
            .expect(r#"{"type":"disconnect","reason":"unauthorized","reconnect":false}"#)
            .await;
    }
    // Counters are read at scrape time; wait for the invalid broadcast to be counted.
    let start = Instant::now();
    let samples = loop {
        let samples = scrape(&server, false, &[]).await;
        if value(&samples, "ferrocable_failed_broadcast_msg_total", json!({})) == 1.0 {
            break samples;
        }
        assert!(start.elapsed() < Duration::from_secs(5), "{samples:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let v = |name: &str| value(&samples, name, json!({}));
    assert_eq!(v("ferrocable_clients_num"), 2.0);
    assert_eq!(v("ferrocable_clients_uniq_num"), 2.0);
    assert_eq!(
        v("ferrocable_broadcast_streams_num"),
        3.0,
        "a stream and two identities' own"
    );
    assert_eq!(v("ferrocable_broadcast_msg_total"), 4.0);
    assert_eq!(v("ferrocable_failed_auths_total"), 2.0);
    assert_eq!(
        v("ferrocable_client_msg_total"),
        3.0,
        "two subscribes, one garbage"
    );
    assert_eq!(v("ferrocable_failed_client_msg_total"), 1.0);
    // Welcomes, confirms and three broadcasts to two clients; pings may add more.
    assert!(v("ferrocable_server_msg_total") >= 10.0);
    assert_eq!(v("ferrocable_failed_server_msg_total"), 0.0);
    assert_eq!(v("ferrocable_disconnected_slow_clients_total"), 0.0);
    let reason = |r: &str| {
        value(
            &samples,
            "ferrocable_auth_refusals_total",
            json!({"reason": r}),
        )
    };
    assert_eq!(reason("bad_signature"), 1.0);
    assert_eq!(reason("expired"), 1.0);
    let input = json!({"input": "redis"});
    assert_eq!(value(&samples, "ferrocable_input_up", input.clone()), 1.0);
    assert_eq!(
        value(&samples, "ferrocable_input_connects_total", input),
        1.0
    );
    // Every broadcast was delivered, so each left at least one latency observation, all
    // well under a second on loopback.
    let count = v("ferrocable_delivery_latency_seconds_count");
    assert!(count >= 3.0, "{count}");
    let within_1s = value(
        &samples,
        "ferrocable_delivery_latency_seconds_bucket",
        json!({"le": "1"}),
    );
    assert_eq!(within_1s, count);
    let all = value(
        &samples,
        "ferrocable_delivery_latency_seconds_bucket",
        json!({"le": "+Inf"}),
    );
    assert_eq!(all, count);

    // The same numbers in OpenMetrics, through the client's strict OpenMetrics parser.
    let open = scrape(&server, true, &[]).await;
    assert_eq!(
        value(&open, "ferrocable_failed_auths_total", json!({})),
        2.0
    );
    assert_eq!(value(&open, "ferrocable_clients_num", json!({})), 2.0);
}

async fn status(server: &Server, path: &str, headers: &[(&str, &str)]) -> HttpReply {
    server.http("GET", path, headers, b"").await
}

#[tokio::test]
async fn stats_and_metrics_need_the_key_or_loopback() {
    // No key: loopback only, and only under a local Host (a DNS-rebinding page is refused).
    let open = Server::start(&config(""));
    for path in ["/stats", "/metrics"] {
        assert_eq!(status(&open, path, &[]).await.status, 200, "{path}");
        let rebound = status(&open, path, &[("Host", "evil.example:8080")]).await;
        assert_eq!(rebound.status, 403, "{path}: {}", rebound.text());
    }

    // A key: required from everyone, as a bearer token or a Basic password.
    let keyed = Server::start(&config(&format!("[broadcast_api]\nkey = \"{KEY}\"\n")));
    let bearer = format!("Bearer {KEY}");
    let basic = format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("ops:{KEY}")
        )
    );
    for path in ["/stats", "/metrics"] {
        let refused = status(&keyed, path, &[]).await;
        assert_eq!(refused.status, 401, "{path}");
        assert!(
            refused
                .header("www-authenticate")
                .is_some_and(|h| h.starts_with("Basic")),
            "{}",
            refused.head
        );
        let wrong = format!("Bearer {KEY}x");
        assert_eq!(
            status(&keyed, path, &[("Authorization", &wrong)])
                .await
                .status,
            401
        );
        assert_eq!(
            status(&keyed, path, &[("Authorization", &bearer)])
                .await
                .status,
            200
        );
        assert_eq!(
            status(&keyed, path, &[("Authorization", &basic)])
                .await
                .status,
            200
        );
    }
    // /stats lists identities: never without the key.
    let stats = status(&keyed, "/stats", &[]).await;
    assert!(!stats.text().contains("identities"), "{}", stats.text());
}

/// The address other hosts reach this one at, if it has one (a UDP "connect" sends nothing).
fn non_loopback_address() -> Option<std::net::IpAddr> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("192.0.2.1:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

#[tokio::test]
async fn without_a_key_other_hosts_are_refused() {
    let Some(ip) = non_loopback_address() else {
        println!("skipped: this machine has no non-loopback address to connect from");
        return;
    };
    let server = Server::start(&config("[server]\nhost = \"0.0.0.0\"\n"));
    let outside = std::net::SocketAddr::new(ip, server.addr.port());
    for path in ["/stats", "/metrics"] {
        let reply = http(outside, "GET", path, &[], b"").await;
        assert_eq!(reply.status, 403, "{path}: {}", reply.text());
    }
    let reply = http(
        outside,
        "POST",
        "/_broadcast",
        &[],
        br#"{"stream":"s","data":"1"}"#,
    )
    .await;
    assert_eq!(reply.status, 403);
    // /health stays open: load balancers probe it from elsewhere.
    assert_eq!(http(outside, "GET", "/health", &[], b"").await.status, 200);
}
