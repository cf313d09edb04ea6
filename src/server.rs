//! The accept loop, the ping timer, and shutdown in phases.
//!
//! [`run`] wires the parts together and serves until the first [`Stop`] arrives, then:
//! 0. on [`Stop::Drain`] (SIGTERM), for `server.drain_delay_secs`, keeps listening while
//!    `/health` answers `503 draining` and new upgrades get 503, so a load balancer stops
//!    routing here before anyone is told to reconnect (a second signal cuts it short);
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
use tokio::sync::mpsc::Receiver;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

use crate::config::Settings;
use crate::http::{self, Peer};
use crate::outbox::Beat;
use crate::outbox::socket::CableIo;
use crate::registry;
use crate::shared::Shared;

/// A request to stop (from a signal, see `main`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// SIGTERM (a process manager, a rolling deploy): wait `server.drain_delay_secs` first.
    Drain,
    /// SIGINT (Ctrl-C at a terminal): go at once.
    Now,
}

/// Serves on `listener` until a [`Stop`] arrives on `stops` (or it closes), then drains.
pub async fn run(listener: TcpListener, settings: Settings, mut stops: Receiver<Stop>) {
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
    let accepting = Accepting {
        listener: &listener,
        shared: &shared,
        tasks: &http_tasks,
        stop: &stop_http,
    };
    let first = accepting.until(stops.recv()).await.unwrap_or(Stop::Now);
    let delay = settings.server.drain_delay;
    if first == Stop::Drain && !delay.is_zero() {
        shared.begin_draining();
        info!(
            delay_ms = delay.as_millis() as u64,
            "draining: /health answers 503 and new connections are refused while load balancers \
             stop routing here; connected clients are told to reconnect after the delay (a \
             second signal skips it)"
        );
        accepting
            .until(async {
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = stops.recv() => info!("second signal: skipping the rest of the drain delay"),
                }
            })
            .await;
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

/// The accept loop's parts.
struct Accepting<'a> {
    listener: &'a TcpListener,
    shared: &'a Arc<Shared>,
    tasks: &'a TaskTracker,
    stop: &'a CancellationToken,
}

impl Accepting<'_> {
    /// Accepts connections until `done` resolves; returns its output.
    async fn until<T>(&self, done: impl Future<Output = T>) -> T {
        tokio::pin!(done);
        let mut backoff = Duration::from_millis(5);
        loop {
            tokio::select! {
                out = &mut done => return out,
                accepted = self.listener.accept() => match accepted {
                    Ok((tcp, peer)) => {
                        backoff = Duration::from_millis(5);
                        serve_http(tcp, peer, self.shared, self.tasks, self.stop);
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
    // Before spawning, so the outbox is allocated next to tokio's registration of the socket
    // (a delivery reads both: see `ConnHandle`). The accept loop runs on the main thread
    // (`block_on`) and the connections' tasks on the runtime's worker, and glibc gives each
    // thread its own arena: so every connection's registration and outbox are packed
    // together here, apart from the buffers its task allocates, and the fan-out walks a few
    // connections per page (docs/BENCHMARKS.md, "Issue 8"). Keep both on this thread.
    let (io, socket) = CableIo::new(
        tcp,
        shared.next_id(),
        shared.settings.limits.max_outbound_bytes,
        stats.clone(),
    );
    tasks.spawn(async move {
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
