//! Integration specs: the real `ferrocable` binary, real sockets, a real `redis-server`.
//! Run with `bin/test` (which installs redis-server when it is missing).

// Test helpers are shared between spec modules; crate-level visibility is the point.
#![allow(unreachable_pub)]

mod support;

/// The cookie-authenticated reference apps (chat on SQLite, shop on PostgreSQL), recorded on
/// Rails 7.2 and replayed with their profiles and database state.
mod apps;
/// Every authentication refusal, and what an accepted identity looks like.
mod auth;
/// Broadcast delivery: embedded broker, Redis adapter format, re-encoding, tenant isolation.
mod broadcast;
/// Several nodes on one Redis; draining under load.
mod cluster;
/// Commands and every error path of docs/PROTOCOL.md §3.
mod commands;
/// Replays the sessions recorded from a real Rails Action Cable 7.2 and 6.1 (fixtures/transcripts).
mod conformance;
/// The live console's server side (the page itself runs in spec/browser); public streams.
mod console;
/// Cookie authentication, database lookups and predicates under hostile input and faults.
mod cookies;
/// Upgrade, subprotocols, origins, 404s, /health and /stats.
mod handshake;
/// Hostile input and the rest of the limits.
mod hostile;
/// `ferrocable init`: fixture apps, golden profiles and reports, the reference app.
mod init;
/// CloudEvents with Dapr's contract, and every input at once.
mod inputs_dapr;
/// Rails' PostgreSQL adapter (LISTEN/NOTIFY), replayed from real Rails 7.2, and its faults.
mod inputs_postgres;
/// AnyCable's broadcast format and routed Redis channels.
mod inputs_redis;
/// Solid Cable on SQLite and PostgreSQL, replayed from real Rails 7.2, and its faults.
mod inputs_solid_cable;
/// The ActiveSupport JSON vectors regenerated on Rails 7.2, against ferrocable and 6.1's.
mod json_vectors;
/// Shutdown frames, the ping timer, remote disconnect, the CLI.
mod lifecycle;
/// Bounds: slow clients, connection limits.
mod limits;
/// Connection open/close lines, and no secret in any log line.
mod logs;
/// `/metrics` through a real Prometheus parser; who may read `/stats` and `/metrics`.
mod metrics;
/// Redis outages, restarts and stalls.
mod redis_faults;
/// Redis over TLS (`rediss://`, generated certificates, `verify_mode`).
mod redis_tls;
/// Redis Sentinel: discovery and a failover under a live broadcast stream.
mod sentinel;
/// Turbo Streams and other signed streams; config/examples/turbo.toml on four variables.
mod turbo;
