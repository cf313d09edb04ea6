use std::time::{Duration, Instant};

use crate::support::redis_ha::{TlsFiles, TlsRedis};
use crate::support::*;

const ORDER: &str = r#"{"channel":"OrderChannel","restaurant_id":1}"#;
const CHANNEL: &str = "shimizu_order_suite_production:order_channel_1";

fn tls_config(redis: &TlsRedis, files: &TlsFiles, ca: &str, verify_mode: &str) -> String {
    config(&format!(
        "[redis]\nurl = \"rediss://:{}@127.0.0.1:{}\"\nchannel_prefix = \"shimizu_order_suite_production\"\n\
         [redis.ssl_params]\nca_file = \"{}\"\ncert_file = \"{}\"\nkey_file = \"{}\"\nverify_mode = \"{verify_mode}\"\n",
        redis.password,
        redis.port,
        files.path(ca),
        files.path("client.crt"),
        files.path("client.key"),
    ))
}

async fn health(server: &Server) -> (u16, serde_json::Value) {
    let r = server.http("GET", "/health", &[], b"").await;
    (r.status, serde_json::from_slice(&r.body).unwrap())
}

#[tokio::test]
async fn rediss_with_a_ca_and_a_client_certificate_subscribes_and_publishes() {
    let files = TlsFiles::generate();
    let redis = TlsRedis::start(&files);
    let server = Server::start(&tls_config(&redis, &files, "ca.crt", "peer"));
    let mut ws = server.welcomed(42, 1).await;
    ws.send_text(&subscribe(ORDER)).await;
    // Confirmed means Redis acknowledged the SUBSCRIBE, over TLS.
    ws.expect(&confirm(ORDER)).await;
    assert_eq!(
        redis
            .cli(&["PUBLISH", CHANNEL, r#"{"via":"redis-cli"}"#])
            .trim(),
        "1"
    );
    ws.expect(&data_frame(ORDER, r#"{"via":"redis-cli"}"#))
        .await;
    // The publisher connects over TLS too.
    let reply = server
        .broadcast("order_channel_1", r#"{"via":"api"}"#)
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text());
    ws.expect(&data_frame(ORDER, r#"{"via":"api"}"#)).await;
    let (status, body) = health(&server).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["broker"]["node"], format!("127.0.0.1:{}", redis.port));
    assert!(
        !server.logs().contains(redis.password),
        "the URL's password was logged"
    );
    assert!(!server.logs().contains("NOT VERIFIED"));
}

#[tokio::test]
async fn a_certificate_from_another_ca_is_refused_unless_verify_mode_is_none() {
    let files = TlsFiles::generate();
    let redis = TlsRedis::start(&files);

    let strict = Server::start(&tls_config(&redis, &files, "other-ca.crt", "peer"));
    let mut ws = strict.welcomed(42, 1).await;
    ws.send_text(&subscribe(ORDER)).await;
    let start = Instant::now();
    let body = loop {
        let (status, body) = health(&strict).await;
        if status == 503 && body["broker"]["last_error"].is_string() {
            break body;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let error = body["broker"]["last_error"]
        .as_str()
        .unwrap()
        .to_lowercase();
    assert!(error.contains("certificate"), "{error}");
    ws.expect_silence(300).await;

    let lax = Server::start(&tls_config(&redis, &files, "other-ca.crt", "none"));
    let mut ws = lax.welcomed(42, 1).await;
    ws.send_text(&subscribe(ORDER)).await;
    ws.expect(&confirm(ORDER)).await;
    redis.cli(&["PUBLISH", CHANNEL, "1"]);
    ws.expect(&data_frame(ORDER, "1")).await;
    // Loudly, at startup, before anything connects.
    let warning = lax
        .logs()
        .lines()
        .find(|l| l.contains("NOT VERIFIED"))
        .map(str::to_string)
        .expect("verify_mode = none is logged");
    assert!(warning.contains(r#""level":"WARN""#), "{warning}");
    let listening = lax.logs().find("ferrocable listening").unwrap();
    assert!(lax.logs().find("NOT VERIFIED").unwrap() < listening);
}
