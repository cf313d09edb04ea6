use std::time::Duration;

use crate::support::db::Postgres;
use crate::support::recorded::{Clients, Recording, frame};
use crate::support::*;

/// The identifiers in `LISTEN "<name>"` statements, as PostgreSQL names them (cut at 63
/// bytes), from its log lines `<application>|LOG:  statement: LISTEN "<name>"`.
fn listened(log: &str, application: &str) -> Vec<String> {
    log.lines()
        .filter_map(|l| l.strip_prefix(&format!("{application}|LOG:  statement: ")))
        .flat_map(|statement| statement.split(';'))
        .filter_map(|s| s.trim().strip_prefix("LISTEN \""))
        .map(|rest| cut(&rest[..rest.len() - 1].replace("\"\"", "\"")).to_string())
        .collect()
}

fn cut(name: &str) -> &str {
    let mut end = name.len().min(63);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

/// Replays one recording of Rails 7.2's PostgreSQL adapter: ferrocable LISTENs to the
/// channels Rails LISTENed to, and each NOTIFY Rails ran, run verbatim, reaches ferrocable's
/// client as the frame Rails' client received.
async fn replay(recording: &str, prefix: &str) {
    let rec = Recording::load(recording);
    assert_eq!(rec.json["channel_prefix"].as_str().unwrap_or(""), prefix);
    let pg = Postgres::start_with(&["log_statement=all", "log_line_prefix=%a|"]);
    let url = pg.url();
    let server = if prefix.is_empty() {
        Server::start_profile("postgresql", &[("DATABASE_URL", &url)])
    } else {
        let profile = std::fs::read_to_string(db::repo().join("config/examples/postgresql.toml"))
            .unwrap()
            .replace(
                "channel_prefix = \"\"",
                &format!("channel_prefix = \"{prefix}\""),
            );
        Server::start_with(&profile, &[("DATABASE_URL", &url)])
    };
    let mut clients = Clients::subscribe(&server, &rec).await;
    // The channels ferrocable LISTENed to are the ones Rails LISTENed to.
    let rails: Vec<String> = rec.json["listen"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let l = l.as_str().unwrap();
            cut(&l["LISTEN \"".len()..l.len() - 1].replace("\"\"", "\"")).to_string()
        })
        .collect();
    let mut ours = listened(&pg.log(), "ferrocable");
    ours.sort();
    let mut theirs = rails.clone();
    theirs.sort();
    assert_eq!(ours, theirs, "LISTEN statements");

    let mut publisher = pg.connect().await;
    for case in rec.cases() {
        sqlx::raw_sql(case.notify())
            .execute(&mut publisher)
            .await
            .unwrap();
        let ws = clients.of(&case.stream);
        if case.frames.is_empty() {
            // Rails 7.2 loses this one (a multibyte name PostgreSQL cut at 63 bytes, see
            // spec/reference/inputs/README.md); ferrocable delivers it as Rails would have.
            assert_eq!(case.name, "multibyte_stream");
            ws.expect(&frame(&case.identifier, &case.payload())).await;
        }
        for expected in &case.frames {
            ws.expect(expected).await;
        }
    }
    clients.expect_silence(200).await;
    let stats = server.stats().await;
    assert_eq!(stats["inputs"][0]["kind"], "postgresql");
    assert_eq!(stats["inputs"][0]["messages"], rec.cases().len());
}

#[tokio::test]
async fn rails_postgresql_adapter_broadcasts_arrive_byte_exact() {
    replay("postgresql", "").await;
}

#[tokio::test]
async fn rails_postgresql_adapter_with_a_channel_prefix() {
    replay("postgresql_prefixed", "refapp_production").await;
}

