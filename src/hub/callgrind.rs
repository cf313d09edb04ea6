//! A fixed, deterministic workload over the delivery path, for instruction counts under
//! `valgrind --tool=callgrind` (exact and repeatable, unlike timings on a shared machine).
//!
//! 64 connections on real loopback sockets, on one stream under two identifiers; 200
//! broadcasts fanned out at once (one direct `write` per socket), then 200 fanned out queued
//! and written by each connection's "task" the way the session's flush does it (the
//! queue taken in one batch, written with vectored writes, here into a sink, and its delivery
//! latency observed). Nothing reads
//! the sockets: 200 frames of ~70 bytes fit in their buffers, so every direct write
//! succeeds and the path taken never depends on timing.
//!
//! Only [`deliver`] is counted:
//!
//! ```sh
//! cargo test --release --lib hub::callgrind -- --ignored --exact --test-threads 1 \
//!   hub::callgrind::delivery_path_workload          # builds the test binary; then
//! valgrind --tool=callgrind --toggle-collect='ferrocable::hub::callgrind::deliver' \
//!   target/release/deps/ferrocable-<hash> --ignored --exact --test-threads 1 \
//!   hub::callgrind::delivery_path_workload
//! ```
//!
//! and divide the total `Ir` by the deliveries it prints (64 × 400 = 25,600). Name the
//! function exactly: a pattern ending in `*` also matches this test's own name, and callgrind
//! then toggles counting off inside `deliver`. Results: docs/BENCHMARKS.md.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use ferrocable_protocol::outgoing::{self, EscapedIdentifier};

use super::{Hub, HubOptions, PendingConfirm};
use crate::outbox::{self, ConnHandle, FanOut, Frame};
use crate::stats::{Stamp, Stats};

const CONNECTIONS: usize = 64;
const BROADCASTS: usize = 200;

/// The counted part: `BROADCASTS` immediate fan-outs, then as many queued ones and one batch
/// write per connection. Returns the deliveries made.
#[inline(never)]
fn deliver(hub: &Hub, conns: &[Arc<ConnHandle>], payloads: &[Bytes]) -> usize {
    let mut delivered = 0;
    for payload in payloads {
        if let super::BroadcastOutcome::Delivered(n) =
            hub.fan_out(FanOut::Immediate, "room", payload, None)
        {
            delivered += n;
        }
    }
    for payload in payloads {
        if let super::BroadcastOutcome::Delivered(n) =
            hub.fan_out(FanOut::Queued, "room", payload, None)
        {
            delivered += n;
        }
    }
    let mut batch: VecDeque<Frame> = VecDeque::new();
    let mut sink = Discard;
    for conn in conns {
        let taken = conn.take_batch(&mut batch);
        let written =
            futures_util::FutureExt::now_or_never(outbox::write_frames(&mut sink, &mut batch));
        assert!(matches!(written, Some(Ok(()))));
        // What the session's flush adds per batch.
        if let Some(received) = taken.started {
            hub.stats
                .delivery_latency
                .observe(conn.id, received.until(Stamp::now()));
        }
        batch.clear();
        conn.take_batch(&mut batch);
    }
    delivered
}

/// Takes every byte at once, like a socket with room (tokio's `sink` spends the
/// cooperative budget, which a loop outside the scheduler never gets back).
struct Discard;

impl tokio::io::AsyncWrite for Discard {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_write_vectored(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::task::Poll::Ready(Ok(bufs.iter().map(|b| b.len()).sum()))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

#[test]
#[ignore = "a workload for callgrind (see the module docs), not a check"]
fn delivery_path_workload() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    runtime.block_on(async {
        let stats = Arc::new(Stats::default());
        let hub = Hub::new(
            0,
            stats.clone(),
            HubOptions {
                remote_disconnect_frame: true,
                max_json_depth: ferrocable_protocol::MAX_JSON_DEPTH,
                escaping: ferrocable_protocol::json::Escaping::default(),
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut clients = Vec::new();
        let mut conns = Vec::new();
        for id in 0..CONNECTIONS as u64 {
            let client = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
                .await
                .unwrap();
            let (server, _) = listener.accept().await.unwrap();
            let conn = Arc::new(ConnHandle::new(id, 1 << 20, Some(server)).counted(stats.clone()));
            let identifier = EscapedIdentifier::new(if id % 2 == 0 {
                r#"{"channel":"ChatChannel","room":"1"}"#
            } else {
                r#"{"channel":"ChatChannel","room":1}"#
            });
            let pending = Arc::new(PendingConfirm::new(
                1,
                conn.clone(),
                outgoing::text_frame(&outgoing::confirm(&identifier)),
            ));
            hub.subscribe("room", &identifier, &conn, &pending);
            conn.take_batch(&mut VecDeque::new());
            conn.take_batch(&mut VecDeque::new());
            clients.push(client);
            conns.push(conn);
        }
        let payloads: Vec<Bytes> = (0..BROADCASTS)
            .map(|i| Bytes::from(format!(r#"{{"text":"message {i}","n":{i}}}"#)))
            .collect();
        let delivered = deliver(&hub, &conns, &payloads);
        assert_eq!(delivered, CONNECTIONS * BROADCASTS * 2);
        println!("deliveries: {delivered}");
    });
}
