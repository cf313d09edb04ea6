//! How `cable-bench run` broadcasts, the way a Rails app publishes through each adapter:
//! Redis `PUBLISH <prefix>:<stream>` (pipelined on one connection), Solid Cable's INSERT
//! (one row per broadcast, autocommit, as `SolidCable::Message.broadcast` does) on SQLite or
//! PostgreSQL, or PostgreSQL `NOTIFY` (Action Cable's PostgreSQL adapter). Every broadcast
//! carries its send time (µs since the epoch), taken right before it is handed over.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::client::now_us;
use crate::payload::Payloads;
use crate::wire;

/// One of the three ways to publish.
pub(crate) enum Publisher {
    Redis(RedisPublisher),
    Sql(SqlPublisher),
}

impl Publisher {
    /// Connects the publisher `via` names (`redis`, `solid_cable`, `notify`).
    pub(crate) async fn connect(
        via: &str,
        redis: &str,
        database: &str,
        prefix: &str,
        stream_prefix: &str,
        streams: u64,
        payloads: Payloads,
    ) -> Result<Publisher, String> {
        let channels = channel_names(prefix, stream_prefix, streams);
        match via {
            "redis" => Ok(Publisher::Redis(
                RedisPublisher::connect(redis, channels, payloads).await?,
            )),
            "solid_cable" | "notify" => Ok(Publisher::Sql(
                SqlPublisher::connect(via, database, channels, payloads).await?,
            )),
            other => Err(format!("--via {other}: redis, solid_cable or notify")),
        }
    }

    /// Publishes broadcast g of window w for each g in `gs`.
    pub(crate) async fn publish(&mut self, gs: std::ops::Range<u64>, w: u64) -> Result<(), String> {
        match self {
            Publisher::Redis(p) => p.publish(gs, w).await,
            Publisher::Sql(p) => p.publish(gs, w).await,
        }
    }

    /// Waits (up to `within`) until every publish has been answered.
    pub(crate) async fn wait_replies(&self, within: Duration) {
        if let Publisher::Redis(p) = self {
            p.wait_replies(within).await;
        }
    }

    /// PUBLISHes nobody received (Redis only).
    pub(crate) fn zero_receivers(&self) -> u64 {
        match self {
            Publisher::Redis(p) => p.zero_receivers.get(),
            Publisher::Sql(_) => 0,
        }
    }

    /// Publishes that failed.
    pub(crate) fn errors(&self) -> u64 {
        match self {
            Publisher::Redis(p) => p.errors.get(),
            Publisher::Sql(p) => p.errors,
        }
    }
}

/// The Rails channel of each stream: `<prefix>:<stream_prefix><s>`, or without the prefix.
fn channel_names(prefix: &str, stream_prefix: &str, streams: u64) -> Vec<Vec<u8>> {
    (0..streams.max(1))
        .map(|s| {
            if prefix.is_empty() {
                format!("{stream_prefix}{s}").into_bytes()
            } else {
                format!("{prefix}:{stream_prefix}{s}").into_bytes()
            }
        })
        .collect()
}

/// PUBLISH over one pipelined Redis connection; replies are counted by a reader task.
pub(crate) struct RedisPublisher {
    w: tokio::net::tcp::OwnedWriteHalf,
    replies: Rc<Cell<u64>>,
    zero_receivers: Rc<Cell<u64>>,
    errors: Rc<Cell<u64>>,
    sent: u64,
    buf: Vec<u8>,
    payload: Vec<u8>,
    channels: Vec<Vec<u8>>,
    payloads: Payloads,
}

