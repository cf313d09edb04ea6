//! The Rails app's own database (`[database]`, `DATABASE_URL`): the one place that runs SQL.
//!
//! Auth lookups (`auth::lookup`) and channel predicates (`channels::predicate`) hand it a
//! configured [`Query`] and the values to bind; it answers with the first row, typed, or "no
//! row". Values are only ever **bound** (`$1`, `$2`, ...), never spliced into the SQL text.
//!
//! Bounds and failure policy:
//! - a pool of at most `max_connections` connections, opened lazily on first use (the server
//!   starts, and answers `/health`, with the database down);
//! - waiting for a pooled connection is bounded by `acquire_timeout_ms`, the whole query by
//!   `query_timeout_ms`; either running out is a [`DbError`], which callers turn into a
//!   refusal (never a hang, never a crash);
//! - results are cached briefly (`database/cache.rs` has the policy);
//! - the last outcome (and a probe every `health_check_secs` while idle) is what `/health`
//!   reports as `database`.
//!
//! PostgreSQL (`postgres://`) and SQLite (`sqlite:`, and Rails' `sqlite3:` spelling) are
//! supported, through sqlx.

mod cache;
mod values;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use ferrocable_protocol::json::Value;
use serde::{Deserialize, Serialize};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};

use crate::error::ConfigError;
use cache::Cache;
pub use values::active_record_integer;
use values::{pg_row, sqlite_row};

/// `[database]`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSection {
    /// `postgres://…` or `sqlite:…` (also `DATABASE_URL`); empty: no database.
    pub url: String,
    /// Pool size.
    pub max_connections: u32,
    /// Longest wait for a pooled connection.
    pub acquire_timeout_ms: u64,
    /// Longest a query may take, waiting for a connection included.
    pub query_timeout_ms: u64,
    /// How long an answer is reused; 0 disables the cache.
    pub cache_ttl_ms: u64,
    /// Most cached answers.
    pub cache_max_entries: usize,
    /// Probe interval while nothing else queries (for `/health`); 0: no probe.
    pub health_check_secs: u64,
}

impl Default for DatabaseSection {
    fn default() -> Self {
        DatabaseSection {
            url: String::new(),
            max_connections: 8,
            // Active Record's checkout_timeout: a storm waits as long on us as on Rails.
            acquire_timeout_ms: 5000,
            query_timeout_ms: 5000,
            cache_ttl_ms: 2000,
            cache_max_entries: 10_000,
            health_check_secs: 5,
        }
    }
}

/// Which driver a URL selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// `postgres://` / `postgresql://`.
    Postgres,
    /// `sqlite:` / `sqlite3:`.
    Sqlite,
}

/// A value bound to a query parameter.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Bound {
    /// SQL `NULL`.
    Null,
    /// An integer (`int8` on PostgreSQL).
    Int(i64),
    /// Text.
    Text(String),
}

impl Bound {
    /// A JSON value as it is: integers as integers, strings as text, `null` as NULL; floats and
    /// booleans as Ruby prints them; `None` for arrays and objects.
    pub fn from_json(value: &Value) -> Option<Bound> {
        match value {
            Value::Null => Some(Bound::Null),
            Value::Integer(i) => Some(match i.as_i64() {
                Some(n) => Bound::Int(n),
                None => Bound::Text(value.to_ruby_string()?),
            }),
            Value::String(s) => Some(Bound::Text(s.clone())),
            Value::Float(_) | Value::Bool(_) => value.to_ruby_string().map(Bound::Text),
            Value::Array(_) | Value::Object(_) => None,
        }
    }
}

/// A row: column names and typed values, in the query's order.
pub type Row = Vec<(String, Value)>;

/// A configured statement.
#[derive(Debug, Clone)]
pub struct Query {
    sql: Arc<str>,
    /// How many `$n` parameters it uses.
    pub params: usize,
}

impl Query {
    /// Checks a configured query: a single `SELECT` (or `WITH`) statement whose parameters are
    /// `$1`..`$n` without gaps. `key` names the config key in errors.
    pub fn compile(sql: &str, key: &str) -> Result<Query, ConfigError> {
        let text = sql.trim().trim_end_matches(';').trim();
        let first = text
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        if first != "select" && first != "with" {
            return Err(ConfigError::new(
                key,
                "must be one SELECT statement (it only ever reads)",
            ));
        }
        if text.contains(';') {
            return Err(ConfigError::new(key, "must be a single statement (no ';')"));
        }
        let mut highest = 0usize;
        let mut seen = Vec::new();
        let bytes = text.as_bytes();
        let mut at = 0;
        while at < bytes.len() {
            if bytes[at] == b'$' {
                let digits: String = text[at + 1..]
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                if let Ok(n) = digits.parse::<usize>() {
                    highest = highest.max(n);
                    if !seen.contains(&n) {
                        seen.push(n);
                    }
                }
                at += 1 + digits.len();
            } else {
                at += 1;
            }
        }
        if seen.len() != highest || seen.contains(&0) {
            return Err(ConfigError::new(
                key,
                "parameters must be $1, $2, ... without gaps",
            ));
        }
        Ok(Query {
            sql: Arc::from(text),
            params: highest,
        })
    }

