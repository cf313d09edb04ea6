//! How Redis connections are made, for every user of Redis alike (the subscriber task, the
//! publisher): which node to connect to, and how.
//!
//! - **Directly**, from `redis.url`: `redis://`, `unix://`, or `rediss://` (TLS through rustls).
//! - **Through Sentinel**, as `cable.yml` writes it for redis-rb: `sentinels` (a list of
//!   `{ host, port }`), the master's `name` (or the URL's host, `redis://mymaster`), and
//!   `role` (`master`, or `replica` to subscribe on a replica: Redis replicates PUBLISH, so a
//!   replica's subscribers hear the master's broadcasts). Every (re)connection asks the
//!   sentinels, starting with the last one that answered, for the current node, and checks
//!   with `ROLE` that the node agrees (a sentinel may not have noticed a failover yet).
//!
//! TLS (`rediss://`, `[redis.ssl_params]`): a CA file (else the system's roots), a client
//! certificate and key (mutual TLS), and `verify_mode = "none"`, which Heroku's self-signed
//! certificates force and which is logged loudly at startup. Certificate files are read and
//! parsed once, here, so a bad file is a configuration error and not a reconnect loop.
//!
//! Nothing here knows about subscriptions or Rails' format: the input and the publisher in
//! `super` ask [`RedisConnector::resolve`] for a node's client whenever they (re)connect.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use redis::{
    ClientTlsConfig, ConnectionAddr, ConnectionInfo, IntoConnectionInfo, RedisConnectionInfo,
    TlsCertificates,
};
use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

/// How long asking one sentinel, or checking one node's role, may take.
const SENTINEL_TIMEOUT: Duration = Duration::from_secs(2);
/// Sentinel's own default port.
const SENTINEL_PORT: u16 = 26379;

/// `[redis.ssl_params]`: TLS for `rediss://` URLs, named after the `ssl_params` of cable.yml.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SslParams {
    /// PEM file with the CA certificate(s) to trust; empty: the system's roots.
    pub ca_file: String,
    /// PEM client certificate (chain), for servers that require mutual TLS.
    pub cert_file: String,
    /// PEM private key of `cert_file`.
    pub key_file: String,
    /// `peer` (verify the server's certificate and name) or `none`.
    pub verify_mode: VerifyMode,
}

/// Whether the server's certificate is verified.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum VerifyMode {
    /// Verify the certificate chain and the host name (OpenSSL's `VERIFY_PEER`).
    #[default]
    Peer,
    /// Accept any certificate (OpenSSL's `VERIFY_NONE`): encrypted, but not authenticated.
    None,
}

/// One `sentinels` entry, as cable.yml writes it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SentinelEntry {
    /// Host name or address.
    pub host: String,
    /// Port (26379 when omitted).
    #[serde(default = "sentinel_port")]
    pub port: u16,
    /// This sentinel's password, if it differs from `redis.sentinel_password`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub password: String,
}

fn sentinel_port() -> u16 {
    SENTINEL_PORT
}

/// Which node of a Sentinel-managed group to subscribe on.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The master (redis-rb's default).
    #[default]
    Master,
    /// Any healthy replica (`slave` in redis-rb's older spelling). Publishing still goes to
    /// the master.
    #[serde(alias = "slave")]
    Replica,
}

/// What a connection is for: publishing always needs the master.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// The subscriber connection (follows `redis.role`).
    Subscribe,
    /// PUBLISH (always the master).
    Publish,
}

/// The connection-related keys of `[redis]`, borrowed from the section (which `super` owns).
#[derive(Debug, Clone, Copy)]
pub struct ConnectionKeys<'a> {
    /// `redis.url`
    pub url: &'a str,
    /// `redis.ssl_params`
    pub ssl_params: &'a SslParams,
    /// `redis.sentinels`
    pub sentinels: &'a [SentinelEntry],
    /// `redis.name`
    pub name: &'a str,
    /// `redis.role`
    pub role: Role,
    /// `redis.password`
    pub password: &'a str,
    /// `redis.sentinel_password`
    pub sentinel_password: &'a str,
}

