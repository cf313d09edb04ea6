//! The HTTP side: the Action Cable upgrade and ferrocable's own endpoints.
//!
//! - `<mount_path>`: WebSocket upgrade after Rails' checks (protocol.md §1): a non-WebSocket
//!   request or a refused Origin gets Rails' `404 Page not found`; a malformed handshake 400;
//!   the subprotocol is the first one the client offered that we speak, or none.
//!   Authentication runs here, before the 101, but its refusal is delivered after it, on the
//!   socket, exactly as Rails does.
//! - `GET /health`: 200 with the broker's state, 503 when Redis is configured but down.
//! - `GET /stats`: counters and gauges as JSON.
//! - `POST /_broadcast`: publish `{"stream","data"}` (or an array of them) through the broker.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_util::task::TaskTracker;

use tokio::net::TcpStream;

use crate::auth::Credentials;
use crate::config::Settings;
use crate::io::{Attachment, SocketWriter};
use crate::origin::RequestOrigin;
use crate::outbox::ConnHandle;
use crate::protocol;
#[cfg(test)]
use crate::protocol::MAX_JSON_DEPTH;
use crate::protocol::json::{self, Value};
use crate::session::{self, SessionContext};

/// Largest `POST /_broadcast` body.
const BROADCAST_BODY_MAX: usize = 1024 * 1024;

/// Everything a request handler needs.
#[derive(Debug)]
pub struct AppState {
    /// Validated configuration.
    pub settings: Arc<Settings>,
    /// Shared by sessions.
    pub sessions: Arc<SessionContext>,
    /// Session tasks, awaited on shutdown.
    pub session_tasks: TaskTracker,
    ws_config: WebSocketConfig,
}

impl AppState {
    /// Wraps the shared parts.
    pub fn new(settings: Arc<Settings>, sessions: Arc<SessionContext>) -> AppState {
        let mut ws_config = WebSocketConfig::default();
        // tungstenite allocates its read buffer up front, keeps it, and zero-fills it on every
        // read: 128 KiB by default, i.e. 128 KiB per idle client (performance.md §4.1).
        // Commands are ~100-200 bytes; a larger message just takes more reads.
        ws_config.read_buffer_size = 256;
        // Frames are queued until our explicit flush, which batches a backlog into one write.
        ws_config.write_buffer_size = 64 * 1024;
        // Anything beyond one batch means the peer is not reading; the outbox limit and the
        // write timeout deal with that, this is only a backstop.
        ws_config.max_write_buffer_size = settings.limits.max_outbound_bytes * 2 + 64 * 1024;
        ws_config.max_message_size = Some(settings.limits.max_message_bytes);
        ws_config.max_frame_size = Some(settings.limits.max_message_bytes);
        AppState {
            settings,
            sessions,
            session_tasks: TaskTracker::new(),
            ws_config,
        }
    }
}

type Body = Full<Bytes>;

/// The TCP connection a request arrived on.
#[derive(Debug, Clone)]
pub struct Peer {
    /// Remote address.
    pub addr: SocketAddr,
    /// The socket, shared with the connection's outbox after an upgrade.
    pub tcp: Arc<TcpStream>,
    /// Where the upgraded connection's outbox is attached.
    pub attachment: Attachment,
}

/// Routes one request.
pub async fn handle(
    req: Request<Incoming>,
    state: Arc<AppState>,
    peer: Peer,
) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path();
    let settings = &state.settings;
    let is_mount = mount_matches(
        path,
        &settings.mount_path,
        settings.protocol.compat.anchored_mount,
    );
    let response = if is_mount {
        cable(req, &state, &peer)
    } else {
        match (req.method(), path) {
            (&Method::GET, "/health") => health(&state),
            (&Method::GET, "/stats") => stats(&state),
            (&Method::POST, "/_broadcast") if settings.broadcast_api.enabled => {
                broadcast(req, &state, peer.addr).await
            }
            _ => not_found(&state),
        }
    };
    Ok(response)
}