    /// The SQL text.
    pub fn sql(&self) -> &str {
        &self.sql
    }
}

/// Why a query gave no answer (never cached; callers refuse).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DbError {
    /// No database is configured.
    #[error("no database configured (database.url / DATABASE_URL)")]
    NotConfigured,
    /// The query (or the wait for a connection) ran past its deadline.
    #[error("database query timed out after {0} ms")]
    Timeout(u64),
    /// The database could not be reached or refused the query.
    #[error("database error: {0}")]
    Failed(String),
    /// A column has a type we do not turn into JSON.
    #[error("column {column:?} has type {type_name}; cast it in the query (e.g. {column}::text)")]
    UnsupportedColumn {
        /// The column's name.
        column: String,
        /// The database's name for its type.
        type_name: String,
    },
}

/// `database` in `/health` and `/stats`.
#[derive(Debug, Clone, Serialize)]
pub struct DatabaseStatus {
    /// `postgres` or `sqlite`.
    pub backend: Backend,
    /// Whether the last query (or probe) succeeded; true before the first one.
    pub healthy: bool,
    /// The last failure, if the last outcome was one.
    pub last_error: Option<String>,
    /// Queries sent to the database.
    pub queries: u64,
    /// Answers served from the cache.
    pub cache_hits: u64,
    /// Queries that failed or timed out.
    pub failures: u64,
    /// Answers cached now.
    pub cached: usize,
}

enum Pool {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

/// The app's database: settings, the lazily opened pool, the cache and the health record.
pub struct Database {
    url: String,
    backend: Backend,
    section: DatabaseSection,
    pool: OnceLock<Result<Pool, String>>,
    cache: Cache,
    healthy: AtomicBool,
    last_error: Mutex<Option<String>>,
    queries: AtomicU64,
    cache_hits: AtomicU64,
    failures: AtomicU64,
    last_outcome: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("backend", &self.backend)
            .field("max_connections", &self.section.max_connections)
            .finish_non_exhaustive()
    }
}

