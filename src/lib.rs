//! ferrocable: a fast, lean server for the Rails Action Cable protocol.
//!
//! Rails keeps publishing with `ActionCable.server.broadcast` through its Redis adapter;
//! ferrocable holds the WebSockets, authenticates each connection from a JWT, decides
//! subscriptions from declarative channel config, and delivers every broadcast byte for byte
//! as Rails would.
//!
//! # Layout
//!
//! - [`config`]: defaults < TOML file < environment < flags, validated once into [`config::Settings`].
//! - [`cli`]: command-line interface (`serve`, `config check`, `config print`).
//! - [`telemetry`]: tracing subscriber, text or JSON.
//! - [`server`]: accept loop, ping timer, phased shutdown; [`server::run`] is the entry point.
//! - [`http`]: the upgrade (origin, subprotocol, auth), `/health`, `/stats`, `/_broadcast`.
//! - [`origin`]: Rails' Origin check as a pure policy.
//! - [`auth`]: token extraction, JWT verification, identifier mapping.
//! - [`protocol`]: the pure codec: Ruby-compatible JSON, commands in, frames out.
//! - [`channels`]: declarative channels: identity + params → streams or a rejection.
//! - [`session`]: one connection in one task: commands in, batched frames out.
//! - [`outbox`]: a connection's socket writes, byte-bounded frame queue, pending confirms.
//! - [`io`]: the shared socket under hyper and tungstenite.
//! - [`hub`]: streams → subscribers; encode once per identifier, share the bytes.
//! - [`broker`]: the in-process broker and Rails' Redis adapter.
//! - [`stats`]: the counters behind `/stats`.

pub mod auth;
pub mod broker;
pub mod channels;
pub mod cli;
pub mod config;
pub mod http;
pub mod hub;
pub mod io;
pub mod origin;
pub mod outbox;
pub mod server;
pub mod session;
pub mod stats;
pub mod telemetry;

pub use config::{ConfigError, Settings};
pub use server::run;
