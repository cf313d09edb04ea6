use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::*;

const ORDER: &str = r#"{"channel":"OrderChannel","restaurant_id":1}"#;

#[tokio::test]
async fn sigterm_sends_server_restart_to_everyone_and_exits_zero() {
    for signal in ["TERM", "INT"] {
        let mut server = Server::start(&config(""));
        let mut clients = Vec::new();
        for user in 0..5 {
            let mut ws = server.welcomed(user, 1).await;
            ws.send_text(&subscribe(ORDER)).await;
            ws.expect(&confirm(ORDER)).await;
            clients.push(ws);
        }
        server.signal(signal);
        for ws in &mut clients {
            ws.expect_server_restart().await;
        }
        let status = server
            .wait_exit(Duration::from_secs(10))
            .expect("did not exit");
        assert_eq!(status.code(), Some(0), "{}", server.logs());
        server.assert_logged("drained");
    }
}

#[tokio::test]
async fn shutdown_deadline_bounds_the_drain() {
    let mut server = Server::start_with(
        &config(""),
        &[("FERROCABLE_SERVER__SHUTDOWN_TIMEOUT_SECS", "1")],
    );
    // A client that never reads: its socket buffers fill and the close cannot complete
    // politely, yet the process must exit by the deadline.
    let mut ws = server.welcomed(1, 1).await;
    ws.send_text(&subscribe(ORDER)).await;
    let start = Instant::now();
    server.signal("TERM");
    let status = server
        .wait_exit(Duration::from_secs(8))
        .expect("did not exit");
    assert_eq!(status.code(), Some(0));
    assert!(start.elapsed() < Duration::from_secs(6));
}