/// A node to talk to, found just now.
#[derive(Debug, Clone)]
pub struct Node {
    /// A client for it (opening connections with it cannot fail to parse any more).
    pub client: redis::Client,
    /// `host:port`, for logs, `/health` and noticing a failover.
    pub address: String,
}

/// Why no node could be reached.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// No sentinel named a node that answered with the expected role.
    #[error("no {role} for {name:?} from {tried} sentinel(s): {problems}")]
    Sentinel {
        /// The master's name.
        name: String,
        /// `master` or `replica`.
        role: &'static str,
        /// How many sentinels were asked.
        tried: usize,
        /// What each said, `; `-separated.
        problems: String,
    },
}

/// Makes Redis connections: directly from the URL, or through Sentinel.
#[derive(Debug)]
pub struct RedisConnector {
    target: Target,
    /// Whether the nodes are reached over TLS, and whether their certificates are verified.
    tls: Tls,
}

#[derive(Debug)]
enum Target {
    Direct(Box<Node>),
    Sentinel(Box<SentinelGroup>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tls {
    Off,
    Verified,
    Unverified,
}

#[derive(Debug)]
struct SentinelGroup {
    name: String,
    role: Role,
    /// Each sentinel's `host:port` and client.
    sentinels: Vec<(String, redis::Client)>,
    /// The nodes' credentials and database; the address is filled in per node.
    node: ConnectionInfo,
    certificates: Option<TlsCertificates>,
    /// The sentinel that answered last: asked first next time.
    preferred: AtomicUsize,
}

impl RedisConnector {
    /// Checks the connection keys of `[redis]` (the URL is not empty). Problems that are not
    /// errors (certificates not verified) are added to `warnings`.
    pub fn compile(
        keys: ConnectionKeys<'_>,
        warnings: &mut Vec<String>,
    ) -> Result<RedisConnector, ConfigError> {
        let url = keys.url;
        let tls_url = url.starts_with("rediss://");
        if !tls_url && !url.starts_with("redis://") && !url.starts_with("unix://") {
            return Err(ConfigError::new(
                "redis.url",
                format!(
                    "{:?} is not a redis://, rediss:// or unix:// URL",
                    super::mask_url(url)
                ),
            ));
        }
        let ssl = keys.ssl_params;
        let ssl_given = *ssl != SslParams::default();
        if ssl_given && !tls_url {
            return Err(ConfigError::new(
                "redis.ssl_params",
                "TLS settings need a rediss:// URL",
            ));
        }
        let insecure_fragment = url.ends_with("#insecure");
        let tls = match (tls_url, ssl.verify_mode, insecure_fragment) {
            (false, _, _) => Tls::Off,
            (true, VerifyMode::None, _) | (true, _, true) => Tls::Unverified,
            (true, VerifyMode::Peer, false) => Tls::Verified,
        };
        if tls == Tls::Unverified {
            warnings.push(
                "redis.ssl_params.verify_mode = \"none\": THE REDIS SERVER'S TLS CERTIFICATE IS \
                 NOT VERIFIED. The connection is encrypted, but anyone who can intercept it can \
                 impersonate Redis. Use it only where the provider's certificates cannot be \
                 verified (Heroku Key-Value Store); prefer redis.ssl_params.ca_file."
                    .to_string(),
            );
        }
        let certificates = certificates(ssl)?;
        let mut info = url
            .into_connection_info()
            .map_err(|e| ConfigError::new("redis.url", format!("invalid: {e}")))?;
        if !keys.password.is_empty() {
            let settings = info.redis_settings().clone().set_password(keys.password);
            info = info.set_redis_settings(settings);
        }
        let target = if keys.sentinels.is_empty() {
            for (key, set) in [
                ("redis.name", !keys.name.is_empty()),
                (
                    "redis.sentinel_password",
                    !keys.sentinel_password.is_empty(),
                ),
                ("redis.role", keys.role != Role::Master),
            ] {
                if set {
                    return Err(ConfigError::new(key, "only applies with redis.sentinels"));
                }
            }
            let (address, info) = match info.addr().clone() {
                ConnectionAddr::TcpTls { host, port, .. } => (
                    format!("{host}:{port}"),
                    info.set_addr(ConnectionAddr::TcpTls {
                        host,
                        port,
                        insecure: tls == Tls::Unverified,
                        tls_params: None,
                    }),
                ),
                ConnectionAddr::Tcp(host, port) => (format!("{host}:{port}"), info),
                ConnectionAddr::Unix(path) => (path.display().to_string(), info),
                _ => return Err(ConfigError::new("redis.url", "unsupported address")),
            };
            let client = build_client(info, certificates.as_ref())
                .map_err(|e| ConfigError::new("redis.ssl_params", e.to_string()))?;
            Target::Direct(Box::new(Node { client, address }))
        } else {
            Target::Sentinel(Box::new(sentinel_group(keys, info, certificates, tls)?))
        };
        Ok(RedisConnector { target, tls })
    }

    /// A few words for `config check` and the start-up log (no secrets).
    pub fn describe(&self) -> String {
        let tls = match self.tls {
            Tls::Off => "",
            Tls::Verified => ", TLS",
            Tls::Unverified => ", TLS NOT VERIFIED",
        };
        match &self.target {
            Target::Direct(node) => format!("{}{tls}", node.address),
            Target::Sentinel(group) => format!(
                "{} {:?} via {} sentinel(s){tls}",
                match group.role {
                    Role::Master => "master",
                    Role::Replica => "replica of",
                },
                group.name,
                group.sentinels.len()
            ),
        }
    }

    /// Whether nodes are found through Sentinel (so a failover can move them).
    pub fn uses_sentinel(&self) -> bool {
        matches!(self.target, Target::Sentinel(_))
    }

    /// The node to connect to for `purpose`, now: the URL's, or the one the sentinels name
    /// (and which confirms its role).
    pub async fn resolve(&self, purpose: Purpose) -> Result<Node, ConnectError> {
        match &self.target {
            Target::Direct(node) => Ok(Node::clone(node)),
            Target::Sentinel(group) => {
                let role = match purpose {
                    Purpose::Publish => Role::Master,
                    Purpose::Subscribe => group.role,
                };
                group.resolve(role).await
            }
        }
    }
}

/// Reads the PEM files of `[redis.ssl_params]`; `None` when none is given (system roots, no
/// client certificate).
fn certificates(ssl: &SslParams) -> Result<Option<TlsCertificates>, ConfigError> {
    let read = |key: &str, path: &str| -> Result<Option<Vec<u8>>, ConfigError> {
        if path.is_empty() {
            return Ok(None);
        }
        std::fs::read(path).map(Some).map_err(|e| {
            ConfigError::new(format!("redis.ssl_params.{key}"), format!("{path}: {e}"))
        })
    };
    let root_cert = read("ca_file", &ssl.ca_file)?;
    let client_tls = match (
        read("cert_file", &ssl.cert_file)?,
        read("key_file", &ssl.key_file)?,
    ) {
        (Some(client_cert), Some(client_key)) => Some(ClientTlsConfig {
            client_cert,
            client_key,
        }),
        (None, None) => None,
        (Some(_), None) => {
            return Err(ConfigError::new(
                "redis.ssl_params.key_file",
                "cert_file needs its key_file",
            ));
        }
        (None, Some(_)) => {
            return Err(ConfigError::new(
                "redis.ssl_params.cert_file",
                "key_file needs its cert_file",
            ));
        }
    };
    Ok(
        (root_cert.is_some() || client_tls.is_some()).then_some(TlsCertificates {
            client_tls,
            root_cert,
        }),
    )
}

fn build_client(
    info: ConnectionInfo,
    certificates: Option<&TlsCertificates>,
) -> redis::RedisResult<redis::Client> {
    match certificates {
        Some(certificates) => redis::Client::build_with_tls(info, certificates.clone()),
        None => redis::Client::open(info),
    }
}

fn sentinel_group(
    keys: ConnectionKeys<'_>,
    info: ConnectionInfo,
    certificates: Option<TlsCertificates>,
    tls: Tls,
) -> Result<SentinelGroup, ConfigError> {
    let name = match (keys.name, info.addr()) {
        (name, _) if !name.is_empty() => name.to_string(),
        (_, ConnectionAddr::Tcp(host, _) | ConnectionAddr::TcpTls { host, .. }) => host.clone(),
        _ => {
            return Err(ConfigError::new(
                "redis.url",
                "with redis.sentinels, the URL's host is the master's name (redis://mymaster)",
            ));
        }
    };
    let mut sentinels = Vec::with_capacity(keys.sentinels.len());
    for (i, entry) in keys.sentinels.iter().enumerate() {
        if entry.host.is_empty() {
            return Err(ConfigError::new(
                format!("redis.sentinels[{i}].host"),
                "must not be empty",
            ));
        }
        let password = if entry.password.is_empty() {
            keys.sentinel_password
        } else {
            &entry.password
        };
        let mut settings = RedisConnectionInfo::default();
        if !password.is_empty() {
            settings = settings.set_password(password);
        }
        let client = ConnectionAddr::Tcp(entry.host.clone(), entry.port)
            .into_connection_info()
            .map(|i| i.set_redis_settings(settings))
            .and_then(redis::Client::open)
            .map_err(|e| ConfigError::new(format!("redis.sentinels[{i}]"), e.to_string()))?;
        sentinels.push((format!("{}:{}", entry.host, entry.port), client));
    }
    // Certificates are used for nodes found later: parse them now, so a bad file is an error
    // here and not at every failover.
    if let Some(certificates) = &certificates {
        let probe = info.clone().set_addr(ConnectionAddr::TcpTls {
            host: "localhost".into(),
            port: 6379,
            insecure: false,
            tls_params: None,
        });
        redis::Client::build_with_tls(probe, certificates.clone())
            .map_err(|e| ConfigError::new("redis.ssl_params", e.to_string()))?;
    }
    let node = match tls {
        Tls::Off => info,
        // The scheme is all that is kept of the URL's address: nodes come from the sentinels.
        Tls::Verified | Tls::Unverified => info.set_addr(ConnectionAddr::TcpTls {
            host: String::new(),
            port: 0,
            insecure: tls == Tls::Unverified,
            tls_params: None,
        }),
    };
    Ok(SentinelGroup {
        name,
        role: keys.role,
        sentinels,
        node,
        certificates,
        preferred: AtomicUsize::new(0),
    })
}

impl SentinelGroup {
    /// Asks the sentinels in turn, the last good one first, for a node with `role`.
    async fn resolve(&self, role: Role) -> Result<Node, ConnectError> {
        let count = self.sentinels.len();
        let first = self.preferred.load(Ordering::Relaxed) % count;
        let mut problems = Vec::new();
        for k in 0..count {
            let i = (first + k) % count;
            let (sentinel, client) = &self.sentinels[i];
            match self.ask(client, role).await {
                Ok(node) => {
                    self.preferred.store(i, Ordering::Relaxed);
                    return Ok(node);
                }
                Err(problem) => problems.push(format!("{sentinel}: {problem}")),
            }
        }
        Err(ConnectError::Sentinel {
            name: self.name.clone(),
            role: match role {
                Role::Master => "master",
                Role::Replica => "replica",
            },
            tried: count,
            problems: problems.join("; "),
        })
    }

    /// One sentinel's candidates for `role`, the first that confirms it.
    async fn ask(&self, sentinel: &redis::Client, role: Role) -> Result<Node, String> {
        let mut conn = bounded(sentinel.get_multiplexed_async_connection()).await?;
        let candidates: Vec<(String, u16)> = match role {
            Role::Master => {
                let reply: Option<(String, u16)> = bounded(
                    redis::cmd("SENTINEL")
                        .arg("get-master-addr-by-name")
                        .arg(&self.name)
                        .query_async(&mut conn),
                )
                .await?;
                reply.into_iter().collect()
            }
            Role::Replica => {
                let replicas: Vec<std::collections::HashMap<String, String>> = bounded(
                    redis::cmd("SENTINEL")
                        .arg("replicas")
                        .arg(&self.name)
                        .query_async(&mut conn),
                )
                .await?;
                replicas.iter().filter_map(healthy_replica).collect()
            }
        };
        if candidates.is_empty() {
            return Err(format!("knows no healthy node for {:?}", self.name));
        }
        let mut refusals = Vec::new();
        for (host, port) in candidates {
            let address = format!("{host}:{port}");
            let node = self.node_client(host, port).map_err(|e| e.to_string())?;
            match check_role(&node, role).await {
                Ok(()) => {
                    return Ok(Node {
                        client: node,
                        address,
                    });
                }
                Err(problem) => refusals.push(format!("{address} {problem}")),
            }
        }
        Err(refusals.join(", "))
    }

    fn node_client(&self, host: String, port: u16) -> redis::RedisResult<redis::Client> {
        let addr = match self.node.addr() {
            ConnectionAddr::TcpTls { insecure, .. } => ConnectionAddr::TcpTls {
                host,
                port,
                insecure: *insecure,
                tls_params: None,
            },
            _ => ConnectionAddr::Tcp(host, port),
        };
        build_client(self.node.clone().set_addr(addr), self.certificates.as_ref())
    }
}

/// A replica Sentinel lists as usable: up, and linked to its master.
fn healthy_replica(fields: &std::collections::HashMap<String, String>) -> Option<(String, u16)> {
    let flags = fields.get("flags")?;
    let down = ["s_down", "o_down", "disconnected"]
        .iter()
        .any(|f| flags.split(',').any(|x| x == *f));
    let linked = fields.get("master-link-status").is_none_or(|s| s == "ok");
    if down || !linked {
        return None;
    }
    Some((fields.get("ip")?.clone(), fields.get("port")?.parse().ok()?))
}

/// Whether the node itself says it has `role` (a sentinel's view may lag a failover).
async fn check_role(node: &redis::Client, role: Role) -> Result<(), String> {
    let mut conn = bounded(node.get_multiplexed_async_connection()).await?;
    let actual: redis::Role = bounded(redis::cmd("ROLE").query_async(&mut conn)).await?;
    match (role, actual) {
        (Role::Master, redis::Role::Primary { .. }) => Ok(()),
        (Role::Replica, redis::Role::Replica { .. }) => Ok(()),
        (_, redis::Role::Primary { .. }) => Err("is a master".into()),
        (_, redis::Role::Replica { .. }) => Err("is a replica".into()),
        (_, _) => Err("is neither master nor replica".into()),
    }
}

async fn bounded<T>(op: impl Future<Output = redis::RedisResult<T>>) -> Result<T, String> {
    match tokio::time::timeout(SENTINEL_TIMEOUT, op).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {}s", SENTINEL_TIMEOUT.as_secs())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys<'a>(
        url: &'a str,
        ssl: &'a SslParams,
        sentinels: &'a [SentinelEntry],
    ) -> ConnectionKeys<'a> {
        ConnectionKeys {
            url,
            ssl_params: ssl,
            sentinels,
            name: "",
            role: Role::Master,
            password: "",
            sentinel_password: "",
        }
    }

