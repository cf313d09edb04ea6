use std::time::Duration;

use serde_json::{Value, json};

use crate::support::db::Postgres;
use crate::support::recorded::frame;
use crate::support::*;

/// A CloudEvent as Dapr delivers it: the Dapr docs' "Dapr-generated CloudEvents example"
/// (docs.dapr.io, pub/sub "Messages with CloudEvents"), attribute for attribute and in its
/// order, with our data (JSON text).
fn dapr_event(data: &str) -> String {
    format!(
        r#"{{"topic":"orders","pubsubname":"pubsub","traceid":"00-113ad9c4e42b27583ae98ba698d54255-e3743e35ff56f219-01","tracestate":"","data":{data},"id":"5929aaac-a5e2-4ca1-859c-edfe73f11565","specversion":"1.0","datacontenttype":"application/json; charset=utf-8","source":"checkout","type":"com.dapr.event.sent","time":"2020-09-23T06:23:21Z","traceparent":"00-113ad9c4e42b27583ae98ba698d54255-e3743e35ff56f219-01"}}"#
    )
}

/// Dapr's POST of one event: `Content-Type: application/cloudevents+json`.
async fn deliver(server: &Server, path: &str, body: &str, token: Option<&str>) -> HttpReply {
    let mut headers = vec![("Content-Type", "application/cloudevents+json")];
    if let Some(t) = token {
        headers.push(("dapr-api-token", t));
    }
    server.http("POST", path, &headers, body.as_bytes()).await
}

