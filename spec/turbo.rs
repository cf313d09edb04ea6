//! Turbo Streams and other signed streams against the real binary and a real redis-server:
//! `config/examples/turbo.toml` started with exactly the four variables a Turbo-only app has,
//! custom Turbo channels and the stock channel's refusals, CableReady, and Rails 8.1's raw
//! U+2028. The signed names are the ones real Rails wrote (`fixtures/rails/`, and
//! rails-apps.md §1.6, which Rails 7.2 confirmed byte for byte).

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::ws::{self, Ws};
use crate::support::*;

/// `"0123456789abcdef"` × 8: the secret of every stream vector in `fixtures/rails/`.
const SECRET_KEY_BASE: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\
                               0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
/// `turbo_stream_from @room, :messages` (Room 1 of app `MyApp`), `load_defaults 7.2`.
const ROOM_MESSAGES: &str = "IloybGtPaTh2YlhrdFlYQndMMUp2YjIwdk1ROm1lc3NhZ2VzIg==--280b6f6b8e1c2642a168d7dbdac207f45092e565ca0c120cf09051eca8a6e87a";
/// The same under the SHA1 key (`load_defaults` < 7.0, or the key generator touched early).
const ROOM_MESSAGES_SHA1: &str = "IloybGtPaTh2YlhrdFlYQndMMUp2YjIwdk1ROm1lc3NhZ2VzIg==--50f5571a843815c72805973a5c503c422e1558e80218b28dea4bc5f7b5f19cad";
/// `turbo_stream_from @room`.
const ROOM: &str = "IloybGtPaTh2YlhrdFlYQndMMUp2YjIwdk1RIg==--e72eae383cc939905fe6403fdffff36569a3f2e6d56e524dca1f7f4c64d43604";
const ROOM_MESSAGES_STREAM: &str = "Z2lkOi8vbXktYXBwL1Jvb20vMQ:messages";
/// `Turbo::StreamsChannel.broadcast_append_to(room, :messages, target: "messages",
/// html: "<p>Hi & bye</p>")`: what Rails PUBLISHes (rails-apps.md §1.6).
const APPEND: &str = r#""\u003cturbo-stream action=\"append\" target=\"messages\"\u003e\u003ctemplate\u003e\u003cp\u003eHi \u0026 bye\u003c/p\u003e\u003c/template\u003e\u003c/turbo-stream\u003e""#;

