//! Test support: the real `ferrocable` binary and a real `redis-server`, each started on a
//! free port in a temporary directory, plus a raw WebSocket client and token minting.

#![allow(dead_code)]

pub mod database;
pub mod db;
pub mod recorded;
pub mod redis_ha;
pub mod ws;

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use jsonwebtoken::{EncodingKey, Header};
use serde_json::json;

pub use ws::{Frame, HttpReply, Ws, connect, http};

/// The secret every test token is signed with.
pub const SECRET: &str = "test-secret-key-base-0123456789";
/// The Origin every test client sends.
pub const ORIGIN: &str = "http://app.test";

/// A scratch directory removed on drop.
#[derive(Debug)]
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("ferrocable-spec-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running `ferrocable` process.
#[derive(Debug)]
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    logs: Arc<Mutex<Vec<String>>>,
    _dir: TempDir,
}

/// The binary under test.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_ferrocable")
}

impl Server {
    /// Starts the server with this TOML config and no extra environment.
    pub fn start(config: &str) -> Server {
        Server::start_with(config, &[])
    }

    /// Starts the server with this TOML config and environment; waits until it listens.
    pub fn start_with(config: &str, env: &[(&str, &str)]) -> Server {
        let dir = TempDir::new("server");
        let path = dir.0.join("ferrocable.toml");
        std::fs::write(&path, config).unwrap();
        let path = path.to_str().unwrap().to_string();
        Server::spawn(dir, &["--config", &path], env)
    }

    /// Starts the server with these arguments (no config file unless given) on a free port.
    pub fn start_args(args: &[&str], env: &[(&str, &str)]) -> Server {
        Server::spawn(TempDir::new("server"), args, env)
    }

    /// Starts the server under a wrapper command (`prefix[0]` with `prefix[1..]`, which must
    /// end with the binary), e.g. `prlimit --nofile=40:40 <binary>`.
    pub fn start_wrapped(prefix: &[&str], args: &[&str], env: &[(&str, &str)]) -> Server {
        Server::spawn_with(TempDir::new("server"), prefix, args, env)
    }

    fn spawn(dir: TempDir, args: &[&str], env: &[(&str, &str)]) -> Server {
        Server::spawn_with(dir, &[binary()], args, env)
    }

    fn spawn_with(dir: TempDir, prefix: &[&str], args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut cmd = command(prefix, env);
        cmd.args(args)
            .args(["--port", "0", "--log-format", "json"])
            .env("RUST_LOG", "ferrocable=debug,info");
        let mut child = cmd.spawn().expect("spawn ferrocable");
        let (logs, listening) = capture(&mut child);
        let Ok(addr) = listening.recv_timeout(Duration::from_secs(10)) else {
            let _ = child.kill();
            panic!(
                "ferrocable did not start; logs:\n{}",
                logs.lock().unwrap().join("\n")
            );
        };
        Server {
            child,
            addr,
            logs,
            _dir: dir,
        }
    }

    /// Starts the binary with exactly `args` and `env` (plus `PATH`), no flags of ours,
    /// listening on `port` (which `env` gives it): waits until it says it listens and answers
    /// `GET /health` there. `None` if it exited because another process had taken the port.
    fn spawn_plain(dir: TempDir, args: &[&str], env: &[(&str, &str)], port: u16) -> Option<Server> {
        let mut cmd = command(&[binary()], env);
        cmd.args(args);
        let mut child = cmd.spawn().expect("spawn ferrocable");
        let (logs, stderr_open) = capture(&mut child);
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                // Its last lines may still be in the pipe: wait until it is read to the end.
                while stderr_open.recv_timeout(Duration::from_secs(2)).is_ok() {}
                let logs = logs.lock().unwrap().join("\n");
                if logs.contains("Address already in use") {
                    return None;
                }
                panic!("ferrocable exited ({status}); logs:\n{logs}");
            }
            // Only once it says so: until then, whoever took the port could be answering.
            let listening = logs
                .lock()
                .unwrap()
                .iter()
                .any(|l| l.contains("ferrocable listening"));
            if listening && answers_health(addr) {
                break;
            }
            if start.elapsed() > Duration::from_secs(10) {
                let _ = child.kill();
                panic!(
                    "ferrocable did not answer on {addr}; logs:\n{}",
                    logs.lock().unwrap().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(Server {
            child,
            addr,
            logs,
            _dir: dir,
        })
    }

    /// Log lines so far.
    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }

    /// Asserts some log line contains `needle`.
    pub fn assert_logged(&self, needle: &str) {
        let logs = self.logs();
        assert!(logs.contains(needle), "no log line has {needle:?}:\n{logs}");
    }

    /// Waits until a log line contains `needle`.
    pub fn wait_for_log(&self, needle: &str, within: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < within {
            if self.logs().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Sends a signal (by name, as `kill -s` takes it).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args(["-s", name, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit.
    pub fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        while start.elapsed() < within {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Opens a WebSocket to `path` with the test Origin and `extra` headers.
    pub async fn connect(&self, path: &str, extra: &[(&str, &str)]) -> (HttpReply, Option<Ws>) {
        let mut headers = vec![("Origin", ORIGIN)];
        headers.extend_from_slice(extra);
        connect(self.addr, path, &headers).await
    }

    /// Opens a WebSocket with a valid token for (user, restaurant) and reads the welcome.
    pub async fn welcomed(&self, user: u64, restaurant: u64) -> Ws {
        let t = token(json!({"user_id": user, "restaurant_id": restaurant, "role": "admin"}));
        let (reply, ws) = self.connect(&format!("/cable?token={t}"), &[]).await;
        assert_eq!(reply.status, 101, "{}", reply.head);
        let mut ws = ws.unwrap();
        ws.expect(r#"{"type":"welcome"}"#).await;
        ws
    }

    /// A plain HTTP request.
    pub async fn http(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> HttpReply {
        http(self.addr, method, path, headers, body).await
    }

    /// `POST /_broadcast` from loopback.
    pub async fn broadcast(&self, stream: &str, data: &str) -> HttpReply {
        let body = json!({"stream": stream, "data": data}).to_string();
        self.http("POST", "/_broadcast", &[], body.as_bytes()).await
    }

    /// `GET /health`: status and body.
    pub async fn health(&self) -> (u16, serde_json::Value) {
        let r = self.http("GET", "/health", &[], b"").await;
        (r.status, serde_json::from_slice(&r.body).unwrap())
    }

    /// Waits until `/health` answers `status`; its body.
    pub async fn wait_health(&self, status: u16, within: Duration) -> serde_json::Value {
        let start = Instant::now();
        loop {
            let (s, body) = self.health().await;
            if s == status {
                return body;
            }
            assert!(
                start.elapsed() < within,
                "health never became {status}: {body}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A client of a configuration without authentication ([`dev_profile`], the example
    /// profiles), welcomed and subscribed to `identifier`.
    pub async fn subscribed(&self, identifier: &str) -> Ws {
        let (reply, ws) = self.connect("/cable", &[]).await;
        assert_eq!(reply.status, 101, "{}", reply.head);
        let mut ws = ws.unwrap();
        ws.expect(r#"{"type":"welcome"}"#).await;
        ws.send_text(&subscribe(identifier)).await;
        ws.expect(&confirm(identifier)).await;
        ws
    }

    /// `GET /stats` as JSON.
    pub async fn stats(&self) -> serde_json::Value {
        let r = self.http("GET", "/stats", &[], b"").await;
        serde_json::from_slice(&r.body).unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `prefix` (a wrapper and its arguments, ending with the binary) with only `env` and `PATH`
/// in its environment, stderr piped.
fn command(prefix: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(prefix[0]);
    cmd.args(&prefix[1..])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Collects the child's stderr lines; the receiver gets the address from the JSON
/// "ferrocable listening" line, if one comes, and is disconnected once stderr is read to its
/// end.
fn capture(child: &mut Child) -> (Arc<Mutex<Vec<String>>>, mpsc::Receiver<SocketAddr>) {
    let stderr = child.stderr.take().unwrap();
    let logs = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = mpsc::channel();
    let sink = logs.clone();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(addr) = listening_address(&line)
                && let Some(tx) = tx.take()
            {
                let _ = tx.send(addr);
            }
            sink.lock().unwrap().push(line);
        }
    });
    (logs, rx)
}

/// Whether an HTTP server answers `GET /health` at `addr` within a second.
fn answers_health(addr: SocketAddr) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
    let _ = s.set_write_timeout(Some(Duration::from_secs(1)));
    let mut head = [0u8; 12];
    s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .is_ok()
        && s.read_exact(&mut head).is_ok()
        && head.starts_with(b"HTTP/1.1")
}

fn listening_address(line: &str) -> Option<SocketAddr> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    if v.get("message")?.as_str()? != "ferrocable listening" {
        return None;
    }
    v.get("address")?.as_str()?.parse().ok()
}

/// A TCP port free on every address (for servers that bind 0.0.0.0).
pub fn free_port_any() -> u16 {
    TcpListener::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A free TCP port on loopback (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `redis-server`.
#[derive(Debug)]
pub struct Redis {
    child: Option<Child>,
    pub port: u16,
    dir: TempDir,
}

/// Ports tried before giving up, when each one picked as free was taken before it was bound.
const PORT_ATTEMPTS: usize = 5;

impl Redis {
    /// Starts redis-server on a free port (bin/test installs it). A free port is only free
    /// when picked: another process can bind it first, and then another port is tried.
    pub fn start() -> Redis {
        for attempt in 1..=PORT_ATTEMPTS {
            let mut r = Redis {
                child: None,
                port: free_port(),
                dir: TempDir::new("redis"),
            };
            if r.launch() {
                return r;
            }
            eprintln!(
                "redis-server: port {} was taken before it could bind (attempt {attempt} of {PORT_ATTEMPTS})",
                r.port
            );
        }
        panic!("redis-server: {PORT_ATTEMPTS} ports in a row were taken before it could bind");
    }

    /// (Re)starts the server on the same port.
    pub fn restart(&mut self) {
        assert!(
            self.launch(),
            "redis-server could not bind port {} again",
            self.port
        );
    }

    /// Starts the server on its port and waits until it is ready; false if it exited first
    /// because its port was taken (any other exit fails the test). Ready is this process's
    /// own log line: asking the port could reach whoever took it (a `PONG` from another
    /// redis-server, or a listener that never answers and hangs redis-cli).
    fn launch(&mut self) -> bool {
        let log_path = self.dir.0.join("redis.log");
        let log = std::fs::File::create(&log_path).unwrap();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.dir.0.to_str().unwrap(),
            ])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("redis-server not found: run bin/test, which installs it");
        self.child = Some(child);
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if let Some(child) = &mut self.child
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                assert!(
                    log.contains("Address already in use"),
                    "redis-server exited ({status}):\n{log}"
                );
                return false;
            }
            if std::fs::read_to_string(&log_path)
                .is_ok_and(|log| log.contains("Ready to accept connections"))
            {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server did not start on port {}", self.port);
    }

    /// Kills the server (SIGKILL: a crash, not a shutdown).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Sends a signal to the server process.
    pub fn signal(&self, name: &str) {
        if let Some(c) = &self.child {
            Command::new("kill")
                .args(["-s", name, &c.id().to_string()])
                .status()
                .unwrap();
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// A handle for redis-cli commands that can move across threads.
    pub fn handle(&self) -> RedisHandle {
        RedisHandle(self.port)
    }

    /// Runs redis-cli; `None` if it failed.
    pub fn cli(&self, args: &[&str]) -> Option<String> {
        self.handle().cli(args)
    }

    /// `PUBLISH channel payload`; returns the number of receivers.
    pub fn publish(&self, channel: &str, payload: &str) -> i64 {
        self.handle().publish(channel, payload)
    }

    /// Waits until `channel` has at least one subscriber (PUBSUB NUMSUB).
    pub fn wait_subscribed(&self, channel: &str) {
        self.handle().wait_subscribed(channel)
    }
}

/// redis-cli against a port.
#[derive(Debug, Clone, Copy)]
pub struct RedisHandle(pub u16);

impl RedisHandle {
    /// Runs redis-cli; `None` if it failed.
    pub fn cli(&self, args: &[&str]) -> Option<String> {
        let out = Command::new("redis-cli")
            .args(["-p", &self.0.to_string()])
            .args(args)
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `PUBLISH channel payload`; returns the number of receivers.
    pub fn publish(&self, channel: &str, payload: &str) -> i64 {
        self.cli(&["PUBLISH", channel, payload])
            .and_then(|o| o.trim().parse().ok())
            .expect("PUBLISH failed")
    }

    /// Waits until `channel` has at least one subscriber (PUBSUB NUMSUB).
    pub fn wait_subscribed(&self, channel: &str) {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            let out = self.cli(&["PUBSUB", "NUMSUB", channel]).unwrap_or_default();
            if out
                .lines()
                .nth(1)
                .and_then(|n| n.trim().parse::<i64>().ok())
                .unwrap_or(0)
                > 0
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("nobody subscribed to {channel}");
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// An HS256 token signed with [`SECRET`].
pub fn token(claims: serde_json::Value) -> String {
    token_with(jsonwebtoken::Algorithm::HS256, SECRET.as_bytes(), claims)
}

/// A token with any HMAC algorithm and key.
pub fn token_with(
    alg: jsonwebtoken::Algorithm,
    secret: &[u8],
    claims: serde_json::Value,
) -> String {
    jsonwebtoken::encode(
        &Header::new(alg),
        &claims,
        &EncodingKey::from_secret(secret),
    )
    .unwrap()
}

/// Now, in Unix seconds.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// `{"command":"subscribe","identifier":<identifier as JSON string>}`
pub fn subscribe(identifier: &str) -> String {
    json!({"command": "subscribe", "identifier": identifier}).to_string()
}

/// `{"command":"unsubscribe",...}`
pub fn unsubscribe(identifier: &str) -> String {
    json!({"command": "unsubscribe", "identifier": identifier}).to_string()
}

/// `{"command":"message",...}` with `data` already JSON text.
pub fn message(identifier: &str, data: &str) -> String {
    json!({"command": "message", "identifier": identifier, "data": data}).to_string()
}

/// The confirm Rails sends for `identifier` (ASCII identifiers without <>&).
pub fn confirm(identifier: &str) -> String {
    json!({"identifier": identifier, "type": "confirm_subscription"}).to_string()
}

/// The reject Rails sends for `identifier`.
pub fn reject(identifier: &str) -> String {
    json!({"identifier": identifier, "type": "reject_subscription"}).to_string()
}

/// A data frame for `identifier` with `message` already JSON text.
pub fn data_frame(identifier: &str, message: &str) -> String {
    format!(
        r#"{{"identifier":{},"message":{message}}}"#,
        serde_json::to_string(identifier).unwrap()
    )
}

/// A configuration like the example profiles' (config/examples): no authentication, no
/// Origin check, one channel `StreamChannel` streaming `{params.stream}`, plus `extra`.
pub fn dev_profile(extra: &str) -> String {
    format!(
        r#"
[origins]
check = false
[auth]
mode = "none"
[channels.StreamChannel]
streams = ["{{params.stream}}"]
require_params = ["stream"]
{extra}
"#
    )
}

/// `{"channel":"StreamChannel","stream":"<stream>"}`
pub fn stream_identifier(stream: &str) -> String {
    format!(r#"{{"channel":"StreamChannel","stream":"{stream}"}}"#)
}

/// [`config`] plus Rails' Redis adapter at `url` with Hafaloha's channel prefix.
pub fn redis_config(url: &str) -> String {
    config(&format!(
        "[redis]\nurl = \"{url}\"\nchannel_prefix = \"shimizu_order_suite_production\"\n"
    ))
}

/// The configuration most specs run with: Hafaloha's identifiers and channels plus generic
/// ones, HS256 over [`SECRET`], origin [`ORIGIN`], in-process broker unless `extra` adds one.
pub fn config(extra: &str) -> String {
    format!(
        r#"
[protocol]
rails_version = "7.2"

[origins]
allowed = ["{ORIGIN}"]

[auth]
mode = "jwt"
secret = "{SECRET}"
algorithm = "HS256"

[[auth.identifiers]]
name = "current_user"
claim = "user_id"
gid = "gid://shimizu-order-suite/User/{{}}"

[[auth.identifiers]]
name = "restaurant_id"
claim = "restaurant_id"

[channels.OrderChannel]
streams = ["order_channel_{{restaurant_id}}"]

[channels.InventoryChannel]
streams = ["inventory_channel_{{restaurant_id}}"]

[channels.ChatChannel]
streams = ["chat_{{params.room}}"]
require_params = ["room"]

[channels.ChatChannel.actions.speak]
broadcast_to = "chat_{{params.room}}"

[channels.ChatChannel.actions.echo]
transmit = true

[channels.AdminChannel]
streams = ["admin_{{restaurant_id}}"]
claims_in = {{ role = ["admin"] }}

[channels.TwoStreamChannel]
streams = ["first_{{restaurant_id}}", "second_{{restaurant_id}}"]
{extra}
"#
    )
}