fn status(reply: &HttpReply) -> String {
    assert_eq!(reply.status, 200, "{}", reply.text());
    let v: Value = serde_json::from_slice(&reply.body).unwrap();
    v["status"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn dapr_subscribes_and_delivers_cloudevents() {
    let server = Server::start_profile("dapr", &[]);
    // Dapr's first call: which topics, on which routes.
    let reply = server.http("GET", "/dapr/subscribe", &[], b"").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let subscriptions: Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(
        subscriptions,
        json!([{"pubsubname": "pubsub", "topic": "orders", "route": "/dapr/orders"}])
    );
    let (o7, o8) = (stream_identifier("orders_7"), stream_identifier("orders_8"));
    let mut w7 = server.subscribed(&o7).await;
    let mut w8 = server.subscribed(&o8).await;
    let order = r#"{"orderId":1,"restaurant_id":7,"note":"<rush>","total":12.50}"#;
    let reply = deliver(&server, "/dapr/orders", &dapr_event(order), None).await;
    assert_eq!(status(&reply), "SUCCESS");
    w7.expect(&frame(
        &o7,
        r#"{"orderId":1,"restaurant_id":7,"note":"\u003crush\u003e","total":12.5}"#,
    ))
    .await;
    // A string id routes too; data_base64 (binary mode bridged by Dapr) is decoded.
    let reply = deliver(
        &server,
        "/dapr/orders",
        &dapr_event(r#"{"restaurant_id":"8"}"#),
        None,
    )
    .await;
    assert_eq!(status(&reply), "SUCCESS");
    w8.expect(&frame(&o8, r#"{"restaurant_id":"8"}"#)).await;
    let b64 = json!({
        "specversion": "1.0", "id": "2", "source": "s", "type": "t",
        "datacontenttype": "application/json",
        "data_base64": "eyJyZXN0YXVyYW50X2lkIjo4LCJ2aWEiOiJiNjQifQ==",
    });
    assert_eq!(
        status(&deliver(&server, "/dapr/orders", &b64.to_string(), None).await),
        "SUCCESS"
    );
    w8.expect(&frame(&o8, r#"{"restaurant_id":8,"via":"b64"}"#))
        .await;

    // Events that can never be delivered are dropped, counted and logged.
    for bad in [
        dapr_event(r#"{"orderId":2}"#),
        dapr_event(r#"{"restaurant_id":null}"#),
        dapr_event(r#""plain text""#),
        r#"{"restaurant_id":7}"#.to_string(),
        "not json".to_string(),
    ] {
        assert_eq!(
            status(&deliver(&server, "/dapr/orders", &bad, None).await),
            "DROP",
            "{bad}"
        );
    }
    // Over 1 MiB: retrying cannot make it smaller.
    let huge = dapr_event(&format!(
        r#"{{"restaurant_id":7,"blob":"{}"}}"#,
        "x".repeat(1 << 20)
    ));
    assert_eq!(
        status(&deliver(&server, "/dapr/orders", &huge, None).await),
        "DROP"
    );
    w7.expect_silence(300).await;
    w8.expect_silence(0).await;
    let stats = server.stats().await;
    let input = &stats["inputs"][0];
    assert_eq!(input["kind"], "cloudevents");
    assert_eq!(input["messages"], 3, "{stats}");
    assert_eq!(input["rejected"]["unroutable"], 3, "{stats}");
    assert_eq!(input["rejected"]["malformed"], 2, "{stats}");
    assert_eq!(input["rejected"]["oversized"], 1, "{stats}");
    server.assert_logged("dropped a CloudEvent");
    // A route nobody subscribed: Rails' 404 (Dapr drops with an error).
    let reply = deliver(&server, "/dapr/payments", &dapr_event("{}"), None).await;
    assert_eq!(reply.status, 404);
}

#[tokio::test]
async fn dapr_api_token_is_required_when_set() {
    let server = Server::start_profile("dapr", &[("APP_API_TOKEN", "t0ken")]);
    let o7 = stream_identifier("orders_7");
    let mut w7 = server.subscribed(&o7).await;
    let event = dapr_event(r#"{"restaurant_id":7}"#);
    assert_eq!(
        deliver(&server, "/dapr/orders", &event, None).await.status,
        401
    );
    assert_eq!(
        deliver(&server, "/dapr/orders", &event, Some("wrong"))
            .await
            .status,
        401
    );
    w7.expect_silence(200).await;
    let reply = deliver(&server, "/dapr/orders", &event, Some("t0ken")).await;
    assert_eq!(status(&reply), "SUCCESS");
    w7.expect(&frame(&o7, r#"{"restaurant_id":7}"#)).await;
}

#[tokio::test]
async fn dapr_events_are_retried_while_they_cannot_be_published() {
    // With Rails' Redis adapter on, events are published through Redis (every node gets
    // them); with Redis down Dapr is told to RETRY, and a retry once it is back succeeds.
    let mut redis = Redis::start();
    let profile = std::fs::read_to_string(db::repo().join("config/examples/dapr.toml")).unwrap();
    let server = Server::start_with(
        &format!("{profile}\n[redis]\nurl = \"{}\"\n", redis.url()),
        &[],
    );
    let o7 = stream_identifier("orders_7");
    let mut w7 = server.subscribed(&o7).await;
    let event = dapr_event(r#"{"restaurant_id":7}"#);
    redis.kill();
    server.wait_health(503, Duration::from_secs(10)).await;
    assert_eq!(
        status(&deliver(&server, "/dapr/orders", &event, None).await),
        "RETRY"
    );
    redis.restart();
    server.wait_health(200, Duration::from_secs(10)).await;
    assert_eq!(
        status(&deliver(&server, "/dapr/orders", &event, None).await),
        "SUCCESS"
    );
    w7.expect(&frame(&o7, r#"{"restaurant_id":7}"#)).await;
}

/// Every kind of input on at once, feeding one stream: the subscription is confirmed only
/// when every input that subscribes per stream has, each input's broadcasts arrive, and
/// /health shows each one.
#[tokio::test]
async fn every_input_at_once() {
    let redis = Redis::start();
    let mut pg = Postgres::start();
    let pg_url = pg.url();
    pg.kill();
    let dir = TempDir::new("all-inputs");
    let db = dir.0.join("cable.sqlite3");
    {
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&db)
            .create_if_missing(true);
        let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect_with(&options)
            .await
            .unwrap();
        sqlx::raw_sql(
            "PRAGMA journal_mode = WAL; CREATE TABLE solid_cable_messages (id integer PRIMARY KEY AUTOINCREMENT NOT NULL, channel blob(1024) NOT NULL, payload blob(536870912) NOT NULL, created_at datetime(6) NOT NULL, channel_hash integer(8) NOT NULL)",
        )
        .execute(&mut conn)
        .await
        .unwrap();
    }
    let config = dev_profile(&format!(
        r#"
[redis]
url = "{redis}"
[redis_routes.orders]
channel = "orders:created"
streams = ["orders_{{payload.restaurant_id}}"]
[postgresql]
enabled = true
url = "{pg_url}"
[solid_cable]
enabled = true
database_url = "sqlite3:{db}"
polling_interval_ms = 50
[dapr]
enabled = true
[dapr.topics.orders]
streams = ["orders_{{data.restaurant_id}}"]
"#,
        redis = redis.url(),
        db = db.display()
    ));
    let server = Server::start(&config);
    let body = server.wait_health(503, Duration::from_secs(10)).await;
    let kinds: Vec<&str> = body["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["redis", "postgresql", "solid_cable", "cloudevents"]);
    assert_eq!(
        body["broker"]["kind"], "redis",
        "the first input, for older clients"
    );
    // PostgreSQL is down: Redis and Solid Cable have acknowledged, the confirm waits.
    let o7 = stream_identifier("orders_7");
    let (_, ws) = server.connect("/cable", &[]).await;
    let mut ws = ws.unwrap();
    ws.expect(r#"{"type":"welcome"}"#).await;
    ws.send_text(&subscribe(&o7)).await;
    ws.expect_silence(700).await;
    pg.restart();
    ws.expect(&confirm(&o7)).await;
    let body = server.wait_health(200, Duration::from_secs(10)).await;
    assert!(
        body["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["healthy"] == true)
    );

    redis.publish("orders_7", r#"{"via":"rails redis"}"#);
    ws.expect(&frame(&o7, r#"{"via":"rails redis"}"#)).await;
    redis.publish("orders:created", r#"{"restaurant_id":7,"via":"route"}"#);
    ws.expect(&frame(&o7, r#"{"restaurant_id":7,"via":"route"}"#))
        .await;
    let mut conn = pg.connect().await;
    sqlx::raw_sql(r#"NOTIFY "orders_7", '{"via":"notify"}'"#)
        .execute(&mut conn)
        .await
        .unwrap();
    ws.expect(&frame(&o7, r#"{"via":"notify"}"#)).await;
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(&db);
    let mut lite = <sqlx::SqliteConnection as sqlx::Connection>::connect_with(&options)
        .await
        .unwrap();
    sqlx::query("INSERT INTO solid_cable_messages (created_at, channel, payload, channel_hash) VALUES ('2024-01-01 00:00:00', ?, ?, ?)")
        .bind(&b"orders_7"[..])
        .bind(&br#"{"via":"solid cable"}"#[..])
        .bind(crate::inputs_solid_cable::solid_cable_hash("orders_7"))
        .execute(&mut lite)
        .await
        .unwrap();
    ws.expect(&frame(&o7, r#"{"via":"solid cable"}"#)).await;
    let event = json!({"specversion": "1.0", "id": "1", "source": "s", "type": "t", "data": {"restaurant_id": 7, "via": "dapr"}});
    assert_eq!(
        status(&deliver(&server, "/dapr/orders", &event.to_string(), None).await),
        "SUCCESS"
    );
    ws.expect(&frame(&o7, r#"{"restaurant_id":7,"via":"dapr"}"#))
        .await;
    // One input down: degraded, the others still deliver.
    pg.kill();
    let body = server.wait_health(503, Duration::from_secs(15)).await;
    assert_eq!(body["inputs"][1]["healthy"], false);
    assert_eq!(body["inputs"][0]["healthy"], true);
    redis.publish("orders_7", "2");
    ws.expect(&frame(&o7, "2")).await;
}
