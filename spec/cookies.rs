//! Cookie authentication with a database lookup, against the real binary and a real database
//! (a SQLite file, or a PostgreSQL started here): every hostile input of issue 10 point 6 gets
//! Rails' answer (101, the unauthorized disconnect, close 1000) or a clear error, nothing
//! panics, and a dead or slow database stalls nobody else.
//!
//! Cookies are minted with `ferrocable_rails` exactly as Rails writes them (the app
//! transcripts of `spec/apps.rs` check the same refusals against cookies real Rails made).

use std::time::{Duration, Instant};

use ferrocable_rails::{
    DEFAULT_KEY_SIZE, Envelope, HmacDigest, KeyDigest, KeyGenerator, MessageVerifier, SecretKeyBase,
};
use serde_json::{Value, json};

use crate::support::database::{Postgres, sqlite_execute, sqlite_file};
use crate::support::ws::{Frame, Ws};
use crate::support::{SECRET, Server, TempDir, message, subscribe};

const SCHEMA: &str = "
CREATE TABLE users (id INTEGER PRIMARY KEY, name VARCHAR NOT NULL);
CREATE TABLE sessions (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, token VARCHAR NOT NULL);
CREATE TABLE rooms (id INTEGER PRIMARY KEY, name VARCHAR NOT NULL);
CREATE TABLE memberships (room_id INTEGER NOT NULL, user_id INTEGER NOT NULL);
INSERT INTO users VALUES (1, 'Ann'), (2, 'Bob');
INSERT INTO sessions VALUES (1, 1, 'ann-token'), (2, 2, 'bob-token');
INSERT INTO rooms VALUES (1, 'Lobby'), (2, 'Private');
INSERT INTO memberships VALUES (1, 1), (1, 2), (2, 2);
";

/// The chat profile, with the cache TTL under test's control.
fn config(cache_ttl_ms: u64, query_timeout_ms: u64) -> String {
    format!(
        r#"
[origins]
check = false
[auth]
mode = "cookie"
app_module = "Chat"
[auth.cookie]
name = "session_token"
kind = "signed"
load_defaults = "7.2"
[auth.lookup]
query = "SELECT users.id, users.name FROM sessions JOIN users ON users.id = sessions.user_id WHERE sessions.token = $1"
[[auth.identifiers]]
name = "current_user"
claim = "id"
model = "User"
[database]
cache_ttl_ms = {cache_ttl_ms}
query_timeout_ms = {query_timeout_ms}
acquire_timeout_ms = {query_timeout_ms}
health_check_secs = 1
[channels.RoomChannel]
streams = ["{{channel_name}}:{{gid:Room/row.id}}"]
[channels.RoomChannel.authorize]
query = "SELECT rooms.id FROM rooms JOIN memberships ON memberships.room_id = rooms.id WHERE memberships.user_id = $1 AND rooms.id = $2"
bind = ["claims.id", "params.room_id:integer"]
[channels.LobbyChannel]
streams = ["lobby"]
[channels.WatchedRoomChannel]
streams = ["watched_room_{{row.id}}"]
[channels.WatchedRoomChannel.authorize]
query = "SELECT rooms.id FROM rooms JOIN memberships ON memberships.room_id = rooms.id WHERE memberships.user_id = $1 AND rooms.id = $2"
bind = ["claims.id", "params.room_id:integer"]
recheck_secs = 1
[channels.RoomMessagesChannel.signed_stream]
verifier = "turbo"
accept = ["/^[^:]*:messages$/"]
[channels.RoomMessagesChannel.authorize]
query = "SELECT rooms.id FROM rooms JOIN memberships ON memberships.room_id = rooms.id WHERE memberships.user_id = $1 AND rooms.id = $2"
bind = ["claims.id", "signed_stream.Room:integer"]
recheck_secs = 1
[channels.TypingChannel]
streams = ["{{channel_name}}:{{gid:Room/row.id}}"]
[channels.TypingChannel.authorize]
query = "SELECT rooms.id FROM rooms JOIN memberships ON memberships.room_id = rooms.id WHERE memberships.user_id = $1 AND rooms.id = $2"
bind = ["claims.id", "params.room_id"]
[channels.TypingChannel.actions.start]
broadcast_to = "{{channel_name}}:{{gid:Room/row.id}}"
payload = '{{"action":"start","user":{{"id":"{{claims.id}}","name":"{{claims.name}}"}}}}'
"#
    )
}

