//! The bounds on what clients may cost: the `[limits]` section. What happens when each bound
//! is reached is written next to the code that enforces it, and in the README's bounds table.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

/// `[limits]`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsSection {
    /// Largest inbound message.
    pub max_message_bytes: usize,
    /// Outbound queue bound per client.
    pub max_outbound_bytes: usize,
    /// Blocked-write deadline.
    pub write_timeout_secs: u64,
    /// Simultaneous WebSocket connections.
    pub max_connections: usize,
    /// Subscriptions one connection may hold.
    pub max_subscriptions_per_connection: usize,
    /// Sustained commands per second per connection (bursts up to twice that).
    pub max_commands_per_second: u32,
    /// Deepest JSON nesting accepted in commands and broadcasts.
    pub max_json_depth: usize,
    /// Longest token accepted.
    pub max_token_bytes: usize,
    /// Seconds a client has to send its upgrade request headers.
    pub handshake_timeout_secs: u64,
}

impl Default for LimitsSection {
    fn default() -> Self {
        LimitsSection {
            max_message_bytes: 64 * 1024,
            max_outbound_bytes: 1024 * 1024,
            write_timeout_secs: 10,
            max_connections: 19_000,
            max_subscriptions_per_connection: 256,
            max_commands_per_second: 100,
            max_json_depth: ferrocable_protocol::MAX_JSON_DEPTH,
            max_token_bytes: 4096,
            handshake_timeout_secs: 10,
        }
    }
}

/// The `[limits]` section, checked: the bounds on clients.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest inbound message.
    pub max_message_bytes: usize,
    /// Outbound queue bound.
    pub max_outbound_bytes: usize,
    /// Blocked-write deadline.
    pub write_timeout: Duration,
    /// Most WebSocket connections.
    pub max_connections: usize,
    /// Most subscriptions per connection.
    pub max_subscriptions_per_connection: usize,
    /// Sustained command rate per connection.
    pub max_commands_per_second: u32,
    /// JSON nesting limit.
    pub max_json_depth: usize,
    /// Token length limit.
    pub max_token_bytes: usize,
    /// Deadline for the upgrade request's headers.
    pub handshake_timeout: Duration,
}

impl Limits {
    /// Checks `[limits]`: each bound must leave room for ordinary traffic.
    pub fn compile(raw: &LimitsSection) -> Result<Limits, ConfigError> {
        if raw.max_message_bytes < 256 {
            return Err(ConfigError::new(
                "limits.max_message_bytes",
                "must be at least 256 (a subscribe command alone is ~100 bytes)",
            ));
        }
        if raw.max_outbound_bytes < 1024 {
            return Err(ConfigError::new(
                "limits.max_outbound_bytes",
                "must be at least 1024",
            ));
        }
        if raw.write_timeout_secs == 0 {
            return Err(ConfigError::new(
                "limits.write_timeout_secs",
                "must be at least 1",
            ));
        }
        let at_least_one = [
            ("limits.max_connections", raw.max_connections as u64),
            (
                "limits.max_subscriptions_per_connection",
                raw.max_subscriptions_per_connection as u64,
            ),
            (
                "limits.max_commands_per_second",
                u64::from(raw.max_commands_per_second),
            ),
            ("limits.handshake_timeout_secs", raw.handshake_timeout_secs),
        ];
        for (key, value) in at_least_one {
            if value == 0 {
                return Err(ConfigError::new(key, "must be at least 1"));
            }
        }
        if !(2..=1000).contains(&raw.max_json_depth) {
            return Err(ConfigError::new(
                "limits.max_json_depth",
                "must be between 2 (a command holds an object) and 1000",
            ));
        }
        if raw.max_token_bytes < 64 {
            return Err(ConfigError::new(
                "limits.max_token_bytes",
                "must be at least 64 (a JWT is rarely under 100 bytes)",
            ));
        }
        Ok(Limits {
            max_message_bytes: raw.max_message_bytes,
            max_outbound_bytes: raw.max_outbound_bytes,
            write_timeout: Duration::from_secs(raw.write_timeout_secs),
            max_connections: raw.max_connections,
            max_subscriptions_per_connection: raw.max_subscriptions_per_connection,
            max_commands_per_second: raw.max_commands_per_second,
            max_json_depth: raw.max_json_depth,
            max_token_bytes: raw.max_token_bytes,
            handshake_timeout: Duration::from_secs(raw.handshake_timeout_secs),
        })
    }
}

/// The open-files limit before and after [`raise_open_files_limit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenFiles {
    /// The soft limit the process started with.
    pub before: u64,
    /// The soft limit now.
    pub now: u64,
    /// The hard limit (the ceiling for `now`).
    pub hard: u64,
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit: every connection is a descriptor, and
/// the usual soft default (1,024) caps a server long before memory does. Raising the hard
/// limit itself is the administrator's (systemd's `LimitNOFILE=`, `ulimit -Hn`).
pub fn raise_open_files_limit() -> std::io::Result<OpenFiles> {
    let (before, hard) = rlimit::Resource::NOFILE.get()?;
    // An unlimited hard limit is still capped by the kernel's fs.nr_open (setrlimit refuses
    // more).
    let ceiling = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .map_or(hard, |nr_open| hard.min(nr_open));
    let now = rlimit::increase_nofile_limit(ceiling)?;
    Ok(OpenFiles { before, now, hard })
}