#[tokio::test]
async fn one_global_timer_pings_every_interval_in_integer_seconds() {
    let server = Server::start_with(
        &config(""),
        &[("FERROCABLE_PROTOCOL__PING_INTERVAL_SECS", "1")],
    );
    let mut a = server.welcomed(1, 1).await;
    let mut b = server.welcomed(2, 1).await;
    let mut stamps = Vec::new();
    let start = Instant::now();
    while stamps.len() < 3 {
        match a.recv_within(Duration::from_secs(3)).await {
            Some(Frame::Text(t)) => {
                assert!(crate::support::ws::is_ping(&t), "unexpected frame {t}");
                let secs: u64 = t[r#"{"type":"ping","message":"#.len()..t.len() - 1]
                    .parse()
                    .unwrap();
                assert!(secs.abs_diff(now()) <= 1, "ping carries Unix seconds");
                stamps.push((start.elapsed(), secs));
            }
            other => panic!("expected a ping, got {other:?}"),
        }
    }
    let gaps: Vec<f64> = stamps
        .windows(2)
        .map(|w| (w[1].0 - w[0].0).as_secs_f64())
        .collect();
    for gap in &gaps {
        assert!((0.7..1.5).contains(gap), "ping gaps {gaps:?}");
    }
    // The other client gets the same beat.
    match b.recv_within(Duration::from_secs(3)).await {
        Some(Frame::Text(t)) => assert!(crate::support::ws::is_ping(&t)),
        other => panic!("{other:?}"),
    }
}

/// Pings ride along with broadcasts (one write for both) instead of costing a write of their
/// own; connections with nothing else to receive still get theirs from the timer's sweep.
#[tokio::test]
async fn pings_ride_along_with_broadcasts_and_idle_connections_still_get_theirs() {
    let server = Server::start_with(
        &config(""),
        &[("FERROCABLE_PROTOCOL__PING_INTERVAL_SECS", "1")],
    );
    let mut busy = Vec::new();
    for user in 0..5 {
        let mut ws = server.welcomed(user, 1).await;
        ws.send_text(&subscribe(ORDER)).await;
        ws.expect(&confirm(ORDER)).await;
        busy.push(ws);
    }
    let mut idle = server.welcomed(9, 2).await;
    // A broadcast every 100 ms for 3.2 s: three beats; the sweep only starts 250 ms into a beat
    // (half the slack), by which time every busy client has had a broadcast.
    for i in 0..32 {
        server.broadcast("order_channel_1", &i.to_string()).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stats = server.stats().await;
    let carried = stats["pings_carried"].as_u64().unwrap();
    let alone = stats["pings_sent_alone"].as_u64().unwrap();
    assert!(carried >= 5 * 2, "pings carried by broadcasts: {stats}");
    // The idle client needed a ping of its own each beat; the busy ones (almost) never did.
    assert!(
        (2..=5).contains(&alone),
        "pings sent alone: {alone}, carried: {carried}"
    );
    // Every client, busy or idle, got its pings (what came by now: three or four beats).
    for ws in busy.iter_mut().chain(std::iter::once(&mut idle)) {
        let mut pings = 0;
        while let Some(frame) = ws.recv_within(Duration::from_millis(50)).await {
            if matches!(&frame, Frame::Text(t) if crate::support::ws::is_ping(t)) {
                pings += 1;
            }
        }
        assert!((2..=5).contains(&pings), "a client got {pings} pings");
    }
}

#[tokio::test]
async fn remote_disconnect_closes_every_connection_of_an_identity() {
    let mut redis = Redis::start();
    let cfg = config(&format!(
        "[redis]\nurl = \"{}\"\nchannel_prefix = \"myapp_production\"\n",
        redis.url()
    ));
    // Rails 7.2: a disconnect frame with reason remote, then close.
    let server = Server::start(&cfg);
    let mut a = server.welcomed(42, 1).await;
    let mut b = server.welcomed(42, 1).await;
    let mut other = server.welcomed(43, 1).await;
    let channel = "myapp_production:action_cable/1:Z2lkOi8vc2hpbWl6dS1vcmRlci1zdWl0ZS9Vc2VyLzQy";
    redis.wait_subscribed(channel);
    redis.publish(channel, r#"{"type":"disconnect","reconnect":false}"#);
    for ws in [&mut a, &mut b] {
        ws.expect(r#"{"type":"disconnect","reason":"remote","reconnect":false}"#)
            .await;
        ws.expect_close_1000().await;
    }
    other.expect_silence(300).await;
    drop(server);

    // Rails 6.1: the payload has no reconnect and the client sees only the close frame.
    let old = Server::start_with(&cfg, &[("FERROCABLE_PROTOCOL__RAILS_VERSION", "6.1")]);
    let mut c = old.welcomed(42, 1).await;
    redis.wait_subscribed(channel);
    redis.publish(channel, r#"{"type":"disconnect"}"#);
    c.expect_close_1000().await;
    redis.kill();
}

fn ferrocable(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(binary());
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

#[test]
fn config_check_and_print() {
    let root = env!("CARGO_MANIFEST_DIR");
    let hafaloha = format!("{root}/config/hafaloha.toml");
    let out = ferrocable(
        &["config", "check", "--config", &hafaloha],
        &[("SECRET_KEY_BASE", "abc")],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The six Hafaloha channels and ApplicationCable::Channel (confirmed by Rails 7.2).
    assert!(String::from_utf8_lossy(&out.stdout).contains("7 channel(s)"));

    let out = ferrocable(&["config", "check", "--config", &hafaloha], &[]);
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("auth.secret") && err.contains("SECRET_KEY_BASE"),
        "{err}"
    );

    let out = ferrocable(
        &["config", "print", "--config", &hafaloha, "--port", "9999"],
        &[
            ("SECRET_KEY_BASE", "supersecret"),
            ("REDIS_URL", "redis://:hunter2@127.0.0.1:6379/1"),
        ],
    );
    assert!(out.status.success());
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(printed.contains("port = 9999"), "{printed}");
    assert!(printed.contains("***"));
    assert!(
        !printed.contains("supersecret") && !printed.contains("hunter2"),
        "{printed}"
    );

    let dir = TempDir::new("cli");
    let bad = dir.0.join("bad.toml");
    std::fs::write(&bad, "[server]\nport = \"eighty\"\n").unwrap();
    let out = ferrocable(&["config", "check", "--config", bad.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("server.port"));

    let out = ferrocable(&["config", "check", "--config", "/nonexistent.toml"], &[]);
    assert_eq!(out.status.code(), Some(64));
}

#[test]
fn serve_refuses_an_invalid_config_before_binding() {
    let out = ferrocable(&["--host", "0.0.0.0", "--port", "0"], &[]);
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("auth.mode"));
}

#[tokio::test]
async fn hafaloha_profile_runs_with_three_variables() {
    let redis = Redis::start();
    let port = free_port_any().to_string();
    let root = env!("CARGO_MANIFEST_DIR");
    let mut child = Command::new(binary())
        .args(["--config", &format!("{root}/config/hafaloha.toml")])
        .env_clear()
        .env("SECRET_KEY_BASE", SECRET)
        .env("REDIS_URL", redis.url())
        .env("PORT", &port)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let start = Instant::now();
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        assert!(start.elapsed() < Duration::from_secs(10));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let t = token(
        serde_json::json!({"user_id": 42, "restaurant_id": 1, "role": "admin", "exp": now() + 3600}),
    );
    let (reply, ws) = connect(
        addr,
        &format!("/cable?token={t}&restaurant_id=1"),
        &[("Origin", "https://hafaloha-orders.com")],
    )
    .await;
    assert_eq!(reply.status, 101);
    assert_eq!(reply.header("Sec-WebSocket-Protocol"), None);
    let mut ws = ws.unwrap();
    ws.expect(r#"{"type":"welcome"}"#).await;
    ws.send_text(&subscribe(ORDER)).await;
    ws.send_text(&subscribe(r#"{"channel":"order_channel_1"}"#))
        .await;
    ws.expect(&confirm(ORDER)).await;
    redis.publish(
        "shimizu_order_suite_production:order_channel_1",
        r#"{"type":"new_order","order":{"id":1}}"#,
    );
    ws.expect(&data_frame(
        ORDER,
        r#"{"type":"new_order","order":{"id":1}}"#,
    ))
    .await;
    ws.send_text(r#"{"type":"pong"}"#).await;
    ws.expect_silence(200).await;
    let _ = child.kill();
    let _ = child.wait();
}

#[tokio::test]
async fn embedded_defaults_run_without_any_file_or_redis() {
    let server = Server::start_args(&[], &[]);
    assert!(
        server.logs().contains("in-process")
            || server.wait_for_log("in-process", Duration::from_secs(1))
    );
    assert!(server.wait_for_log(
        "EVERY CONNECTION IS ACCEPTED WITHOUT A TOKEN",
        Duration::from_secs(1)
    ));
    // Same-origin is allowed by default.
    let origin = format!("http://{}", server.addr);
    let (reply, ws) = connect(server.addr, "/cable", &[("Origin", &origin)]).await;
    assert_eq!(reply.status, 101);
    ws.unwrap().expect(r#"{"type":"welcome"}"#).await;
    let health = server.http("GET", "/health", &[], b"").await;
    assert_eq!(health.status, 200);
}

#[tokio::test]
async fn the_readme_development_playground_works() {
    let root = env!("CARGO_MANIFEST_DIR");
    let server = Server::start_args(
        &["--config", &format!("{root}/config/development.toml")],
        &[],
    );
    // No Origin header at all, as command-line clients connect.
    let (reply, ws) = connect(server.addr, "/cable", &[]).await;
    assert_eq!(reply.status, 101);
    let mut ws = ws.unwrap();
    ws.expect(r#"{"type":"welcome"}"#).await;
    let room = r#"{"channel":"ChatChannel","room":"1"}"#;
    ws.send_text(&subscribe(room)).await;
    ws.expect(&confirm(room)).await;
    let reply = server.broadcast("chat_1", r#"{"text":"hello"}"#).await;
    assert_eq!(reply.status, 201);
    ws.expect(&data_frame(room, r#"{"text":"hello"}"#)).await;
}

/// A configuration problem that is not an error is found while validating, before logging
/// starts; it must still reach the log (and `config check`'s output).
#[test]
fn config_warnings_reach_the_log_once_logging_starts() {
    let env = [("FERROCABLE_REDIS__CHANNEL_PREFIX", "myapp_production")];
    let server = Server::start_args(&[], &env);
    assert!(
        server.wait_for_log("redis.channel_prefix is set", Duration::from_secs(5)),
        "{}",
        server.logs()
    );
    let out = ferrocable(&["config", "check"], &env);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("redis.channel_prefix is set"));
}

#[tokio::test]
async fn sigterm_drain_delay_answers_503_before_anyone_is_told_to_reconnect() {
    let mut server =
        Server::start_with(&config(""), &[("FERROCABLE_SERVER__DRAIN_DELAY_SECS", "2")]);
    let mut ws = server.welcomed(1, 1).await;
    ws.send_text(&subscribe(ORDER)).await;
    ws.expect(&confirm(ORDER)).await;
    let start = Instant::now();
    server.signal("TERM");
    assert!(server.wait_for_log("draining", Duration::from_secs(5)));
    // The listener stays open: /health answers, 503 draining, so a load balancer stops
    // routing here; connected clients are served as before; new upgrades are refused.
    let health = server.http("GET", "/health", &[], b"").await;
    assert_eq!(health.status, 503, "{}", health.text());
    assert!(
        health.text().contains(r#""status":"draining""#),
        "{}",
        health.text()
    );
    assert_eq!(server.broadcast("order_channel_1", "1").await.status, 201);
    ws.expect(&data_frame(ORDER, "1")).await;
    let late = token(serde_json::json!({"user_id": 2, "restaurant_id": 1}));
    let (reply, _) = server.connect(&format!("/cable?token={late}"), &[]).await;
    assert_eq!(reply.status, 503, "{}", reply.head);
    // Only after the delay are clients told to go.
    ws.expect_server_restart().await;
    assert!(
        start.elapsed() >= Duration::from_millis(1900),
        "server_restart came {:?} after SIGTERM, before the drain delay",
        start.elapsed()
    );
    let status = server
        .wait_exit(Duration::from_secs(10))
        .expect("did not exit");
    assert_eq!(status.code(), Some(0));
}

#[tokio::test]
async fn a_second_signal_or_sigint_skips_the_drain_delay() {
    for signals in [&["TERM", "TERM"][..], &["INT"][..]] {
        let mut server = Server::start_with(
            &config(""),
            &[("FERROCABLE_SERVER__DRAIN_DELAY_SECS", "30")],
        );
        let mut ws = server.welcomed(1, 1).await;
        let start = Instant::now();
        for (i, signal) in signals.iter().enumerate() {
            if i > 0 {
                assert!(server.wait_for_log("draining", Duration::from_secs(5)));
            }
            server.signal(signal);
        }
        ws.expect_server_restart().await;
        let status = server
            .wait_exit(Duration::from_secs(10))
            .expect("did not exit");
        assert_eq!(status.code(), Some(0));
        assert!(start.elapsed() < Duration::from_secs(10), "{signals:?}");
    }
}

#[tokio::test]
async fn the_soft_open_files_limit_is_raised_to_the_hard_one() {
    let server = Server::start_wrapped(
        &["prlimit", "--nofile=256:4096", binary()],
        &["--config", "/dev/null"],
        &[],
    );
    assert!(server.wait_for_log("open files limit", Duration::from_secs(5)));
    let line = server
        .logs()
        .lines()
        .find(|l| l.contains("open files limit"))
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .unwrap();
    assert_eq!(line["soft_before"], 256, "{line}");
    assert_eq!(line["soft"], 4096, "{line}");
    assert_eq!(line["hard"], 4096, "{line}");
    // 4,096 descriptors cannot hold the default 19,000 connections: said at startup.
    server.assert_logged("below limits.max_connections");
}
