//! Several ferrocable processes on one Redis, and process-level faults.

use std::time::{Duration, Instant};

use crate::support::*;

const ORDER: &str = r#"{"channel":"OrderChannel","restaurant_id":1}"#;
const CHANNEL: &str = "shimizu_order_suite_production:order_channel_1";

async fn subscribed(server: &Server, user: u64) -> Ws {
    let mut ws = server.welcomed(user, 1).await;
    ws.send_text(&subscribe(ORDER)).await;
    ws.expect(&confirm(ORDER)).await;
    ws
}

#[tokio::test]
async fn three_nodes_deliver_each_broadcast_exactly_once_and_survive_losing_one() {
    let redis = Redis::start();
    let nodes: Vec<Server> = (0..3)
        .map(|_| Server::start(&redis_config(&redis.url())))
        .collect();
    let mut clients: Vec<(usize, Ws)> = Vec::new();
    for (n, node) in nodes.iter().enumerate() {
        for user in 0..2 {
            clients.push((n, subscribed(node, (n * 10 + user) as u64).await));
        }
    }
    // Published once, by Rails' adapter format: each process subscribed once.
    assert_eq!(redis.publish(CHANNEL, r#"{"n":1}"#), 3);
    for (_, ws) in &mut clients {
        ws.expect(&data_frame(ORDER, r#"{"n":1}"#)).await;
    }
    // Through the HTTP API of one node: every node sees it, once.
    let reply = nodes[2].broadcast("order_channel_1", r#"{"n":2}"#).await;
    assert_eq!(reply.status, 201);
    for (_, ws) in &mut clients {
        ws.expect(&data_frame(ORDER, r#"{"n":2}"#)).await;
        ws.expect_silence(100).await;
    }

    // Node 0 dies without a goodbye.
    nodes[0].signal("KILL");
    let mut survivors = Vec::new();
    for (n, mut ws) in clients {
        if n == 0 {
            assert!(
                ws.closed_within(Duration::from_secs(5)).await,
                "a dead node's sockets close"
            );
        } else {
            survivors.push(ws);
        }
    }
    // Its clients reconnect to node 1 and keep receiving.
    for user in 0..2 {
        survivors.push(subscribed(&nodes[1], 100 + user).await);
    }
    let start = Instant::now();
    loop {
        // Redis notices the dead subscriber when its socket closes.
        let receivers = redis.publish("probe", "1");
        let numsub = redis.cli(&["PUBSUB", "NUMSUB", CHANNEL]).unwrap();
        if receivers == 0 && numsub.lines().nth(1).map(str::trim) == Some("2") {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(5), "{numsub}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(redis.publish(CHANNEL, r#"{"n":3}"#), 2);
    for ws in &mut survivors {
        ws.expect(&data_frame(ORDER, r#"{"n":3}"#)).await;
        ws.expect_silence(100).await;
    }
}

#[tokio::test]
async fn sigterm_under_load_drains_every_client() {
    let redis = Redis::start();
    let mut server = Server::start(&redis_config(&redis.url()));
    let mut clients = Vec::new();
    for user in 0..300 {
        clients.push(subscribed(&server, user).await);
    }
    // Broadcasts keep flowing while the server shuts down.
    let port = redis.port;
    let publisher = std::thread::spawn(move || {
        let redis = RedisHandle(port);
        for i in 0..200 {
            redis.cli(&["PUBLISH", CHANNEL, &i.to_string()]);
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.signal("TERM");
    let restart = r#"{"type":"disconnect","reason":"server_restart","reconnect":true}"#;
    for ws in &mut clients {
        // Broadcast frames may precede the disconnect; nothing may follow the close.
        loop {
            match ws.recv().await {
                Frame::Text(t) if t == restart => break,
                Frame::Text(t) => assert!(t.contains(r#""message":"#), "unexpected {t}"),
                other => panic!("expected server_restart, got {other:?}"),
            }
        }
        ws.expect_close_1000().await;
        ws.send_close(1000).await;
    }
    let status = server
        .wait_exit(Duration::from_secs(15))
        .expect("did not exit");
    assert_eq!(status.code(), Some(0));
    publisher.join().unwrap();
    server.assert_logged("drained: every connection closed");
}
