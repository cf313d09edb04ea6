use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::*;

const ROOM: &str = r#"{"channel":"ChatChannel","room":"1"}"#;

#[tokio::test]
async fn a_stalled_client_is_cut_off_and_never_delays_the_others() {
    let server = Server::start_with(
        &config(""),
        &[
            ("FERROCABLE_LIMITS__MAX_OUTBOUND_BYTES", "262144"),
            ("FERROCABLE_LIMITS__WRITE_TIMEOUT_SECS", "2"),
        ],
    );
    let mut fast = server.welcomed(1, 1).await;
    let mut slow = server.welcomed(2, 1).await;
    for ws in [&mut fast, &mut slow] {
        ws.send_text(&subscribe(ROOM)).await;
        ws.expect(&confirm(ROOM)).await;
    }
    // `slow` never reads again. Flood ~24 MB through the stream: more than the kernel
    // buffers of a loopback pair, so the slow client's queue must overflow.
    let filler = "x".repeat(1000);
    // Each burst (~100 KB) stays under the 256 KiB bound, so a reading client keeps up.
    let batches = 240;
    let per_batch = 100;
    let reader = tokio::spawn(async move {
        let mut got = 0;
        let mut last = -1i64;
        while got < batches * per_batch {
            let frame = fast.recv_text().await;
            let n: i64 = serde_json::from_str::<serde_json::Value>(&frame)
                .unwrap_or_else(|_| panic!("{frame}"))["message"]["n"]
                .as_i64()
                .unwrap_or_else(|| panic!("unexpected frame {}", &frame[..frame.len().min(200)]));
            assert_eq!(n, last + 1, "the fast client lost or reordered a frame");
            last = n;
            got += 1;
        }
        (got, fast)
    });
    let started = Instant::now();
    for b in 0..batches {
        let items: Vec<serde_json::Value> = (0..per_batch)
            .map(|i| json!({"stream": "chat_1", "data": {"n": b * per_batch + i, "pad": filler}}))
            .collect();
        let reply = server
            .http(
                "POST",
                "/_broadcast",
                &[],
                serde_json::to_string(&items).unwrap().as_bytes(),
            )
            .await;
        assert_eq!(reply.status, 201);
    }
    let (got, _fast) = tokio::time::timeout(Duration::from_secs(30), reader)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, batches * per_batch);
    let delivered_in = started.elapsed();
    // The stalled client is dropped within the write timeout (plus slack), and counted.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let stats = server.stats().await;
        if stats["slow_client_disconnects"] == 1 {
            assert_eq!(stats["connections"], 1, "{stats}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "slow client never disconnected: {stats}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(slow.closed_within(Duration::from_secs(10)).await);
    eprintln!("fast client got {got} frames of ~1 KB in {delivered_in:?} while the other stalled");
    server.assert_logged("client too slow");
}

#[tokio::test]
async fn the_connection_limit_answers_503() {
    let server = Server::start_with(&config(""), &[("FERROCABLE_LIMITS__MAX_CONNECTIONS", "2")]);
    let _a = server.welcomed(1, 1).await;
    let _b = server.welcomed(2, 1).await;
    let t = token(json!({"user_id": 3, "restaurant_id": 1}));
    let (reply, ws) = server.connect(&format!("/cable?token={t}"), &[]).await;
    assert!(ws.is_none());
    assert_eq!(reply.status, 503);
    assert_eq!(server.stats().await["connection_limit_refusals"], 1);
    drop(_a);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (reply, _) = server.connect(&format!("/cable?token={t}"), &[]).await;
    assert_eq!(reply.status, 101, "a slot frees up when a client leaves");
}
