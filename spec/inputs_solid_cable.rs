use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{Connection, Row};

use crate::support::db::Postgres;
use crate::support::recorded::{Case, Clients, Recording, frame};
use crate::support::*;

/// A SQLite cable database laid out by the statements Rails ran (the recording's schema),
/// in WAL mode as Rails' sqlite3 adapter sets it.
async fn rails_sqlite(path: &Path) -> SqliteConnection {
    let rec = Recording::load("solid_cable");
    assert_eq!(rec.json["schema"]["journal_mode"], "wal");
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true);
    let mut conn = SqliteConnection::connect_with(&options).await.unwrap();
    sqlx::raw_sql("PRAGMA journal_mode = WAL")
        .execute(&mut conn)
        .await
        .unwrap();
    for sql in rec.schema_statements(false) {
        sqlx::raw_sql(&sql).execute(&mut conn).await.unwrap();
    }
    // The table Rails made is the table we made.
    let made: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT type, name, sql FROM sqlite_master WHERE tbl_name = 'solid_cable_messages' ORDER BY rowid",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let recorded: Vec<(String, String, String)> =
        serde_json::from_value(rec.json["schema"]["sqlite_master"].clone()).unwrap();
    assert_eq!(made, recorded);
    conn
}

/// What Solid Cable's INSERT for a broadcast is, with a payload of our choosing (for the
/// fault cases; the recorded cases run Rails' own statements).
async fn insert(conn: &mut SqliteConnection, channel: &str, payload: &[u8]) -> i64 {
    sqlx::query(
        "INSERT INTO solid_cable_messages (created_at, channel, payload, channel_hash) \
         VALUES (strftime('%Y-%m-%d %H:%M:%f', 'now'), ?, ?, ?) RETURNING id",
    )
    .bind(channel.as_bytes())
    .bind(payload)
    .bind(solid_cable_hash(channel))
    .fetch_one(conn)
    .await
    .unwrap()
    .get(0)
}

/// Solid Cable's channel_hash, computed here independently of the server's code.
pub fn solid_cable_hash(channel: &str) -> i64 {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(channel.as_bytes());
    i64::from_be_bytes(d[..8].try_into().unwrap())
}

fn sqlite_url(path: &Path) -> String {
    format!("sqlite3:{}", path.display())
}

/// Checks a stored row against what Rails stored for the case (every column but id and
/// created_at, whose value is a clock reading: its type is compared).
async fn assert_stored_like_rails(conn: &mut SqliteConnection, id: i64, case: &Case) {
    let row = sqlx::query(
        "SELECT typeof(channel), hex(channel), typeof(payload), hex(payload), typeof(created_at), \
         typeof(channel_hash), channel_hash FROM solid_cable_messages WHERE id = ?",
    )
    .bind(id)
    .fetch_one(conn)
    .await
    .unwrap();
    let rails = case.row();
    let got = |i: usize| row.get::<String, _>(i);
    assert_eq!(got(0), rails["channel"]["type"], "{}", case.name);
    assert_eq!(got(1), rails["channel"]["hex"], "{}", case.name);
    assert_eq!(got(2), rails["payload"]["type"], "{}", case.name);
    assert_eq!(got(3), rails["payload"]["hex"], "{}", case.name);
    assert_eq!(got(4), rails["created_at"]["type"], "{}", case.name);
    assert_eq!(got(5), rails["channel_hash"]["type"], "{}", case.name);
    assert_eq!(
        row.get::<i64, _>(6),
        rails["channel_hash"]["value"],
        "{}",
        case.name
    );
}