/// Whether `path` reaches the Action Cable mount, decided as Rails' router does it
/// (conformance `mount_subpath`, `mount_subpath_routes`, recorded on 6.1 and 7.2):
/// - the path is normalized first: repeated slashes squeezed, a trailing slash dropped, so
///   `/cable/`, `/cable//` and `//cable` are `/cable` on every version;
/// - `anchored` (the engine's own mount from 7.0.4): exactly the mount path;
/// - unanchored (6.1's engine mount): a prefix ending at a word boundary or a slash, so
///   `/cable/x`, `/cable.json` and `/cable-x` match, `/cable_x` and `/cablex` do not.
///
/// (An app's own `mount ActionCable.server => "/cable"` in routes.rb is unanchored on every
/// version; ferrocable follows the engine's mount, spec/KNOWN_DIFFERENCES.md.)
fn mount_matches(path: &str, mount: &str, anchored: bool) -> bool {
    fn normalize(p: &str) -> String {
        let mut out = String::with_capacity(p.len() + 1);
        for c in std::iter::once('/').chain(p.chars()) {
            if !(c == '/' && out.ends_with('/')) {
                out.push(c);
            }
        }
        if out.len() > 1 && out.ends_with('/') {
            out.pop();
        }
        out
    }
    // Ruby's \w for a UTF-8 path: letters and digits of any script, and `_`.
    fn word(c: char) -> bool {
        c.is_alphanumeric() || c == '_'
    }
    let (path, mount) = (normalize(path), normalize(mount));
    if anchored || path == mount {
        return path == mount;
    }
    let Some(rest) = path.strip_prefix(&mount) else {
        return false;
    };
    let last = mount.chars().next_back().unwrap_or('/');
    match rest.chars().next() {
        None => true,
        Some('/') => true,
        Some(next) => word(last) != word(next),
    }
}

fn text(status: StatusCode, content_type: &'static str, body: &'static str) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

fn json_response(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(value.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// Rails' answer to anything it will not upgrade.
fn not_found(state: &AppState) -> Response<Body> {
    let content_type = if state.settings.protocol.compat.charset_in_404 {
        "text/plain; charset=utf-8"
    } else {
        "text/plain"
    };
    text(StatusCode::NOT_FOUND, content_type, "Page not found")
}

/// websocket-driver's test: GET, `Connection` lists `upgrade`, `Upgrade` is `websocket`.
fn is_websocket(req: &Request<Incoming>) -> bool {
    let has_token = |name: header::HeaderName, token: &str| {
        req.headers().get_all(name).iter().any(|v| {
            v.to_str()
                .map(|s| s.split(',').any(|p| p.trim().eq_ignore_ascii_case(token)))
                .unwrap_or(false)
        })
    };
    req.method() == Method::GET
        && has_token(header::CONNECTION, "upgrade")
        && req
            .headers()
            .get(header::UPGRADE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("websocket"))
}

/// Whether Rack would call this request HTTPS (it trusts the forwarding headers).
fn is_https(headers: &HeaderMap) -> bool {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    get("x-forwarded-proto")
        .and_then(|v| v.split(',').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
        || get("x-forwarded-scheme").is_some_and(|v| v.eq_ignore_ascii_case("https"))
        || get("x-forwarded-ssl").is_some_and(|v| v.eq_ignore_ascii_case("on"))
}

fn cable(mut req: Request<Incoming>, state: &Arc<AppState>, peer: &Peer) -> Response<Body> {
    let settings = &state.settings;
    if !is_websocket(&req) {
        tracing::info!(
            method = %req.method(),
            "Failed to upgrade to WebSocket (REQUEST_METHOD: {}, HTTP_CONNECTION: {}, HTTP_UPGRADE: {})",
            req.method(),
            header_str(req.headers(), header::CONNECTION),
            header_str(req.headers(), header::UPGRADE),
        );
        return not_found(state);
    }
    let headers = req.headers();
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let allowed = settings.origins.allows(RequestOrigin {
        origin,
        host: headers.get(header::HOST).and_then(|v| v.to_str().ok()),
        https: is_https(headers),
    });
    if !allowed {
        tracing::info!("Request origin not allowed: {}", origin.unwrap_or(""));
        return not_found(state);
    }
    if state.sessions.is_shutting_down() {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            "Server is restarting",
        );
    }
    let ctx = &state.sessions;
    let Some(slot) = ctx.try_open() else {
        ctx.stats
            .connection_limit_refusals
            .fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            limit = settings.limits.max_connections,
            "connection refused: limits.max_connections reached"
        );
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            "Too many connections",
        );
    };
    let subprotocol = protocol::select_subprotocol(
        headers
            .get_all(header::SEC_WEBSOCKET_PROTOCOL)
            .iter()
            .filter_map(|v| v.to_str().ok()),
    );
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let auth = settings.auth.authenticate(
        Credentials {
            query: req.uri().query(),
            authorization: headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok()),
        },
        now,
        settings.channels.wanted_claims(),
        settings.protocol.compat.drop_false_identifiers,
    );
    let (upgrade_response, websocket) =
        match hyper_tungstenite::upgrade(&mut req, Some(state.ws_config)) {
            Ok(pair) => pair,
            Err(e) => {
                tracing::info!(cause = %e, "malformed WebSocket handshake");
                return text(StatusCode::BAD_REQUEST, "text/plain", "Bad Request");
            }
        };
    // Rails' 101 carries exactly these headers, in this order, and no body.
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = response.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Some(accept) = upgrade_response.headers().get("sec-websocket-accept") {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, accept.clone());
    }
    if let Some(p) = subprotocol {
        h.insert(header::SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static(p));
    }
    let id = ctx.next_id();
    let ctx = ctx.clone();
    let identity = match &auth {
        Ok(i) => i.connection_identifier.to_string(),
        Err(crate::auth::AuthError::TokenTooLong(_)) => {
            ctx.stats.oversized_tokens.fetch_add(1, Ordering::Relaxed);
            String::new()
        }
        Err(_) => String::new(),
    };
    // From here on every byte hyper or tungstenite writes on this socket goes through the
    // connection's outbox (the 101 included), ordered with the hub's direct writes.
    let conn = Arc::new(
        ConnHandle::new(
            id,
            settings.limits.max_outbound_bytes,
            Some(peer.tcp.clone()),
        )
        .counted(ctx.stats.clone()),
    );
    if peer.attachment.set(conn.clone()).is_err() {
        tracing::warn!("a second upgrade on one connection refused");
        return text(StatusCode::BAD_REQUEST, "text/plain", "Bad Request");
    }
    let out = SocketWriter(peer.tcp.clone());
    let span = tracing::info_span!("conn", id, identity = %identity);
    // A combinator rather than an async block: the closure's captures are moved into the
    // session future instead of being kept beside it for the connection's whole life.
    let session = futures_util::FutureExt::then(websocket, move |upgraded| match upgraded {
        Ok(ws) => futures_util::future::Either::Left(session::run(ws, out, ctx, conn, auth)),
        Err(e) => {
            tracing::debug!(cause = %e, "upgrade did not complete");
            futures_util::future::Either::Right(std::future::ready(()))
        }
    });
    state.session_tasks.spawn(tracing::Instrument::instrument(
        futures_util::FutureExt::map(session, move |()| drop(slot)),
        span,
    ));
    response
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> &str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

