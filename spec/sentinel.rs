use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::redis_ha::{MASTER_NAME, SentinelGroup};
use crate::support::*;

const PREFIX: &str = "shimizu_order_suite_production";
const ORDER: &str = r#"{"channel":"OrderChannel","restaurant_id":1}"#;
const CHANNEL: &str = "shimizu_order_suite_production:order_channel_1";

/// One PUBLISH the test's publisher made.
#[derive(Debug, Clone, Copy)]
struct Published {
    seq: u64,
    at: Instant,
    /// The master's port it was published on.
    node: u16,
}

/// Publishes sequence numbers every few milliseconds the way a Rails app on redis-rb does
/// under Sentinel: one connection to the master, and on an error a new one to whichever node
/// the sentinels name. A PUBLISH that fails is not counted as published.
fn publisher(
    sentinel_port: u16,
    stop: Arc<AtomicBool>,
    log: Arc<Mutex<Vec<Published>>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let sentinel = redis::Client::open(format!("redis://127.0.0.1:{sentinel_port}")).unwrap();
        let master = || -> Option<(u16, redis::Connection)> {
            let mut s = sentinel.get_connection().ok()?;
            let (_, port): (String, u16) = redis::cmd("SENTINEL")
                .arg("get-master-addr-by-name")
                .arg(MASTER_NAME)
                .query(&mut s)
                .ok()?;
            let conn = redis::Client::open(format!("redis://127.0.0.1:{port}"))
                .ok()?
                .get_connection()
                .ok()?;
            Some((port, conn))
        };
        let mut current = None;
        let mut seq = 0;
        while !stop.load(Ordering::Relaxed) {
            if current.is_none() {
                current = master();
            }
            if let Some((port, conn)) = current.as_mut() {
                let sent: redis::RedisResult<i64> = redis::cmd("PUBLISH")
                    .arg(CHANNEL)
                    .arg(seq.to_string())
                    .query(conn);
                match sent {
                    Ok(_) => log.lock().unwrap().push(Published {
                        seq,
                        at: Instant::now(),
                        node: *port,
                    }),
                    Err(_) => current = None,
                }
                seq += 1;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    })
}

async fn broker_status(server: &Server) -> serde_json::Value {
    let r = server.http("GET", "/health", &[], b"").await;
    serde_json::from_slice::<serde_json::Value>(&r.body).unwrap()["broker"].clone()
}

