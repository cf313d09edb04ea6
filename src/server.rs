//! The accept loop, the ping timer, and shutdown in phases.
//!
//! [`run`] wires the parts together and serves until the `shutdown` future resolves, then:
//! 1. stops accepting (the listener is dropped) and answers new upgrades with 503;
//! 2. tells every client `{"type":"disconnect","reason":"server_restart","reconnect":true}`
//!    and closes, and asks idle HTTP connections to finish;
//! 3. waits for sessions to drain, up to `server.shutdown_timeout_secs`, and logs how the
//!    drain ended. Returning ends the process with status 0.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ferrocable_protocol::outgoing;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

use crate::config::Settings;
use crate::http::{self, Peer};
use crate::outbox::Beat;
use crate::outbox::socket::CableIo;
use crate::registry;
use crate::shared::Shared;

/// Serves on `listener` until `shutdown` resolves, then drains.
pub async fn run(listener: TcpListener, settings: Settings, shutdown: impl Future<Output = ()>) {
    let shared = Arc::new(Shared::new(Arc::new(settings)));
    let settings = shared.settings.clone();
    let stop_background = CancellationToken::new();
    let mut inputs = shared.broker.spawn_inputs(&shared.hub, &stop_background);
    if let Some(database) = &settings.database {
        inputs.push(tokio::spawn(
            database.clone().watch_health(stop_background.clone()),
        ));
    }
    let pinger = tokio::spawn(ping_forever(
        shared.clone(),
        settings.protocol.ping_interval,
        stop_background.clone(),
    ));

    let http_tasks = TaskTracker::new();
    let stop_http = CancellationToken::new();
    tokio::pin!(shutdown);
    let mut backoff = Duration::from_millis(5);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    backoff = Duration::from_millis(5);
                    serve_http(tcp, peer, &shared, &http_tasks, &stop_http);
                }
                Err(e) if is_per_connection_error(&e) => {}
                Err(e) => {
                    // Typically EMFILE: wait for descriptors to free up instead of spinning.
                    error!(cause = %e, retry_in_ms = backoff.as_millis() as u64, "accept failed");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
            },
        }
    }

    let started = Instant::now();
    drop(listener);
    let told = shared.begin_shutdown();
    info!(
        connections = told,
        deadline_secs = settings.server.shutdown_timeout.as_secs(),
        "shutting down: stopped accepting, sent server_restart to every client"
    );
    stop_http.cancel();
    http_tasks.close();
    shared.session_tasks.close();
    let drained = tokio::time::timeout(settings.server.shutdown_timeout, async {
        shared.session_tasks.wait().await;
        http_tasks.wait().await;
    })
    .await;
    match drained {
        Ok(()) => info!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            "drained: every connection closed"
        ),
        Err(_) => warn!(
            remaining = shared.registry.len(),
            "shutdown deadline passed with connections still open; exiting anyway"
        ),
    }
    // Stops the pinger and the inputs.
    stop_background.cancel();
    let _ = pinger.await;
    for task in inputs {
        let _ = tokio::time::timeout(Duration::from_secs(1), task).await;
    }
}

fn serve_http(
    tcp: TcpStream,
    peer: SocketAddr,
    shared: &Arc<Shared>,
    tasks: &TaskTracker,
    stop: &CancellationToken,
) {
    // Frames are small and latency matters more than packet count; batching is done by
    // the session's single flush per backlog.
    let _ = tcp.set_nodelay(true);
    let shared = shared.clone();
    let stop = stop.clone();
    let stats = shared.stats.clone();
    let handshake_timeout = shared.settings.limits.handshake_timeout;
    tasks.spawn(async move {
        let (io, socket) = CableIo::new(tcp);
        let link = Peer { addr: peer, socket };
        let service = service_fn(move |req| http::handle(req, shared.clone(), link.clone()));
        let conn = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(handshake_timeout)
            // Action Cable requests are small; a token over limits.max_token_bytes is refused
            // anyway, so heads over 16 KiB are answered 431 by hyper itself.
            .max_buf_size(16 * 1024)
            .auto_date_header(false)
            .serve_connection(TokioIo::new(io), service)
            .with_upgrades();
        tokio::pin!(conn);
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    if e.is_timeout() {
                        stats.handshake_timeouts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        tracing::info!(%peer, "request headers not received within limits.handshake_timeout_secs; connection closed");
                    } else {
                        tracing::debug!(%peer, cause = %e, "HTTP connection ended with an error");
                    }
                }
            }
            _ = stop.cancelled() => {
                conn.as_mut().graceful_shutdown();
                let _ = conn.await;
            }
        }
    });
}

/// Accept errors that concern one connection only (it vanished during the handshake).
fn is_per_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    )
}

/// Rails' single beat timer. Each tick opens a new beat (one ping frame for everyone);
/// connections written to anyway get the ping in that same write (see [`crate::outbox::beat`]),
/// and the rest are swept here shard by shard late in the beat's slack, so a ping round is never
/// 10,000 writes at once in the way of a broadcast.
async fn ping_forever(shared: Arc<Shared>, every: Duration, stop: CancellationToken) {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let tick = tokio::select! {
            _ = stop.cancelled() => return,
            tick = ticks.tick() => tick,
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let beat = shared.hub.beat();
        beat.advance(outgoing::text_frame(&outgoing::ping(now)));
        for shard in 0..registry::SHARDS {
            let at = tick + Beat::sweep_offset(every, shard, registry::SHARDS);
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep_until(at) => {}
            }
            shared.registry.for_each_in_shard(shard, |conn| {
                conn.ping_if_due(beat);
            });
        }
    }
}
