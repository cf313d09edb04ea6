use crate::support::*;

#[tokio::test]
async fn welcome_is_the_first_frame_and_the_101_echoes_the_subprotocol() {
    let server = Server::start(&config(""));
    let t = token(serde_json::json!({"user_id": 1, "restaurant_id": 1}));
    let (reply, ws) = server
        .connect(
            &format!("/cable?token={t}"),
            &[(
                "Sec-WebSocket-Protocol",
                "actioncable-v1-json, actioncable-unsupported",
            )],
        )
        .await;
    assert_eq!(reply.status, 101);
    assert_eq!(
        reply.header("Sec-WebSocket-Protocol"),
        Some("actioncable-v1-json")
    );
    assert_eq!(reply.header("Upgrade"), Some("websocket"));
    assert_eq!(
        reply.header("Sec-WebSocket-Accept"),
        Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    );
    assert_eq!(
        reply.header("Sec-WebSocket-Extensions"),
        None,
        "never negotiate compression"
    );
    let mut ws = ws.unwrap();
    ws.expect(r#"{"type":"welcome"}"#).await;
    assert_eq!(
        ws.first_bytes,
        vec![0x81],
        "one unmasked text frame with FIN"
    );
}

#[tokio::test]
async fn subprotocol_offers_follow_the_clients_order() {
    let server = Server::start(&config(""));
    let t = token(serde_json::json!({"user_id": 1, "restaurant_id": 1}));
    let path = format!("/cable?token={t}");
    for (offer, expected) in [
        (None, None),
        (
            Some("actioncable-unsupported"),
            Some("actioncable-unsupported"),
        ),
        (
            Some("actioncable-unsupported, actioncable-v1-json"),
            Some("actioncable-unsupported"),
        ),
        (
            Some("actioncable-v1-json, actioncable-unsupported, token.abc"),
            Some("actioncable-v1-json"),
        ),
        (Some("foo"), None),
    ] {
        let headers: Vec<(&str, &str)> = offer
            .map(|o| ("Sec-WebSocket-Protocol", o))
            .into_iter()
            .collect();
        let (reply, ws) = server.connect(&path, &headers).await;
        assert_eq!(reply.status, 101, "offer {offer:?}");
        assert_eq!(
            reply.header("Sec-WebSocket-Protocol"),
            expected,
            "offer {offer:?}"
        );
        // Rails welcomes whatever was negotiated, even nothing.
        ws.unwrap().expect(r#"{"type":"welcome"}"#).await;
    }
}

#[tokio::test]
async fn refused_and_missing_origins_get_rails_404() {
    let server = Server::start(&config(""));
    for origin in [Some("http://evil.test"), Some("http://app.test/"), None] {
        let headers: Vec<(&str, &str)> = origin.map(|o| ("Origin", o)).into_iter().collect();
        let (reply, ws) = connect(server.addr, "/cable", &headers).await;
        assert!(ws.is_none());
        assert_eq!(reply.status, 404, "origin {origin:?}");
        assert_eq!(reply.text(), "Page not found");
        assert_eq!(
            reply.header("Content-Type"),
            Some("text/plain; charset=utf-8")
        );
    }
    assert!(server.wait_for_log(
        "Request origin not allowed: http://evil.test",
        std::time::Duration::from_secs(2)
    ));
}

#[tokio::test]
async fn same_origin_as_host_is_allowed_and_can_be_turned_off() {
    let server = Server::start(&config(""));
    let host = server.addr.to_string();
    let origin = format!("http://{host}");
    let (reply, _) = connect(server.addr, "/cable", &[("Origin", &origin)]).await;
    assert_eq!(reply.status, 101);
    let https_origin = format!("https://{host}");
    let (reply, _) = connect(server.addr, "/cable", &[("Origin", &https_origin)]).await;
    assert_eq!(reply.status, 404, "scheme must match");
    let (reply, _) = connect(
        server.addr,
        "/cable",
        &[("Origin", &https_origin), ("X-Forwarded-Proto", "https")],
    )
    .await;
    assert_eq!(
        reply.status, 101,
        "X-Forwarded-Proto makes the request HTTPS"
    );

    let strict = Server::start_with(
        &config(""),
        &[("FERROCABLE_ORIGINS__ALLOW_SAME_ORIGIN_AS_HOST", "false")],
    );
    let origin = format!("http://{}", strict.addr);
    let (reply, _) = connect(strict.addr, "/cable", &[("Origin", &origin)]).await;
    assert_eq!(reply.status, 404);
}

#[tokio::test]
async fn origin_patterns_and_disabled_check() {
    let server = Server::start_with(
        &config(""),
        &[(
            "FERROCABLE_ORIGINS__ALLOWED",
            r#"["/^https?:\\/\\/localhost:\\d+$/"]"#,
        )],
    );
    let (reply, _) = connect(
        server.addr,
        "/cable",
        &[("Origin", "http://localhost:5173")],
    )
    .await;
    assert_eq!(reply.status, 101);
    let (reply, _) = connect(
        server.addr,
        "/cable",
        &[("Origin", "http://localhost:5173.evil")],
    )
    .await;
    assert_eq!(reply.status, 404);

    let open = Server::start_with(&config(""), &[("FERROCABLE_ORIGINS__CHECK", "false")]);
    let (reply, _) = connect(open.addr, "/cable", &[]).await;
    assert_eq!(
        reply.status, 101,
        "no Origin at all is fine when the check is off"
    );
}

#[tokio::test]
async fn non_websocket_requests_to_the_mount_get_404() {
    let server = Server::start(&config(""));
    let reply = server
        .http("GET", "/cable", &[("Origin", ORIGIN)], b"")
        .await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.text(), "Page not found");
    let reply = server.http("POST", "/cable", &[], b"x").await;
    assert_eq!(reply.status, 404);
    // Rails 7.0.4+ anchors the mount path.
    let (reply, _) = server.connect("/cable/extra", &[]).await;
    assert_eq!(reply.status, 404);
}

#[tokio::test]
async fn rails_6_1_compat_switches_content_type_and_mount_anchoring() {
    let server = Server::start_with(
        &config(""),
        &[("FERROCABLE_PROTOCOL__RAILS_VERSION", "6.1")],
    );
    let reply = server.http("GET", "/cable", &[], b"").await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.header("Content-Type"), Some("text/plain"));
    let t = token(serde_json::json!({"user_id": 1, "restaurant_id": 1}));
    let (reply, _) = server
        .connect(&format!("/cable/anything?token={t}"), &[])
        .await;
    assert_eq!(reply.status, 101, "6.1 mounts /cable unanchored");
}