fn health(state: &AppState) -> Response<Body> {
    let broker = state.sessions.broker.status();
    let draining = state.sessions.is_shutting_down();
    let ok = broker.healthy && !draining;
    let body = serde_json::json!({
        "status": if draining { "draining" } else if ok { "ok" } else { "degraded" },
        "broker": broker,
        "connections": state.sessions.registry.len(),
    });
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json_response(status, &body)
}

fn stats(state: &AppState) -> Response<Body> {
    let ctx = &state.sessions;
    let s = &ctx.stats;
    let (unique, top) = ctx.hub.identities(100);
    let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let body = serde_json::json!({
        "connections": s.connections.load(Ordering::Relaxed),
        "unique_identities": unique,
        "identities": top
            .into_iter()
            .map(|(id, n)| serde_json::json!({"identifier": id, "connections": n}))
            .collect::<Vec<_>>(),
        "subscriptions": s.subscriptions.load(Ordering::Relaxed),
        "streams": ctx.hub.stream_count(),
        "broadcasts_received": load(&s.broadcasts_received),
        "broadcasts_invalid": load(&s.broadcasts_invalid),
        "broadcasts_coalesced": load(&s.broadcasts_coalesced),
        "frames_delivered": s.frames_delivered.get(),
        "unauthorized_connections": load(&s.unauthorized),
        "slow_client_disconnects": load(&s.slow_disconnects),
        "write_timeouts": load(&s.write_timeouts),
        "connection_limit_refusals": load(&s.connection_limit_refusals),
        "oversized_messages": load(&s.oversized_messages),
        "subscription_limit_rejections": load(&s.subscription_limit_rejections),
        "rate_limited_disconnects": load(&s.rate_limited_disconnects),
        "deep_json_commands": load(&s.deep_json_commands),
        "oversized_tokens": load(&s.oversized_tokens),
        "handshake_timeouts": load(&s.handshake_timeouts),
        "broker": ctx.broker.status(),
    });
    json_response(StatusCode::OK, &body)
}

fn api_error(status: StatusCode, message: &str) -> Response<Body> {
    json_response(status, &serde_json::json!({ "error": message }))
}

