//! Replays the sessions recorded from the cookie-authenticated reference apps on real Rails
//! 7.2 (fixtures/apps/<app>/rails-7.2/, made by bin/record-apps; spec/reference/apps/) against
//! ferrocable with the app's profile (config/examples/<app>.toml), byte for byte, with the
//! database state the recording left (fixtures/apps/<app>/database.sql) loaded into a real
//! SQLite file (chat) or a real PostgreSQL started here (shop).
//!
//! The cookies are the ones Rails set at login (in the connect steps' headers); the replay
//! gives ferrocable the same SECRET_KEY_BASE, a DATABASE_URL, a REDIS_URL and a port, and
//! nothing else, as the profiles promise.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::conformance::replay_with;
use crate::support::TempDir;
use crate::support::database::{Postgres, sqlite_file};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn transcripts(app: &str) -> Vec<PathBuf> {
    let dir = root().join(format!("fixtures/apps/{app}/rails-7.2"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 3, "{app}: only {} transcripts", files.len());
    files
}

fn dump(app: &str) -> String {
    std::fs::read_to_string(root().join(format!("fixtures/apps/{app}/database.sql"))).unwrap()
}

async fn replay_all(app: &str, database_url: &str) {
    let mut failures = Vec::new();
    let files = transcripts(app);
    for file in &files {
        let note = Mutex::new(String::new());
        let env = vec![("DATABASE_URL".to_string(), database_url.to_string())];
        match replay_with(file, "7.2", &note, env).await {
            Ok(()) => eprintln!("ok   {app} {}", name(file)),
            Err(e) => failures.push(format!("{}: {e}", name(file))),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} recorded {app} sessions differ:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n\n")
    );
}

fn name(path: &Path) -> String {
    path.file_stem().unwrap().to_string_lossy().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_on_sqlite_replays_as_recorded_on_rails_7_2() {
    let dir = TempDir::new("chat-db");
    let url = sqlite_file(&dir, "chat.sqlite3", &dump("chat")).await;
    replay_all("chat", &url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shop_on_postgresql_replays_as_recorded_on_rails_7_2() {
    let pg = tokio::task::spawn_blocking(Postgres::start).await.unwrap();
    pg.create("shop", &dump("shop")).await;
    replay_all("shop", &pg.url("shop")).await;
}