#[tokio::test]
async fn rails_solid_cable_rows_arrive_byte_exact_and_history_is_not_replayed() {
    let dir = TempDir::new("solid-cable");
    let db = dir.0.join("production_cable.sqlite3");
    let mut conn = rails_sqlite(&db).await;
    // Rows from before ferrocable started are history: never delivered.
    for case in Recording::load("solid_cable").cases().iter().take(3) {
        for sql in case.sql() {
            sqlx::raw_sql(&sql).execute(&mut conn).await.unwrap();
        }
    }
    let server = Server::start_profile("solid_cable", &[("DATABASE_URL", &sqlite_url(&db))]);
    let rec = Recording::load("solid_cable");
    let mut clients = Clients::subscribe(&server, &rec).await;
    for case in rec.cases() {
        // Exactly the INSERT Active Record ran for Solid Cable.
        for sql in case.sql() {
            sqlx::raw_sql(&sql).execute(&mut conn).await.unwrap();
        }
        let id: i64 = sqlx::query_scalar("SELECT MAX(id) FROM solid_cable_messages")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_stored_like_rails(&mut conn, id, &case).await;
        let ws = clients.of(&case.stream);
        assert_eq!(case.frames.len(), 1, "{}", case.name);
        ws.expect(&case.frames[0]).await;
    }
    clients.expect_silence(300).await;
    let stats = server.stats().await;
    let input = &stats["inputs"][0];
    assert_eq!(input["kind"], "solid_cable");
    assert_eq!(input["messages"], rec.cases().len());
    assert_eq!(input["detail"]["database"], "sqlite");
}

/// The profile with other polling settings, on a SQLite file.
fn solid_cable_server(db: &Path, extra: &str) -> Server {
    let profile = std::fs::read_to_string(db::repo().join("config/examples/solid_cable.toml"))
        .unwrap()
        .replace("polling_interval_ms = 100", extra);
    Server::start_with(&profile, &[("DATABASE_URL", &sqlite_url(db))])
}

#[tokio::test]
async fn a_burst_between_polls_arrives_once_in_order() {
    let dir = TempDir::new("solid-cable-burst");
    let db = dir.0.join("cable.sqlite3");
    let mut conn = rails_sqlite(&db).await;
    // Long pauses between polls, small batches: the burst spans many batches.
    let server = solid_cable_server(&db, "polling_interval_ms = 700\nbatch_size = 100");
    let (a, b) = (stream_identifier("burst_a"), stream_identifier("burst_b"));
    let mut wa = server.subscribed(&a).await;
    let mut wb = server.subscribed(&b).await;
    let mut tx = conn.begin().await.unwrap();
    for i in 0..1500 {
        let stream = if i % 3 == 0 { "burst_b" } else { "burst_a" };
        insert(&mut tx, stream, format!("{i}").as_bytes()).await;
        if i % 10 == 0 {
            insert(&mut tx, "nobody_listens", b"{}").await;
        }
    }
    tx.commit().await.unwrap();
    for i in 0..1500 {
        if i % 3 == 0 {
            wb.expect(&frame(&b, &i.to_string())).await;
        } else {
            wa.expect(&frame(&a, &i.to_string())).await;
        }
    }
    wa.expect_silence(1000).await;
    wb.expect_silence(0).await;
}

#[tokio::test]
async fn trimming_and_a_recreated_table_under_the_poller() {
    let dir = TempDir::new("solid-cable-trim");
    let db = dir.0.join("cable.sqlite3");
    let mut conn = rails_sqlite(&db).await;
    let server = solid_cable_server(&db, "polling_interval_ms = 50");
    let id = stream_identifier("chat_1");
    let mut ws = server.subscribed(&id).await;
    for i in 0..5 {
        insert(&mut conn, "chat_1", format!("{i}").as_bytes()).await;
        ws.expect(&frame(&id, &i.to_string())).await;
    }
    // Solid Cable's trim deletes old rows, up to the newest: ids keep growing (AUTOINCREMENT).
    sqlx::query("DELETE FROM solid_cable_messages")
        .execute(&mut conn)
        .await
        .unwrap();
    for i in 5..8 {
        insert(&mut conn, "chat_1", format!("{i}").as_bytes()).await;
        ws.expect(&frame(&id, &i.to_string())).await;
    }
    // A table dropped and made again starts at id 1: an idle poller notices within ~2 s and
    // starts over at the new table's newest row (rows written before it noticed are not
    // delivered, documented in docs/INPUTS.md).
    sqlx::raw_sql("DELETE FROM sqlite_sequence")
        .execute(&mut conn)
        .await
        .unwrap();
    let rec = Recording::load("solid_cable");
    for sql in rec.schema_statements(true) {
        sqlx::raw_sql(&sql).execute(&mut conn).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(2600)).await;
    insert(&mut conn, "chat_1", b"\"after the restart\"").await;
    ws.expect(&frame(&id, "\"after the restart\"")).await;
    server.assert_logged("restarted below the last row read");
}