impl Database {
    /// Checks `[database]`; `None` when no URL is set. Opens nothing.
    pub fn compile(section: &DatabaseSection) -> Result<Option<Arc<Database>>, ConfigError> {
        let url = section.url.trim();
        if url.is_empty() {
            return Ok(None);
        }
        let (backend, url) = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Backend::Postgres, url.to_string())
        } else if let Some(rest) = url
            .strip_prefix("sqlite3:")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            (Backend::Sqlite, format!("sqlite:{rest}"))
        } else {
            return Err(ConfigError::new(
                "database.url",
                "must start with postgres://, postgresql://, sqlite: or sqlite3:",
            ));
        };
        if section.max_connections == 0 || section.max_connections > 1000 {
            return Err(ConfigError::new(
                "database.max_connections",
                "must be between 1 and 1000",
            ));
        }
        for (key, ms) in [
            ("database.acquire_timeout_ms", section.acquire_timeout_ms),
            ("database.query_timeout_ms", section.query_timeout_ms),
        ] {
            if !(1..=60_000).contains(&ms) {
                return Err(ConfigError::new(key, "must be between 1 and 60000"));
            }
        }
        if section.cache_max_entries == 0 {
            return Err(ConfigError::new(
                "database.cache_max_entries",
                "must be at least 1 (turn the cache off with cache_ttl_ms = 0)",
            ));
        }
        Ok(Some(Arc::new(Database {
            url,
            backend,
            cache: Cache::new(
                Duration::from_millis(section.cache_ttl_ms),
                section.cache_max_entries,
            ),
            section: section.clone(),
            pool: OnceLock::new(),
            healthy: AtomicBool::new(true),
            last_error: Mutex::new(None),
            queries: AtomicU64::new(0),
            cache_hits: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            last_outcome: Mutex::new(None),
        })))
    }

    /// `postgres` or `sqlite`, for `config check`.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The pool, created on first use (sqlx needs the runtime for its housekeeping).
    fn pool(&self) -> Result<&Pool, DbError> {
        let made = self.pool.get_or_init(|| {
            let acquire = Duration::from_millis(self.section.acquire_timeout_ms);
            match self.backend {
                Backend::Postgres => PgPoolOptions::new()
                    .max_connections(self.section.max_connections)
                    .acquire_timeout(acquire)
                    .connect_lazy(&self.url)
                    .map(Pool::Postgres)
                    .map_err(|e| e.to_string()),
                Backend::Sqlite => self
                    .url
                    .parse::<SqliteConnectOptions>()
                    .map(|options| {
                        Pool::Sqlite(
                            SqlitePoolOptions::new()
                                .max_connections(self.section.max_connections)
                                .acquire_timeout(acquire)
                                .connect_lazy_with(options),
                        )
                    })
                    .map_err(|e| e.to_string()),
            }
        });
        made.as_ref().map_err(|e| DbError::Failed(e.clone()))
    }

    /// The first row `query` returns with `binds`, or `None`. `fresh` skips the cache (a
    /// re-check must see a deleted row); the answer is cached either way.
    pub async fn first_row(
        &self,
        query: &Query,
        binds: Vec<Bound>,
        fresh: bool,
    ) -> Result<Option<Arc<Row>>, DbError> {
        let key = (query.sql.clone(), binds);
        if !fresh && let Some(answer) = self.cache.get(&key, Instant::now()) {
            self.cache_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(answer);
        }
        self.queries.fetch_add(1, Ordering::Relaxed);
        let timeout = Duration::from_millis(self.section.query_timeout_ms);
        let outcome = match tokio::time::timeout(timeout, self.run(&query.sql, &key.1)).await {
            Ok(result) => result,
            Err(_) => Err(DbError::Timeout(self.section.query_timeout_ms)),
        };
        self.record(&outcome);
        let answer = outcome?.map(Arc::new);
        self.cache.put(key, answer.clone(), Instant::now());
        Ok(answer)
    }

    async fn run(&self, sql: &str, binds: &[Bound]) -> Result<Option<Row>, DbError> {
        let failed = |e: sqlx::Error| match e {
            sqlx::Error::PoolTimedOut => Err(DbError::Timeout(self.section.acquire_timeout_ms)),
            other => Err(DbError::Failed(other.to_string())),
        };
        match self.pool()? {
            Pool::Postgres(pool) => {
                match bind_all(sqlx::query(sql), binds).fetch_optional(pool).await {
                    Ok(row) => row.map(|r| pg_row(&r)).transpose(),
                    Err(e) => failed(e),
                }
            }
            Pool::Sqlite(pool) => {
                match bind_all(sqlx::query(sql), binds).fetch_optional(pool).await {
                    Ok(row) => row.map(|r| sqlite_row(&r)).transpose(),
                    Err(e) => failed(e),
                }
            }
        }
    }

    fn record<T>(&self, outcome: &Result<T, DbError>) {
        *self.last_outcome.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        match outcome {
            Ok(_) => {
                self.healthy.store(true, Ordering::Relaxed);
                *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = None;
            }
            // A query the database refused (bad SQL, a type it will not compare) says nothing
            // about its health; being unreachable or slow does.
            Err(DbError::UnsupportedColumn { .. }) => {}
            Err(e) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                if matches!(e, DbError::Timeout(_) | DbError::Failed(_)) {
                    self.healthy.store(false, Ordering::Relaxed);
                }
                *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(e.to_string());
            }
        }
    }

    /// What `/health` and `/stats` show.
    pub fn status(&self) -> DatabaseStatus {
        DatabaseStatus {
            backend: self.backend,
            healthy: self.healthy.load(Ordering::Relaxed),
            last_error: self
                .last_error
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            queries: self.queries.load(Ordering::Relaxed),
            cache_hits: self.cache_hits.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            cached: self.cache.len(),
        }
    }

    /// Probes the database (`SELECT 1`) whenever nothing else has queried it for
    /// `health_check_secs`, so `/health` notices an outage (and a recovery) without traffic.
    /// Runs until `stop` is cancelled.
    pub async fn watch_health(self: Arc<Self>, stop: tokio_util::sync::CancellationToken) {
        let every = Duration::from_secs(self.section.health_check_secs);
        if every.is_zero() {
            return;
        }
        let probe = Query {
            sql: Arc::from("SELECT 1 AS ok"),
            params: 0,
        };
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
            let last = *self.last_outcome.lock().unwrap_or_else(|e| e.into_inner());
            if last.is_none_or(|at| at.elapsed() >= every) {
                let _ = self.first_row(&probe, Vec::new(), true).await;
            }
        }
    }
}

