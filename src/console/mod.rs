//! The live console: `GET /console`, a page served from the binary itself (HTML, CSS and
//! script inline, nothing fetched from elsewhere), which polls `GET /console/state` every
//! second and can send a test broadcast through `POST /console/broadcast`.
//!
//! Off unless `[console] enabled` (on by default in development mode only); guarded like
//! `/stats` (see `broadcast_api`: the key, or loopback only without one). `http` routes the
//! requests and answers with what this module builds.

use std::sync::atomic::Ordering::Relaxed;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::activity::{ConnectionInfo, PUBLIC_STREAMS_CHANNEL, RecentBroadcast};
use crate::broker::InputStatus;
use crate::shared::Shared;

/// The page (see `page.html`: no external resource).
pub const PAGE: &str = include_str!("page.html");

/// The page's `Content-Security-Policy`: its own inline script and style, requests to this
/// server only (including the WebSocket), nothing else.
pub const PAGE_POLICY: &str = "default-src 'none'; script-src 'unsafe-inline'; \
     style-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// Streams and connections listed at most (the counts are always complete).
const LISTED: usize = 200;

/// `GET /console/state`.
#[derive(Debug, Serialize)]
pub struct ConsoleState {
    /// Server time (Unix milliseconds), so the page can age what it shows.
    pub now_ms: u64,
    /// The binary's version.
    pub version: &'static str,
    /// The Action Cable endpoint's path, for the page's own WebSocket.
    pub mount_path: String,
    /// The channel of public streams, when it exists (development).
    pub public_streams_channel: Option<&'static str>,
    /// Counters the page charts and shows.
    pub counters: Counters,
    /// Every input's health.
    pub inputs: Vec<InputStatus>,
    /// Open connections (all of them counted, the first 200 listed).
    pub connections: Listing<ConnectionRow>,
    /// Identities with their connection counts (the 200 with the most).
    pub identities: Listing<IdentityRow>,
    /// Streams with their subscriber counts (the 200 most subscribed).
    pub streams: Listing<StreamRow>,
    /// The last broadcasts per stream, the most recently active stream first.
    pub recent: Vec<RecentStream>,
}

/// The counters the console shows.
#[derive(Debug, Serialize)]
pub struct Counters {
    /// Welcomed connections.
    pub connections: i64,
    /// Subscriptions.
    pub subscriptions: i64,
    /// Broadcasts received by the hub (the page charts the rate).
    pub broadcasts: u64,
    /// Frames written to sockets.
    pub frames_delivered: u64,
    /// Connections refused by authentication.
    pub refused: u64,
    /// Slow clients disconnected.
    pub slow_clients: u64,
}

/// A list of which only the first items are shown.
#[derive(Debug, Serialize)]
pub struct Listing<T> {
    /// How many there are.
    pub total: usize,
    /// The first ones.
    pub items: Vec<T>,
}

/// One connection.
#[derive(Debug, Serialize)]
pub struct ConnectionRow {
    /// Connection number (as in the logs' `conn` span).
    pub id: u64,
    /// Its identity and address.
    #[serde(flatten)]
    pub info: ConnectionInfo,
    /// The streams it listens to.
    pub streams: Vec<String>,
}

/// One identity.
#[derive(Debug, Serialize)]
pub struct IdentityRow {
    /// Rails' connection identifier.
    pub identity: String,
    /// Its open connections.
    pub connections: usize,
}

/// One stream.
#[derive(Debug, Serialize)]
pub struct StreamRow {
    /// Its name.
    pub name: String,
    /// Its subscriptions.
    pub subscribers: usize,
}

/// One stream's last broadcasts.
#[derive(Debug, Serialize)]
pub struct RecentStream {
    /// The stream.
    pub stream: String,
    /// Newest first.
    pub broadcasts: Vec<RecentBroadcast>,
}

impl ConsoleState {
    /// Reads everything the page shows; `None` when the console is off.
    pub fn of(shared: &Shared) -> Option<ConsoleState> {
        let activity = shared.activity.as_ref()?;
        let stats = &shared.stats;
        let (connection_count, listed) = activity.connections.list(LISTED);
        let watched = listed.iter().map(|(id, _)| *id).collect();
        let mut streams = shared.hub.listing(LISTED, &watched);
        let connections = listed
            .into_iter()
            .map(|(id, info)| ConnectionRow {
                id,
                info,
                streams: streams.by_connection.remove(&id).unwrap_or_default(),
            })
            .collect();
        let (identity_count, identities) = shared.hub.identities(LISTED);
        Some(ConsoleState {
            now_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0),
            version: env!("CARGO_PKG_VERSION"),
            mount_path: shared.settings.server.mount_path.clone(),
            public_streams_channel: shared
                .settings
                .console
                .public_streams
                .then_some(PUBLIC_STREAMS_CHANNEL),
            counters: Counters {
                connections: stats.connections.load(Relaxed),
                subscriptions: stats.subscriptions.load(Relaxed),
                broadcasts: stats.broadcasts_received.load(Relaxed),
                frames_delivered: stats.frames_delivered.get(),
                refused: stats.unauthorized_connections.load(Relaxed),
                slow_clients: stats.slow_client_disconnects.load(Relaxed),
            },
            inputs: shared.broker.statuses(),
            connections: Listing {
                total: connection_count,
                items: connections,
            },
            identities: Listing {
                total: identity_count,
                items: identities
                    .into_iter()
                    .map(|(identity, connections)| IdentityRow {
                        identity,
                        connections,
                    })
                    .collect(),
            },
            streams: Listing {
                total: streams.total,
                items: streams
                    .top
                    .into_iter()
                    .map(|(name, subscribers)| StreamRow { name, subscribers })
                    .collect(),
            },
            recent: activity
                .recent
                .snapshot()
                .into_iter()
                .map(|(stream, broadcasts)| RecentStream { stream, broadcasts })
                .collect(),
        })
    }
}
