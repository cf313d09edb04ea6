use std::time::{Duration, Instant};

use crate::support::*;

const ORDER: &str = r#"{"channel":"OrderChannel","restaurant_id":1}"#;
const CHANNEL: &str = "shimizu_order_suite_production:order_channel_1";

#[tokio::test]
async fn a_redis_restart_mid_session_resumes_broadcasts() {
    let mut redis = Redis::start();
    let server = Server::start(&redis_config(&redis.url()));
    let mut ws = server.welcomed(42, 1).await;
    ws.send_text(&subscribe(ORDER)).await;
    ws.expect(&confirm(ORDER)).await;
    redis.publish(CHANNEL, "1");
    ws.expect(&data_frame(ORDER, "1")).await;

    redis.kill();
    let body = server.wait_health(503, Duration::from_secs(10)).await;
    assert_eq!(body["broker"]["state"], "disconnected");
    // Sockets keep being served while Redis is away.
    let mut late = server.welcomed(7, 1).await;
    late.send_text(&subscribe(ORDER)).await;

    redis.restart();
    server.wait_health(200, Duration::from_secs(10)).await;
    redis.wait_subscribed(CHANNEL);
    late.expect(&confirm(ORDER)).await;
    redis.publish(CHANNEL, "2");
    ws.expect(&data_frame(ORDER, "2")).await;
    late.expect(&data_frame(ORDER, "2")).await;
    server.assert_logged("Redis subscriber reconnected");
    server.assert_logged("outage_ms");
    // A new redis-server process has a new run_id: the log says Redis itself restarted.
    server.assert_logged("Redis restarted (new run_id)");
}

#[tokio::test]
async fn redis_down_at_start_serves_and_reports_degraded() {
    let port = free_port();
    let server = Server::start(&redis_config(&format!("redis://127.0.0.1:{port}")));
    let body = server.wait_health(503, Duration::from_secs(10)).await;
    assert_eq!(body["status"], "degraded");
    let mut ws = server.welcomed(42, 1).await;
    ws.send_text(&subscribe(ORDER)).await;
    ws.expect_silence(300).await;
    let reply = server.broadcast("order_channel_1", "1").await;
    assert_eq!(reply.status, 503, "publishing needs Redis");

    let mut redis = Redis::start();
    // Start a Redis on the port the server has been retrying.
    redis.kill();
    redis.port = port;
    redis.restart();
    server.wait_health(200, Duration::from_secs(10)).await;
    ws.expect(&confirm(ORDER)).await;
    redis.publish(CHANNEL, "1");
    ws.expect(&data_frame(ORDER, "1")).await;
}

#[tokio::test]
async fn a_stalled_redis_is_detected_and_replaced() {
    let redis = Redis::start();
    let server = Server::start(&redis_config(&redis.url()));
    let mut ws = server.welcomed(42, 1).await;
    ws.send_text(&subscribe(ORDER)).await;
    ws.expect(&confirm(ORDER)).await;
    redis.signal("STOP");
    // PING every 5 s, 5 s to answer: within ~11 s the server must notice.
    let start = Instant::now();
    loop {
        let (status, _) = server.health().await;
        if status == 503 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "stall never detected"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    redis.signal("CONT");
    server.wait_health(200, Duration::from_secs(10)).await;
    redis.wait_subscribed(CHANNEL);
    redis.publish(CHANNEL, r#""after""#);
    ws.expect(&data_frame(ORDER, r#""after""#)).await;
}