/// `cookies.signed[name] = value` of an app on `load_defaults 7.2` with `secret`.
fn signed_cookie(secret: &str, name: &str, value: Value, expires_at: Option<&str>) -> String {
    let generator = KeyGenerator::new(SecretKeyBase::new(secret.to_string()));
    let key = generator.generate_key("signed cookie", DEFAULT_KEY_SIZE, KeyDigest::Sha256);
    let token = MessageVerifier::new(key, HmacDigest::Sha1).generate(
        &value,
        &Envelope::Legacy {
            purpose: Some(format!("cookie.{name}")),
            expires_at: expires_at.map(str::to_string),
        },
    );
    // As a browser returns it: percent-encoded as Rack wrote it.
    token
        .replace('=', "%3D")
        .replace('/', "%2F")
        .replace('+', "%2B")
}

/// The `Cookie` header of a browser whose session row holds `token`.
fn session_cookie(token: &str) -> String {
    format!(
        "session_token={}",
        signed_cookie(SECRET, "session_token", json!(token), None)
    )
}

fn ann_cookie() -> String {
    session_cookie("ann-token")
}

/// The chat profile's server on the database at `url`.
async fn start_chat(url: String, cache_ttl_ms: u64, query_timeout_ms: u64) -> Server {
    tokio::task::spawn_blocking(move || {
        Server::start_with(
            &config(cache_ttl_ms, query_timeout_ms),
            &[("SECRET_KEY_BASE", SECRET), ("DATABASE_URL", &url)],
        )
    })
    .await
    .unwrap()
}

async fn chat_server(dir: &TempDir, cache_ttl_ms: u64) -> (Server, String) {
    let url = sqlite_file(dir, "chat.sqlite3", SCHEMA).await;
    let server = start_chat(url.clone(), cache_ttl_ms, 2000).await;
    (server, url)
}

/// The chat server on a fresh SQLite file (in the returned directory, which must outlive the
/// test), its database URL, and Ann's socket, welcomed.
async fn ann_in_chat(name: &str, cache_ttl_ms: u64) -> (TempDir, Server, String, Ws) {
    let dir = TempDir::new(name);
    let (server, url) = chat_server(&dir, cache_ttl_ms).await;
    let mut ann = open(&server, &ann_cookie()).await;
    expect_welcome(&mut ann).await;
    (dir, server, url, ann)
}

async fn open(server: &Server, cookie: &str) -> Ws {
    let (reply, ws) = server.connect("/cable", &[("Cookie", cookie)]).await;
    assert_eq!(reply.status, 101, "{}", reply.head);
    ws.unwrap()
}

async fn sub(ws: &mut Ws, identifier: &str) -> String {
    ws.send_text(&subscribe(identifier)).await;
    ws.recv_text().await
}

/// Rails' refusal: the unauthorized disconnect, then close 1000.
async fn expect_refused(ws: &mut Ws) {
    assert_eq!(
        ws.recv_text().await,
        r#"{"type":"disconnect","reason":"unauthorized","reconnect":false}"#
    );
    match ws.recv().await {
        Frame::Close { code, .. } => assert_eq!(code, Some(1000)),
        other => panic!("expected close 1000, got {other:?}"),
    }
}

