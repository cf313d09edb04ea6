//! Where ferrocable listens and what it serves there: the `[server]` section, and the
//! listening socket itself.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

/// Paths of ferrocable's own endpoints (see `http`), which the mount path may not take.
pub const OWN_ENDPOINTS: [&str; 5] = ["/health", "/stats", "/metrics", "/console", "/_broadcast"];

/// The listen backlog asked of the kernel (it caps it at `net.core.somaxconn`). tokio's
/// `TcpListener::bind` asks for 1,024, which a connect storm of 1,000 clients overflows: the
/// overflowed SYNs wait a full second for their retransmit.
const LISTEN_BACKLOG: u32 = 4096;

/// `[server]`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSection {
    /// Listen address.
    pub host: String,
    /// Listen port.
    pub port: u16,
    /// Endpoint path.
    pub mount_path: String,
    /// Drain deadline after SIGTERM.
    pub shutdown_timeout_secs: u64,
    /// After SIGTERM, how long to keep listening with `/health` at 503 (and new upgrades
    /// refused) before telling clients to reconnect, so load balancers stop routing here.
    pub drain_delay_secs: u64,
}

impl Default for ServerSection {
    fn default() -> Self {
        ServerSection {
            host: "127.0.0.1".into(),
            port: 8080,
            mount_path: "/cable".into(),
            shutdown_timeout_secs: 10,
            drain_delay_secs: 0,
        }
    }
}

/// The `[server]` section, checked.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// Address and port to bind.
    pub listen: SocketAddr,
    /// The Action Cable endpoint's path.
    pub mount_path: String,
    /// How long a shutdown waits for connections to drain.
    pub shutdown_timeout: Duration,
    /// How long SIGTERM keeps the listener open with `/health` at 503 before the drain.
    pub drain_delay: Duration,
}

impl ServerSettings {
    /// Checks `[server]`: the host must be an IP address (or `localhost`), the mount path an
    /// absolute path that is not one of ferrocable's own endpoints.
    pub fn compile(section: &ServerSection) -> Result<ServerSettings, ConfigError> {
        let host: IpAddr = match section.host.as_str() {
            "localhost" => IpAddr::V4(Ipv4Addr::LOCALHOST),
            h => h.parse().map_err(|_| {
                ConfigError::new(
                    "server.host",
                    format!("{h:?} is not an IP address (use e.g. 127.0.0.1 or 0.0.0.0)"),
                )
            })?,
        };
        let mount_path = section.mount_path.clone();
        if !mount_path.starts_with('/') || mount_path.contains('?') {
            return Err(ConfigError::new(
                "server.mount_path",
                "must start with '/' and contain no query",
            ));
        }
        if OWN_ENDPOINTS.contains(&mount_path.as_str()) {
            return Err(ConfigError::new(
                "server.mount_path",
                format!("{mount_path} is reserved for ferrocable's own endpoints"),
            ));
        }
        Ok(ServerSettings {
            listen: SocketAddr::new(host, section.port),
            mount_path,
            shutdown_timeout: Duration::from_secs(section.shutdown_timeout_secs),
            drain_delay: Duration::from_secs(section.drain_delay_secs),
        })
    }
}

/// Binds `address` with a deep backlog (4,096: see `LISTEN_BACKLOG`).
pub fn bind(address: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if address.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    // Same as std and tokio's bind: a restarted server can reuse its port while old
    // connections sit in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(LISTEN_BACKLOG)
}
