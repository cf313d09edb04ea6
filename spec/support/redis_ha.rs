//! Redis as hosted Redis runs it: over TLS with certificates this file generates (openssl),
//! and a Sentinel group (a master, a replica, three sentinels) on free ports.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{TempDir, free_port};

/// A process killed (SIGKILL) when dropped.
#[derive(Debug)]
pub struct Process(Option<Child>);

impl Process {
    fn spawn(program: &str, args: &[&str]) -> Process {
        let child = Command::new(program)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{program}: {e} (bin/test installs it)"));
        Process(Some(child))
    }

    /// Kills it now (a crash, not a shutdown).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

fn openssl(dir: &std::path::Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl not found (bin/test installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA, a server certificate for 127.0.0.1/localhost and a client certificate it signed,
/// and an unrelated CA; all PEM files in a scratch directory.
#[derive(Debug)]
pub struct TlsFiles {
    pub dir: TempDir,
}

impl TlsFiles {
    pub fn generate() -> TlsFiles {
        let dir = TempDir::new("tls");
        let d = dir.0.as_path();
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        for ca in ["ca", "other-ca"] {
            let (key, crt, subject) = (
                format!("{ca}.key"),
                format!("{ca}.crt"),
                format!("/CN=ferrocable test {ca}"),
            );
            let mut args = vec!["req", "-x509"];
            args.extend_from_slice(&ec);
            args.extend_from_slice(&[
                "-keyout", &key, "-out", &crt, "-days", "2", "-subj", &subject,
            ]);
            args.extend_from_slice(&[
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ]);
            openssl(d, &args);
        }
        for (name, usage) in [("server", "serverAuth"), ("client", "clientAuth")] {
            let (key, csr, crt, ext) = (
                format!("{name}.key"),
                format!("{name}.csr"),
                format!("{name}.crt"),
                format!("{name}.ext"),
            );
            std::fs::write(
                d.join(&ext),
                format!(
                    "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n\
                     extendedKeyUsage={usage}\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n"
                ),
            )
            .unwrap();
            let subject = format!("/CN={name}");
            let mut args = vec!["req"];
            args.extend_from_slice(&ec);
            args.extend_from_slice(&["-keyout", &key, "-out", &csr, "-subj", &subject]);
            openssl(d, &args);
            openssl(
                d,
                &[
                    "x509",
                    "-req",
                    "-in",
                    &csr,
                    "-CA",
                    "ca.crt",
                    "-CAkey",
                    "ca.key",
                    "-CAcreateserial",
                    "-out",
                    &crt,
                    "-days",
                    "2",
                    "-extfile",
                    &ext,
                ],
            );
        }
        TlsFiles { dir }
    }

    /// The path of one of the files (`ca.crt`, `server.key`, `client.crt`, `other-ca.crt`...).
    pub fn path(&self, name: &str) -> String {
        self.dir.0.join(name).display().to_string()
    }
}

/// A `redis-server` that speaks only TLS, requires client certificates and a password.
#[derive(Debug)]
pub struct TlsRedis {
    _process: Process,
    pub port: u16,
    pub password: &'static str,
    ca: String,
    cert: String,
    key: String,
    _dir: TempDir,
}

impl TlsRedis {
    pub fn start(files: &TlsFiles) -> TlsRedis {
        let port = free_port();
        let dir = TempDir::new("redis-tls");
        let password = "tls-s3cret";
        let process = Process::spawn(
            "redis-server",
            &[
                "--port",
                "0",
                "--tls-port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--tls-cert-file",
                &files.path("server.crt"),
                "--tls-key-file",
                &files.path("server.key"),
                "--tls-ca-cert-file",
                &files.path("ca.crt"),
                "--tls-auth-clients",
                "yes",
                "--requirepass",
                password,
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                dir.0.to_str().unwrap(),
            ],
        );
        let r = TlsRedis {
            _process: process,
            port,
            password,
            ca: files.path("ca.crt"),
            cert: files.path("client.crt"),
            key: files.path("client.key"),
            _dir: dir,
        };
        let start = Instant::now();
        while r.cli(&["PING"]).trim() != "PONG" {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "redis-server --tls-port did not start"
            );
            std::thread::sleep(Duration::from_millis(30));
        }
        r
    }

    /// redis-cli over TLS with the client certificate; its stdout.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args([
                "--tls", "--cacert", &self.ca, "--cert", &self.cert, "--key", &self.key,
            ])
            .args([
                "-p",
                &self.port.to_string(),
                "-a",
                self.password,
                "--no-auth-warning",
            ])
            .args(args)
            .output()
            .expect("redis-cli");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// A master, one replica and three sentinels watching them as `mymaster`.
#[derive(Debug)]
pub struct SentinelGroup {
    pub master_port: u16,
    pub replica_port: u16,
    pub sentinel_ports: Vec<u16>,
    pub master: Process,
    _replica: Process,
    _sentinels: Vec<Process>,
    _dir: TempDir,
}

/// The Sentinel name of the group.
pub const MASTER_NAME: &str = "mymaster";

fn cli(port: u16, args: &[&str]) -> String {
    Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

fn wait_until(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < within, "{what}: not within {within:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl SentinelGroup {
    pub fn start() -> SentinelGroup {
        let dir = TempDir::new("sentinel");
        let data = |name: &str| -> PathBuf {
            let p = dir.0.join(name);
            std::fs::create_dir_all(&p).unwrap();
            p
        };
        let redis = |port: u16, name: &str, extra: &[&str]| {
            let mut args = vec![
                "--port".to_string(),
                port.to_string(),
                "--bind".into(),
                "127.0.0.1".into(),
                "--save".into(),
                String::new(),
                "--appendonly".into(),
                "no".into(),
                "--dir".into(),
                data(name).display().to_string(),
            ];
            args.extend(extra.iter().map(|s| s.to_string()));
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            Process::spawn("redis-server", &args)
        };
        let master_port = free_port();
        let replica_port = free_port();
        let master = redis(master_port, "master", &[]);
        wait_until("master up", Duration::from_secs(10), || {
            cli(master_port, &["PING"]).trim() == "PONG"
        });
        let replica = redis(
            replica_port,
            "replica",
            &["--replicaof", "127.0.0.1", &master_port.to_string()],
        );
        wait_until("replica in sync", Duration::from_secs(15), || {
            cli(replica_port, &["INFO", "replication"]).contains("master_link_status:up")
        });
        let mut sentinel_ports = Vec::new();
        let mut sentinels = Vec::new();
        for i in 0..3 {
            let port = free_port();
            let conf = dir.0.join(format!("sentinel-{i}.conf"));
            std::fs::write(
                &conf,
                format!(
                    "port {port}\nbind 127.0.0.1\ndir {}\n\
                     sentinel monitor {MASTER_NAME} 127.0.0.1 {master_port} 2\n\
                     sentinel down-after-milliseconds {MASTER_NAME} 1000\n\
                     sentinel failover-timeout {MASTER_NAME} 5000\n\
                     sentinel parallel-syncs {MASTER_NAME} 1\n",
                    data(&format!("sentinel-{i}")).display()
                ),
            )
            .unwrap();
            sentinels.push(Process::spawn(
                "redis-server",
                &[conf.to_str().unwrap(), "--sentinel"],
            ));
            sentinel_ports.push(port);
        }
        for &port in &sentinel_ports {
            wait_until(
                "sentinel sees the replica and its peers",
                Duration::from_secs(30),
                || {
                    let replicas = cli(port, &["SENTINEL", "replicas", MASTER_NAME]);
                    let peers = cli(port, &["SENTINEL", "sentinels", MASTER_NAME]);
                    replicas.contains(&replica_port.to_string())
                        && !replicas.contains("disconnected")
                        && peers.matches("127.0.0.1").count() >= 2
                },
            );
        }
        SentinelGroup {
            master_port,
            replica_port,
            sentinel_ports,
            master,
            _replica: replica,
            _sentinels: sentinels,
            _dir: dir,
        }
    }

    /// The master's port as the first sentinel names it now.
    pub fn current_master(&self) -> Option<u16> {
        let out = cli(
            self.sentinel_ports[0],
            &["SENTINEL", "get-master-addr-by-name", MASTER_NAME],
        );
        out.lines().nth(1)?.trim().parse().ok()
    }

    /// `SENTINEL FAILOVER` (forced: no agreement needed), retried while Sentinel has no
    /// replica it considers good yet.
    pub fn force_failover(&self) {
        wait_until(
            "SENTINEL FAILOVER accepted",
            Duration::from_secs(20),
            || {
                cli(
                    self.sentinel_ports[0],
                    &["SENTINEL", "FAILOVER", MASTER_NAME],
                )
                .trim()
                    == "OK"
            },
        );
    }

    /// The `[redis]` section pointing ferrocable at this group through its sentinels.
    pub fn redis_section(&self, prefix: &str) -> String {
        let entries: Vec<String> = self
            .sentinel_ports
            .iter()
            .map(|p| format!("{{ host = \"127.0.0.1\", port = {p} }}"))
            .collect();
        format!(
            "[redis]\nurl = \"redis://{MASTER_NAME}\"\nchannel_prefix = \"{prefix}\"\nsentinels = [{}]\n",
            entries.join(", ")
        )
    }
}