    fn compile(k: ConnectionKeys<'_>) -> Result<(RedisConnector, Vec<String>), ConfigError> {
        let mut warnings = Vec::new();
        RedisConnector::compile(k, &mut warnings).map(|c| (c, warnings))
    }

    #[test]
    fn urls_direct_and_tls() {
        let ssl = SslParams::default();
        let (c, w) = compile(keys("redis://127.0.0.1:6390/1", &ssl, &[])).unwrap();
        assert_eq!(c.describe(), "127.0.0.1:6390");
        assert!(w.is_empty());
        let (c, w) = compile(keys("rediss://:pw@cache.example:6380", &ssl, &[])).unwrap();
        assert_eq!(c.describe(), "cache.example:6380, TLS");
        assert!(w.is_empty());
        let (c, w) = compile(keys("rediss://cache.example:6380/#insecure", &ssl, &[])).unwrap();
        assert_eq!(c.describe(), "cache.example:6380, TLS NOT VERIFIED");
        assert_eq!(w.len(), 1);
        let err = compile(keys("http://x", &ssl, &[])).unwrap_err();
        assert_eq!(err.key, "redis.url");
    }

    #[test]
    fn verify_mode_none_is_a_loud_warning() {
        let ssl = SslParams {
            verify_mode: VerifyMode::None,
            ..SslParams::default()
        };
        let (c, w) = compile(keys("rediss://h:6380", &ssl, &[])).unwrap();
        assert!(c.describe().ends_with("TLS NOT VERIFIED"));
        assert!(w[0].contains("NOT VERIFIED"), "{w:?}");
        let err = compile(keys("redis://h:6380", &ssl, &[])).unwrap_err();
        assert_eq!(err.key, "redis.ssl_params");
    }

