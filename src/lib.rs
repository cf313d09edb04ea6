//! ferrocable: a fast, lean server for the Rails Action Cable protocol.
//!
//! Rails keeps publishing with `ActionCable.server.broadcast` through its Redis adapter;
//! ferrocable holds the WebSockets, authenticates each connection from the app's own cookies
//! (verified with `SECRET_KEY_BASE`, the user looked up in the app's database) or a JWT,
//! decides subscriptions from declarative channel config (database predicates included), and
//! delivers every broadcast byte for byte as Rails would. The protocol itself (Ruby-compatible JSON, commands in, frames out) is the
//! `ferrocable_protocol` crate; `docs/ARCHITECTURE.md` walks through the whole tree.
//!
//! # Layout
//!
//! Edge:
//! - [`cli`]: command-line interface (`serve`, `config check`, `config print`, `token`).
//! - [`config`]: defaults < TOML file < environment < flags, aggregated into [`config::Settings`];
//!   each section is owned by the module that uses it. [`error`]: the error every section reports.
//! - [`telemetry`]: tracing subscriber, text or JSON (`[logging]`).
//! - [`server`]: accept loop, ping timer, phased shutdown; [`server::run`] is the entry point.
//! - [`listener`]: the listening socket (`[server]`).
//!
//! One request, one connection:
//! - [`http`]: the upgrade (origin, subprotocol, auth), `/health`, `/stats`, `/metrics`,
//!   `/_broadcast`.
//! - [`metrics`]: `/metrics` in Prometheus' text format (AnyCable's names where they fit).
//! - [`origin`]: Rails' Origin check as a pure policy (`[origins]`).
//! - [`auth`]: JWTs, Rails cookies, database lookups, identifiers (`[auth]`).
//! - [`broadcast_api`]: who may `POST /_broadcast`, and its body (`[broadcast_api]`).
//! - [`connection`]: one connection's task: commands in, batched frames out.
//! - [`outbox`]: a connection's outbound side, shared by everyone who writes to it: direct
//!   socket writes, a byte-bounded frame queue, the socket under hyper and tungstenite.
//! - [`limits`]: the bounds on clients (`[limits]`).
//! - [`compat`]: Rails-release differences and wire knobs (`[protocol]`).
//!
//! Shared by every connection:
//! - [`shared`]: the one server-wide state: settings, hub, registry, broker, stats, lifecycle.
//! - [`channels`]: declarative channels: identity + params → streams or a rejection; stream
//!   templates, and streams from a name the app signed (Turbo, CableReady).
//! - [`hub`]: streams → subscribers; the delivery path and policy; pending confirms.
//! - [`registry`]: every welcomed connection (pings, shutdown).
//! - [`broker`]: broadcast inputs (Rails' Redis adapter) and the publisher (`[redis]`).
//! - [`stats`]: the counters behind `/stats` and `/metrics`.
//! - [`activity`]: what the live console shows that no counter holds (recent broadcasts per
//!   stream, open connections), kept only while it is enabled (`[console]`).
//! - [`console`]: `GET /console`, its state and its test broadcasts.
//! - [`database`]: the Rails app's database (`[database]`): bound queries, a bounded pool,
//!   a short cache; used by auth lookups and channel predicates.

pub mod activity;
pub mod auth;
pub mod broadcast_api;
pub mod broker;
pub mod channels;
pub mod cli;
pub mod compat;
pub mod config;
pub mod connection;
pub mod console;
pub mod database;
pub mod error;
pub mod http;
pub mod hub;
pub mod init;
pub mod limits;
pub mod listener;
pub mod metrics;
pub mod origin;
pub mod outbox;
pub mod registry;
pub mod server;
pub mod shared;
pub mod stats;
pub mod telemetry;

pub use config::Settings;
pub use error::ConfigError;
pub use server::run;