impl RedisPublisher {
    async fn connect(
        url: &str,
        channels: Vec<Vec<u8>>,
        payloads: Payloads,
    ) -> Result<RedisPublisher, String> {
        let addr = wire::redis_addr(url)?;
        let s = TcpStream::connect(&addr)
            .await
            .map_err(|e| format!("redis {addr}: {e}"))?;
        let _ = s.set_nodelay(true);
        let (mut r, w) = s.into_split();
        let replies = Rc::new(Cell::new(0));
        let zero = Rc::new(Cell::new(0));
        let errors = Rc::new(Cell::new(0));
        let (r2, z2, e2) = (replies.clone(), zero.clone(), errors.clone());
        tokio::task::spawn_local(async move {
            let mut buf = vec![0u8; 16384];
            let mut have = 0;
            loop {
                if have == buf.len() {
                    buf.resize(buf.len() * 2, 0);
                }
                let n = match r.read(&mut buf[have..]).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                have += n;
                let mut pos = 0;
                while let Some((v, used)) = wire::parse_resp(&buf[pos..have]) {
                    pos += used;
                    r2.set(r2.get() + 1);
                    match v {
                        wire::Resp::Int(0) => z2.set(z2.get() + 1),
                        wire::Resp::Int(_) => {}
                        _ => e2.set(e2.get() + 1),
                    }
                }
                buf.copy_within(pos..have, 0);
                have -= pos;
            }
        });
        Ok(RedisPublisher {
            w,
            replies,
            zero_receivers: zero,
            errors,
            sent: 0,
            buf: Vec::new(),
            payload: Vec::new(),
            channels,
            payloads,
        })
    }

    /// Queues `PUBLISH <channel of g> <payload>` for each g in `gs` and writes them at once.
    async fn publish(&mut self, gs: std::ops::Range<u64>, w: u64) -> Result<(), String> {
        self.buf.clear();
        let t = now_us();
        for g in gs {
            let ch = &self.channels[(g % self.channels.len() as u64) as usize];
            self.payloads.write(g, w, t, &mut self.payload);
            wire::resp_command(&[b"PUBLISH", ch, &self.payload], &mut self.buf);
            self.sent += 1;
        }
        self.w
            .write_all(&self.buf)
            .await
            .map_err(|e| format!("redis write: {e}"))
    }

