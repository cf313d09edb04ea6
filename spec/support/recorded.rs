//! The recordings of `bin/record-inputs` (fixtures/inputs/rails-7.2/*.json): what Rails 7.2
//! wrote when it published through a database, and the frames its clients received.

use serde_json::Value;

use super::db::repo;
use super::{Server, Ws};

/// One recording.
#[derive(Debug, Clone)]
pub struct Recording {
    pub json: Value,
}

/// One recorded broadcast.
#[derive(Debug, Clone)]
pub struct Case {
    pub name: String,
    pub stream: String,
    pub identifier: String,
    /// What Rails' client received (empty when Rails delivered nothing).
    pub frames: Vec<String>,
    pub json: Value,
}

impl Recording {
    /// `fixtures/inputs/rails-7.2/<name>.json`.
    pub fn load(name: &str) -> Recording {
        let path = repo().join(format!("fixtures/inputs/rails-7.2/{name}.json"));
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (bin/record-inputs writes it)", path.display()));
        Recording {
            json: serde_json::from_str(&text).unwrap(),
        }
    }

    pub fn cases(&self) -> Vec<Case> {
        self.json["cases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| Case {
                name: c["name"].as_str().unwrap().to_string(),
                stream: c["stream"].as_str().unwrap().to_string(),
                identifier: c["identifier"].as_str().unwrap().to_string(),
                frames: c["frames"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|f| f.as_str().unwrap().to_string())
                    .collect(),
                json: c.clone(),
            })
            .collect()
    }

    /// The statements Rails ran to make Solid Cable's table that change the database (its
    /// queries left out); with `table_only`, only those about solid_cable_messages itself.
    pub fn schema_statements(&self, table_only: bool) -> Vec<String> {
        self.json["schema"]["ran"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["binds"].as_array().is_some_and(|b| b.is_empty()))
            .filter_map(|s| s["sql"].as_str())
            .filter(|sql| !sql.starts_with("SELECT") && !sql.starts_with("SHOW"))
            .filter(|sql| !table_only || sql.contains("\"solid_cable_messages\""))
            .map(str::to_string)
            .collect()
    }

    /// The distinct (stream, identifier) pairs, in first-use order.
    pub fn subscriptions(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        for c in self.cases() {
            if !out.iter().any(|(s, _)| *s == c.stream) {
                out.push((c.stream, c.identifier));
            }
        }
        out
    }
}

impl Case {
    /// The recorded `NOTIFY "<channel>", '<payload>'` statement.
    pub fn notify(&self) -> &str {
        self.json["notify"].as_str().unwrap()
    }

    /// The payload of the recorded NOTIFY (the JSON Rails published), unquoted.
    pub fn payload(&self) -> String {
        let notify = self.notify();
        let start = notify.find(", '").expect("NOTIFY \"...\", '...'") + 3;
        notify[start..notify.len() - 1].replace("''", "'")
    }

    /// The SQL Active Record ran for this broadcast (Solid Cable's INSERT).
    pub fn sql(&self) -> Vec<String> {
        self.json["sql"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["sql"].as_str().unwrap().to_string())
            .collect()
    }

    /// The row as the database stored it.
    pub fn row(&self) -> &Value {
        &self.json["row"]
    }
}

/// The frame Rails sends for `message` (JSON text) on `identifier`.
pub fn frame(identifier: &str, message: &str) -> String {
    super::data_frame(identifier, message)
}

/// One client per stream of a recording, each subscribed to it.
#[derive(Debug)]
pub struct Clients(Vec<(String, Ws)>);

impl Clients {
    /// Subscribes a client of `server` (a configuration without authentication) to each of
    /// the recording's streams.
    pub async fn subscribe(server: &Server, rec: &Recording) -> Clients {
        let mut all = Vec::new();
        for (stream, identifier) in rec.subscriptions() {
            all.push((stream, server.subscribed(&identifier).await));
        }
        Clients(all)
    }

    /// The client of `stream`.
    pub fn of(&mut self, stream: &str) -> &mut Ws {
        &mut self
            .0
            .iter_mut()
            .find(|(s, _)| s == stream)
            .unwrap_or_else(|| panic!("no client for {stream}"))
            .1
    }

    /// Asserts no client gets anything more for `ms` milliseconds.
    pub async fn expect_silence(&mut self, ms: u64) {
        for (_, ws) in &mut self.0 {
            ws.expect_silence(ms).await;
        }
    }
}