    #[test]
    fn certificate_files_are_checked_once_here() {
        let ssl = SslParams {
            ca_file: "/nonexistent/ca.pem".into(),
            ..SslParams::default()
        };
        let err = compile(keys("rediss://h:6380", &ssl, &[])).unwrap_err();
        assert_eq!(err.key, "redis.ssl_params.ca_file");
        let dir = std::env::temp_dir().join(format!("ferrocable-connect-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let junk = dir.join("junk.pem");
        std::fs::write(&junk, "not a certificate").unwrap();
        let ssl = SslParams {
            cert_file: junk.display().to_string(),
            ..SslParams::default()
        };
        let err = compile(keys("rediss://h:6380", &ssl, &[])).unwrap_err();
        assert_eq!(err.key, "redis.ssl_params.key_file");
        let ssl = SslParams {
            cert_file: junk.display().to_string(),
            key_file: junk.display().to_string(),
            ..SslParams::default()
        };
        let err = compile(keys("rediss://h:6380", &ssl, &[])).unwrap_err();
        assert_eq!(err.key, "redis.ssl_params");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn sentinel_settings_as_cable_yml_writes_them() {
        let ssl = SslParams::default();
        let sentinels = vec![
            SentinelEntry {
                host: "10.0.0.1".into(),
                port: 26380,
                password: String::new(),
            },
            SentinelEntry {
                host: "10.0.0.2".into(),
                port: SENTINEL_PORT,
                password: "own".into(),
            },
        ];
        let (c, _) = compile(keys("redis://:pw@mymaster/2", &ssl, &sentinels)).unwrap();
        assert!(c.uses_sentinel());
        assert_eq!(c.describe(), "master \"mymaster\" via 2 sentinel(s)");
        let mut named = keys("redis://ignored", &ssl, &sentinels);
        named.name = "cache";
        named.role = Role::Replica;
        let (c, _) = compile(named).unwrap();
        assert_eq!(c.describe(), "replica of \"cache\" via 2 sentinel(s)");
        let bad = [SentinelEntry {
            host: String::new(),
            port: 1,
            password: String::new(),
        }];
        assert_eq!(
            compile(keys("redis://m", &ssl, &bad)).unwrap_err().key,
            "redis.sentinels[0].host"
        );
        let mut stray = keys("redis://h", &ssl, &[]);
        stray.role = Role::Replica;
        assert_eq!(compile(stray).unwrap_err().key, "redis.role");
    }

    #[test]
    fn replicas_sentinel_would_not_use_are_skipped() {
        let entry = |flags: &str, link: &str| {
            [
                ("ip", "10.0.0.3"),
                ("port", "6380"),
                ("flags", flags),
                ("master-link-status", link),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
        };
        assert_eq!(
            healthy_replica(&entry("slave", "ok")),
            Some(("10.0.0.3".into(), 6380))
        );
        assert_eq!(healthy_replica(&entry("s_down,slave", "ok")), None);
        assert_eq!(healthy_replica(&entry("slave,disconnected", "ok")), None);
        assert_eq!(healthy_replica(&entry("slave", "err")), None);
    }
}