    async fn wait_replies(&self, within: Duration) {
        let deadline = Instant::now() + within;
        while self.replies.get() < self.sent && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// Solid Cable's INSERT or PostgreSQL's NOTIFY, one broadcast at a time (each a statement of
/// its own, as each `ActionCable.server.broadcast` is).
pub(crate) struct SqlPublisher {
    target: SqlTarget,
    channels: Vec<Vec<u8>>,
    hashes: Vec<i64>,
    payload: Vec<u8>,
    payloads: Payloads,
    errors: u64,
}

enum SqlTarget {
    SolidCableSqlite(SqlitePool),
    SolidCablePostgres(PgPool),
    Notify(PgPool),
}

/// Solid Cable's channel_hash: the first 8 bytes of SHA256(channel), signed big-endian.
fn channel_hash(channel: &[u8]) -> i64 {
    let d = Sha256::digest(channel);
    let mut first = [0u8; 8];
    first.copy_from_slice(&d[..8]);
    i64::from_be_bytes(first)
}

const INSERT_SQLITE: &str = "INSERT INTO \"solid_cable_messages\" (\"created_at\",\"channel\",\"payload\",\"channel_hash\") \
     VALUES (strftime('%Y-%m-%d %H:%M:%f', 'now'), ?, ?, ?)";
const INSERT_POSTGRES: &str = "INSERT INTO \"solid_cable_messages\" (\"created_at\",\"channel\",\"payload\",\"channel_hash\") \
     VALUES (now()::timestamp, $1, $2, $3)";

impl SqlPublisher {
    async fn connect(
        via: &str,
        database: &str,
        channels: Vec<Vec<u8>>,
        payloads: Payloads,
    ) -> Result<SqlPublisher, String> {
        let err = |e: sqlx::Error| format!("{database}: {e}");
        let target = if let Some(path) = database
            .strip_prefix("sqlite3:")
            .or_else(|| database.strip_prefix("sqlite:"))
        {
            if via == "notify" {
                return Err("--via notify needs a postgres:// --database".into());
            }
            // Rails' sqlite3 adapter's defaults: WAL, synchronous NORMAL.
            let options = SqliteConnectOptions::new()
                .filename(path.trim_start_matches("//"))
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(5));
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(options)
                .await
                .map_err(err)?;
            SqlTarget::SolidCableSqlite(pool)
        } else if database.starts_with("postgres://") || database.starts_with("postgresql://") {
            let pool = PgPoolOptions::new()
                .max_connections(1)
                .connect(database)
                .await
                .map_err(err)?;
            if via == "notify" {
                SqlTarget::Notify(pool)
            } else {
                SqlTarget::SolidCablePostgres(pool)
            }
        } else {
            return Err(format!(
                "--database {database:?}: sqlite3:PATH or postgres://..."
            ));
        };
        let hashes = channels.iter().map(|c| channel_hash(c)).collect();
        Ok(SqlPublisher {
            target,
            channels,
            hashes,
            payload: Vec::new(),
            payloads,
            errors: 0,
        })
    }

    async fn publish(&mut self, gs: std::ops::Range<u64>, w: u64) -> Result<(), String> {
        for g in gs {
            let i = (g % self.channels.len() as u64) as usize;
            self.payloads.write(g, w, now_us(), &mut self.payload);
            let (channel, hash, payload) = (&self.channels[i], self.hashes[i], &self.payload[..]);
            let result = match &self.target {
                SqlTarget::SolidCableSqlite(pool) => sqlx::query(INSERT_SQLITE)
                    .bind(channel.as_slice())
                    .bind(payload)
                    .bind(hash)
                    .execute(pool)
                    .await
                    .map(|_| ()),
                SqlTarget::SolidCablePostgres(pool) => sqlx::query(INSERT_POSTGRES)
                    .bind(channel.as_slice())
                    .bind(payload)
                    .bind(hash)
                    .execute(pool)
                    .await
                    .map(|_| ()),
                SqlTarget::Notify(pool) => sqlx::query("SELECT pg_notify($1, $2)")
                    .bind(String::from_utf8_lossy(channel).as_ref())
                    .bind(String::from_utf8_lossy(payload).as_ref())
                    .execute(pool)
                    .await
                    .map(|_| ()),
            };
            if let Err(e) = result {
                self.errors += 1;
                if self.errors == 1 {
                    eprintln!("cable-bench: publish failed: {e}");
                }
            }
        }
        Ok(())
    }
}

/// `cable-bench db-setup`: lays out Solid Cable's table in `database` with the statements
/// Rails ran (a recording of bin/record-inputs: fixtures/inputs/rails-7.2/solid_cable*.json).
pub(crate) fn db_setup(database: &str, schema: &std::path::Path) -> Result<(), String> {
    let text = std::fs::read_to_string(schema).map_err(|e| format!("{}: {e}", schema.display()))?;
    let recording: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", schema.display()))?;
    let statements: Vec<String> = recording["schema"]["ran"]
        .as_array()
        .ok_or("no schema.ran in the recording")?
        .iter()
        .filter(|s| s["binds"].as_array().is_some_and(|b| b.is_empty()))
        .filter_map(|s| s["sql"].as_str())
        .filter(|sql| !sql.starts_with("SELECT") && !sql.starts_with("SHOW"))
        .map(str::to_string)
        .collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        use sqlx::Connection;
        let err = |e: sqlx::Error| format!("{database}: {e}");
        if let Some(path) = database.strip_prefix("sqlite3:") {
            let options = SqliteConnectOptions::new()
                .filename(path.trim_start_matches("//"))
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal);
            let mut conn = sqlx::SqliteConnection::connect_with(&options)
                .await
                .map_err(err)?;
            for sql in &statements {
                sqlx::raw_sql(sql).execute(&mut conn).await.map_err(err)?;
            }
        } else {
            let mut conn = sqlx::PgConnection::connect(database).await.map_err(err)?;
            for sql in &statements {
                sqlx::raw_sql(sql).execute(&mut conn).await.map_err(err)?;
            }
        }
        Ok(())
    })
}
