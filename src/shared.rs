//! What every connection shares: the settings, the hub, the registry of welcomed connections,
//! the broker, the counters, and the server-wide lifecycle (connection slots, the shutdown
//! flag, the session tasks). One [`Shared`] per server, behind an `Arc`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use ferrocable_protocol::outgoing::DisconnectReason;
use serde::Serialize;
use tokio_util::task::TaskTracker;

use crate::activity::Activity;
use crate::broker::{Broker, InputStatus};
use crate::config::Settings;
use crate::database::DatabaseStatus;
use crate::hub::{Hub, HubOptions};
use crate::outbox::CloseRequest;
use crate::registry::Registry;
use crate::stats::Stats;

/// How many identities `/stats` lists by name.
const TOP_IDENTITIES: usize = 100;

/// Server-wide state.
#[derive(Debug)]
pub struct Shared {
    /// The validated configuration.
    pub settings: Arc<Settings>,
    /// Streams → subscribers; where broadcasts are delivered.
    pub hub: Arc<Hub>,
    /// Welcomed connections (pings, shutdown, `/health`).
    pub registry: Registry,
    /// Where `/_broadcast` and channel actions publish, and the inputs' health.
    pub broker: Broker,
    /// The counters behind `/stats`.
    pub stats: Arc<Stats>,
    /// What the console shows beyond the counters; `None` unless it is enabled.
    pub activity: Option<Arc<Activity>>,
    /// Every connection's task, awaited on shutdown.
    pub session_tasks: TaskTracker,
    next_id: AtomicU64,
    /// Set once shutdown begins. Paired with the registry (see [`Shared::begin_shutdown`]).
    shutting_down: AtomicBool,
    /// Set when the drain delay begins: `/health` says draining, new upgrades are refused.
    draining: AtomicBool,
    /// WebSocket connections from the accepted upgrade until their task ends; what
    /// `limits.max_connections` bounds.
    open: Arc<AtomicUsize>,
}

/// One of the `limits.max_connections` slots, released when dropped.
#[derive(Debug)]
pub struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// `GET /stats`: the counters, the hub's numbers and the broker's health.
#[derive(Debug, Serialize)]
pub struct StatsReport<'a> {
    /// Every counter, under its own name.
    #[serde(flatten)]
    pub counters: &'a Stats,
    /// Distinct connection identifiers with at least one connection.
    pub unique_identities: usize,
    /// The identities with the most connections.
    pub identities: Vec<IdentityCount>,
    /// Streams with local listeners.
    pub streams: usize,
    /// The first input's health (kept for clients written before there were several).
    pub broker: InputStatus,
    /// Every input's health and counters.
    pub inputs: Vec<InputStatus>,
    /// The app's database (lookups, predicates), when one is configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<DatabaseStatus>,
}

/// One identity and its connection count.
#[derive(Debug, Serialize)]
pub struct IdentityCount {
    /// Rails' connection identifier.
    pub identifier: String,
    /// Its open connections.
    pub connections: usize,
}

/// `GET /health`.
#[derive(Debug, Serialize)]
pub struct HealthReport {
    /// `ok`, `degraded` (an input or the database is down) or `draining` (shutting down).
    pub status: &'static str,
    /// The first input's health (kept for clients written before there were several).
    pub broker: InputStatus,
    /// Every input's health.
    pub inputs: Vec<InputStatus>,
    /// The app's database, when one is configured: while it is down, cookie logins that
    /// need a lookup are refused (new connections only; welcomed ones carry on).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<DatabaseStatus>,
    /// Welcomed connections.
    pub connections: usize,
}

impl HealthReport {
    /// Whether to answer 200 (else 503).
    pub fn is_ok(&self) -> bool {
        self.status == "ok"
    }
}

impl Shared {
    /// Builds the hub and the broker `settings` describe; the broker's inputs are started
    /// separately ([`Broker::spawn_inputs`]).
    pub fn new(settings: Arc<Settings>) -> Shared {
        let stats = Arc::new(Stats::default());
        let mut hub = Hub::new(
            settings.broker.acknowledgers(),
            stats.clone(),
            HubOptions {
                remote_disconnect_frame: settings.protocol.compat.remote_disconnect_frame,
                max_json_depth: settings.limits.max_json_depth,
                escaping: settings.protocol.escaping,
            },
        );
        let activity = settings
            .console
            .enabled
            .then(|| Arc::new(Activity::new(settings.console.recent)));
        if let Some(activity) = &activity {
            hub = hub.recording(activity.clone());
        }
        let hub = Arc::new(hub);
        Shared {
            activity,
            broker: Broker::new(
                &settings.broker,
                hub.clone(),
                settings.limits.max_json_depth,
            ),
            hub,
            registry: Registry::default(),
            stats,
            session_tasks: TaskTracker::new(),
            next_id: AtomicU64::new(1),
            shutting_down: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            open: Arc::new(AtomicUsize::new(0)),
            settings,
        }
    }

    /// Takes a connection slot, or `None` when `limits.max_connections` are open.
    pub fn try_open(&self) -> Option<Slot> {
        let before = self.open.fetch_add(1, Ordering::AcqRel);
        let slot = Slot(self.open.clone());
        (before < self.settings.limits.max_connections).then_some(slot)
    }

    /// A fresh connection number.
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Whether shutdown has begun.
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    /// The drain delay begins: `/health` answers 503 `draining` and new upgrades are refused,
    /// while connected clients are served as before.
    pub fn begin_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// Whether new WebSocket connections are refused (draining or shutting down).
    pub fn refuses_new_connections(&self) -> bool {
        self.draining.load(Ordering::SeqCst) || self.is_shutting_down()
    }

    /// Tells every welcomed connection to go away with `server_restart`. A session that
    /// registers concurrently either is seen here or sees the flag itself (both sides write
    /// then read, sequentially consistent), so nobody is missed.
    pub fn begin_shutdown(&self) -> usize {
        self.shutting_down.store(true, Ordering::SeqCst);
        let mut told = 0;
        self.registry.for_each(|conn| {
            conn.close(server_restart());
            told += 1;
        });
        told
    }

    /// What `GET /stats` answers.
    pub fn stats_report(&self) -> StatsReport<'_> {
        let (unique_identities, top) = self.hub.identities(TOP_IDENTITIES);
        let inputs = self.broker.statuses();
        StatsReport {
            counters: &self.stats,
            unique_identities,
            identities: top
                .into_iter()
                .map(|(identifier, connections)| IdentityCount {
                    identifier,
                    connections,
                })
                .collect(),
            streams: self.hub.stream_count(),
            broker: inputs[0].clone(),
            inputs,
            database: self.settings.database.as_ref().map(|db| db.status()),
        }
    }

    /// What `GET /health` answers.
    pub fn health_report(&self) -> HealthReport {
        let inputs = self.broker.statuses();
        let database = self.settings.database.as_ref().map(|db| db.status());
        let status = if self.refuses_new_connections() {
            "draining"
        } else if inputs.iter().all(|i| i.healthy) && database.as_ref().is_none_or(|d| d.healthy) {
            "ok"
        } else {
            "degraded"
        };
        HealthReport {
            status,
            broker: inputs[0].clone(),
            inputs,
            database,
            connections: self.registry.len(),
        }
    }
}

/// The goodbye every connection gets when the server stops (also for one that registers
/// after shutdown began).
pub fn server_restart() -> CloseRequest {
    CloseRequest::Disconnect {
        reason: DisconnectReason::ServerRestart,
        reconnect: "true".into(),
    }
}