async fn expect_welcome(ws: &mut Ws) {
    assert_eq!(ws.recv_text().await, r#"{"type":"welcome"}"#);
}

async fn refused_with(cookie: &str) -> Server {
    let dir = TempDir::new("cookie-refusal");
    let (server, _url) = chat_server(&dir, 0).await;
    let mut ws = open(&server, cookie).await;
    expect_refused(&mut ws).await;
    // And the server is fine: the real cookie still works.
    let mut ok = open(&server, &ann_cookie()).await;
    expect_welcome(&mut ok).await;
    server
}

#[tokio::test]
async fn a_signed_cookie_and_a_lookup_identify_the_user_and_stamp_the_relay() {
    let (_dir, server, _url, mut ann) = ann_in_chat("cookie-ok", 2000).await;
    let typing = r#"{"channel":"TypingChannel","room_id":1}"#;
    assert!(sub(&mut ann, typing).await.contains("confirm_subscription"));
    assert!(
        sub(&mut ann, r#"{"channel":"RoomChannel","room_id":2}"#)
            .await
            .contains("reject_subscription")
    );
    ann.send_text(&message(typing, r#"{"action":"start"}"#))
        .await;
    let stamped = ann.recv_text().await;
    assert!(
        stamped.ends_with(r#""message":{"action":"start","user":{"id":1,"name":"Ann"}}}"#),
        "{stamped}"
    );
    // The connection identifier is the GlobalID param of gid://chat/User/1, as Rails' is.
    let stats = server.stats().await;
    assert_eq!(
        stats["identities"][0]["identifier"],
        "Z2lkOi8vY2hhdC9Vc2VyLzE"
    );
}

#[tokio::test]
async fn a_tampered_cookie_is_refused() {
    let good = ann_cookie();
    let last = good.chars().last().unwrap();
    let tampered = format!(
        "{}{}",
        &good[..good.len() - 1],
        if last == '0' { '1' } else { '0' }
    );
    refused_with(&tampered).await;
}

#[tokio::test]
async fn a_cookie_signed_with_another_secret_is_refused() {
    let cookie = signed_cookie(
        "another-secret-key-base",
        "session_token",
        json!("ann-token"),
        None,
    );
    refused_with(&format!("session_token={cookie}")).await;
}

#[tokio::test]
async fn a_cookie_copied_under_another_name_is_refused() {
    // A valid signed cookie named `theme` holding Ann's token, sent as session_token.
    let cookie = signed_cookie(SECRET, "theme", json!("ann-token"), None);
    refused_with(&format!("session_token={cookie}")).await;
}

#[tokio::test]
async fn an_expired_cookie_is_refused() {
    let cookie = signed_cookie(
        SECRET,
        "session_token",
        json!("ann-token"),
        Some("2020-01-01T00:00:00.000Z"),
    );
    refused_with(&format!("session_token={cookie}")).await;
}

#[tokio::test]
async fn a_marshal_cookie_is_refused_with_a_log_line_naming_the_setting() {
    use base64::Engine as _;
    // Marshal.dump("ann-token"), in the cookie envelope, signed with the right key.
    let marshal = b"\x04\x08I\"\x0eann-token\x06:\x06ET";
    let message = base64::engine::general_purpose::STANDARD.encode(marshal);
    let generator = KeyGenerator::new(SecretKeyBase::new(SECRET.to_string()));
    let key = generator.generate_key("signed cookie", DEFAULT_KEY_SIZE, KeyDigest::Sha256);
    let envelope = format!(
        r#"{{"_rails":{{"message":"{message}","exp":null,"pur":"cookie.session_token"}}}}"#
    );
    // The envelope itself as the signed JSON string value of a bare message.
    let verifier = MessageVerifier::new(key, HmacDigest::Sha1);
    let outer: Value = serde_json::from_str(&envelope).unwrap();
    let token = verifier.generate(&outer, &Envelope::None);
    let server = refused_with(&format!("session_token={}", token.replace('=', "%3D"))).await;
    assert!(
        server.wait_for_log("cookies_serializer", Duration::from_secs(5)),
        "no log line naming cookies_serializer"
    );
}

#[tokio::test]
async fn an_oversized_cookie_header_is_answered_before_any_work_and_hurts_nobody() {
    let (_dir, server, _url, mut ann) = ann_in_chat("cookie-oversized", 0).await;
    // Over hyper's 16 KiB head limit: 431, as a plain HTTP answer, no upgrade.
    let huge = format!("session_token={}", "a".repeat(20_000));
    let (reply, _) = server.connect("/cable", &[("Cookie", &huge)]).await;
    assert_eq!(reply.status, 431, "{}", reply.head);
    // Under it but still no valid cookie: Rails' refusal.
    let big = format!("junk={}; session_token=x", "b".repeat(12_000));
    let mut ws = open(&server, &big).await;
    expect_refused(&mut ws).await;
    // The established connection is untouched.
    assert!(
        sub(&mut ann, r#"{"channel":"RoomChannel","room_id":1}"#)
            .await
            .contains("confirm_subscription")
    );
}

#[tokio::test]
async fn sql_in_cookies_and_params_is_only_ever_bound() {
    let dir = TempDir::new("cookie-sql");
    let (server, url) = chat_server(&dir, 0).await;
    for token in ["x' OR '1'='1", "ann-token' --", "1; DROP TABLE sessions"] {
        let mut ws = open(&server, &session_cookie(token)).await;
        expect_refused(&mut ws).await;
    }
    let mut ann = open(&server, &ann_cookie()).await;
    expect_welcome(&mut ann).await;
    // Cast as Active Record casts for an integer column: "1 OR 1=1" is room 1.
    for (room, confirmed) in [
        (r#""1 OR 1=1""#, true),
        (r#""1); DELETE FROM rooms; --""#, true),
        (r#""2 OR 1=1""#, false),
        (r#""abc""#, false),
        ("[1]", false),
    ] {
        let identifier = format!(r#"{{"channel":"RoomChannel","room_id":{room}}}"#);
        let reply = sub(&mut ann, &identifier).await;
        let want = if confirmed {
            "confirm_subscription"
        } else {
            "reject_subscription"
        };
        assert!(reply.contains(want), "{room}: {reply}");
    }
    // Without the cast, the value is bound as text: no row, never an injection.
    assert!(
        sub(
            &mut ann,
            r#"{"channel":"TypingChannel","room_id":"1 OR 1=1"}"#
        )
        .await
        .contains("reject_subscription")
    );
    // Nothing was executed: every table is still whole.
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let count: (i64,) = sqlx::query_as("SELECT count(*) FROM sessions")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(count.0, 2);
    let count: (i64,) = sqlx::query_as("SELECT count(*) FROM rooms")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(count.0, 2);
}

#[tokio::test]
async fn a_revoked_session_is_refused_once_its_cached_answer_expires() {
    // Ann's connect puts her session's answer in the cache.
    let (_dir, server, url, _ann) = ann_in_chat("cookie-revoked", 1000).await;
    sqlite_execute(&url, "DELETE FROM sessions WHERE token = 'ann-token'").await;
    // database.cache_ttl_ms = 1000: at most a second later, the deleted row is gone for us too.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mut again = open(&server, &ann_cookie()).await;
    expect_refused(&mut again).await;
}

/// Ann, subscribed to `identifier` (streaming `stream`) on a channel re-checked every second:
/// a re-check round while she is a member of room 1 changes nothing; once her membership row
/// is deleted, a round or two later the subscription ends with reject_subscription, although
/// the cache (60 s) still holds the old answer (re-checks always ask the database), and
/// broadcasts to the stream no longer reach her.
async fn leave_room_1_and_expect_reject(
    server: &Server,
    ann: &mut Ws,
    url: &str,
    identifier: &str,
    stream: &str,
) {
    // A round while she is still a member: nothing happens.
    ann.expect_silence(1500).await;
    sqlite_execute(
        url,
        "DELETE FROM memberships WHERE room_id = 1 AND user_id = 1",
    )
    .await;
    let frame = tokio::time::timeout(Duration::from_secs(4), ann.recv_text())
        .await
        .expect("no reject_subscription after the membership was deleted");
    assert_eq!(frame, crate::support::reject(identifier));
    server.broadcast(stream, r#""after the reject""#).await;
    ann.expect_silence(500).await;
}

#[tokio::test]
async fn a_recheck_ends_the_subscription_when_the_row_is_deleted() {
    let (_dir, server, url, mut ann) = ann_in_chat("cookie-recheck", 60_000).await;
    let watched = r#"{"channel":"WatchedRoomChannel","room_id":1}"#;
    assert!(
        sub(&mut ann, watched)
            .await
            .contains("confirm_subscription")
    );
    let reply = server.broadcast("watched_room_1", r#"{"n":1}"#).await;
    assert_eq!(reply.status, 201);
    assert!(ann.recv_text().await.contains(r#""message":{"n":1}"#));
    leave_room_1_and_expect_reject(&server, &mut ann, &url, watched, "watched_room_1").await;
    assert_eq!(server.stats().await["subscriptions"], 0);
}

/// `turbo_stream_from room, :messages` of the chat app, signed as Turbo signs it.
fn room_messages_identifier(room: u32) -> String {
    let generator = KeyGenerator::new(SecretKeyBase::new(SECRET.to_string()));
    let key = generator.generate_key(
        "turbo/signed_stream_verifier_key",
        DEFAULT_KEY_SIZE,
        KeyDigest::Sha256,
    );
    let room_gid = ferrocable_rails::global_id("chat", "Room", &[&room.to_string()]);
    let name = format!("{}:messages", ferrocable_rails::global_id_param(&room_gid));
    let signed =
        MessageVerifier::new(key, HmacDigest::Sha256).generate(&json!(name), &Envelope::None);
    format!(r#"{{"channel":"RoomMessagesChannel","signed_stream_name":"{signed}"}}"#)
}

#[tokio::test]
async fn a_recheck_ends_a_turbo_room_stream_when_the_membership_is_deleted() {
    let (_dir, server, url, mut ann) = ann_in_chat("cookie-recheck-turbo", 60_000).await;
    // Ann is in room 1 only: the room comes from the verified name.
    let other = room_messages_identifier(2);
    assert_eq!(sub(&mut ann, &other).await, crate::support::reject(&other));
    let lobby = room_messages_identifier(1);
    assert_eq!(sub(&mut ann, &lobby).await, crate::support::confirm(&lobby));
    let stream = format!(
        "{}:messages",
        ferrocable_rails::global_id_param("gid://chat/Room/1")
    );
    server.broadcast(&stream, r#""one""#).await;
    assert!(ann.recv_text().await.contains(r#""message":"one""#));
    // Re-check rounds bind the same verified name.
    leave_room_1_and_expect_reject(&server, &mut ann, &url, &lobby, &stream).await;
}

async fn pg_chat() -> (Postgres, String) {
    let pg = tokio::task::spawn_blocking(Postgres::start).await.unwrap();
    pg.create("chat", SCHEMA).await;
    let url = pg.url("chat");
    (pg, url)
}

async fn health(server: &Server) -> Value {
    let reply = server.http("GET", "/health", &[], b"").await;
    serde_json::from_slice(&reply.body).unwrap()
}

#[tokio::test]
async fn a_dead_database_refuses_cleanly_shows_in_health_and_spares_live_connections() {
    let (mut pg, url) = pg_chat().await;
    let server = start_chat(url, 0, 1000).await;
    let mut ann = open(&server, &ann_cookie()).await;
    expect_welcome(&mut ann).await;
    let typing = r#"{"channel":"TypingChannel","room_id":1}"#;
    assert!(sub(&mut ann, typing).await.contains("confirm_subscription"));
    let pg = tokio::task::spawn_blocking(move || {
        pg.stop();
        pg
    })
    .await
    .unwrap();
    let started = Instant::now();
    let mut bob = open(&server, &ann_cookie()).await;
    expect_refused(&mut bob).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let report = health(&server).await;
    assert_eq!(report["database"]["healthy"], false, "{report}");
    assert_eq!(report["status"], "degraded", "{report}");
    // The live connection still works: its relay goes through, and a subscribe to a channel
    // that needs the database is rejected, not left hanging.
    ann.send_text(&message(typing, r#"{"action":"start"}"#))
        .await;
    assert!(ann.recv_text().await.contains(r#""name":"Ann""#));
    assert!(
        sub(&mut ann, r#"{"channel":"RoomChannel","room_id":1}"#)
            .await
            .contains("reject_subscription")
    );
    drop(pg);
}

#[tokio::test]
async fn a_slow_database_delays_only_the_connects_that_wait_for_it() {
    let (pg, url) = pg_chat().await;
    let server = start_chat(url, 60_000, 1500).await;
    // Ann's session is looked up (and cached) while the database is well.
    let mut ann = open(&server, &ann_cookie()).await;
    expect_welcome(&mut ann).await;
    assert!(
        sub(&mut ann, r#"{"channel":"LobbyChannel"}"#)
            .await
            .contains("confirm_subscription")
    );
    pg.freeze(true);
    // A subscribe that must ask the frozen database waits (in order, as her next command
    // would)... while broadcasts to her other subscription keep arriving at once.
    let room = r#"{"channel":"RoomChannel","room_id":1}"#;
    ann.send_text(&subscribe(room)).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let sent = Instant::now();
    assert_eq!(server.broadcast("lobby", r#"{"n":1}"#).await.status, 201);
    assert_eq!(
        ann.recv_text().await,
        crate::support::data_frame(r#"{"channel":"LobbyChannel"}"#, r#"{"n":1}"#)
    );
    assert!(
        sent.elapsed() < Duration::from_millis(500),
        "{:?}",
        sent.elapsed()
    );
    // ...and is rejected when the query timeout runs out, not left hanging.
    assert_eq!(ann.recv_text().await, crate::support::reject(room));
    // Bob's lookup hangs in the frozen database...
    let bob_cookie = session_cookie("bob-token");
    let addr = server.addr;
    let bob = tokio::spawn(async move {
        let started = Instant::now();
        let (reply, ws) =
            crate::support::ws::connect(addr, "/cable", &[("Cookie", &bob_cookie)]).await;
        assert_eq!(reply.status, 101);
        expect_refused(&mut ws.unwrap()).await;
        started.elapsed()
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    // ...while Ann connects again at once (cached) and her socket answers at once.
    let started = Instant::now();
    let mut again = open(&server, &ann_cookie()).await;
    expect_welcome(&mut again).await;
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    // Bob is refused when the query timeout (1.5 s) runs out, not later, and /health says
    // the database is not answering.
    let waited = bob.await.unwrap();
    assert!(waited >= Duration::from_millis(1000), "{waited:?}");
    assert!(waited < Duration::from_secs(4), "{waited:?}");
    let report = health(&server).await;
    assert_eq!(report["status"], "degraded", "{report}");
    assert_eq!(report["database"]["healthy"], false, "{report}");
    pg.freeze(false);
}
