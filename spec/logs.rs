use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::*;

const ORDER: &str = r#"{"channel":"OrderChannel","restaurant_id":1}"#;
const API_KEY: &str = "broadcast-key-9f8e7d6c5b4a";
const COOKIE_VALUE: &str = "cookie-session-value-0a1b2c3d4e5f";
const REDIS_PASSWORD: &str = "redis-pass-5e6f7a8b";

fn parsed(logs: &str) -> Vec<Value> {
    logs.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// Every log line the server wrote in a run that used a token (in the query, in a bearer
/// header, a forged and an expired one), the JWT secret, the broadcast API key, a cookie
/// header and a Redis password, with the noisiest filter: none of them may appear, whole or
/// as the part that matters (a token's signature).
#[tokio::test]
async fn no_token_secret_key_cookie_or_password_is_ever_logged() {
    let mut redis = Redis::start();
    redis.cli(&["CONFIG", "SET", "requirepass", REDIS_PASSWORD]);
    let url = format!("redis://:{REDIS_PASSWORD}@127.0.0.1:{}", redis.port);
    let extra = format!(
        "[redis]\nurl = \"{url}\"\nchannel_prefix = \"shimizu_order_suite_production\"\n\
         [broadcast_api]\nkey = \"{API_KEY}\"\n"
    );
    let mut server = Server::start_with(&config(&extra), &[("RUST_LOG", "trace")]);
    let good = token(json!({"user_id": 42, "restaurant_id": 1}));
    let bearer = token(json!({"user_id": 43, "restaurant_id": 1}));
    let forged = token_with(
        jsonwebtoken::Algorithm::HS256,
        b"not-the-secret",
        json!({"user_id": 44, "restaurant_id": 1}),
    );
    let expired = token(json!({"user_id": 45, "restaurant_id": 1, "exp": now() - 60}));
    let cookie = format!("_app_session={COOKIE_VALUE}; remember_user_token={COOKIE_VALUE}");

    let (reply, ws) = server
        .connect(&format!("/cable?token={good}"), &[("Cookie", &cookie)])
        .await;
    assert_eq!(reply.status, 101);
    let mut ws = ws.unwrap();
    ws.expect(r#"{"type":"welcome"}"#).await;
    ws.send_text(&subscribe(ORDER)).await;
    ws.expect(&confirm(ORDER)).await;
    let auth = format!("Bearer {bearer}");
    let (_, other) = server
        .connect("/cable", &[("Authorization", &auth), ("Cookie", &cookie)])
        .await;
    let mut other = other.unwrap();
    other.expect(r#"{"type":"welcome"}"#).await;
    for bad in [&forged, &expired] {
        let (_, refused) = server
            .connect(&format!("/cable?token={bad}"), &[("Cookie", &cookie)])
            .await;
        let mut refused = refused.unwrap();
        refused
            .expect(r#"{"type":"disconnect","reason":"unauthorized","reconnect":false}"#)
            .await;
    }
    // Not an upgrade, a wrong broadcast key, a good one, the protected endpoints.
    let plain = server
        .http(
            "GET",
            &format!("/cable?token={good}"),
            &[("Cookie", &cookie)],
            b"",
        )
        .await;
    assert_eq!(plain.status, 404);
    for (key, status) in [(format!("{API_KEY}x"), 401), (API_KEY.to_string(), 201)] {
        let reply = server
            .http(
                "POST",
                "/_broadcast",
                &[("Authorization", &format!("Bearer {key}"))],
                br#"{"stream":"order_channel_1","data":"1"}"#,
            )
            .await;
        assert_eq!(reply.status, status);
    }
    ws.expect(&data_frame(ORDER, "1")).await;
    for path in ["/stats", "/metrics", "/console"] {
        server
            .http(
                "GET",
                path,
                &[("Authorization", &format!("Bearer {API_KEY}"))],
                b"",
            )
            .await;
    }
    redis.kill();
    assert!(server.wait_for_log(
        "lost the Redis subscriber connection",
        Duration::from_secs(10)
    ));
    redis.restart();
    redis.cli(&["CONFIG", "SET", "requirepass", REDIS_PASSWORD]);
    server.signal("TERM");
    ws.expect(r#"{"type":"disconnect","reason":"server_restart","reconnect":true}"#)
        .await;
    server
        .wait_exit(Duration::from_secs(15))
        .expect("did not exit");

    let logs = server.logs();
    assert!(logs.lines().count() > 20, "{logs}");
    let signature = |t: &str| t.rsplit('.').next().unwrap().to_string();
    let secrets = [
        ("the query token", good.clone()),
        ("the query token's signature", signature(&good)),
        ("the bearer token", bearer.clone()),
        ("the bearer token's signature", signature(&bearer)),
        ("the forged token's signature", signature(&forged)),
        ("the expired token's signature", signature(&expired)),
        ("the JWT secret", SECRET.to_string()),
        ("the broadcast API key", API_KEY.to_string()),
        ("the cookie", COOKIE_VALUE.to_string()),
        ("the Redis password", REDIS_PASSWORD.to_string()),
    ];
    for (what, secret) in &secrets {
        assert!(
            !logs.contains(secret.as_str()),
            "{what} was logged:\n{logs}"
        );
    }
}

/// One line per connection when it opens and one when it closes, with its identity (the
/// span), how long it lasted and why it ended; JSON when asked.
#[tokio::test]
async fn each_connection_logs_one_open_and_one_close_line() {
    let mut server = Server::start(&config(""));
    let mut client_closes = server.welcomed(1, 1).await;
    let mut restarted = server.welcomed(2, 1).await;
    let forged = token_with(
        jsonwebtoken::Algorithm::HS256,
        b"wrong",
        json!({"user_id": 3, "restaurant_id": 1}),
    );
    let (_, refused) = server.connect(&format!("/cable?token={forged}"), &[]).await;
    let mut refused = refused.unwrap();
    refused
        .expect(r#"{"type":"disconnect","reason":"unauthorized","reconnect":false}"#)
        .await;
    refused.expect_close_1000().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    client_closes.send_close(1000).await;
    assert!(client_closes.closed_within(Duration::from_secs(5)).await);
    server.signal("TERM");
    restarted.expect_server_restart().await;
    server
        .wait_exit(Duration::from_secs(15))
        .expect("did not exit");

    let lines = parsed(&server.logs());
    let by = |message: &str| -> HashMap<u64, Value> {
        let mut found = HashMap::new();
        for l in lines.iter().filter(|l| l["message"] == message) {
            let id = l["span"]["id"]
                .as_u64()
                .expect("the conn span carries the id");
            assert!(
                found.insert(id, l.clone()).is_none(),
                "two {message:?} lines for {id}"
            );
        }
        found
    };
    let opened = by("connection opened");
    let closed = by("connection closed");
    assert_eq!(opened.len(), 3, "{opened:?}");
    assert_eq!(
        opened.keys().collect::<std::collections::BTreeSet<_>>(),
        closed.keys().collect::<std::collections::BTreeSet<_>>()
    );
    let reasons: HashMap<String, &Value> = closed
        .values()
        .map(|l| (l["span"]["identity"].as_str().unwrap().to_string(), l))
        .collect();
    let identity = |user: u64| {
        let gid = format!("gid://shimizu-order-suite/User/{user}");
        let encoded = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            gid.as_bytes(),
        );
        format!("1:{encoded}")
    };
    assert_eq!(reasons[&identity(1)]["reason"], "client_closed");
    assert!(reasons[&identity(1)]["duration_ms"].as_u64().unwrap() >= 200);
    assert_eq!(reasons[&identity(2)]["reason"], "server_restart");
    // A refused connection has no identity; its reason says why it ended.
    assert_eq!(reasons[""]["reason"], "unauthorized");
    for l in opened.values() {
        assert!(
            l["remote"].as_str().unwrap().starts_with("127.0.0.1:"),
            "{l}"
        );
    }
}
