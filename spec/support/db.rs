//! The specs' PostgreSQL: a server of Debian's (its own data directory and port, run as the
//! `postgres` user when the tests run as root, because PostgreSQL refuses root), for the
//! broadcast-input specs and, through `database`, the app databases. Also the example
//! profiles (`config/examples/*.toml`), started with nothing but their environment.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sqlx::Connection;
use sqlx::postgres::PgConnection;

use super::{Server, TempDir, free_port};

/// The directory with `initdb`, `postgres` and `pg_ctl` (Debian puts each major version in
/// /usr/lib/postgresql/<major>/bin; bin/setup installs one).
fn pg_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL is not installed: run bin/test, which installs it (bin/setup)")
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let major = e.file_name().to_str()?.parse().ok()?;
                let bin = e.path().join("bin");
                bin.join("postgres").exists().then_some((major, bin))
            })
            .collect();
        versions.sort();
        versions
            .pop()
            .expect("no /usr/lib/postgresql/<version>/bin/postgres: run bin/setup")
            .1
    })
    .clone()
}

fn is_root() -> bool {
    // SAFETY-free check: `id -u` prints 0 for root.
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0\n"))
        .unwrap_or(false)
}

/// A command run as the user PostgreSQL accepts (`postgres` when we are root). `setpriv`
/// execs the program in place, so the child's pid is the server's own (signals reach it).
fn pg_command(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid=postgres",
            "--regid=postgres",
            "--init-groups",
            "--",
        ])
        .arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn give_to_postgres(path: &Path) {
    if is_root() {
        let status = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(path)
            .status()
            .unwrap();
        assert!(status.success(), "chown {}", path.display());
    }
}

/// Removes the templates of test processes that have ended: a static is never dropped, so
/// each process leaves its template behind (tens of MB each).
fn remove_dead_templates() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name
            .to_str()
            .and_then(|n| n.strip_prefix("ferrocable-spec-pg-template-"))
        else {
            continue;
        };
        let pid = rest.split('-').next().unwrap_or("");
        if !pid.is_empty() && !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// A cluster made once per test process (initdb is the slow part) and copied for each server.
fn template() -> &'static Path {
    static TEMPLATE: OnceLock<(TempDir, PathBuf)> = OnceLock::new();
    &TEMPLATE
        .get_or_init(|| {
            remove_dead_templates();
            let dir = TempDir::new("pg-template");
            give_to_postgres(&dir.0);
            let data = dir.0.join("data");
            let out = pg_command(&pg_bin().join("initdb"))
                .args([
                    "--no-sync",
                    "-A",
                    "trust",
                    "-U",
                    "postgres",
                    "-E",
                    "UTF8",
                    "--no-instructions",
                    "-D",
                ])
                .arg(&data)
                .stdout(Stdio::null())
                .output()
                .expect("initdb");
            assert!(
                out.status.success(),
                "initdb failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            (dir, data)
        })
        .1
}

/// A running PostgreSQL server with its own data directory and port.
#[derive(Debug)]
pub struct Postgres {
    child: Option<Child>,
    pub port: u16,
    dir: TempDir,
    /// Extra `-c name=value` settings.
    settings: Vec<String>,
    /// Paused by [`Postgres::freeze`]: resumed before it is killed on drop.
    frozen: AtomicBool,
}

impl Postgres {
    /// A server on a free port.
    pub fn start() -> Postgres {
        Postgres::start_with(&[])
    }

