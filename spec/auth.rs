use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

use crate::support::*;

const UNAUTHORIZED: &str = r#"{"type":"disconnect","reason":"unauthorized","reconnect":false}"#;

/// A refused connection: 101, the unauthorized disconnect, close 1000, no welcome.
async fn assert_refused(server: &Server, path: &str, headers: &[(&str, &str)]) {
    let (reply, ws) = server.connect(path, headers).await;
    assert_eq!(
        reply.status, 101,
        "rejection is never an HTTP error: {path}"
    );
    let mut ws = ws.unwrap();
    ws.expect(UNAUTHORIZED).await;
    ws.expect_close_1000().await;
}

fn claims() -> serde_json::Value {
    json!({"user_id": 42, "restaurant_id": 1, "exp": now() + 600})
}

#[tokio::test]
async fn every_refusal_looks_like_rails() {
    let server = Server::start(&config(""));
    let hs = Algorithm::HS256;
    let cases: Vec<(&str, String)> = vec![
        ("missing", "/cable".into()),
        ("empty", "/cable?token=".into()),
        ("malformed", "/cable?token=not.a.jwt".into()),
        ("garbage base64", "/cable?token=%%%.@@@.$$$".into()),
        ("truncated", {
            let t = token(claims());
            format!("/cable?token={}", &t[..t.len() - 10])
        }),
        ("bad signature", format!("/cable?token={}", token_with(hs, b"wrong-secret", claims()))),
        ("expired", format!("/cable?token={}", token(json!({"user_id": 42, "restaurant_id": 1, "exp": now() - 5})))),
        ("future nbf", format!("/cable?token={}", token(json!({"user_id": 42, "restaurant_id": 1, "nbf": now() + 300})))),
        ("wrong algorithm", format!("/cable?token={}", token_with(Algorithm::HS512, SECRET.as_bytes(), claims()))),
        // {"alg":"none","typ":"JWT"} . {"user_id":42,"restaurant_id":1} . (no signature)
        ("alg none", "/cable?token=eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJ1c2VyX2lkIjo0MiwicmVzdGF1cmFudF9pZCI6MX0.".into()),
        ("missing identifier claim", format!("/cable?token={}", token(json!({"user_id": 42})))),
        ("null identifier claim", format!("/cable?token={}", token(json!({"user_id": 42, "restaurant_id": null})))),
        ("claim of the wrong type", format!("/cable?token={}", token(json!({"user_id": {"id": 42}, "restaurant_id": 1})))),
        ("exp of the wrong type", format!("/cable?token={}", token(json!({"user_id": 42, "restaurant_id": 1, "exp": "never"})))),
    ];
    for (name, path) in &cases {
        eprintln!("case: {name}");
        assert_refused(&server, path, &[]).await;
    }
    let stats = server.stats().await;
    assert_eq!(stats["unauthorized_connections"], cases.len());
    assert_eq!(stats["connections"], 0);
    assert!(server.wait_for_log(
        "An unauthorized connection attempt was rejected",
        std::time::Duration::from_secs(1)
    ));
}

#[tokio::test]
async fn hs_rs_confusion_is_refused() {
    // A token "signed" with HS256 using the RS256 public key as the HMAC secret.
    let public = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/keys/rs256-public.pem"
    ))
    .unwrap();
    let cfg = config("").replace(
        &format!("secret = \"{SECRET}\"\nalgorithm = \"HS256\""),
        "algorithm = \"RS256\"\npublic_key_file = \"fixtures/keys/rs256-public.pem\"",
    );
    let server = Server::start_with(
        &cfg.replace(
            "fixtures/keys",
            concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/keys"),
        ),
        &[],
    );
    let forged = token_with(Algorithm::HS256, &public, claims());
    assert_refused(&server, &format!("/cable?token={forged}"), &[]).await;

    let private = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/keys/rs256-private.pem"
    ))
    .unwrap();
    let good = jsonwebtoken::encode(
        &Header::new(Algorithm::RS256),
        &claims(),
        &EncodingKey::from_rsa_pem(&private).unwrap(),
    )
    .unwrap();
    let (reply, ws) = server.connect(&format!("/cable?token={good}"), &[]).await;
    assert_eq!(reply.status, 101);
    ws.unwrap().expect(r#"{"type":"welcome"}"#).await;
}

#[tokio::test]
async fn es256_public_keys_verify() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/keys");
    let cfg = config("").replace(
        &format!("secret = \"{SECRET}\"\nalgorithm = \"HS256\""),
        &format!("algorithm = \"ES256\"\npublic_key_file = \"{dir}/es256-public.pem\""),
    );
    let server = Server::start(&cfg);
    let private = std::fs::read(format!("{dir}/es256-private.pem")).unwrap();
    let good = jsonwebtoken::encode(
        &Header::new(Algorithm::ES256),
        &claims(),
        &EncodingKey::from_ec_pem(&private).unwrap(),
    )
    .unwrap();
    let (_, ws) = server.connect(&format!("/cable?token={good}"), &[]).await;
    ws.unwrap().expect(r#"{"type":"welcome"}"#).await;
    let hs = token(claims());
    assert_refused(&server, &format!("/cable?token={hs}"), &[]).await;
}

