//! Replays every session recorded from a real Rails Action Cable (fixtures/transcripts/
//! rails-<version>/, made by bin/record-fixtures; format in fixtures/README.md) against
//! ferrocable with the matching config, and compares the server's side byte for byte.
//!
//! Each Rails version is replayed with its own `protocol.rails_version`: 7.2 transcripts
//! against the profile config as it is (7.2 is the default), 6.1 transcripts with
//! `FERROCABLE_PROTOCOL__RAILS_VERSION=6.1`. The version comes from the transcript's header
//! (`recorded_with.rails`), and must match its directory.
//!
//! Only three normalisations, all from docs/PROTOCOL.md (§2, §4.6): Action Cable pings are set aside (their
//! timestamps and timing differ by nature; `ping_cadence` checks them explicitly); within a
//! run of consecutive frames for one client, frames for *different* identifiers may come in
//! another order (Rails guarantees none, §4.6); and an HTTP answer the recorder marked
//! `answered_by: rails_app` (a path outside the mount, answered by the app's router, not by
//! Action Cable) is compared by status only.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::Value as J;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::support::ws::{self, Frame, HttpReply, Ws};
use crate::support::{Redis, Server};

/// Scenarios not replayed, by Rails version ("*" = every version), with the reason
/// (spec/KNOWN_DIFFERENCES.md has the details).
const SKIPPED: &[(&str, &str, &str)] = &[
    (
        "*",
        "quirk_action_subscribed",
        "Rails runs a public `subscribed` method as an action; declarative channels cannot express it (KNOWN_DIFFERENCES.md)",
    ),
    (
        "*",
        "http_other_paths",
        "paths other than the mount belong to the Rails app, not to Action Cable (and /health is ferrocable's own)",
    ),
    (
        "7.2",
        "mount_subpath_routes",
        "an app's own unanchored `mount ActionCable.server` route; ferrocable's 7.2 mount follows the engine's anchored mount (mount_subpath; KNOWN_DIFFERENCES.md)",
    ),
];

/// How long one step (or one run of recv steps for a client) may wait in all for what it
/// expects: generous, as eight replays share a loaded box, and never extended by frames on
/// the way. A frame that cannot be the expected one fails the step at once, without waiting.
const STEP_WAIT: Duration = Duration::from_secs(20);

/// The Rails versions recorded, each in fixtures/transcripts/rails-<version>/.
const RAILS_VERSIONS: &[&str] = &["7.2", "6.1"];

