//! Hostile input and every limit of the README's bounds table: each ends in a clear
//! outcome, a log line and a counter, and never hurts anyone else.

use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::ws::client_frame;
use crate::support::*;

const ROOM: &str = r#"{"channel":"ChatChannel","room":"1"}"#;

#[tokio::test]
async fn subscriptions_per_connection_are_bounded() {
    let server = Server::start_with(
        &config(""),
        &[("FERROCABLE_LIMITS__MAX_SUBSCRIPTIONS_PER_CONNECTION", "3")],
    );
    let mut ws = server.welcomed(1, 1).await;
    for room in 0..3 {
        let id = format!(r#"{{"channel":"ChatChannel","room":"{room}"}}"#);
        ws.send_text(&subscribe(&id)).await;
        ws.expect(&confirm(&id)).await;
    }
    let fourth = r#"{"channel":"ChatChannel","room":"3"}"#;
    ws.send_text(&subscribe(fourth)).await;
    ws.expect(&reject(fourth)).await;
    // Freeing one makes room again.
    ws.send_text(&unsubscribe(r#"{"channel":"ChatChannel","room":"0"}"#))
        .await;
    ws.send_text(&subscribe(fourth)).await;
    ws.expect(&confirm(fourth)).await;
    assert_eq!(server.stats().await["subscription_limit_rejections"], 1);
    assert!(
        server
            .logs()
            .contains("max_subscriptions_per_connection reached")
    );
}

#[tokio::test]
async fn command_floods_and_ping_floods_are_cut_off() {
    let server = Server::start_with(
        &config(""),
        &[("FERROCABLE_LIMITS__MAX_COMMANDS_PER_SECOND", "50")],
    );
    let mut bystander = server.welcomed(9, 1).await;
    bystander.send_text(&subscribe(ROOM)).await;
    bystander.expect(&confirm(ROOM)).await;

    // Thousands of subscribe/unsubscribe in a burst.
    let mut ws = server.welcomed(1, 1).await;
    let mut burst = Vec::new();
    for _ in 0..1000 {
        burst.extend(client_frame(0x81, subscribe(ROOM).as_bytes()));
        burst.extend(client_frame(0x81, unsubscribe(ROOM).as_bytes()));
    }
    ws.send_raw(&burst).await;
    loop {
        match ws.recv().await {
            Frame::Text(t) if t.contains("confirm_subscription") => continue,
            Frame::Text(t) => {
                assert_eq!(
                    t,
                    r#"{"type":"disconnect","reason":"too_many_requests","reconnect":true}"#
                );
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    ws.expect_close_1000().await;
    // Hang up, so the server's wait for our close reply ends now rather than after its grace.
    drop(ws);

    // WebSocket ping frames count too.
    let mut pinger = server.welcomed(2, 1).await;
    let mut pings = Vec::new();
    for _ in 0..2000 {
        pings.extend(client_frame(0x89, b"x"));
    }
    pinger.send_raw(&pings).await;
    pinger.expect_close_code(1000).await;
    drop(pinger);

    // A client within the limit is untouched, and the bystander kept its subscription.
    let mut calm = server.welcomed(3, 1).await;
    for _ in 0..20 {
        calm.send_text(r#"{"type":"pong"}"#).await;
    }
    calm.expect_silence(300).await;
    server.broadcast("chat_1", "1").await;
    bystander.expect(&data_frame(ROOM, "1")).await;
    // Whether the flooder's last allowed frame was a subscribe depends on how fast the bucket
    // refilled, so its subscription may live until its connection is gone: wait for that.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut stats = server.stats().await;
    while stats["connections"] != 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
        stats = server.stats().await;
    }
    assert_eq!(
        stats["connections"], 2,
        "the two cut-off connections are gone: {stats}"
    );
    assert_eq!(stats["rate_limited_disconnects"], 2, "{stats}");
    // The flooder's churn left nothing behind.
    assert_eq!(stats["subscriptions"], 1, "{stats}");
}

#[tokio::test]
async fn subscribe_churn_within_limits_stays_consistent() {
    let server = Server::start_with(
        &config(""),
        &[("FERROCABLE_LIMITS__MAX_COMMANDS_PER_SECOND", "100000")],
    );
    let mut ws = server.welcomed(1, 1).await;
    let mut burst = Vec::new();
    for i in 0..3000 {
        let id = format!(r#"{{"channel":"ChatChannel","room":"{}"}}"#, i % 7);
        burst.extend(client_frame(0x81, subscribe(&id).as_bytes()));
        burst.extend(client_frame(0x81, unsubscribe(&id).as_bytes()));
    }
    burst.extend(client_frame(0x81, subscribe(ROOM).as_bytes()));
    let started = Instant::now();
    ws.send_raw(&burst).await;
    // Every subscribe got its confirm (3000 of them), then the final one.
    let mut confirms = 0;
    while confirms < 3001 {
        if ws.recv_text().await.contains("confirm_subscription") {
            confirms += 1;
        }
    }
    eprintln!("6001 commands processed in {:?}", started.elapsed());
    // The counter is bumped just after the confirm is queued: give it a moment (a few ms)
    // rather than racing it; a count that never settles still fails below.
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut stats = server.stats().await;
    while stats["subscriptions"] != 1 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
        stats = server.stats().await;
    }
    assert_eq!(stats["subscriptions"], 1, "{stats}");
    // chat_1 and the connection's remote-disconnect stream.
    assert_eq!(stats["streams"], 2, "{stats}");
    server.broadcast("chat_1", "7").await;
    ws.expect(&data_frame(ROOM, "7")).await;
    ws.expect_silence(200).await;
}

#[tokio::test]
async fn deeply_nested_json_is_refused_at_the_configured_depth() {
    let server = Server::start_with(&config(""), &[("FERROCABLE_LIMITS__MAX_JSON_DEPTH", "8")]);
    let mut ws = server.welcomed(1, 1).await;
    let deep_data = format!(
        r#"{{"action":"echo","x":{}1{}}}"#,
        "[".repeat(20),
        "]".repeat(20)
    );
    ws.send_text(&subscribe(ROOM)).await;
    ws.expect(&confirm(ROOM)).await;
    ws.send_text(&message(ROOM, &deep_data)).await;
    let deep_command = format!(
        r#"{{"command":"subscribe","identifier":"x","n":{}1{}}}"#,
        "[".repeat(20),
        "]".repeat(20)
    );
    ws.send_text(&deep_command).await;
    ws.expect_silence(300).await;
    // Shallow enough still works, and the connection is open.
    ws.send_text(&message(ROOM, r#"{"action":"echo","x":[[1]]}"#))
        .await;
    ws.expect(&data_frame(ROOM, r#"{"action":"echo","x":[[1]]}"#))
        .await;
    // A deep broadcast is refused at the HTTP API (and dropped if it comes through Redis).
    let reply = server
        .broadcast("chat_1", &format!("{}1{}", "[".repeat(20), "]".repeat(20)))
        .await;
    assert_eq!(reply.status, 422);
    ws.expect_silence(300).await;
    let stats = server.stats().await;
    assert_eq!(stats["deep_json_commands"], 1, "{stats}");

    // Ruby's default: 100 levels pass, 101 do not.
    let ruby = Server::start(&config(""));
    let mut ws = ruby.welcomed(1, 1).await;
    ws.send_text(&subscribe(ROOM)).await;
    ws.expect(&confirm(ROOM)).await;
    let at = |levels: usize| format!("{}1{}", "[".repeat(levels), "]".repeat(levels));
    assert_eq!(ruby.broadcast("chat_1", &at(101)).await.status, 422);
    assert_eq!(ruby.broadcast("chat_1", &at(100)).await.status, 201);
    ws.expect(&data_frame(ROOM, &at(100))).await;
}

#[tokio::test]
async fn oversized_tokens_and_request_heads_are_refused() {
    let server = Server::start_with(
        &config(""),
        &[("FERROCABLE_LIMITS__MAX_TOKEN_BYTES", "1024")],
    );
    let long = token(json!({"user_id": 1, "restaurant_id": 1, "pad": "x".repeat(2000)}));
    let (reply, ws) = server.connect(&format!("/cable?token={long}"), &[]).await;
    assert_eq!(reply.status, 101);
    let mut ws = ws.unwrap();
    ws.expect(r#"{"type":"disconnect","reason":"unauthorized","reconnect":false}"#)
        .await;
    ws.expect_close_1000().await;
    // A request head beyond 16 KiB never reaches the application.
    let huge = "y".repeat(20_000);
    let (reply, ws) = server.connect(&format!("/cable?token={huge}"), &[]).await;
    assert!(ws.is_none());
    assert_eq!(reply.status, 431);
    let stats = server.stats().await;
    assert_eq!(stats["oversized_tokens"], 1, "{stats}");
}

#[tokio::test]
async fn half_finished_handshakes_are_closed_at_the_deadline() {
    let server = Server::start_with(
        &config(""),
        &[("FERROCABLE_LIMITS__HANDSHAKE_TIMEOUT_SECS", "1")],
    );
    let started = Instant::now();
    let mut loris = Vec::new();
    for _ in 0..50 {
        let mut s = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        s.write_all(b"GET /cable HTTP/1.1\r\nHost: x\r\nUpgrade: web")
            .await
            .unwrap();
        loris.push(s);
    }
    // Meanwhile a real client gets through.
    let mut ws = server.welcomed(1, 1).await;
    ws.send_text(&subscribe(ROOM)).await;
    ws.expect(&confirm(ROOM)).await;
    for s in &mut loris {
        let mut buf = [0u8; 256];
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await;
        // Closed (EOF or an error response, then EOF) within the deadline plus slack.
        assert!(
            matches!(n, Ok(Ok(_) | Err(_))),
            "slow-loris connection left open"
        );
    }
    assert!(started.elapsed() < Duration::from_secs(6));
    let start = Instant::now();
    loop {
        let stats = server.stats().await;
        if stats["handshake_timeouts"] == 50 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(5), "{stats}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn fragmented_frames_are_reassembled_and_bounded() {
    let server = Server::start(&config(""));
    let mut ws = server.welcomed(1, 1).await;
    let text = subscribe(ROOM);
    let (a, rest) = text.as_bytes().split_at(10);
    let (b, c) = rest.split_at(20);
    let mut raw = client_frame(0x01, a); // text, FIN=0
    raw.extend(client_frame(0x00, b)); // continuation, FIN=0
    raw.extend(client_frame(0x89, b"mid")); // a ping between fragments is allowed
    raw.extend(client_frame(0x80, c)); // continuation, FIN=1
    ws.send_raw(&raw).await;
    assert_eq!(ws.recv().await, Frame::Pong(b"mid".to_vec()));
    ws.expect(&confirm(ROOM)).await;
    // Fragments adding up past limits.max_message_bytes (64 KiB) close with 1009.
    let mut ws = server.welcomed(2, 1).await;
    let chunk = vec![b'a'; 30_000];
    let mut raw = client_frame(0x01, &chunk);
    raw.extend(client_frame(0x00, &chunk));
    raw.extend(client_frame(0x80, &chunk));
    ws.send_raw(&raw).await;
    ws.expect_close_code(1009).await;
}

#[tokio::test]
async fn params_cannot_reach_another_tenants_stream() {
    let server = Server::start(&config(""));
    let mut r1 = server.welcomed(1, 1).await;
    let ids = [
        r#"{"channel":"ChatChannel","room":"../order_channel_2"}"#,
        r#"{"channel":"ChatChannel","room":"1:x"}"#,
        r#"{"channel":"ChatChannel","room":"1\u0000"}"#,
        r#"{"channel":"OrderChannel","restaurant_id":2}"#,
        r#"{"channel":"ChatChannel","room":"action_cable/2:Z2lkOi8vc2hpbWl6dS1vcmRlci1zdWl0ZS9Vc2VyLzc"}"#,
    ];
    // Each becomes its own, prefixed stream ("chat_../order_channel_2", "chat_1:x", ...);
    // a rendered name that *starts* with action_cable/ is refused (unit-tested in channels.rs).
    for id in ids {
        r1.send_text(&subscribe(id)).await;
        r1.expect(&confirm(id)).await;
    }
    for stream in [
        "order_channel_2",
        "chat_1",
        "action_cable/2:Z2lkOi8vc2hpbWl6dS1vcmRlci1zdWl0ZS9Vc2VyLzc",
    ] {
        server.broadcast(stream, r#"{"secret":true}"#).await;
    }
    r1.expect_silence(400).await;
    // Each odd name is its own stream, nothing more.
    server.broadcast("chat_1:x", "1").await;
    r1.expect(&data_frame(ids[1], "1")).await;
}

#[tokio::test]
async fn spoofed_origins_are_refused() {
    let server = Server::start(&config(""));
    let host = server.addr.to_string();
    for origin in [
        "http://app.test.evil.com".to_string(),
        "http://evil.com/http://app.test".to_string(),
        "HTTP://APP.TEST".to_string(),
        "null".to_string(),
        "".to_string(),
        format!("http://{host}.evil.com"),
        format!("ws://{host}"),
    ] {
        let (reply, ws) = connect(server.addr, "/cable", &[("Origin", &origin)]).await;
        assert!(ws.is_none(), "{origin}");
        assert_eq!(reply.status, 404, "{origin}");
    }
    // X-Forwarded-Host does not count (Rails uses the raw Host header).
    let (reply, _) = connect(
        server.addr,
        "/cable",
        &[
            ("Origin", "http://forged.example"),
            ("X-Forwarded-Host", "forged.example"),
        ],
    )
    .await;
    assert_eq!(reply.status, 404);
}

#[tokio::test]
async fn running_out_of_file_descriptors_backs_off_and_recovers() {
    // 40 descriptors: a few for the runtime, the rest for sockets.
    let dir = TempDir::new("fds");
    let path = dir.0.join("f.toml");
    std::fs::write(&path, config("")).unwrap();
    let server = Server::start_wrapped(
        &["prlimit", "--nofile=40:40", binary()],
        &["--config", path.to_str().unwrap()],
        &[],
    );
    let mut held = Vec::new();
    for _ in 0..60 {
        if let Ok(s) = tokio::net::TcpStream::connect(server.addr).await {
            held.push(s);
        }
    }
    assert!(
        server.wait_for_log("accept failed", Duration::from_secs(5)),
        "{}",
        server.logs()
    );
    drop(held);
    // Once descriptors free up, the server serves again.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut ws = server.welcomed(1, 1).await;
    ws.send_text(&subscribe(ROOM)).await;
    ws.expect(&confirm(ROOM)).await;
    let accept_failures = server.logs().matches("accept failed").count();
    assert!(
        accept_failures < 50,
        "accept must back off, not spin: {accept_failures} failures logged"
    );
}