#[tokio::test]
async fn malformed_handshakes_get_400() {
    let server = Server::start(&config(""));
    let reply = server
        .http(
            "GET",
            "/cable",
            &[
                ("Origin", ORIGIN),
                ("Upgrade", "websocket"),
                ("Connection", "Upgrade"),
                ("Sec-WebSocket-Version", "13"),
            ],
            b"",
        )
        .await;
    assert_eq!(reply.status, 400, "missing Sec-WebSocket-Key");
    let reply = server
        .http(
            "GET",
            "/cable",
            &[
                ("Origin", ORIGIN),
                ("Upgrade", "websocket"),
                ("Connection", "Upgrade"),
                ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
                ("Sec-WebSocket-Version", "8"),
            ],
            b"",
        )
        .await;
    assert_eq!(reply.status, 400, "version 8");
}

#[tokio::test]
async fn health_reports_the_in_process_broker() {
    let server = Server::start(&config(""));
    let reply = server.http("GET", "/health", &[], b"").await;
    assert_eq!(reply.status, 200);
    let body: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["broker"]["kind"], "memory");
    assert_eq!(body["broker"]["state"], "connected");
}

#[tokio::test]
async fn stats_count_connections_identities_subscriptions_streams_and_frames() {
    let server = Server::start(&config(""));
    let mut a = server.welcomed(42, 1).await;
    let mut b = server.welcomed(42, 1).await;
    let mut c = server.welcomed(7, 2).await;
    let order = r#"{"channel":"OrderChannel"}"#;
    for ws in [&mut a, &mut b, &mut c] {
        ws.send_text(&subscribe(order)).await;
        ws.expect(&confirm(order)).await;
    }
    server.broadcast("order_channel_1", r#"{"n":1}"#).await;
    a.recv_text().await;
    b.recv_text().await;
    let stats = server.stats().await;
    assert_eq!(stats["connections"], 3);
    assert_eq!(stats["unique_identities"], 2);
    assert_eq!(stats["identities"][0]["connections"], 2);
    assert_eq!(
        stats["identities"][0]["identifier"],
        "1:Z2lkOi8vc2hpbWl6dS1vcmRlci1zdWl0ZS9Vc2VyLzQy"
    );
    assert_eq!(stats["subscriptions"], 3);
    // order_channel_1, order_channel_2 and the two internal remote-disconnect streams.
    assert_eq!(stats["streams"], 4);
    assert_eq!(stats["broadcasts_received"], 1);
    // 3 welcomes + 3 confirms + 2 broadcast frames.
    assert!(stats["frames_delivered"].as_u64().unwrap() >= 8, "{stats}");
    drop(a);
    drop(b);
    drop(c);
    let start = std::time::Instant::now();
    loop {
        let stats = server.stats().await;
        if stats["connections"] == 0 {
            assert_eq!(stats["subscriptions"], 0);
            assert_eq!(stats["streams"], 0);
            assert_eq!(stats["unique_identities"], 0);
            break;
        }
        assert!(
            start.elapsed().as_secs() < 5,
            "connections never went away: {stats}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