#[tokio::test]
async fn confirmed_means_listening() {
    // A NOTIFY reaches only sessions that LISTENed before it committed: one sent the moment
    // the confirm arrives is delivered only if the confirm came after the LISTEN.
    let pg = Postgres::start();
    let server = Server::start_profile("postgresql", &[("DATABASE_URL", &pg.url())]);
    let mut publisher = pg.connect().await;
    for i in 0..20 {
        let identifier = format!(r#"{{"channel":"StreamChannel","stream":"race_{i}"}}"#);
        let mut ws = server.subscribed(&identifier).await;
        sqlx::raw_sql(&format!("NOTIFY \"race_{i}\", '{i}'"))
            .execute(&mut publisher)
            .await
            .unwrap();
        ws.expect(&frame(&identifier, &i.to_string())).await;
    }
}

#[tokio::test]
async fn ferrocable_publishes_with_notify_as_rails_does() {
    let pg = Postgres::start_with(&["log_statement=all", "log_line_prefix=%a|"]);
    let url = pg.url();
    // Two nodes on one database: a broadcast to one reaches the other's clients.
    let a = Server::start_profile("postgresql", &[("DATABASE_URL", &url)]);
    let b = Server::start_profile("postgresql", &[("DATABASE_URL", &url)]);
    let identifier = r#"{"channel":"StreamChannel","stream":"chat_1"}"#;
    let mut on_b = b.subscribed(identifier).await;
    let reply = a
        .broadcast("chat_1", r#"{"html":"<b>it's</b>","n":1}"#)
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text());
    on_b.expect(&frame(
        identifier,
        r#"{"html":"\u003cb\u003eit's\u003c/b\u003e","n":1}"#,
    ))
    .await;
    // A Rails LISTENer gets the payload as published.
    let mut rails = sqlx::postgres::PgListener::connect(&url).await.unwrap();
    rails.listen("chat_2").await.unwrap();
    assert_eq!(a.broadcast("chat_2", "[1,2]").await.status, 201);
    let n = tokio::time::timeout(ws::WAIT, rails.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((n.channel(), n.payload()), ("chat_2", "[1,2]"));
    // PostgreSQL refuses NOTIFY payloads of 8000 bytes or more: a clear 422, not a 503.
    let big = format!("\"{}\"", "x".repeat(8000));
    let reply = a.broadcast("chat_1", &big).await;
    assert_eq!(reply.status, 422, "{}", reply.text());
    assert!(reply.text().contains("8000"), "{}", reply.text());
    on_b.expect_silence(200).await;
}

#[tokio::test]
async fn postgres_down_at_boot_then_restarting_mid_stream() {
    let mut pg = Postgres::start();
    let url = pg.url();
    pg.kill();
    let server = Server::start_profile("postgresql", &[("DATABASE_URL", &url)]);
    let body = server.wait_health(503, Duration::from_secs(10)).await;
    assert_eq!(body["status"], "degraded");
    assert_eq!(body["inputs"][0]["kind"], "postgresql");
    let state = &body["inputs"][0]["state"];
    assert!(state == "connecting" || state == "disconnected", "{body}");
    // Sockets are served; the subscription waits for its LISTEN.
    let identifier = r#"{"channel":"StreamChannel","stream":"orders_7"}"#;
    let (_, ws) = server.connect("/cable", &[]).await;
    let mut ws = ws.unwrap();
    ws.expect(r#"{"type":"welcome"}"#).await;
    ws.send_text(&subscribe(identifier)).await;
    ws.expect_silence(500).await;

    pg.restart();
    ws.expect(&confirm(identifier)).await;
    server.wait_health(200, Duration::from_secs(10)).await;
    let mut publisher = pg.connect().await;
    sqlx::raw_sql("NOTIFY \"orders_7\", '1'")
        .execute(&mut publisher)
        .await
        .unwrap();
    ws.expect(&frame(identifier, "1")).await;
    drop(publisher);

    // A crash: the input notices, reconnects and LISTENs again.
    pg.kill();
    server.wait_health(503, Duration::from_secs(15)).await;
    pg.restart();
    let body = server.wait_health(200, Duration::from_secs(15)).await;
    assert!(
        body["inputs"][0]["connects"].as_u64().unwrap() >= 2,
        "{body}"
    );
    let mut publisher = pg.connect().await;
    sqlx::raw_sql("NOTIFY \"orders_7\", '2'")
        .execute(&mut publisher)
        .await
        .unwrap();
    ws.expect(&frame(identifier, "2")).await;
    assert!(
        server
            .logs()
            .contains("every live stream is LISTENed again"),
        "{}",
        server.logs()
    );
}
