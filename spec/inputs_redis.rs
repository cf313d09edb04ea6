use std::time::Duration;

use serde_json::json;

use crate::support::recorded::{Clients, Recording, frame};
use crate::support::*;

/// anycable-rb's Redis broadcaster: `PUBLISH __anycable__ {"stream":…,"data":"<json>"}`,
/// `data` being what Rails' broadcaster encoded. The payloads and the frames are the ones
/// recorded from Rails 7.2 (the PostgreSQL recording: the same ActiveSupport encoding), so
/// what a client gets is checked against what Rails' own client got.
#[tokio::test]
async fn anycable_publications_arrive_byte_exact() {
    let redis = Redis::start();
    let server = Server::start_profile("anycable", &[("REDIS_URL", &redis.url())]);
    let rec = Recording::load("postgresql");
    let mut clients = Clients::subscribe(&server, &rec).await;
    redis.wait_subscribed("__anycable__");
    for case in rec.cases() {
        let message = json!({"stream": case.stream, "data": case.payload()}).to_string();
        assert_eq!(redis.publish("__anycable__", &message), 1);
        let ws = clients.of(&case.stream);
        match case.frames.first() {
            Some(expected) => ws.expect(expected).await,
            // Rails' PostgreSQL adapter lost this one; over Redis there is no such limit.
            None => ws.expect(&frame(&case.identifier, &case.payload())).await,
        }
    }
    // A batch (AnyCable's `batching`): one message, several publications, in order.
    let chat = stream_identifier("chat_1");
    let batch = json!([
        {"stream": "chat_1", "data": "1"},
        {"stream": "orders_7", "data": "{\"id\":2}"},
        {"stream": "chat_1", "data": "3", "meta": {"exclude_socket": "abc"}},
    ]);
    redis.publish("__anycable__", &batch.to_string());
    let ws = clients.of("chat_1");
    ws.expect(&frame(&chat, "1")).await;
    ws.expect(&frame(&chat, "3")).await;
    let orders = clients.of("orders_7");
    orders
        .expect(&frame(&stream_identifier("orders_7"), r#"{"id":2}"#))
        .await;

    // anycable-rb's HTTP broadcaster: POST /_broadcast, the same body, 201 expected.
    let body = json!({"stream": "chat_1", "data": "{\"via\":\"http\"}"}).to_string();
    let reply = server
        .http(
            "POST",
            "/_broadcast",
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text());
    let ws = clients.of("chat_1");
    ws.expect(&frame(&chat, r#"{"via":"http"}"#)).await;

    // Refused messages are counted and logged, never delivered.
    redis.publish("__anycable__", "not json");
    redis.publish("__anycable__", r#"{"command":"reload","payload":{}}"#);
    ws.expect_silence(300).await;
    let stats = server.stats().await;
    let input = &stats["inputs"][0];
    assert_eq!(input["kind"], "redis");
    assert_eq!(input["rejected"]["malformed"], 1, "{stats}");
    assert_eq!(input["rejected"]["unsupported"], 1, "{stats}");
    assert_eq!(input["detail"]["streams"], false);
    assert!(
        server
            .logs()
            .contains("refused a message on AnyCable's channel")
    );
}

#[tokio::test]
async fn anycable_http_broadcasts_need_the_key_derived_from_the_secret() {
    let redis = Redis::start();
    let server = Server::start_profile(
        "anycable",
        &[("REDIS_URL", &redis.url()), ("ANYCABLE_SECRET", "s3cret")],
    );
    let id = stream_identifier("chat_1");
    let mut ws = server.subscribed(&id).await;
    let body = br#"{"stream":"chat_1","data":"1"}"#;
    assert_eq!(
        server.http("POST", "/_broadcast", &[], body).await.status,
        401
    );
    // AnyCable's recipe: hex(HMAC-SHA256(secret, "broadcast-cable")), what anycable-rails sends.
    let derived = {
        use hmac::{Hmac, Mac};
        let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(b"s3cret").unwrap();
        mac.update(b"broadcast-cable");
        hex::encode(mac.finalize().into_bytes())
    };
    let auth = format!("Bearer {derived}");
    let reply = server
        .http("POST", "/_broadcast", &[("Authorization", &auth)], body)
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text());
    ws.expect(&frame(&id, "1")).await;
}

#[tokio::test]
async fn anycable_disconnect_commands_are_rails_remote_disconnects() {
    let redis = Redis::start();
    let server = Server::start(&config(&format!(
        "[redis]\nurl = \"{}\"\nstreams = false\n[anycable]\nenabled = true\n",
        redis.url()
    )));
    let mut user_42 = server.welcomed(42, 1).await;
    let mut user_7 = server.welcomed(7, 1).await;
    redis.wait_subscribed("__anycable__");
    // anycable-rails' remote_connections.where(current_user: user, restaurant_id: 1).disconnect(reconnect: false):
    // the identifiers as GlobalID params (or plain values) in a JSON string.
    let ids =
        json!({"current_user": "Z2lkOi8vc2hpbWl6dS1vcmRlci1zdWl0ZS9Vc2VyLzQy", "restaurant_id": 1})
            .to_string();
    let command =
        json!({"command": "disconnect", "payload": {"identifier": ids, "reconnect": false}});
    redis.publish("__anycable__", &command.to_string());
    user_42
        .expect(r#"{"type":"disconnect","reason":"remote","reconnect":false}"#)
        .await;
    user_42.expect_close_1000().await;
    user_7.expect_silence(300).await;
}

#[tokio::test]
async fn sales_events_are_routed_by_location() {
    let mut redis = Redis::start();
    let server = Server::start_profile("sales_bridge", &[("REDIS_URL", &redis.url())]);
    let (s12, s13) = (stream_identifier("sales_12"), stream_identifier("sales_13"));
    let mut w12 = server.subscribed(&s12).await;
    let mut w13 = server.subscribed(&s13).await;
    redis.wait_subscribed("sales:completed");
    // What the Go service publishes: its own JSON (encoding/json escapes <>& too).
    let event = r#"{"location_id":12,"sale_id":"9f3c","total_cents":4150,"items":[{"sku":"A-1","qty":2}],"note":"\u003cgift\u003e"}"#;
    assert_eq!(redis.publish("sales:completed", event), 1);
    w12.expect(&frame(
        &s12,
        r#"{"location_id":12,"sale_id":"9f3c","total_cents":4150,"items":[{"sku":"A-1","qty":2}],"note":"\u003cgift\u003e"}"#,
    ))
    .await;
    redis.publish("sales:completed", r#"{"location_id":"13","total_cents":1}"#);
    w13.expect(&frame(&s13, r#"{"location_id":"13","total_cents":1}"#))
        .await;
    // No location, a blank one, a nested one, not JSON: refused, delivered nowhere.
    for bad in [
        r#"{"total_cents":1}"#,
        r#"{"location_id":"  "}"#,
        r#"{"location_id":{"id":12}}"#,
        "sale 12 done",
    ] {
        redis.publish("sales:completed", bad);
    }
    // The Rails app's own broadcasts (Redis adapter) keep working beside the route.
    redis.publish("sales_12", r#"{"from":"rails"}"#);
    w12.expect(&frame(&s12, r#"{"from":"rails"}"#)).await;
    w12.expect_silence(300).await;
    w13.expect_silence(0).await;
    let stats = server.stats().await;
    assert_eq!(stats["inputs"][0]["rejected"]["unroutable"], 3, "{stats}");
    assert_eq!(stats["inputs"][0]["rejected"]["malformed"], 1, "{stats}");
    assert_eq!(stats["inputs"][0]["messages"], 2, "{stats}");
    server.assert_logged("refused a routed message");

    // After a Redis restart the route is subscribed again.
    redis.kill();
    server.wait_health(503, Duration::from_secs(10)).await;
    redis.restart();
    server.wait_health(200, Duration::from_secs(10)).await;
    redis.wait_subscribed("sales:completed");
    redis.publish("sales:completed", r#"{"location_id":13}"#);
    w13.expect(&frame(&s13, r#"{"location_id":13}"#)).await;
}

#[tokio::test]
async fn patterns_and_wraps() {
    let redis = Redis::start();
    let profile = dev_profile(&format!(
        r#"
[redis]
url = "{}"
streams = false
[redis_routes.sales]
pattern = "sales:*"
streams = ["sales_{{payload.location_id}}", "sales_all"]
wrap = '{{"type":"sale","sale":{{payload}},"location":{{payload.location_id}}}}'
"#,
        redis.url()
    ));
    let server = Server::start(&profile);
    let (s5, all) = (stream_identifier("sales_5"), stream_identifier("sales_all"));
    let mut w5 = server.subscribed(&s5).await;
    let mut wall = server.subscribed(&all).await;
    // PSUBSCRIBE: wait until a publish reaches someone.
    let mut tries = 0;
    while redis.publish("sales:refunded", r#"{"location_id":0}"#) == 0 {
        tries += 1;
        assert!(tries < 200, "pattern never subscribed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    wall.expect(&frame(
        &all,
        r#"{"type":"sale","sale":{"location_id":0},"location":0}"#,
    ))
    .await;
    redis.publish("sales:completed", r#"{"location_id":5,"html":"<b>"}"#);
    let wrapped = r#"{"type":"sale","sale":{"location_id":5,"html":"\u003cb\u003e"},"location":5}"#;
    w5.expect(&frame(&s5, wrapped)).await;
    wall.expect(&frame(&all, wrapped)).await;
    redis.publish("other:completed", r#"{"location_id":5}"#);
    w5.expect_silence(300).await;
}