/// Replays at the same time, across both versions' tests (each replay starts a server and a
/// redis-server, and mostly waits).
static LIMIT: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(8);

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// One version's transcripts, optionally filtered by `CONFORMANCE_ONLY=a,b` (scenario names).
fn transcripts(rails: &str) -> Vec<PathBuf> {
    let only: Option<Vec<String>> = std::env::var("CONFORMANCE_ONLY")
        .ok()
        .map(|v| v.split(',').map(str::to_string).collect());
    let dir = root().join(format!("fixtures/transcripts/rails-{rails}"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .filter(|p| {
            let stem = p.file_stem().unwrap().to_string_lossy().to_string();
            only.as_ref().is_none_or(|o| o.contains(&stem))
        })
        .collect();
    files.sort();
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replays_every_recorded_rails_7_2_session() {
    replay_version("7.2").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replays_every_recorded_rails_6_1_session() {
    replay_version("6.1").await;
}

#[test]
fn every_recorded_version_is_replayed() {
    let mut dirs: Vec<String> = std::fs::read_dir(root().join("fixtures/transcripts"))
        .expect("fixtures/transcripts")
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    dirs.sort();
    let mut want: Vec<String> = RAILS_VERSIONS
        .iter()
        .map(|v| format!("rails-{v}"))
        .collect();
    want.sort();
    assert_eq!(
        dirs, want,
        "a transcript directory without a replay test, or the reverse"
    );
}

async fn replay_version(rails: &'static str) {
    let files = transcripts(rails);
    let mut tasks = Vec::new();
    for file in files {
        let name = file.file_stem().unwrap().to_string_lossy().to_string();
        if let Some((_, _, why)) = SKIPPED
            .iter()
            .find(|(v, s, _)| *s == name && (*v == "*" || *v == rails))
        {
            eprintln!("skip {rails} {name}: {why}");
            continue;
        }
        let permit = LIMIT.acquire().await.unwrap();
        let step = Arc::new(Mutex::new(String::from("start")));
        let where_ = step.clone();
        let handle = tokio::spawn(async move {
            let _permit = permit;
            let started = Instant::now();
            replay(&file, rails, &where_)
                .await
                .map(|()| started.elapsed())
        });
        tasks.push((name, step, handle));
    }
    let total = tasks.len();
    let mut failures = Vec::new();
    for (name, step, handle) in tasks {
        match handle.await {
            Ok(Ok(took)) => eprintln!("ok   {rails} {name} ({:.1}s)", took.as_secs_f64()),
            Ok(Err(e)) => failures.push(format!("{name}: {e}")),
            Err(join) => {
                let panic = join.into_panic();
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                failures.push(format!("{name} at {}: {message}", step.lock().unwrap()));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {total} recorded Rails {rails} sessions differ:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    if std::env::var("CONFORMANCE_ONLY").is_err() {
        assert!(
            total >= 40,
            "only {total} Rails {rails} transcripts replayed"
        );
    }
    eprintln!("{total} recorded Rails {rails} sessions replayed identically");
}

/// What a client slot holds between steps.
enum Client {
    /// Upgraded: frames flow.
    Open(Box<Ws>, HttpReply),
    /// Not upgraded: the HTTP answer, then nothing.
    Http(HttpReply),
}

struct Replay {
    server: Option<Server>,
    restarting: Option<Server>,
    redis: Redis,
    config: String,
    env: Vec<(String, String)>,
    tokens: HashMap<String, String>,
    clients: HashMap<String, Client>,
    last_ping: HashMap<String, Instant>,
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

async fn replay(path: &Path, rails: &str, step_note: &Mutex<String>) -> Result<(), String> {
    replay_with(path, rails, step_note, Vec::new()).await
}

/// Replays one transcript with `extra_env` for the server (the app transcripts of
/// `spec/apps.rs` add `DATABASE_URL`).
pub async fn replay_with(
    path: &Path,
    rails: &str,
    step_note: &Mutex<String>,
    extra_env: Vec<(String, String)>,
) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let t: J = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    // "7.2.2.2" -> "7.2": the header says which Rails made it; the directory must agree.
    let recorded = t["recorded_with"]["rails"].as_str().unwrap_or("");
    let minor: String = recorded.split('.').take(2).collect::<Vec<_>>().join(".");
    if minor != rails {
        return Err(format!(
            "recorded with Rails {recorded:?} but stored under rails-{rails}"
        ));
    }

    let config = std::fs::read_to_string(root().join(t["config"].as_str().unwrap_or("")))
        .map_err(|e| format!("config: {e}"))?;
    let secret = t["secret_key_base"].as_str().unwrap_or("").to_string();
    let redis = blocking(Redis::start).await;
    let mut env = vec![
        ("SECRET_KEY_BASE".to_string(), secret),
        ("REDIS_URL".to_string(), redis.url()),
    ];
    env.extend(extra_env);
    // The profile configs leave rails_version at its default, 7.2.
    if rails != "7.2" {
        env.push((
            "FERROCABLE_PROTOCOL__RAILS_VERSION".to_string(),
            rails.to_string(),
        ));
    }
    let mut r = Replay {
        server: None,
        restarting: None,
        redis,
        config,
        env,
        tokens: mint_tokens(&t["tokens"]),
        clients: HashMap::new(),
        last_ping: HashMap::new(),
    };
    r.start_server().await;
    let steps = t["steps"].as_array().cloned().unwrap_or_default();
    let mut i = 0;
    while i < steps.len() {
        let step = &steps[i];
        *step_note.lock().unwrap() = format!("step {i} {step}");
        if step["op"] == "recv" {
            // A maximal run of recv steps for one client is compared as a unit.
            let client = step["client"].as_str().unwrap_or("");
            let mut j = i;
            while j < steps.len() && steps[j]["op"] == "recv" && steps[j]["client"] == client {
                j += 1;
            }
            r.recv_run(client, &steps[i..j])
                .await
                .map_err(|e| format!("steps {i}..{j}: {e}"))?;
            i = j;
            continue;
        }
        r.step(step)
            .await
            .map_err(|e| format!("step {i} {step}: {e}"))?;
        i += 1;
    }
    Ok(())
}

fn mint_tokens(specs: &J) -> HashMap<String, String> {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let now = crate::support::now() as i64;
    let mut out = HashMap::new();
    for (name, spec) in specs.as_object().into_iter().flatten() {
        let mut claims = spec["claims"].as_object().cloned().unwrap_or_default();
        if let Some(exp_in) = spec["exp_in"].as_i64() {
            claims.insert("exp".into(), (now + exp_in).into());
        }
        if let Some(nbf_in) = spec["nbf_in"].as_i64() {
            claims.insert("nbf".into(), (now + nbf_in).into());
        }
        let alg = spec["alg"].as_str().unwrap_or("HS256");
        let token = match alg {
            "none" => format!(
                "{}.{}.",
                b64.encode(br#"{"alg":"none"}"#),
                b64.encode(serde_json::to_vec(&claims).unwrap())
            ),
            _ => {
                let algorithm = match alg {
                    "HS384" => jsonwebtoken::Algorithm::HS384,
                    "HS512" => jsonwebtoken::Algorithm::HS512,
                    _ => jsonwebtoken::Algorithm::HS256,
                };
                let secret = spec["secret"].as_str().unwrap_or("");
                jsonwebtoken::encode(
                    &jsonwebtoken::Header::new(algorithm),
                    &claims,
                    &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
                )
                .unwrap()
            }
        };
        out.insert(name.clone(), token);
    }
    out
}

/// What came instead of the frame a step waited for, for its error.
fn came(outcome: &Result<Frame, (ws::NoFrame, usize)>) -> String {
    match outcome {
        Ok(frame) => format!("{frame:?}"),
        Err((why, pings)) => format!("no frame within {STEP_WAIT:?}: {why} ({pings} ping(s))"),
    }
}

/// When a step that starts now stops waiting.
fn deadline() -> tokio::time::Instant {
    tokio::time::Instant::now() + STEP_WAIT
}

/// Whether the frames `got` so far can still turn out to be `expected`: with `any_order`, each
/// is one of the expected frames not yet matched; otherwise, for every identifier, its frames
/// so far are the first of its expected ones (frames for different identifiers may
/// interleave differently, docs/PROTOCOL.md §4.6). Once `got` is as long as `expected`, true
/// means they match.
fn could_become(expected: &[String], got: &[String], any_order: bool) -> bool {
    if got.len() > expected.len() {
        return false;
    }
    if any_order {
        let mut left: Vec<&String> = expected.iter().collect();
        return got.iter().all(|g| match left.iter().position(|e| *e == g) {
            Some(i) => {
                left.swap_remove(i);
                true
            }
            None => false,
        });
    }
    let by_identifier = |frames: &[String]| {
        let mut by_id: HashMap<String, Vec<String>> = HashMap::new();
        for f in frames {
            by_id.entry(identifier_of(f)).or_default().push(f.clone());
        }
        by_id
    };
    let want = by_identifier(expected);
    by_identifier(got)
        .iter()
        .all(|(id, frames)| want.get(id).is_some_and(|w| w.starts_with(frames)))
}

/// The identifier a frame is about, for the cross-identifier order normalisation.
fn identifier_of(frame: &str) -> String {
    serde_json::from_str::<J>(frame)
        .ok()
        .and_then(|v| v.get("identifier").and_then(J::as_str).map(str::to_string))
        .unwrap_or_default()
}

impl Replay {
    async fn start_server(&mut self) {
        let config = self.config.clone();
        let env = self.env.clone();
        let server = blocking(move || {
            let env: Vec<(&str, &str)> =
                env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            Server::start_with(&config, &env)
        })
        .await;
        self.server = Some(server);
    }

    fn server(&self) -> &Server {
        self.server.as_ref().expect("server running")
    }

    fn ws(&mut self, client: &str) -> Result<&mut Ws, String> {
        match self.clients.get_mut(client) {
            Some(Client::Open(ws, _)) => Ok(ws),
            _ => Err(format!("client {client} has no open WebSocket")),
        }
    }

    fn fill(&self, text: &str) -> String {
        let mut out = text.to_string();
        for (name, token) in &self.tokens {
            out = out.replace(&format!("{{{{token:{name}}}}}"), token);
        }
        out
    }

    async fn step(&mut self, step: &J) -> Result<(), String> {
        let client = step["client"].as_str().unwrap_or("").to_string();
        let b64 = base64::engine::general_purpose::STANDARD;
        match step["op"].as_str().unwrap_or("") {
            "connect" => self.connect(&client, step).await,
            "http_response" => self.http_response(&client, step),
            // The recorder logged in over HTTP to the Rails app; the cookies it got are in
            // the connect steps' headers. Nothing to do against ferrocable.
            "http_login" => Ok(()),
            "send" => {
                let text = step["text"].as_str().unwrap_or("");
                self.ws(&client)?.send_text(text).await;
                Ok(())
            }
            "send_binary" | "send_raw" | "send_ping" => {
                let bytes = b64
                    .decode(step["base64"].as_str().unwrap_or(""))
                    .map_err(|e| e.to_string())?;
                let framed = match step["op"].as_str() {
                    Some("send_binary") => ws::client_frame(0x82, &bytes),
                    Some("send_ping") => ws::client_frame(0x89, &bytes),
                    _ => bytes,
                };
                self.ws(&client)?.send_raw(&framed).await;
                Ok(())
            }
            "send_close" => {
                // "code": null is a close frame with an empty payload (no status code).
                let mut payload = Vec::new();
                if let Some(code) = step["code"].as_u64() {
                    payload.extend_from_slice(&(code as u16).to_be_bytes());
                    payload.extend_from_slice(step["reason"].as_str().unwrap_or("").as_bytes());
                }
                self.ws(&client)?
                    .send_raw(&ws::client_frame(0x88, &payload))
                    .await;
                Ok(())
            }
            "recv_ping" => self.recv_ping(&client, step).await,
            "recv_pong" => {
                let want = b64
                    .decode(step["base64"].as_str().unwrap_or(""))
                    .map_err(|e| e.to_string())?;
                match self.ws(&client)?.recv_before(deadline()).await {
                    Ok(Frame::Pong(p)) if p == want => Ok(()),
                    other => Err(format!("expected pong {want:?}, got {}", came(&other))),
                }
            }
            "recv_close" => {
                let code = step["code"].as_u64().map(|c| c as u16);
                let reason = step["reason"].as_str().unwrap_or("");
                match self.ws(&client)?.recv_before(deadline()).await {
                    Ok(Frame::Close {
                        code: got,
                        reason: got_reason,
                        ..
                    }) if got == code && got_reason == reason => Ok(()),
                    other => Err(format!(
                        "expected close {code:?} {reason:?}, got {}",
                        came(&other)
                    )),
                }
            }
            "closed" => {
                let ws = self.ws(&client)?;
                if ws.closed_within(STEP_WAIT).await {
                    self.clients.remove(&client);
                    Ok(())
                } else {
                    Err("the server did not close the TCP connection".into())
                }
            }
            "silence" => {
                let ms = step["ms"].as_u64().unwrap_or(500);
                let quiet_until = tokio::time::Instant::now() + Duration::from_millis(ms);
                match self.ws(&client)?.recv_before(quiet_until).await {
                    Ok(frame) => Err(format!("expected {ms} ms of silence, got {frame:?}")),
                    Err(_) => Ok(()),
                }
            }
            "publish" => {
                let channel = step["channel"].as_str().unwrap_or("").to_string();
                let payload = step["payload"].as_str().unwrap_or("").to_string();
                self.publish(channel, payload).await;
                Ok(())
            }
            "control" => match step["action"].as_str() {
                Some("remote_disconnect") => {
                    for p in step["published"].as_array().into_iter().flatten() {
                        let channel = p["channel"].as_str().unwrap_or("").to_string();
                        let payload = p["payload"].as_str().unwrap_or("").to_string();
                        self.publish(channel, payload).await;
                    }
                    Ok(())
                }
                Some("server_restart") => {
                    self.server().signal("TERM");
                    self.restarting = self.server.take();
                    Ok(())
                }
                other => Err(format!("unknown control {other:?}")),
            },
            other => Err(format!("unknown op {other:?}")),
        }
    }

    /// PUBLISH as the recorder did. Internal (remote disconnect) channels are subscribed
    /// asynchronously after the welcome, so wait for Redis to know the subscriber first.
    async fn publish(&self, channel: String, payload: String) {
        let redis_port = self.redis.port;
        blocking(move || {
            let redis = crate::support::RedisHandle(redis_port);
            if channel.contains(":action_cable/") {
                redis.wait_subscribed(&channel);
            }
            redis.publish(&channel, &payload);
        })
        .await;
    }

    async fn connect(&mut self, client: &str, step: &J) -> Result<(), String> {
        if let Some(mut old) = self.restarting.take() {
            let exited = blocking(move || old.wait_exit(Duration::from_secs(15))).await;
            if exited.is_none_or(|s| !s.success()) {
                return Err(format!(
                    "the restarted server did not exit cleanly: {exited:?}"
                ));
            }
            self.start_server().await;
        }
        let addr = self.server().addr;
        let websocket = step["websocket"].as_bool().unwrap_or(true);
        let method = step["method"].as_str().unwrap_or("GET");
        let path = self.fill(step["path"].as_str().unwrap_or("/cable"));
        let mut headers: Vec<(String, String)> = vec![("Host".into(), addr.to_string())];
        if websocket {
            for (k, v) in [
                ("Upgrade", "websocket"),
                ("Connection", "Upgrade"),
                ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
                ("Sec-WebSocket-Version", "13"),
            ] {
                headers.push((k.into(), v.into()));
            }
        }
        for (k, v) in step["headers"].as_object().into_iter().flatten() {
            headers.retain(|(name, _)| !name.eq_ignore_ascii_case(k));
            if let Some(v) = v.as_str() {
                headers.push((k.clone(), self.fill(v)));
            }
        }
        let mut request = format!("{method} {path} HTTP/1.1\r\n");
        for (k, v) in &headers {
            request.push_str(&format!("{k}: {v}\r\n"));
        }
        request.push_str("\r\n");
        let mut stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        stream.set_nodelay(true).ok();
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let (head, rest) = ws::read_head(&mut stream).await;
        let (status, parsed) = ws::parse_head(&head);
        let mut reply = HttpReply {
            status,
            head,
            headers: parsed,
            body: Vec::new(),
        };
        if status == 101 {
            self.clients.insert(
                client.to_string(),
                Client::Open(Box::new(Ws::from_parts(stream, rest)), reply),
            );
        } else {
            reply.body = read_body(&mut stream, &reply, rest).await;
            self.clients.insert(client.to_string(), Client::Http(reply));
        }
        Ok(())
    }

    fn http_response(&self, client: &str, step: &J) -> Result<(), String> {
        let Some(Client::Open(_, reply) | Client::Http(reply)) = self.clients.get(client) else {
            return Err(format!("client {client} never connected"));
        };
        let want = step["status"].as_u64().unwrap_or(0) as u16;
        if reply.status != want {
            return Err(format!(
                "status {} instead of {want}\n{}",
                reply.status, reply.head
            ));
        }
        // The app's router answered in Rails (e.g. an API-only 404 with an empty text/html
        // body, or JSON for /cable.json); ferrocable answers its own 404. Status only.
        if step["answered_by"] == "rails_app" {
            return Ok(());
        }
        for (name, value) in step["headers"].as_object().into_iter().flatten() {
            let got = reply.header(name);
            if got != value.as_str() {
                return Err(format!(
                    "header {name}: {got:?} instead of {value}\n{}",
                    reply.head
                ));
            }
        }
        if want != 101
            && let Some(body) = step["body"].as_str()
            && reply.text() != body
        {
            return Err(format!("body {:?} instead of {body:?}", reply.text()));
        }
        Ok(())
    }

    /// A run of recv steps for one client: the frames must come, pings aside, within one
    /// [`STEP_WAIT`]. Each frame is checked as it comes, so a wrong one fails at once.
    async fn recv_run(&mut self, client: &str, run: &[J]) -> Result<(), String> {
        let expected: Vec<String> = run
            .iter()
            .map(|s| s["text"].as_str().unwrap_or("").to_string())
            .collect();
        let any_order = run.iter().all(|s| s["any_order"] == true);
        let deadline = deadline();
        let ws = self.ws(client)?;
        let mut got = Vec::new();
        while got.len() < expected.len() {
            let ended = match ws.recv_before(deadline).await {
                Ok(Frame::Text(t)) => {
                    got.push(t);
                    None
                }
                Ok(other) => {
                    got.push(format!("<{other:?}>"));
                    None
                }
                Err((why, _)) => Some(why),
            };
            if ended.is_some() || !could_become(&expected, &got, any_order) {
                let ended = ended.map_or(String::new(), |why| format!("\nthen: {why}"));
                return Err(format!(
                    "frames differ\nexpected:\n  {}\ngot:\n  {}{ended}",
                    expected.join("\n  "),
                    got.join("\n  ")
                ));
            }
        }
        Ok(())
    }

    async fn recv_ping(&mut self, client: &str, step: &J) -> Result<(), String> {
        let ws = self.ws(client)?;
        let frame = ws.frame_before(deadline()).await;
        let at = Instant::now();
        match frame {
            Ok(Frame::Text(t)) if ws::is_ping(&t) => {}
            other => {
                return Err(format!(
                    "expected a ping, got {}",
                    came(&other.map_err(|why| (why, 0)))
                ));
            }
        }
        if let (Some(gap), Some(previous)) = (step["gap_s"].as_f64(), self.last_ping.get(client)) {
            let measured = at.duration_since(*previous).as_secs_f64();
            if (measured - gap).abs() > 1.0 {
                return Err(format!("ping gap {measured:.2}s, Rails {gap}s"));
            }
        }
        self.last_ping.insert(client.to_string(), at);
        Ok(())
    }
}

/// Reads an HTTP body by Content-Length, chunked encoding, or until EOF.
async fn read_body(stream: &mut TcpStream, reply: &HttpReply, mut body: Vec<u8>) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    if let Some(len) = reply
        .header("content-length")
        .and_then(|l| l.parse::<usize>().ok())
    {
        while body.len() < len {
            let mut chunk = [0u8; 4096];
            match tokio::time::timeout(ws::WAIT, stream.read(&mut chunk)).await {
                Ok(Ok(n)) if n > 0 => body.extend_from_slice(&chunk[..n]),
                _ => break,
            }
        }
        body.truncate(len);
        return body;
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), stream.read_to_end(&mut body)).await;
    if reply
        .header("transfer-encoding")
        .is_some_and(|t| t.eq_ignore_ascii_case("chunked"))
    {
        return dechunk(&body);
    }
    body
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = data.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(String::from_utf8_lossy(&data[..line_end]).trim(), 16)
            .unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = line_end + 2;
        out.extend_from_slice(&data[start..(start + size).min(data.len())]);
        data = &data[(start + size + 2).min(data.len())..];
    }
    out
}