/// A server on the group with `[redis]` `section`, and a client subscribed to ORDER, once the
/// subscriber reports itself connected (the confirm can precede the health update by a
/// moment: it is marked after the initial SUBSCRIBEs). Returns the broker's status then.
async fn subscribed(section: &str) -> (Server, Ws, serde_json::Value) {
    let server = Server::start(&config(section));
    let mut ws = server.welcomed(42, 1).await;
    ws.send_text(&subscribe(ORDER)).await;
    ws.expect(&confirm(ORDER)).await;
    let start = Instant::now();
    loop {
        let status = broker_status(&server).await;
        if status["state"] == "connected" {
            return (server, ws, status);
        }
        assert!(start.elapsed() < Duration::from_secs(5), "{status}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// How the master goes away.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Failover {
    /// `SENTINEL FAILOVER`: the old master is alive and demoted later.
    Forced,
    /// SIGKILL: the sentinels notice (down-after 1 s), agree and promote the replica.
    MasterKilled,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forced_sentinel_failover_under_a_live_broadcast_stream_is_followed() {
    failover_under_a_live_stream(Failover::Forced).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_master_is_replaced_under_a_live_broadcast_stream() {
    failover_under_a_live_stream(Failover::MasterKilled).await;
}

async fn failover_under_a_live_stream(how: Failover) {
    let setup = Instant::now();
    let mut group = SentinelGroup::start();
    println!("sentinel group ready in {} ms", setup.elapsed().as_millis());
    let (server, mut ws, before) = subscribed(&group.redis_section(PREFIX)).await;
    assert_eq!(before["node"], format!("127.0.0.1:{}", group.master_port));

    let stop = Arc::new(AtomicBool::new(false));
    let log = Arc::new(Mutex::new(Vec::new()));
    let thread = publisher(group.sentinel_ports[1], stop.clone(), log.clone());
    let received = Arc::new(Mutex::new(Vec::<(u64, Instant)>::new()));
    let drained = Arc::new(AtomicBool::new(false));
    let reader = {
        let (received, drained) = (received.clone(), drained.clone());
        tokio::spawn(async move {
            while !drained.load(Ordering::Relaxed) {
                if let Some(Frame::Text(text)) = ws.recv_within(Duration::from_millis(100)).await
                    && let Ok(v) = serde_json::from_str::<serde_json::Value>(&text)
                    && let Some(seq) = v["message"].as_u64()
                {
                    received.lock().unwrap().push((seq, Instant::now()));
                }
            }
        })
    };

    tokio::time::sleep(Duration::from_millis(1000)).await;
    let asked_at = Instant::now();
    match how {
        Failover::Forced => group.force_failover(),
        Failover::MasterKilled => group.master.kill(),
    }
    let failover_at = Instant::now();
    // Resubscribed: /health reports the new node, with the failover counted.
    let resubscribed_at = loop {
        let status = broker_status(&server).await;
        if status["failovers"] == 1 && status["state"] == "connected" {
            assert_eq!(status["node"], format!("127.0.0.1:{}", group.replica_port));
            assert!(status["last_gap_ms"].is_u64(), "{status}");
            break Instant::now();
        }
        assert!(
            failover_at.elapsed() < Duration::from_secs(30),
            "failover not followed: {status}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // The sentinels agree (the one asked here may learn of a failover another sentinel led a
    // moment later: ferrocable skips a stale answer by checking ROLE).
    let start = Instant::now();
    while group.current_master() != Some(group.replica_port) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "sentinels disagree"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Relaxed);
    thread.join().unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    drained.store(true, Ordering::Relaxed);
    reader.await.unwrap();

    let published = log.lock().unwrap().clone();
    let got: std::collections::HashSet<u64> = received
        .lock()
        .unwrap()
        .iter()
        .map(|(seq, _)| *seq)
        .collect();
    let lost = |from: Instant, to: Instant| {
        let window: Vec<&Published> = published
            .iter()
            .filter(|p| p.at >= from && p.at < to)
            .collect();
        let lost = window.iter().filter(|p| !got.contains(&p.seq)).count();
        (window.len(), lost)
    };
    let far = Instant::now() + Duration::from_secs(3600);
    let (before_n, before_lost) = lost(failover_at - Duration::from_secs(3600), failover_at);
    let (window_n, window_lost) = lost(failover_at, resubscribed_at);
    // After ferrocable resubscribed, every PUBLISH on the new master must arrive.
    let after: Vec<&Published> = published
        .iter()
        .filter(|p| p.at >= resubscribed_at && p.node == group.replica_port)
        .collect();
    let after_lost = after.iter().filter(|p| !got.contains(&p.seq)).count();
    let (_, tail_lost) = lost(resubscribed_at, far);
    let gap = broker_status(&server).await["last_gap_ms"]
        .as_u64()
        .unwrap();
    println!(
        "sentinel failover ({how:?}, started after {} ms): {} ms until ferrocable was resubscribed on the new master, \
         its gap (subscriber lost to every stream resubscribed) {gap} ms; PUBLISHes that succeeded: \
         before {before_n} (lost {before_lost}), from the failover to resubscribed {window_n} (lost {window_lost}), \
         after, on the new master {} (lost {after_lost}; {tail_lost} lost in all after)",
        failover_at.duration_since(asked_at).as_millis(),
        resubscribed_at.duration_since(failover_at).as_millis(),
        after.len()
    );
    assert_eq!(before_lost, 0, "nothing is lost before the failover");
    assert!(
        after.len() > 50,
        "the publisher kept publishing after the failover"
    );
    assert_eq!(
        after_lost, 0,
        "nothing is lost once resubscribed on the new master"
    );
    server.assert_logged("Redis failover followed");
}

#[tokio::test]
async fn role_replica_subscribes_on_a_replica_and_publishes_on_the_master() {
    let group = SentinelGroup::start();
    let section = group.redis_section(PREFIX) + "role = \"replica\"\n";
    let (server, mut ws, status) = subscribed(&section).await;
    assert_eq!(status["node"], format!("127.0.0.1:{}", group.replica_port));
    // Redis replicates PUBLISH: what Rails publishes on the master reaches the replica.
    RedisHandle(group.master_port).publish(CHANNEL, r#""from rails""#);
    ws.expect(&data_frame(ORDER, r#""from rails""#)).await;
    // ferrocable's own broadcasts go to the master (a replica's PUBLISH stays local).
    let reply = server
        .broadcast("order_channel_1", r#""from the api""#)
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text());
    ws.expect(&data_frame(ORDER, r#""from the api""#)).await;
    server.assert_logged("replica of");
}