    /// A server with extra settings (`log_statement=all`, ...).
    pub fn start_with(settings: &[&str]) -> Postgres {
        let dir = TempDir::new("pg");
        give_to_postgres(&dir.0);
        let status = Command::new("cp")
            .arg("-a")
            .arg(template())
            .arg(dir.0.join("data"))
            .status()
            .unwrap();
        assert!(status.success());
        let mut pg = Postgres {
            child: None,
            port: 0,
            dir,
            settings: settings.iter().map(|s| s.to_string()).collect(),
            frozen: AtomicBool::new(false),
        };
        // A port picked as free can be taken before the server binds it: then another.
        for attempt in 1..=super::PORT_ATTEMPTS {
            pg.port = free_port();
            if pg.launch() {
                return pg;
            }
            eprintln!(
                "postgres: port {} was taken before it could bind (attempt {attempt} of {})",
                pg.port,
                super::PORT_ATTEMPTS
            );
        }
        panic!("postgres: ports in a row were taken before it could bind");
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.0.join("postgres.log")).unwrap_or_default()
    }

    /// (Re)starts the server on the same port and data.
    pub fn restart(&mut self) {
        assert!(
            self.launch(),
            "postgres could not bind port {} again",
            self.port
        );
    }

    /// Starts the server on its port and waits until it accepts queries; false if it exited
    /// first because the port was taken (any other exit fails the test). Ready is this
    /// server's own log line, as whoever took the port may answer too.
    fn launch(&mut self) -> bool {
        // What this start logs comes after what earlier ones did.
        let log_start = self.log().len();
        let new_log = |pg: &Postgres| pg.log().get(log_start..).unwrap_or_default().to_string();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.0.join("postgres.log"))
            .unwrap();
        give_to_postgres(&self.dir.0.join("postgres.log"));
        let mut cmd = pg_command(&pg_bin().join("postgres"));
        cmd.arg("-D")
            .arg(self.dir.0.join("data"))
            .args(["-p", &self.port.to_string()])
            .args(["-c", "listen_addresses=127.0.0.1"])
            .arg("-c")
            .arg(format!("unix_socket_directories={}", self.dir.0.display()))
            .args([
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ])
            .args(["-c", "max_connections=50", "-c", "shared_buffers=16MB"]);
        for s in &self.settings {
            cmd.args(["-c", s]);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start postgres");
        self.child = Some(child);
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(20) {
            if let Some(child) = &mut self.child
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                let log = new_log(self);
                assert!(
                    log.contains("Address already in use"),
                    "postgres exited ({status}); log:\n{log}"
                );
                return false;
            }
            if new_log(self).contains("database system is ready to accept connections") {
                // The postmaster said so; a connection proves it.
                let ok = Command::new(pg_bin().join("pg_isready"))
                    .args([
                        "-h",
                        "127.0.0.1",
                        "-p",
                        &self.port.to_string(),
                        "-U",
                        "postgres",
                    ])
                    .stdout(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success());
                if ok {
                    return true;
                }
            }
            std::thread::sleep(Duration::from_millis(30));
        }
        panic!(
            "postgres did not start on port {}; log:\n{}",
            self.port,
            self.log()
        );
    }

    /// Kills the server (SIGKILL to the postmaster: a crash; children follow).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        // The backends notice their postmaster died; wait until the port is free.
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
            && start.elapsed() < Duration::from_secs(10)
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        // A crashed server leaves its pid file: the next start recovers.
    }

    /// Stops the server (fast shutdown, SIGINT), keeping its data: the database is down
    /// until [`Postgres::restart`].
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }

    /// Pauses the server and its backends (SIGSTOP), or resumes them: open connections and
    /// new ones hang, as with a database that is overloaded.
    pub fn freeze(&self, frozen: bool) {
        if let Some(child) = &self.child {
            self.frozen.store(frozen, Ordering::Relaxed);
            let pid = child.id().to_string();
            let signal = if frozen { "-STOP" } else { "-CONT" };
            // The backends are the postmaster's children.
            let _ = Command::new("pkill").args([signal, "-P", &pid]).status();
            let _ = Command::new("kill").args([signal, &pid]).status();
        }
    }

    /// The URL of the `postgres` database.
    pub fn url(&self) -> String {
        self.database_url("postgres")
    }

    /// The URL of database `name`.
    pub fn database_url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// A new connection.
    pub async fn connect(&self) -> PgConnection {
        PgConnection::connect(&self.url())
            .await
            .expect("connect to postgres")
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // A stopped backend cannot notice its postmaster died: it would stay behind.
        if self.frozen.load(Ordering::Relaxed) {
            self.freeze(false);
        }
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

impl Server {
    /// Starts `ferrocable --config config/examples/<profile>.toml` with only `env` (plus
    /// `PORT`, a free port, and `PATH`): no flags, no other variables, as a deployment
    /// would. Waits until `/health` answers.
    pub fn start_profile(profile: &str, env: &[(&str, &str)]) -> Server {
        let config = repo().join(format!("config/examples/{profile}.toml"));
        // The port is free when picked; another process may bind it first: then another.
        for attempt in 1..=super::PORT_ATTEMPTS {
            let port = free_port();
            let port_text = port.to_string();
            let mut all: Vec<(&str, &str)> = vec![("PORT", &port_text)];
            all.extend_from_slice(env);
            if let Some(server) = Server::spawn_plain(
                TempDir::new("profile"),
                &["--config", config.to_str().unwrap()],
                &all,
                port,
            ) {
                return server;
            }
            eprintln!(
                "ferrocable: port {port} was taken before it could bind (attempt {attempt} of {})",
                super::PORT_ATTEMPTS
            );
        }
        panic!("ferrocable: ports in a row were taken before it could bind");
    }
}