fn turbo_identifier(signed: &str) -> String {
    format!(r#"{{"channel":"Turbo::StreamsChannel","signed_stream_name":"{signed}"}}"#)
}

/// `ferrocable --config config/examples/turbo.toml` with exactly `env`: no flags, no other
/// variable (not even PATH).
struct Bare {
    child: Child,
    log: std::path::PathBuf,
    _dir: TempDir,
}

impl Bare {
    fn start(env: &[(&str, &str)]) -> Bare {
        let dir = TempDir::new("turbo-example");
        let log = dir.0.join("stderr");
        let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/examples/turbo.toml");
        let child = Command::new(binary())
            .args(["--config", config.to_str().unwrap()])
            .env_clear()
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("spawn ferrocable");
        Bare {
            child,
            log,
            _dir: dir,
        }
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits for the listening line; `None` if the process exited first.
    fn listening(&mut self) -> Option<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.logs().contains("ferrocable listening") {
                return Some(());
            }
            if self.child.try_wait().unwrap().is_some() {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("ferrocable did not start:\n{}", self.logs());
    }
}

impl Drop for Bare {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A same-origin browser: `Origin` is the scheme and `Host` it connects to.
async fn same_origin(addr: SocketAddr) -> Ws {
    let origin = format!("http://{addr}");
    let (reply, ws) = ws::connect(addr, "/cable", &[("Origin", &origin)]).await;
    assert_eq!(reply.status, 101, "{}", reply.head);
    let mut ws = ws.unwrap();
    ws.expect(r#"{"type":"welcome"}"#).await;
    ws
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_turbo_example_runs_on_the_apps_four_variables() {
    let redis = Redis::start();
    let port = free_port_any();
    let url = redis.url();
    let port_text = port.to_string();
    let mut server = Bare::start(&[
        ("SECRET_KEY_BASE", SECRET_KEY_BASE),
        ("REDIS_URL", &url),
        ("PORT", &port_text),
        ("FERROCABLE_REDIS__CHANNEL_PREFIX", "fizzy_production"),
    ]);
    server.listening().expect("started");
    let logs = server.logs();
    assert!(!logs.contains("WARN"), "{logs}");
    assert!(
        logs.contains("every channel streams only names the app signed"),
        "{logs}"
    );
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();

    // A page of the app (same origin) subscribes the way <turbo-cable-stream-source> does,
    // with a data-* attribute; the identifier is echoed byte for byte.
    let mut ws = same_origin(addr).await;
    let with_data = format!(
        r#"{{"channel":"Turbo::StreamsChannel","signed_stream_name":"{ROOM_MESSAGES}","room_name":"Lobby <1> & co"}}"#
    );
    ws.send_text(&subscribe(&with_data)).await;
    ws.expect(&format!(
        r#"{{"identifier":{},"type":"confirm_subscription"}}"#,
        escaped(&with_data)
    ))
    .await;
    let channel = format!("fizzy_production:{ROOM_MESSAGES_STREAM}");
    redis.wait_subscribed(&channel);
    assert_eq!(redis.publish(&channel, APPEND), 1);
    ws.expect(&format!(
        r#"{{"identifier":{},"message":{APPEND}}}"#,
        escaped(&with_data)
    ))
    .await;

    // The SHA1-derived name of the same stream is accepted too; a forged one is rejected.
    let sha1 = turbo_identifier(ROOM_MESSAGES_SHA1);
    ws.send_text(&subscribe(&sha1)).await;
    ws.expect(&confirm(&sha1)).await;
    let forged = turbo_identifier(&ROOM_MESSAGES.replace("280b", "280c"));
    ws.send_text(&subscribe(&forged)).await;
    ws.expect(&reject(&forged)).await;
    let missing = r#"{"channel":"Turbo::StreamsChannel"}"#;
    ws.send_text(&subscribe(missing)).await;
    ws.expect(&reject(missing)).await;

    // Another site's page cannot connect at all.
    let (reply, _) = ws::connect(addr, "/cable", &[("Origin", "http://evil.example")]).await;
    assert_eq!(reply.status, 404);
}

#[test]
fn the_turbo_example_refuses_to_start_without_secret_key_base() {
    let redis = Redis::start();
    let url = redis.url();
    let port = free_port_any().to_string();
    let mut server = Bare::start(&[
        ("REDIS_URL", &url),
        ("PORT", &port),
        ("FERROCABLE_REDIS__CHANNEL_PREFIX", "fizzy_production"),
    ]);
    assert!(server.listening().is_none());
    let status = server.child.wait().unwrap();
    assert_eq!(status.code(), Some(64), "{}", server.logs());
    assert!(
        server.logs().contains("turbo.streams_channel"),
        "{}",
        server.logs()
    );
}

/// Campfire's shape: `…:messages` streams only through `RoomMessagesChannel` (which checks
/// membership); the stock channel refuses them but serves the room's other streams.
#[tokio::test]
async fn a_custom_turbo_channel_and_the_stock_channels_refusals() {
    let redis = Redis::start();
    let server = Server::start_with(
        &config(&format!(
            r#"
[redis]
url = "{}"
channel_prefix = "campfire_production"

[signed_streams]
secret_key_base = "{SECRET_KEY_BASE}"

[turbo]
refuse = ["/:messages$/"]

[channels.RoomMessagesChannel.signed_stream]
verifier = "turbo"
"#,
            redis.url()
        )),
        &[],
    );
    let mut ws = server.welcomed(42, 1).await;
    let stock = turbo_identifier(ROOM_MESSAGES);
    ws.send_text(&subscribe(&stock)).await;
    ws.expect(&reject(&stock)).await;
    let room = turbo_identifier(ROOM);
    ws.send_text(&subscribe(&room)).await;
    ws.expect(&confirm(&room)).await;
    let custom =
        format!(r#"{{"channel":"RoomMessagesChannel","signed_stream_name":"{ROOM_MESSAGES}"}}"#);
    ws.send_text(&subscribe(&custom)).await;
    ws.expect(&confirm(&custom)).await;
    let channel = format!("campfire_production:{ROOM_MESSAGES_STREAM}");
    redis.wait_subscribed(&channel);
    assert_eq!(redis.publish(&channel, APPEND), 1);
    ws.expect(&data_frame(&custom, APPEND)).await;
    ws.expect_silence(200).await;
    let logs = server.logs();
    assert!(logs.contains("is refused on this channel"), "{logs}");
    // Which key verified the name is logged (an app on the "other" digest shows up here).
    assert!(
        logs.contains("signed stream name verified") && logs.contains("Derived(Sha256)"),
        "{logs}"
    );
}

/// `CableReady::Stream` is configuration: its preset reads the `identifier` key.
#[tokio::test]
async fn cable_ready_streams_are_configuration() {
    // fixtures/rails/7.2.2.2/load_defaults-7.2.json, cable-ready-room-messages.
    let token = "ImdpZDovL215LWFwcC9Sb29tLzE6bWVzc2FnZXMi--8a160ad10a7a51a3d556d5e3376c1ddf1b242f649a1181b4d3e717bdb9a18959";
    let server = Server::start_with(
        &config(&format!(
            "[signed_streams]\nsecret_key_base = \"{SECRET_KEY_BASE}\"\n\
             [channels.\"CableReady::Stream\".signed_stream]\nverifier = \"cable_ready\"\n"
        )),
        &[],
    );
    let mut ws = server.welcomed(42, 1).await;
    let id = format!(r#"{{"channel":"CableReady::Stream","identifier":"{token}"}}"#);
    ws.send_text(&subscribe(&id)).await;
    ws.expect(&confirm(&id)).await;
    // A Turbo name is not a CableReady name (another salt).
    let turbo_name =
        format!(r#"{{"channel":"CableReady::Stream","identifier":"{ROOM_MESSAGES}"}}"#);
    ws.send_text(&subscribe(&turbo_name)).await;
    ws.expect(&reject(&turbo_name)).await;
    let operations = r##"{"cableReady":true,"operations":[{"operation":"innerHtml","selector":"#m","html":"<b>1</b>"}]}"##;
    assert_eq!(
        server
            .broadcast("gid://my-app/Room/1:messages", operations)
            .await
            .status,
        201
    );
    ws.expect(&data_frame(
        &id,
        r##"{"cableReady":true,"operations":[{"operation":"innerHtml","selector":"#m","html":"\u003cb\u003e1\u003c/b\u003e"}]}"##,
    ))
    .await;
}

/// `rails_version = "8.1"` (`load_defaults 8.1`): U+2028 and U+2029 reach the page raw, in
/// the turbo-stream HTML and in the identifier echo; with the setting turned back on, escaped.
#[tokio::test]
async fn rails_8_1_writes_js_separators_raw_unless_told_otherwise() {
    let published = r#""\u003cp\u003ea\u2028b\u2029\u003c/p\u003e""#;
    for (escape, want) in [
        (
            None,
            "\"\\u003cp\\u003ea\u{2028}b\u{2029}\\u003c/p\\u003e\"",
        ),
        (Some("true"), published),
    ] {
        let mut env = vec![
            ("FERROCABLE_PROTOCOL__RAILS_VERSION", "8.1"),
            (
                "FERROCABLE_SIGNED_STREAMS__SECRET_KEY_BASE",
                SECRET_KEY_BASE,
            ),
        ];
        if let Some(value) = escape {
            env.push(("FERROCABLE_PROTOCOL__ESCAPE_JS_SEPARATORS_IN_JSON", value));
        }
        let server = Server::start_with(&config(""), &env);
        let mut ws = server.welcomed(42, 1).await;
        let id = format!(
            r#"{{"channel":"Turbo::StreamsChannel","signed_stream_name":"{ROOM}","n":"{}"}}"#,
            '\u{2028}'
        );
        ws.send_text(&subscribe(&id)).await;
        let echoed = ws.recv_text().await;
        assert_eq!(
            echoed.contains('\u{2028}'),
            escape.is_none(),
            "identifier echo: {echoed}"
        );
        server
            .broadcast("Z2lkOi8vbXktYXBwL1Jvb20vMQ", published)
            .await;
        let frame = ws.recv_text().await;
        assert!(
            frame.ends_with(&format!(r#","message":{want}}}"#)),
            "{frame}"
        );
    }
}

/// The identifier as a JSON string literal, escaped the ActiveSupport way (`<>&`).
fn escaped(identifier: &str) -> String {
    serde_json::to_string(identifier)
        .unwrap()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}