#[tokio::test]
async fn bearer_header_is_accepted_when_the_query_has_no_token() {
    let server = Server::start(&config(""));
    let auth = format!("Bearer {}", token(claims()));
    let (_, ws) = server.connect("/cable", &[("Authorization", &auth)]).await;
    ws.unwrap().expect(r#"{"type":"welcome"}"#).await;

    let strict = Server::start_with(
        &config(""),
        &[("FERROCABLE_AUTH__ACCEPT_BEARER_HEADER", "false")],
    );
    assert_refused(&strict, "/cable", &[("Authorization", &auth)]).await;
}

#[tokio::test]
async fn token_parameter_name_is_configurable() {
    let server = Server::start_with(&config(""), &[("FERROCABLE_AUTH__TOKEN_PARAM", "jid")]);
    let t = token(claims());
    let (_, ws) = server.connect(&format!("/cable?jid={t}"), &[]).await;
    ws.unwrap().expect(r#"{"type":"welcome"}"#).await;
    assert_refused(&server, &format!("/cable?token={t}"), &[]).await;
}

#[tokio::test]
async fn leeway_accepts_a_just_expired_token() {
    let server = Server::start_with(&config(""), &[("FERROCABLE_AUTH__LEEWAY_SECS", "60")]);
    let t = token(json!({"user_id": 42, "restaurant_id": 1, "exp": now() - 10}));
    let (_, ws) = server.connect(&format!("/cable?token={t}"), &[]).await;
    ws.unwrap().expect(r#"{"type":"welcome"}"#).await;
}

#[tokio::test]
async fn a_query_parameter_can_be_required_to_match_a_claim() {
    let cfg = config("").replace(
        "name = \"restaurant_id\"\nclaim = \"restaurant_id\"",
        "name = \"restaurant_id\"\nclaim = \"restaurant_id\"\nmatch_query = \"restaurant_id\"",
    );
    let server = Server::start(&cfg);
    let t = token(claims());
    let (_, ws) = server
        .connect(&format!("/cable?token={t}&restaurant_id=1"), &[])
        .await;
    ws.unwrap().expect(r#"{"type":"welcome"}"#).await;
    assert_refused(&server, &format!("/cable?token={t}&restaurant_id=2"), &[]).await;
    assert_refused(&server, &format!("/cable?token={t}"), &[]).await;
}

#[tokio::test]
async fn no_auth_mode_accepts_everyone_and_says_so() {
    let server = Server::start(&format!(
        "[origins]\nallowed = [\"{ORIGIN}\"]\n[auth]\nmode = \"none\"\n[[auth.identifiers]]\nname = \"room\"\nquery = \"room\"\nrequired = false\n[channels.Chat]\nstreams = [\"chat_{{room}}\"]\n"
    ));
    assert!(server.wait_for_log(
        "EVERY CONNECTION IS ACCEPTED WITHOUT A TOKEN",
        std::time::Duration::from_secs(2)
    ));
    let (_, ws) = server.connect("/cable?room=5", &[]).await;
    let mut ws = ws.unwrap();
    ws.expect(r#"{"type":"welcome"}"#).await;
    let id = r#"{"channel":"Chat"}"#;
    ws.send_text(&subscribe(id)).await;
    ws.expect(&confirm(id)).await;
    server.broadcast("chat_5", "1").await;
    ws.expect(&data_frame(id, "1")).await;
}

#[tokio::test]
async fn commands_sent_before_the_welcome_are_processed_after_it_in_order() {
    let server = Server::start(&config(""));
    let t = token(claims());
    let order = r#"{"channel":"OrderChannel","restaurant_id":1}"#;
    let inventory = r#"{"channel":"InventoryChannel","restaurant_id":1}"#;
    // Write the upgrade request and four subscribes in one go, as the Hafaloha client does
    // from onopen: they reach the server before it has even answered.
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let mut bytes = format!(
        "GET /cable?token={t}&restaurant_id=1 HTTP/1.1\r\nHost: x\r\nOrigin: {ORIGIN}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .into_bytes();
    for id in [
        order,
        r#"{"channel":"order_channel_1"}"#,
        inventory,
        r#"{"channel":"inventory_channel_1"}"#,
    ] {
        bytes.extend(crate::support::ws::client_frame(
            0x81,
            subscribe(id).as_bytes(),
        ));
    }
    tokio::io::AsyncWriteExt::write_all(&mut stream, &bytes)
        .await
        .unwrap();
    let mut ws = crate::support::ws::adopt(stream).await;
    ws.expect(r#"{"type":"welcome"}"#).await;
    ws.expect(&confirm(order)).await;
    ws.expect(&confirm(inventory)).await;
    ws.expect_silence(300).await;
}
