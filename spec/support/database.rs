//! The app databases specs run against: a real PostgreSQL (Debian's `postgresql`, its own data
//! directory and port, started here and stopped on drop) and SQLite files, loaded from SQL.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{TempDir, free_port};

/// A PostgreSQL server of our own.
#[derive(Debug)]
pub struct Postgres {
    child: Option<Child>,
    pub port: u16,
    dir: TempDir,
}

/// Where Debian keeps the server binaries (the newest major version installed).
fn pg_bin() -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is not installed (bin/setup installs the postgresql package)")
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("postgres").exists())
        .collect();
    dirs.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    dirs.pop()
        .expect("no /usr/lib/postgresql/<version>/bin/postgres")
}

fn is_root() -> bool {
    // The server refuses to run as root; the Debian package's `postgres` user runs it then.
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn as_server_user(program: PathBuf) -> Command {
    if is_root() {
        // setpriv execs (runuser would fork and not pass signals on): the child we hold is
        // the server itself, so stop/freeze reach it.
        let mut cmd = Command::new("setpriv");
        cmd.args(["--reuid=postgres", "--regid=postgres", "--init-groups"])
            .arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

impl Postgres {
    /// initdb (trust, no fsync) and start on a free loopback port; waits until it accepts.
    pub fn start() -> Postgres {
        let dir = TempDir::new("postgres");
        if is_root() {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir.0)
                .status()
                .unwrap();
            assert!(status.success(), "chown for the postgres user");
        }
        let bin = pg_bin();
        let data = dir.0.join("data");
        let status = as_server_user(bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("initdb");
        assert!(status.success(), "initdb failed");
        let mut pg = Postgres {
            child: None,
            port: free_port(),
            dir,
        };
        pg.resume();
        pg
    }

    /// Starts (again) on the same port and data directory.
    pub fn resume(&mut self) {
        let child = as_server_user(pg_bin().join("postgres"))
            .arg("-D")
            .arg(self.dir.0.join("data"))
            .args(["-p", &self.port.to_string(), "-k"])
            .arg(&self.dir.0)
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("postgres");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "postgres did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        // Accepting TCP is not yet accepting queries.
        std::thread::sleep(Duration::from_millis(300));
    }

    /// Stops the server (fast shutdown), keeping its data: the database is down.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }

    /// Pauses the server and its backends (SIGSTOP): open connections and new ones hang, as
    /// with a database that is overloaded.
    pub fn freeze(&self, frozen: bool) {
        if let Some(child) = &self.child {
            let pid = child.id().to_string();
            let signal = if frozen { "-STOP" } else { "-CONT" };
            // The backends are the postmaster's children.
            let _ = Command::new("pkill").args([signal, "-P", &pid]).status();
            let _ = Command::new("kill").args([signal, &pid]).status();
        }
    }

    /// A URL for database `name` (created by [`Postgres::create`]).
    pub fn url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// Creates database `name` and runs `sql` in it.
    pub async fn create(&self, name: &str, sql: &str) {
        let admin = sqlx::PgPool::connect(&self.url("postgres")).await.unwrap();
        sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
            .execute(&admin)
            .await
            .unwrap();
        admin.close().await;
        let pool = sqlx::PgPool::connect(&self.url(name)).await.unwrap();
        sqlx::raw_sql(sql).execute(&pool).await.unwrap();
        pool.close().await;
    }

    /// Runs `sql` in database `name`.
    pub async fn execute(&self, name: &str, sql: &str) {
        let pool = sqlx::PgPool::connect(&self.url(name)).await.unwrap();
        sqlx::raw_sql(sql).execute(&pool).await.unwrap();
        pool.close().await;
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.freeze(false);
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A SQLite database file made from `sql`; returns its `sqlite:` URL.
pub async fn sqlite_file(dir: &TempDir, name: &str, sql: &str) -> String {
    let path = dir.0.join(name);
    let url = format!("sqlite:{}", path.display());
    let pool = sqlx::SqlitePool::connect(&format!("{url}?mode=rwc"))
        .await
        .unwrap();
    sqlx::raw_sql(sql).execute(&pool).await.unwrap();
    pool.close().await;
    url
}

/// Runs `sql` on the SQLite database at `url`.
pub async fn sqlite_execute(url: &str, sql: &str) {
    let pool = sqlx::SqlitePool::connect(url).await.unwrap();
    sqlx::raw_sql(sql).execute(&pool).await.unwrap();
    pool.close().await;
}
