use std::time::Duration;

use serde_json::json;

use crate::support::*;

const ORDER: &str = r#"{"channel":"OrderChannel","restaurant_id":1}"#;

#[tokio::test]
async fn embedded_broker_takes_broadcasts_over_http() {
    let server = Server::start(&config(""));
    let mut ws = server.welcomed(42, 1).await;
    ws.send_text(&subscribe(ORDER)).await;
    ws.expect(&confirm(ORDER)).await;

    let reply = server
        .broadcast(
            "order_channel_1",
            r#"{"type":"new_order","order":{"id":1}}"#,
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text());
    ws.expect(&data_frame(
        ORDER,
        r#"{"type":"new_order","order":{"id":1}}"#,
    ))
    .await;

    // An array keeps its order; a non-string data is encoded as Rails would.
    let body = json!([
        {"stream": "order_channel_1", "data": "1"},
        {"stream": "order_channel_1", "data": {"html": "<b>"}},
    ]);
    let reply = server
        .http("POST", "/_broadcast", &[], body.to_string().as_bytes())
        .await;
    assert_eq!(reply.status, 201);
    ws.expect(&data_frame(ORDER, "1")).await;
    ws.expect(&data_frame(ORDER, r#"{"html":"\u003cb\u003e"}"#))
        .await;

    for bad in [&b"nope"[..], br#"{"data":"1"}"#, br#"{"stream":"x"}"#] {
        let reply = server.http("POST", "/_broadcast", &[], bad).await;
        assert_eq!(reply.status, 422, "{}", String::from_utf8_lossy(bad));
    }
}

#[tokio::test]
async fn broadcast_api_key_is_required_when_configured() {
    let server = Server::start_with(&config(""), &[("FERROCABLE_BROADCAST_API__KEY", "s3cret")]);
    let body = json!({"stream": "s", "data": "1"}).to_string();
    let reply = server
        .http("POST", "/_broadcast", &[], body.as_bytes())
        .await;
    assert_eq!(reply.status, 401);
    let reply = server
        .http(
            "POST",
            "/_broadcast",
            &[("Authorization", "Bearer nope")],
            body.as_bytes(),
        )
        .await;
    assert_eq!(reply.status, 401);
    let reply = server
        .http(
            "POST",
            "/_broadcast",
            &[("Authorization", "Bearer s3cret")],
            body.as_bytes(),
        )
        .await;
    assert_eq!(reply.status, 201);

    let off = Server::start_with(
        &config(""),
        &[("FERROCABLE_BROADCAST_API__ENABLED", "false")],
    );
    let reply = off.http("POST", "/_broadcast", &[], body.as_bytes()).await;
    assert_eq!(reply.status, 404);
}

#[tokio::test]
async fn payloads_are_reencoded_as_activesupport_would() {
    let server = Server::start(&config(""));
    let mut ws = server.welcomed(42, 1).await;
    ws.send_text(&subscribe(ORDER)).await;
    ws.expect(&confirm(ORDER)).await;
    // (published, frame message) pairs from fixtures/json/broadcast-reencode.jsonl (Rails 6.1).
    let cases = [
        (r#"{ "a" : 1 , "b" : [ 1 , 2 ] }"#, r#"{"a":1,"b":[1,2]}"#),
        (
            r#"{"html":"<b>Tom & Jerry</b>"}"#,
            r#"{"html":"\u003cb\u003eTom \u0026 Jerry\u003c/b\u003e"}"#,
        ),
        ("{\"s\":\"raw \u{2028} sep\"}", r#"{"s":"raw \u2028 sep"}"#),
        (r#"{"s":"caf\u00e9 \/"}"#, r#"{"s":"café /"}"#),
        (
            r#"{"f":[2.50,1e3,1E-7,1e20]}"#,
            r#"{"f":[2.5,1000.0,1.0e-07,1.0e+20]}"#,
        ),
        (
            r#"{"n":12345678901234567890123}"#,
            r#"{"n":12345678901234567890123}"#,
        ),
        (r#"{"k":1,"z":0,"k":2}"#, r#"{"k":2,"z":0}"#),
        (r#""just a string""#, r#""just a string""#),
        ("42", "42"),
        ("{\"s\":\"😀 emoji\"}", "{\"s\":\"😀 emoji\"}"),
    ];
    for (published, expected) in cases {
        server.broadcast("order_channel_1", published).await;
        ws.expect(&data_frame(ORDER, expected)).await;
    }
}

#[tokio::test]
async fn invalid_json_is_dropped_logged_and_counted() {
    let redis = Redis::start();
    let server = Server::start(&redis_config(&redis.url()));
    let mut ws = server.welcomed(42, 1).await;
    ws.send_text(&subscribe(ORDER)).await;
    ws.expect(&confirm(ORDER)).await;
    for bad in ["not json", "{\"a\":", "NaN", "{'a':1}"] {
        redis.publish("shimizu_order_suite_production:order_channel_1", bad);
    }
    redis.publish("shimizu_order_suite_production:order_channel_1", "1");
    ws.expect(&data_frame(ORDER, "1")).await;
    let stats = server.stats().await;
    assert_eq!(stats["broadcasts_invalid"], 4);
    assert!(
        server
            .logs()
            .contains("dropped a broadcast that is not valid JSON")
    );
    // The HTTP API tells its caller instead of accepting what would be dropped.
    let reply = server.broadcast("order_channel_1", "not json").await;
    assert_eq!(reply.status, 422);
    assert!(reply.text().contains("not valid JSON"), "{}", reply.text());
}

#[tokio::test]
async fn redis_publishes_in_rails_format_are_delivered() {
    let redis = Redis::start();
    let server = Server::start(&redis_config(&redis.url()));
    let mut ws = server.welcomed(42, 1).await;
    ws.send_text(&subscribe(ORDER)).await;
    ws.expect(&confirm(ORDER)).await;
    // Confirmed means live: Redis already counts us as a subscriber.
    assert_eq!(
        redis.publish(
            "shimizu_order_suite_production:order_channel_1",
            r#"{"type":"new_order","order":{"id":1}}"#
        ),
        1
    );
    ws.expect(&data_frame(
        ORDER,
        r#"{"type":"new_order","order":{"id":1}}"#,
    ))
    .await;
    // Other prefixes and restaurants are not ours.
    redis.publish("order_channel_1", "2");
    redis.publish("shimizu_order_suite_production:order_channel_2", "3");
    ws.expect_silence(300).await;
    // Per-stream order is preserved.
    for i in 0..50 {
        redis.publish(
            "shimizu_order_suite_production:order_channel_1",
            &i.to_string(),
        );
    }
    for i in 0..50 {
        ws.expect(&data_frame(ORDER, &i.to_string())).await;
    }
    let health = server.http("GET", "/health", &[], b"").await;
    assert_eq!(health.status, 200);
    let body: serde_json::Value = serde_json::from_slice(&health.body).unwrap();
    assert_eq!(body["broker"]["kind"], "redis");
    assert_eq!(body["broker"]["state"], "connected");
}

#[tokio::test]
async fn redis_subscriptions_follow_local_interest() {
    let redis = Redis::start();
    let server = Server::start(&redis_config(&redis.url()));
    let numsub = |channel: &str| -> i64 {
        let out = redis.cli(&["PUBSUB", "NUMSUB", channel]).unwrap();
        out.lines().nth(1).unwrap().trim().parse().unwrap()
    };
    let channel = "shimizu_order_suite_production:order_channel_1";
    let mut a = server.welcomed(1, 1).await;
    let mut b = server.welcomed(2, 1).await;
    for ws in [&mut a, &mut b] {
        ws.send_text(&subscribe(ORDER)).await;
        ws.expect(&confirm(ORDER)).await;
    }
    assert_eq!(numsub(channel), 1, "one SUBSCRIBE per stream per process");
    a.send_text(&unsubscribe(ORDER)).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(numsub(channel), 1, "b still listens");
    drop(b);
    let start = std::time::Instant::now();
    while numsub(channel) != 0 {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "UNSUBSCRIBE never sent"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn confirm_waits_for_the_redis_subscribe_reply() {
    let redis = Redis::start();
    let server = Server::start(&redis_config(&redis.url()));
    let mut ws = server.welcomed(42, 1).await;
    // Freeze Redis: the SUBSCRIBE cannot be acknowledged, so no confirm may go out.
    redis.signal("STOP");
    ws.send_text(&subscribe(ORDER)).await;
    ws.expect_silence(700).await;
    redis.signal("CONT");
    ws.expect(&confirm(ORDER)).await;
    assert_eq!(
        redis.publish("shimizu_order_suite_production:order_channel_1", "1"),
        1
    );
    ws.expect(&data_frame(ORDER, "1")).await;
}

#[tokio::test]
async fn broadcast_api_and_actions_publish_through_redis_to_every_node() {
    let redis = Redis::start();
    let node_a = Server::start(&redis_config(&redis.url()));
    let node_b = Server::start(&redis_config(&redis.url()));
    let room = r#"{"channel":"ChatChannel","room":"9"}"#;
    let mut a = node_a.welcomed(1, 1).await;
    let mut b = node_b.welcomed(2, 1).await;
    for ws in [&mut a, &mut b] {
        ws.send_text(&subscribe(room)).await;
        ws.expect(&confirm(room)).await;
    }
    // POST to node A; node B's client gets it through Redis.
    let reply = node_a.broadcast("chat_9", r#"{"x":1}"#).await;
    assert_eq!(reply.status, 201);
    a.expect(&data_frame(room, r#"{"x":1}"#)).await;
    b.expect(&data_frame(room, r#"{"x":1}"#)).await;
    // An action on node B reaches node A's client once.
    b.send_text(&message(room, r#"{"text":"hi","action":"speak"}"#))
        .await;
    a.expect(&data_frame(room, r#"{"text":"hi","action":"speak"}"#))
        .await;
    b.expect(&data_frame(room, r#"{"text":"hi","action":"speak"}"#))
        .await;
    a.expect_silence(300).await;
}

#[tokio::test]
async fn a_pipelined_burst_is_coalesced_and_arrives_complete_and_in_order() {
    let redis = Redis::start();
    let server = Server::start(&redis_config(&redis.url()));
    let mut clients = Vec::new();
    for user in 0..3 {
        let mut ws = server.welcomed(100 + user, 1).await;
        ws.send_text(&subscribe(ORDER)).await;
        ws.expect(&confirm(ORDER)).await;
        clients.push(ws);
    }
    // 2,000 PUBLISHes in one write: Redis forwards them faster than one fan-out each takes,
    // so the dispatcher finds messages waiting and hands frames to the connections' queues.
    const BURST: usize = 2000;
    let commands: String = (0..BURST)
        .map(|i| format!("PUBLISH shimizu_order_suite_production:order_channel_1 {i}\r\n"))
        .collect();
    let mut pipe = std::process::Command::new("redis-cli")
        .args(["-p", &redis.port.to_string(), "--pipe"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("redis-cli");
    std::io::Write::write_all(&mut pipe.stdin.take().unwrap(), commands.as_bytes()).unwrap();
    assert!(pipe.wait().unwrap().success());
    for ws in &mut clients {
        for i in 0..BURST {
            ws.expect(&data_frame(ORDER, &i.to_string())).await;
        }
        ws.expect_silence(100).await;
    }
    let stats = server.http("GET", "/stats", &[], b"").await;
    let stats: serde_json::Value = serde_json::from_slice(&stats.body).unwrap();
    assert_eq!(stats["broadcasts_received"], BURST);
    assert!(
        stats["broadcasts_coalesced"].as_u64().unwrap() > 0,
        "a burst is fanned out in queued mode: {stats}"
    );
}
