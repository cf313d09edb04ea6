//! The app databases specs run against: a real PostgreSQL (the one of `db`: Debian's
//! `postgresql`, its own data directory and port, stopped on drop) and SQLite files, loaded
//! from SQL.

use super::{TempDir, db};

/// A PostgreSQL server holding app databases made from SQL, addressed by name: the specs'
/// one PostgreSQL harness ([`db::Postgres`]) with PostgreSQL's default connection limit, as
/// app replays open pools of their own.
#[derive(Debug)]
pub struct Postgres {
    server: db::Postgres,
    /// The port it listens on.
    pub port: u16,
}

impl Postgres {
    /// A server on a free loopback port, accepting queries.
    pub fn start() -> Postgres {
        let server = db::Postgres::start_with(&["max_connections=100"]);
        let port = server.port;
        Postgres { server, port }
    }

    /// Stops the server (fast shutdown), keeping its data: the database is down.
    pub fn stop(&mut self) {
        self.server.stop();
    }

    /// Starts it again on the same port and data.
    pub fn resume(&mut self) {
        self.server.restart();
    }

    /// Pauses the server and its backends (SIGSTOP), or resumes them: open connections and
    /// new ones hang, as with a database that is overloaded.
    pub fn freeze(&self, frozen: bool) {
        self.server.freeze(frozen);
    }

    /// A URL for database `name` (created by [`Postgres::create`]).
    pub fn url(&self, name: &str) -> String {
        self.server.database_url(name)
    }

    /// Creates database `name` and runs `sql` in it.
    pub async fn create(&self, name: &str, sql: &str) {
        let admin = sqlx::PgPool::connect(&self.url("postgres")).await.unwrap();
        sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
            .execute(&admin)
            .await
            .unwrap();
        admin.close().await;
        self.execute(name, sql).await;
    }

    /// Runs `sql` in database `name`.
    pub async fn execute(&self, name: &str, sql: &str) {
        let pool = sqlx::PgPool::connect(&self.url(name)).await.unwrap();
        sqlx::raw_sql(sql).execute(&pool).await.unwrap();
        pool.close().await;
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
