//! The two queries the poller runs, on SQLite or PostgreSQL:
//!
//! - the newest id (`MAX(id)`), where a poller starts;
//! - the rows past its position (and the skipped ids it still looks for), in id order, at
//!   most `batch_size`: every row's id, and for rows whose `channel_hash` is wanted, the
//!   channel, the payload's size and, if it is within the limit, the payload. Rows of other
//!   channels cost their id only; an oversized payload is never read.
//!
//! The wanted hashes and the skipped ids are bound as one parameter each (a JSON array for
//! SQLite's `json_each`, an array for PostgreSQL's `ANY`), so the statement text never
//! changes and stays prepared.

use std::path::Path;
use std::time::Duration;

use futures_util::TryStreamExt;
use sqlx::postgres::PgConnectOptions;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};

/// How long connecting, or one query, may take before the database counts as unreachable.
pub(super) const OP_TIMEOUT: Duration = Duration::from_secs(5);

/// One row as the poller sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Row {
    pub(super) id: i64,
    /// `None` unless the row's channel hash is wanted.
    pub(super) wanted: Option<Wanted>,
}

/// The parts of a wanted row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Wanted {
    /// The `channel` column (`None` if NULL).
    pub(super) channel: Option<Vec<u8>>,
    /// The payload's size in bytes (`None` if NULL).
    pub(super) size: Option<i64>,
    /// The payload, when within the limit.
    pub(super) payload: Option<Vec<u8>>,
}

const SQLITE_POLL: &str = "SELECT id, w, \
       CASE WHEN w THEN CAST(channel AS BLOB) END, \
       CASE WHEN w THEN length(CAST(payload AS BLOB)) END, \
       CASE WHEN w AND length(CAST(payload AS BLOB)) <= ?3 THEN CAST(payload AS BLOB) END \
     FROM (SELECT id, channel, payload, \
             channel_hash IN (SELECT value FROM json_each(?1)) AS w \
           FROM solid_cable_messages \
           WHERE id > ?2 OR id IN (SELECT value FROM json_each(?4)) \
           ORDER BY id LIMIT ?5)";

const POSTGRES_POLL: &str = "SELECT id, w, \
       CASE WHEN w THEN channel END, \
       CASE WHEN w THEN octet_length(payload)::bigint END, \
       CASE WHEN w AND octet_length(payload) <= $3 THEN payload END \
     FROM (SELECT id, channel, payload, channel_hash = ANY($1) AS w \
           FROM solid_cable_messages \
           WHERE id > $2 OR id = ANY($4) \
           ORDER BY id LIMIT $5) m";

const MAX_ID: &str = "SELECT MAX(id) FROM solid_cable_messages";

/// An open cable database.
#[derive(Debug)]
pub(super) enum Database {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Database {
    /// Opens the SQLite file read-only (it must exist: Rails creates it).
    pub(super) async fn sqlite(path: &Path) -> Result<Database, sqlx::Error> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .read_only(true)
            .create_if_missing(false)
            .busy_timeout(OP_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(OP_TIMEOUT)
            .connect_with(options)
            .await?;
        Ok(Database::Sqlite(pool))
    }

    /// Connects to PostgreSQL.
    pub(super) async fn postgres(options: &PgConnectOptions) -> Result<Database, sqlx::Error> {
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(OP_TIMEOUT)
            .connect_with(options.clone())
            .await?;
        Ok(Database::Postgres(pool))
    }

    /// The newest row's id, 0 for an empty table.
    pub(super) async fn max_id(&self) -> Result<i64, sqlx::Error> {
        let max: Option<i64> = match self {
            Database::Sqlite(pool) => sqlx::query_scalar(MAX_ID).fetch_one(pool).await?,
            Database::Postgres(pool) => sqlx::query_scalar(MAX_ID).fetch_one(pool).await?,
        };
        Ok(max.unwrap_or(0))
    }

    /// The rows after `after` and those among `gaps`, in id order, at most `limit`; wanted
    /// ones (hash in `hashes`) with their channel and (within `max_payload`) payload.
    pub(super) async fn poll(
        &self,
        hashes: &[i64],
        after: i64,
        gaps: &[i64],
        max_payload: i64,
        limit: i64,
    ) -> Result<Vec<Row>, sqlx::Error> {
        let mut rows = Vec::new();
        match self {
            Database::Sqlite(pool) => {
                let mut stream = sqlx::query(SQLITE_POLL)
                    .bind(json_array(hashes))
                    .bind(after)
                    .bind(max_payload)
                    .bind(json_array(gaps))
                    .bind(limit)
                    .fetch(pool);
                while let Some(row) = stream.try_next().await? {
                    rows.push(decode(&row)?);
                }
            }
            Database::Postgres(pool) => {
                let mut stream = sqlx::query(POSTGRES_POLL)
                    .bind(hashes)
                    .bind(after)
                    .bind(max_payload)
                    .bind(gaps)
                    .bind(limit)
                    .fetch(pool);
                while let Some(row) = stream.try_next().await? {
                    rows.push(decode(&row)?);
                }
            }
        }
        Ok(rows)
    }
}

/// One result row (`id, w, channel, size, payload`), on either database.
fn decode<'r, R>(row: &'r R) -> Result<Row, sqlx::Error>
where
    R: sqlx::Row,
    usize: sqlx::ColumnIndex<R>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    bool: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Vec<u8>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let wanted = row.try_get::<Option<bool>, _>(1)?.unwrap_or(false);
    Ok(Row {
        id: row.try_get(0)?,
        wanted: if wanted {
            Some(Wanted {
                channel: row.try_get(2)?,
                size: row.try_get(3)?,
                payload: row.try_get(4)?,
            })
        } else {
            None
        },
    })
}

fn json_array(values: &[i64]) -> String {
    let mut out = String::with_capacity(values.len() * 21 + 2);
    out.push('[');
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&v.to_string());
    }
    out.push(']');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_arrays() {
        assert_eq!(json_array(&[]), "[]");
        assert_eq!(
            json_array(&[-1934204123788821583, 5]),
            "[-1934204123788821583,5]"
        );
    }
}