/// Constant-time comparison, so the key cannot be guessed byte by byte from timings.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn broadcast(req: Request<Incoming>, state: &AppState, peer: SocketAddr) -> Response<Body> {
    match &state.settings.broadcast_api.key {
        Some(key) => {
            let given = req
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .unwrap_or("");
            if !same_secret(given.as_bytes(), key.as_bytes()) {
                return api_error(StatusCode::UNAUTHORIZED, "missing or wrong bearer key");
            }
        }
        None if !peer.ip().is_loopback() => {
            return api_error(
                StatusCode::FORBIDDEN,
                "broadcast_api.key is not set, so only loopback clients may broadcast",
            );
        }
        None => {}
    }
    let body = match Limited::new(req.into_body(), BROADCAST_BODY_MAX)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return api_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body over 1 MiB or unreadable",
            );
        }
    };
    let items = match parse_broadcasts(&body, state.settings.limits.max_json_depth) {
        Ok(items) => items,
        Err(e) => return api_error(StatusCode::UNPROCESSABLE_ENTITY, &e),
    };
    let count = items.len();
    for (stream, data) in items {
        if let Err(e) = state.sessions.broker.publish(&stream, data).await {
            tracing::warn!(stream, cause = %e, "broadcast API could not publish");
            return api_error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string());
        }
    }
    json_response(
        StatusCode::CREATED,
        &serde_json::json!({ "broadcasts": count }),
    )
}

/// `{"stream":"s","data":"<json>"}` or an array of them. `data` may also be any JSON value,
/// which is encoded as ActiveSupport would (as `ActionCable.server.broadcast` does).
fn parse_broadcasts(body: &[u8], max_depth: usize) -> Result<Vec<(String, Bytes)>, String> {
    let value = json::parse(body, max_depth).map_err(|e| format!("body is not JSON: {e}"))?;
    let items: Vec<&Value> = match &value {
        Value::Array(items) => items.iter().collect(),
        one => vec![one],
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let stream = item
            .get("stream")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| format!("item {i}: \"stream\" must be a non-empty string"))?;
        let data = match item.get("data") {
            Some(Value::String(s)) => {
                // Rails never publishes invalid JSON, and every subscriber would drop it:
                // tell the caller now instead.
                json::parse(s.as_bytes(), max_depth)
                    .map_err(|e| format!("item {i}: \"data\" is not valid JSON ({e})"))?;
                Bytes::from(s.clone())
            }
            Some(other) => {
                let mut encoded = Vec::new();
                json::write_value(&mut encoded, other);
                Bytes::from(encoded)
            }
            None => return Err(format!("item {i}: \"data\" is missing")),
        };
        out.push((stream.to_string(), data));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_broadcasts_default(body: &[u8]) -> Result<Vec<(String, Bytes)>, String> {
        parse_broadcasts(body, MAX_JSON_DEPTH)
    }

    #[test]
    fn broadcast_bodies() {
        let one = parse_broadcasts_default(br#"{"stream":"chat_1","data":"{\"a\":1}"}"#).unwrap();
        assert_eq!(
            one,
            vec![("chat_1".to_string(), Bytes::from_static(br#"{"a":1}"#))]
        );
        let many = parse_broadcasts_default(
            br#"[{"stream":"a","data":"1"},{"stream":"b","data":{"x":"<"}}]"#,
        )
        .unwrap();
        assert_eq!(many[1].1, Bytes::from_static(br#"{"x":"\u003c"}"#));
        assert!(parse_broadcasts_default(br#"{"data":"1"}"#).is_err());
        assert!(parse_broadcasts_default(br#"{"stream":"a"}"#).is_err());
        assert!(parse_broadcasts_default(b"nope").is_err());
        assert!(parse_broadcasts_default(br#"{"stream":"a","data":"not json"}"#).is_err());
    }

    #[test]
    fn mount_matching_follows_rails_router() {
        // The paths of conformance `mount_subpath`, with what Rails 6.1 (unanchored) and
        // 7.2 (anchored) answered: true = upgraded, false = the app's 404.
        let cases = [
            ("/cable", true, true),
            ("/cable/anything", true, false),
            ("/cable/", true, true),
            ("/cable//", true, true),
            ("//cable", true, true),
            ("/cable.json", true, false),
            ("/cable-x", true, false),
            ("/cable_x", false, false),
            ("/cablex", false, false),
            ("/", false, false),
            ("/cabl", false, false),
        ];
        for (path, unanchored, anchored) in cases {
            assert_eq!(
                mount_matches(path, "/cable", false),
                unanchored,
                "{path} (6.1)"
            );
            assert_eq!(
                mount_matches(path, "/cable", true),
                anchored,
                "{path} (7.2)"
            );
        }
        // A deeper mount, and one configured with a trailing slash.
        assert!(mount_matches("/ws/cable/", "/ws/cable", true));
        assert!(mount_matches("/ws/cable", "/ws/cable/", true));
        assert!(!mount_matches("/ws", "/ws/cable", false));
    }

    #[test]
    fn secrets_compare_exactly() {
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abc", b"abd"));
        assert!(!same_secret(b"abc", b"ab"));
    }
}
