use crate::support::*;

const ORDER: &str = r#"{"channel":"OrderChannel","restaurant_id":1}"#;

#[tokio::test]
async fn confirm_is_sent_once_and_duplicates_are_ignored() {
    let server = Server::start(&config(""));
    let mut ws = server.welcomed(42, 1).await;
    ws.send_text(&subscribe(ORDER)).await;
    ws.expect(r#"{"identifier":"{\"channel\":\"OrderChannel\",\"restaurant_id\":1}","type":"confirm_subscription"}"#).await;
    ws.send_text(&subscribe(ORDER)).await;
    ws.send_text(&subscribe(ORDER)).await;
    ws.expect_silence(300).await;
    // Same content, other key order: another subscription (the raw string is the key).
    let reordered = r#"{"restaurant_id":1,"channel":"OrderChannel"}"#;
    ws.send_text(&subscribe(reordered)).await;
    ws.expect(&confirm(reordered)).await;
    server.broadcast("order_channel_1", r#"{"a":1}"#).await;
    let mut frames = vec![ws.recv_text().await, ws.recv_text().await];
    frames.sort();
    let mut expected = vec![
        data_frame(ORDER, r#"{"a":1}"#),
        data_frame(reordered, r#"{"a":1}"#),
    ];
    expected.sort();
    assert_eq!(frames, expected);
}

#[tokio::test]
async fn unsubscribe_stops_delivery_silently_and_twice_is_harmless() {
    let server = Server::start(&config(""));
    let mut ws = server.welcomed(42, 1).await;
    ws.send_text(&subscribe(ORDER)).await;
    ws.expect(&confirm(ORDER)).await;
    ws.send_text(&unsubscribe(ORDER)).await;
    ws.send_text(&unsubscribe(ORDER)).await;
    ws.expect_silence(200).await;
    server.broadcast("order_channel_1", "1").await;
    ws.expect_silence(300).await;
    // Subscribing again works and confirms again.
    ws.send_text(&subscribe(ORDER)).await;
    ws.expect(&confirm(ORDER)).await;
    server.broadcast("order_channel_1", "2").await;
    ws.expect(&data_frame(ORDER, "2")).await;
}

#[tokio::test]
async fn every_error_path_is_silent_and_keeps_the_connection_open() {
    let server = Server::start(&config(""));
    let mut ws = server.welcomed(42, 1).await;
    let inputs = [
        "{not json".to_string(),
        "null".into(),
        "[1,2]".into(),
        "\"subscribe\"".into(),
        "42".into(),
        r#"{"type":"pong"}"#.into(),
        r#"{"type":"ping"}"#.into(),
        r#"{"command":"frobnicate"}"#.into(),
        r#"{"command":"subscribe"}"#.into(),
        r#"{"command":"subscribe","identifier":5}"#.into(),
        subscribe("not json"),
        subscribe("[1]"),
        subscribe(r#""just a string""#),
        subscribe(r#"{"room":"1"}"#),
        subscribe(r#"{"channel":5}"#),
        subscribe(r#"{"channel":"NopeChannel"}"#),
        subscribe(r#"{"channel":"order_channel_1"}"#),
        unsubscribe(r#"{"channel":"OrderChannel"}"#),
        r#"{"command":"unsubscribe","identifier":[1]}"#.into(),
        message(r#"{"channel":"OrderChannel"}"#, r#"{"action":"speak"}"#),
        r#"{"command":"message","identifier":"{\"channel\":\"ChatChannel\",\"room\":\"1\"}"}"#
            .into(),
    ];
    for input in &inputs {
        ws.send_text(input).await;
    }
    ws.expect_silence(500).await;
    // Still alive and fully functional.
    ws.send_text(&subscribe(ORDER)).await;
    ws.expect(&confirm(ORDER)).await;
}

#[tokio::test]
async fn unknown_channels_can_be_rejected_on_request() {
    let server = Server::start_with(
        &config(""),
        &[("FERROCABLE_PROTOCOL__REJECT_UNKNOWN_CHANNELS", "true")],
    );
    let mut ws = server.welcomed(42, 1).await;
    let nope = r#"{"channel":"NopeChannel"}"#;
    ws.send_text(&subscribe(nope)).await;
    ws.expect(&reject(nope)).await;
}

#[tokio::test]
async fn rules_reject_with_rails_bytes() {
    let server = Server::start(&config(""));
    let mut ws = server.welcomed(42, 1).await;
    let chat_without_room = r#"{"channel":"ChatChannel"}"#;
    ws.send_text(&subscribe(chat_without_room)).await;
    ws.expect(r#"{"identifier":"{\"channel\":\"ChatChannel\"}","type":"reject_subscription"}"#)
        .await;
    // A rejected subscription is not kept: trying again rejects again.
    ws.send_text(&subscribe(chat_without_room)).await;
    ws.expect(&reject(chat_without_room)).await;

    let t = token(serde_json::json!({"user_id": 1, "restaurant_id": 1, "role": "staff"}));
    let (_, staff) = server.connect(&format!("/cable?token={t}"), &[]).await;
    let mut staff = staff.unwrap();
    staff.expect(r#"{"type":"welcome"}"#).await;
    let admin = r#"{"channel":"AdminChannel"}"#;
    staff.send_text(&subscribe(admin)).await;
    staff.expect(&reject(admin)).await;
    ws.send_text(&subscribe(admin)).await;
    ws.expect(&confirm(admin)).await;
}

#[tokio::test]
async fn identifiers_are_echoed_byte_for_byte_with_activesupport_escaping() {
    let server = Server::start(&config(""));
    let mut ws = server.welcomed(42, 1).await;
    let cases = [
        (
            r#"{"room":"<1>","channel":"ChatChannel"}"#,
            r#"{"identifier":"{\"room\":\"\u003c1\u003e\",\"channel\":\"ChatChannel\"}","type":"confirm_subscription"}"#,
        ),
        (
            "{ \"channel\" : \"ChatChannel\" , \"room\" : \"é & \u{2028}\" }",
            "{\"identifier\":\"{ \\\"channel\\\" : \\\"ChatChannel\\\" , \\\"room\\\" : \\\"é \\u0026 \\u2028\\\" }\",\"type\":\"confirm_subscription\"}",
        ),
    ];
    for (identifier, expected) in cases {
        ws.send_text(&subscribe(identifier)).await;
        ws.expect(expected).await;
    }
}

#[tokio::test]
async fn hafaloha_ignores_identifier_params_and_isolates_tenants() {
    let server = Server::start(&config(""));
    let mut r1 = server.welcomed(42, 1).await;
    let mut r2 = server.welcomed(7, 2).await;
    // A restaurant-1 user naming restaurant 2 in its identifier still streams restaurant 1.
    let sneaky = r#"{"channel":"OrderChannel","restaurant_id":2}"#;
    r1.send_text(&subscribe(sneaky)).await;
    r1.expect(&confirm(sneaky)).await;
    let honest = r#"{"channel":"OrderChannel","restaurant_id":2}"#;
    r2.send_text(&subscribe(honest)).await;
    r2.expect(&confirm(honest)).await;
    server
        .broadcast(
            "order_channel_2",
            r#"{"type":"new_order","order":{"id":2}}"#,
        )
        .await;
    r2.expect(&data_frame(
        honest,
        r#"{"type":"new_order","order":{"id":2}}"#,
    ))
    .await;
    r1.expect_silence(400).await;
    server
        .broadcast(
            "order_channel_1",
            r#"{"type":"new_order","order":{"id":1}}"#,
        )
        .await;
    r1.expect(&data_frame(
        sneaky,
        r#"{"type":"new_order","order":{"id":1}}"#,
    ))
    .await;
    r2.expect_silence(400).await;
}

#[tokio::test]
async fn actions_transmit_broadcast_or_are_refused() {
    let server = Server::start(&config(""));
    let mut a = server.welcomed(1, 1).await;
    let mut b = server.welcomed(2, 1).await;
    let room = r#"{"channel":"ChatChannel","room":"7"}"#;
    for ws in [&mut a, &mut b] {
        ws.send_text(&subscribe(room)).await;
        ws.expect(&confirm(room)).await;
    }
    // echo: transmit(data) to the caller only, data (action included) re-encoded.
    a.send_text(&message(room, r#"{"text":"hi <b>","action":"echo"}"#))
        .await;
    a.expect(&data_frame(
        room,
        r#"{"text":"hi \u003cb\u003e","action":"echo"}"#,
    ))
    .await;
    b.expect_silence(300).await;
    // speak: broadcast(stream, data) to everyone on the stream.
    a.send_text(&message(room, r#"{"text":"yo","action":"speak"}"#))
        .await;
    a.expect(&data_frame(room, r#"{"text":"yo","action":"speak"}"#))
        .await;
    b.expect(&data_frame(room, r#"{"text":"yo","action":"speak"}"#))
        .await;
    // Unknown action, no action (receive), data not JSON, data not a string: silence.
    a.send_text(&message(room, r#"{"action":"nope"}"#)).await;
    a.send_text(&message(room, r#"{"text":"no action"}"#)).await;
    a.send_text(&message(room, "not json")).await;
    a.send_text(&format!(
        r#"{{"command":"message","identifier":{},"data":{{"action":"echo"}}}}"#,
        serde_json::to_string(room).unwrap()
    ))
    .await;
    // A channel without actions ignores messages, like Rails' "Unable to process".
    a.send_text(&subscribe(ORDER)).await;
    a.expect(&confirm(ORDER)).await;
    a.send_text(&message(ORDER, r#"{"action":"anything"}"#))
        .await;
    a.expect_silence(400).await;
    b.expect_silence(100).await;
    assert!(server.wait_for_log(
        "Unable to process action",
        std::time::Duration::from_secs(1)
    ));
}

#[tokio::test]
async fn two_streams_in_one_subscription_confirm_once() {
    let server = Server::start(&config(""));
    let mut ws = server.welcomed(42, 3).await;
    let id = r#"{"channel":"TwoStreamChannel"}"#;
    ws.send_text(&subscribe(id)).await;
    ws.expect(&confirm(id)).await;
    ws.expect_silence(200).await;
    server.broadcast("first_3", "1").await;
    ws.expect(&data_frame(id, "1")).await;
    server.broadcast("second_3", "2").await;
    ws.expect(&data_frame(id, "2")).await;
}

#[tokio::test]
async fn websocket_violations_close_with_the_drivers_codes() {
    let server = Server::start(&config(""));
    // Invalid UTF-8 in a text frame: 1007.
    let mut ws = server.welcomed(1, 1).await;
    ws.send_raw(&crate::support::ws::client_frame(0x81, &[0xff, 0xfe, b'{']))
        .await;
    ws.expect_close_code(1007).await;
    // An unmasked client frame: 1003 (websocket-driver calls it "unacceptable").
    let mut ws = server.welcomed(1, 1).await;
    ws.send_raw(&[0x81, 0x02, b'{', b'}']).await;
    ws.expect_close_code(1003).await;
    // An unknown opcode: 1002.
    let mut ws = server.welcomed(1, 1).await;
    ws.send_raw(&crate::support::ws::client_frame(0x83, b"x"))
        .await;
    ws.expect_close_code(1002).await;
    // Over limits.max_message_bytes (64 KiB by default): 1009.
    let mut ws = server.welcomed(1, 1).await;
    let big = format!(
        r#"{{"command":"subscribe","identifier":"{}"}}"#,
        "x".repeat(70_000)
    );
    ws.send_text(&big).await;
    ws.expect_close_code(1009).await;
    // Binary frames are ignored (websocket-driver < 0.8) and the connection stays open.
    let mut ws = server.welcomed(1, 1).await;
    ws.send_raw(&crate::support::ws::client_frame(
        0x82,
        subscribe(ORDER).as_bytes(),
    ))
    .await;
    ws.expect_silence(300).await;
    ws.send_text(&subscribe(ORDER)).await;
    ws.expect(&confirm(ORDER)).await;
    let stats = server.stats().await;
    assert_eq!(stats["oversized_messages"], 1);
}

#[tokio::test]
async fn client_pings_get_pongs_and_a_client_close_is_answered() {
    let server = Server::start(&config(""));
    let mut ws = server.welcomed(1, 1).await;
    ws.send_raw(&crate::support::ws::client_frame(0x89, b"hello"))
        .await;
    assert_eq!(ws.recv().await, Frame::Pong(b"hello".to_vec()));
    ws.send_close(1000).await;
    ws.expect_close_1000().await;
    assert!(ws.closed_within(std::time::Duration::from_secs(3)).await);
}

#[tokio::test]
async fn a_close_without_status_code_is_answered_with_close_1000() {
    // A browser's `ws.close()` and @rails/actioncable's `consumer.disconnect()` send a close
    // frame with an empty payload. websocket-driver answers 88 02 03 e8 (1000, no reason);
    // echoing the empty frame would make the client see 1005 (conformance
    // `close_without_code` pins the Rails bytes on 6.1 and 7.2).
    let server = Server::start(&config(""));
    let mut ws = server.welcomed(1, 1).await;
    ws.send_text(&subscribe(ORDER)).await;
    ws.expect(&confirm(ORDER)).await;
    ws.send_raw(&crate::support::ws::client_frame(0x88, &[]))
        .await;
    ws.expect_close_1000().await;
    assert!(ws.closed_within(std::time::Duration::from_secs(3)).await);
    // A close with a code and reason is still echoed as it came, as websocket-driver does.
    let mut ws = server.welcomed(1, 1).await;
    let mut payload = 1001u16.to_be_bytes().to_vec();
    payload.extend_from_slice(b"going away");
    ws.send_raw(&crate::support::ws::client_frame(0x88, &payload))
        .await;
    match ws.recv().await {
        Frame::Close { code, reason, .. } => {
            assert_eq!((code, reason.as_str()), (Some(1001), "going away"))
        }
        other => panic!("expected the echoed close, got {other:?}"),
    }
}