/// Binds each value to its `$n`, in order, for either driver.
fn bind_all<'q, DB>(
    mut query: sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>,
    binds: &'q [Bound],
) -> sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>
where
    DB: sqlx::Database,
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<String>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    for b in binds {
        query = match b {
            Bound::Null => query.bind(None::<String>),
            Bound::Int(n) => query.bind(*n),
            Bound::Text(s) => query.bind(s.as_str()),
        };
    }
    query
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_cast_like_active_record() {
        let s = |t: &str| active_record_integer(&Value::from(t));
        assert_eq!(s("1 OR 1=1"), Some(1));
        assert_eq!(s("  12abc"), Some(12));
        assert_eq!(s("-3"), Some(-3));
        assert_eq!(s("+4"), Some(4));
        assert_eq!(s("1_000"), Some(1000));
        assert_eq!(s("1__0"), Some(1));
        assert_eq!(s("abc"), None);
        assert_eq!(s(""), None);
        assert_eq!(s("   "), None);
        assert_eq!(s("99999999999999999999"), None);
        assert_eq!(active_record_integer(&Value::Float(2.9)), Some(2));
        assert_eq!(active_record_integer(&Value::Bool(true)), Some(1));
        assert_eq!(active_record_integer(&Value::Null), None);
        assert_eq!(active_record_integer(&Value::Array(vec![])), None);
        assert_eq!(active_record_integer(&Value::from(7)), Some(7));
    }

    #[test]
    fn queries_are_single_selects_with_numbered_parameters() {
        let q = Query::compile("SELECT id FROM users WHERE id = $1 AND x = $2;", "k").unwrap();
        assert_eq!(q.params, 2);
        assert_eq!(q.sql(), "SELECT id FROM users WHERE id = $1 AND x = $2");
        for bad in [
            "DELETE FROM users",
            "SELECT 1; DROP TABLE users",
            "SELECT $2",
            "SELECT $0",
        ] {
            assert_eq!(Query::compile(bad, "k").unwrap_err().key, "k", "{bad}");
        }
        assert_eq!(
            Query::compile("with x as (select 1) select * from x", "k")
                .unwrap()
                .params,
            0
        );
    }

    #[test]
    fn urls_pick_the_driver() {
        let section = |url: &str| DatabaseSection {
            url: url.into(),
            ..DatabaseSection::default()
        };
        assert!(Database::compile(&section("")).unwrap().is_none());
        let db = Database::compile(&section("sqlite3:db/production.sqlite3"))
            .unwrap()
            .unwrap();
        assert_eq!(db.backend(), Backend::Sqlite);
        assert_eq!(db.url, "sqlite:db/production.sqlite3");
        let db = Database::compile(&section("postgres://u@127.0.0.1/shop"))
            .unwrap()
            .unwrap();
        assert_eq!(db.backend(), Backend::Postgres);
        assert_eq!(
            Database::compile(&section("mysql://x")).unwrap_err().key,
            "database.url"
        );
    }

    #[tokio::test]
    async fn sqlite_rows_are_typed_and_values_bound() {
        let dir = std::env::temp_dir().join(format!("ferrocable-db-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("t.sqlite3");
        let _ = std::fs::remove_file(&file);
        let url = format!("sqlite:{}?mode=rwc", file.display());
        let db = Database::compile(&DatabaseSection {
            url: url.clone(),
            ..DatabaseSection::default()
        })
        .unwrap()
        .unwrap();
        let setup = SqlitePool::connect(&url).await.unwrap();
        for sql in [
            "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, score REAL)",
            "INSERT INTO users VALUES (1, 'Ann', 1.5), (2, 'Bob''); --', NULL)",
        ] {
            sqlx::query(sql).execute(&setup).await.unwrap();
        }
        let q = Query::compile("SELECT id, name, score FROM users WHERE name = $1", "k").unwrap();
        let row = db
            .first_row(&q, vec![Bound::Text("Bob'); --".into())], false)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row[0], ("id".to_string(), Value::from(2)));
        assert_eq!(row[1].1, Value::from("Bob'); --"));
        assert_eq!(row[2].1, Value::Null);
        let none = db
            .first_row(&q, vec![Bound::Text("x' OR '1'='1".into())], false)
            .await
            .unwrap();
        assert!(none.is_none());
        let status = db.status();
        assert_eq!(status.queries, 2);
        assert!(status.healthy);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
