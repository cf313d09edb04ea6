//! One WebSocket connection's life, from the accepted upgrade to the close, in one task.
//!
//! - [`spawn`]: gives the upgraded socket its outbox and starts the task (called by `http`
//!   once the 101 is decided);
//! - `session`: the task itself, reading commands (`session/commands.rs`: subscribe,
//!   unsubscribe, actions) and writing what its outbox had to queue;
//! - `subscriptions`: its subscriptions by identifier;
//! - `rate_limit`: its inbound frame budget.
//!
//! Everything others write to the connection goes through its outbox (`crate::outbox`), which
//! lives below the hub; this module sits above it (the session subscribes in the hub).

mod rate_limit;
mod session;
mod subscriptions;

use std::sync::Arc;

use futures_util::FutureExt as _;
use futures_util::future::Either;
use hyper_tungstenite::HyperWebsocket;
use tracing::Instrument as _;

use crate::auth::{AuthError, Authentication};
use crate::outbox::socket::SharedSocket;
use crate::shared::{Shared, Slot};

/// The socket already carries an upgraded connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a second upgrade on one connection")]
pub struct AlreadyUpgraded;

/// Starts the task of a connection whose 101 is on its way: from here on every byte hyper or
/// tungstenite writes on `socket` goes through the connection's outbox (the 101 included),
/// ordered with the hub's direct writes. `auth` is the outcome of checking the upgrade
/// request (a refusal gets Rails' unauthorized disconnect on the socket); `slot` is released
/// when the task ends. `peer` is the client's address, for the "connection opened" line.
pub fn spawn(
    websocket: HyperWebsocket,
    socket: &SharedSocket,
    peer: std::net::SocketAddr,
    auth: Authentication,
    slot: Slot,
    shared: &Arc<Shared>,
) -> Result<(), AlreadyUpgraded> {
    let id = socket.id();
    let identity = match &auth {
        Authentication::Done(Ok(i)) => i.connection_identifier.to_string(),
        Authentication::Pending(_) => String::new(),
        Authentication::Done(Err(AuthError::TokenTooLong(_))) => {
            shared
                .stats
                .oversized_tokens
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            String::new()
        }
        Authentication::Done(Err(_)) => String::new(),
    };
    let (conn, out) = socket.attach().ok_or(AlreadyUpgraded)?;
    let span = tracing::info_span!("conn", id, identity = %identity);
    let shared_for_task = shared.clone();
    let remote = peer;
    let directory = shared.activity.clone();
    let directory_on_close = directory.clone();
    // A combinator rather than an async block: the closure's captures are moved into the
    // session future instead of being kept beside it for the connection's whole life.
    let session = websocket.then(move |upgraded| match upgraded {
        Ok(ws) => {
            tracing::info!(%remote, "connection opened");
            if let Some(activity) = directory {
                activity.connections.opened(id, &identity, remote);
            }
            Either::Left(session::run(ws, out, shared_for_task, conn, auth))
        }
        Err(e) => {
            tracing::debug!(cause = %e, "upgrade did not complete");
            Either::Right(std::future::ready("upgrade_failed"))
        }
    });
    // One line per connection at each end (identity from the span): what operators grep for.
    let opened = std::time::Instant::now();
    shared.session_tasks.spawn(
        session
            .map(move |reason| {
                tracing::info!(
                    reason,
                    duration_ms = opened.elapsed().as_millis() as u64,
                    "connection closed"
                );
                if let Some(activity) = directory_on_close {
                    activity.connections.closed(id);
                }
                drop(slot);
            })
            .instrument(span),
    );
    Ok(())
}