#[tokio::test]
async fn malformed_and_oversized_rows_are_skipped_counted_and_logged() {
    let dir = TempDir::new("solid-cable-bad");
    let db = dir.0.join("cable.sqlite3");
    let mut conn = rails_sqlite(&db).await;
    let server = solid_cable_server(&db, "polling_interval_ms = 50\nmax_payload_bytes = 1000");
    let id = stream_identifier("chat_1");
    let mut ws = server.subscribed(&id).await;
    // Not JSON: dropped by the hub, as Rails drops it.
    insert(&mut conn, "chat_1", b"not json").await;
    // Over max_payload_bytes: skipped without being read.
    insert(
        &mut conn,
        "chat_1",
        format!("\"{}\"", "x".repeat(2000)).as_bytes(),
    )
    .await;
    // Another channel whose hash collides with ours (forged): not ours.
    sqlx::query(
        "INSERT INTO solid_cable_messages (created_at, channel, payload, channel_hash) VALUES ('2024-01-01 00:00:00', ?, ?, ?)",
    )
    .bind(&b"other_channel"[..])
    .bind(&b"1"[..])
    .bind(solid_cable_hash("chat_1"))
    .execute(&mut conn)
    .await
    .unwrap();
    // Written as TEXT by hand rather than as a BLOB: still a broadcast.
    sqlx::query(
        "INSERT INTO solid_cable_messages (created_at, channel, payload, channel_hash) VALUES ('2024-01-01 00:00:00', 'chat_1', '{\"as\":\"text\"}', ?)",
    )
    .bind(solid_cable_hash("chat_1"))
    .execute(&mut conn)
    .await
    .unwrap();
    insert(&mut conn, "chat_1", br#"{"ok":true}"#).await;
    ws.expect(&frame(&id, r#"{"as":"text"}"#)).await;
    ws.expect(&frame(&id, r#"{"ok":true}"#)).await;
    ws.expect_silence(300).await;
    let stats = server.stats().await;
    assert_eq!(stats["broadcasts_invalid"], 1, "{stats}");
    assert_eq!(stats["inputs"][0]["rejected"]["oversized"], 1, "{stats}");
    server.assert_logged("skipped a Solid Cable row");
}

#[tokio::test]
async fn a_missing_database_at_boot_delays_confirms_until_it_exists() {
    let dir = TempDir::new("solid-cable-missing");
    let db: PathBuf = dir.0.join("storage/production_cable.sqlite3");
    let server = Server::start_profile("solid_cable", &[("DATABASE_URL", &sqlite_url(&db))]);
    let body = server.wait_health(503, Duration::from_secs(5)).await;
    assert_eq!(body["inputs"][0]["kind"], "solid_cable");
    let id = stream_identifier("chat_1");
    let (_, ws) = server.connect("/cable", &[]).await;
    let mut ws = ws.unwrap();
    ws.expect(r#"{"type":"welcome"}"#).await;
    ws.send_text(&subscribe(&id)).await;
    // Until the poller knows where the table ends, "confirmed" could not mean "live".
    ws.expect_silence(500).await;
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    let mut conn = rails_sqlite(&db).await;
    ws.expect(&confirm(&id)).await;
    server.wait_health(200, Duration::from_secs(10)).await;
    insert(&mut conn, "chat_1", b"1").await;
    ws.expect(&frame(&id, "1")).await;
}

/// Solid Cable on PostgreSQL, its table made by the statements Rails ran.
async fn rails_postgres(pg: &Postgres) -> sqlx::PgConnection {
    let rec = Recording::load("solid_cable_postgresql");
    let mut conn = pg.connect().await;
    for sql in rec.schema_statements(false) {
        sqlx::raw_sql(&sql).execute(&mut conn).await.unwrap();
    }
    conn
}

async fn pg_insert(conn: &mut sqlx::PgConnection, channel: &str, payload: &str) {
    sqlx::query(
        "INSERT INTO solid_cable_messages (created_at, channel, payload, channel_hash) VALUES (now(), $1, $2, $3)",
    )
    .bind(channel.as_bytes())
    .bind(payload.as_bytes())
    .bind(solid_cable_hash(channel))
    .execute(conn)
    .await
    .unwrap();
}

#[tokio::test]
async fn rails_solid_cable_on_postgresql_byte_exact_with_late_commits() {
    let pg = Postgres::start();
    let mut conn = rails_postgres(&pg).await;
    let server = Server::start_profile("solid_cable", &[("DATABASE_URL", &pg.url())]);
    let rec = Recording::load("solid_cable_postgresql");
    let mut clients = Clients::subscribe(&server, &rec).await;
    for case in rec.cases() {
        for sql in case.sql() {
            sqlx::raw_sql(&sql).execute(&mut conn).await.unwrap();
        }
        let ws = clients.of(&case.stream);
        ws.expect(&case.frames[0]).await;
    }
    // A transaction that took its id first but commits after a later one was read: its row
    // is still delivered, once.
    let id = stream_identifier("chat_1");
    let ws = clients.of("chat_1");
    let mut slow = pg.connect().await;
    let mut tx = slow.begin().await.unwrap();
    pg_insert(&mut tx, "chat_1", "\"slow\"").await;
    pg_insert(&mut conn, "chat_1", "\"fast\"").await;
    ws.expect(&frame(&id, "\"fast\"")).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    tx.commit().await.unwrap();
    ws.expect(&frame(&id, "\"slow\"")).await;
    ws.expect_silence(500).await;
    let stats = server.stats().await;
    assert_eq!(stats["inputs"][0]["detail"]["database"], "postgresql");
}

#[tokio::test]
async fn solid_cable_on_postgresql_survives_a_restart_and_a_stalled_poll() {
    // synchronous_commit on: a row committed just before the crash survives it.
    let mut pg = Postgres::start_with(&["synchronous_commit=on"]);
    let mut conn = rails_postgres(&pg).await;
    let profile = std::fs::read_to_string(db::repo().join("config/examples/solid_cable.toml"))
        .unwrap()
        .replace("polling_interval_ms = 100", "polling_interval_ms = 1000");
    let server = Server::start_with(&profile, &[("DATABASE_URL", &pg.url())]);
    let id = stream_identifier("chat_1");
    let mut ws = server.subscribed(&id).await;
    // Committed between two polls, then the database crashes: delivered after it is back.
    pg_insert(&mut conn, "chat_1", "1").await;
    drop(conn);
    pg.kill();
    server.wait_health(503, Duration::from_secs(15)).await;
    pg.restart();
    server.wait_health(200, Duration::from_secs(15)).await;
    ws.expect(&frame(&id, "1")).await;
    let mut conn = pg.connect().await;
    pg_insert(&mut conn, "chat_1", "2").await;
    ws.expect(&frame(&id, "2")).await;

    // A poll stuck behind a lock for longer than a query may take: the input reports the
    // database unreachable, then reads on; the rows written meanwhile arrive once.
    let mut locker = pg.connect().await;
    let mut tx = locker.begin().await.unwrap();
    sqlx::raw_sql("LOCK TABLE solid_cable_messages IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await
        .unwrap();
    let writer = tokio::spawn({
        let url = pg.url();
        async move {
            let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
            for i in 3..6 {
                pg_insert(&mut c, "chat_1", &i.to_string()).await;
            }
        }
    });
    server.wait_health(503, Duration::from_secs(12)).await;
    tx.commit().await.unwrap();
    writer.await.unwrap();
    server.wait_health(200, Duration::from_secs(15)).await;
    for i in 3..6 {
        ws.expect(&frame(&id, &i.to_string())).await;
    }
    ws.expect_silence(1500).await;
}
