use std::time::Duration;

use serde_json::Value;

use crate::support::*;

/// `{"channel":"$pubsub","stream_name":"<stream>"}`
fn public(stream: &str) -> String {
    serde_json::json!({"channel": "$pubsub", "stream_name": stream}).to_string()
}

async fn state(server: &Server) -> Value {
    let reply = server.http("GET", "/console/state", &[], b"").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    serde_json::from_slice(&reply.body).unwrap()
}

/// What `cargo run --release` gives a newcomer: the embedded defaults (development mode) print
/// the console's URL, serve it, and have a channel that streams any stream.
#[tokio::test]
async fn the_embedded_defaults_serve_the_console_and_public_streams() {
    let server = Server::start_args(&[], &[]);
    let url = format!("http://{}/console", server.addr);
    assert!(
        server.wait_for_log(&url, Duration::from_secs(2)),
        "{}",
        server.logs()
    );
    let page = server.http("GET", "/console", &[], b"").await;
    assert_eq!(page.status, 200);
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert!(page.text().contains("ferrocable"));
    // Nothing but itself: no script, style or font from elsewhere.
    for needle in ["src=\"http", "href=\"http", "@import", "cdn"] {
        assert!(!page.text().contains(needle), "{needle}");
    }
    assert!(
        page.header("content-security-policy")
            .unwrap()
            .contains("default-src 'none'")
    );

    let origin = format!("http://{}", server.addr);
    let (reply, ws) = connect(server.addr, "/cable", &[("Origin", &origin)]).await;
    assert_eq!(reply.status, 101);
    let mut ws = ws.unwrap();
    ws.expect(r#"{"type":"welcome"}"#).await;
    ws.send_text(&subscribe(&public("demo"))).await;
    ws.expect(&confirm(&public("demo"))).await;
    let sent = server
        .http(
            "POST",
            "/console/broadcast",
            &[("Content-Type", "application/json")],
            br#"{"stream":"demo","data":"{\"hello\":\"newcomer\"}"}"#,
        )
        .await;
    assert_eq!(sent.status, 201, "{}", sent.text());
    ws.expect(&data_frame(&public("demo"), r#"{"hello":"newcomer"}"#))
        .await;

    let s = state(&server).await;
    assert_eq!(s["public_streams_channel"], "$pubsub");
    assert_eq!(s["connections"]["total"], 1);
    assert_eq!(s["connections"]["items"][0]["streams"][0], "demo");
    assert_eq!(s["streams"]["items"][0]["name"], "demo");
    assert_eq!(s["streams"]["items"][0]["subscribers"], 1);
    let recent = &s["recent"][0];
    assert_eq!(recent["stream"], "demo");
    assert_eq!(
        recent["broadcasts"][0]["payload"],
        r#"{"hello":"newcomer"}"#
    );
    assert_eq!(recent["broadcasts"][0]["recipients"], 1);
    assert_eq!(s["counters"]["broadcasts"], 1);
}

#[tokio::test]
async fn a_cross_site_page_cannot_post_to_the_console() {
    let server = Server::start_args(&[], &[]);
    let body = br#"{"stream":"demo","data":"1"}"#;
    // A form elsewhere can post neither JSON nor with this server's origin.
    for headers in [
        vec![("Content-Type", "text/plain")],
        vec![
            ("Content-Type", "application/json"),
            ("Origin", "http://evil.example"),
        ],
    ] {
        let reply = server
            .http("POST", "/console/broadcast", &headers, body)
            .await;
        assert_eq!(reply.status, 403, "{headers:?}: {}", reply.text());
    }
    let own = format!("http://{}", server.addr);
    let reply = server
        .http(
            "POST",
            "/console/broadcast",
            &[("Content-Type", "application/json"), ("Origin", &own)],
            body,
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text());
    assert_eq!(state(&server).await["counters"]["broadcasts"], 1);
}

/// With authentication (production), the console is off unless enabled, and public streams
/// do not exist (and cannot be turned on).
#[tokio::test]
async fn production_profiles_have_no_console_or_public_streams_unless_asked() {
    let server = Server::start(&config(""));
    assert_eq!(server.http("GET", "/console", &[], b"").await.status, 404);
    assert_eq!(
        server.http("GET", "/console/state", &[], b"").await.status,
        404
    );
    let mut ws = server.welcomed(1, 1).await;
    ws.send_text(&subscribe(&public("order_channel_2"))).await;
    ws.expect_silence(300).await;
    assert!(!server.logs().contains("live console"));

    let enabled = Server::start(&config("[console]\nenabled = true\n"));
    assert_eq!(enabled.http("GET", "/console", &[], b"").await.status, 200);
    assert!(state(&enabled).await["public_streams_channel"].is_null());

    let out = std::process::Command::new(binary())
        .args(["config", "check", "--config", "/dev/stdin"])
        .env_clear()
        .env("SECRET_KEY_BASE", "s")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(b"[auth]\nmode = \"jwt\"\n[console]\npublic_streams = true\n")?;
            child.wait_with_output()
        })
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("console.public_streams"));
}
