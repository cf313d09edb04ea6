//! The HTTP side: the Action Cable upgrade and ferrocable's own endpoints.
//!
//! - `<mount_path>`: WebSocket upgrade after Rails' checks (docs/PROTOCOL.md §1): a non-WebSocket
//!   request or a refused Origin gets Rails' `404 Page not found`; a malformed handshake 400;
//!   the subprotocol is the first one the client offered that we speak, or none.
//!   Authentication runs here, before the 101 (a JWT, a cookie), or after it in the
//!   connection's task when it waits on the database; either way its refusal is delivered after
//!   the 101, on the socket, exactly as Rails does.
//! - `GET /health`: 200 with the broker's state, 503 when Redis is configured but down.
//! - `GET /stats`: counters and gauges as JSON; `GET /metrics`: the same for Prometheus.
//! - `POST /_broadcast`: publish `{"stream","data"}` (or an array of them) through the broker
//!   (AnyCable's HTTP broadcast shape; answered 201).
//! - with `[dapr]`: `GET /dapr/subscribe` and a `POST` route per topic (CloudEvents, answered
//!   `{"status":"SUCCESS"|"RETRY"|"DROP"}`; decisions in `broker::cloudevents`).
//!
//! - `GET /console` (+ `/console/state`, `POST /console/broadcast`): the live console, when
//!   enabled (see `console`).
//!
//! Everything but the upgrade, `/health` and Dapr's routes (guarded by Dapr's token) is
//! guarded by the broadcast API's key (or loopback only without one): see `broadcast_api`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_tungstenite::tungstenite::protocol::WebSocketConfig;

use ferrocable_protocol::select_subprotocol;

use crate::auth::Credentials;
use crate::broadcast_api::{self, Refusal};
use crate::broker::PublishError;
use crate::broker::cloudevents::Verdict;
use crate::broker::health::Rejection;
use crate::connection;
use crate::console::{self, ConsoleState};
use crate::limits::Limits;
use crate::metrics;
use crate::origin::RequestOrigin;
use crate::outbox::socket::SharedSocket;
use crate::shared::Shared;

/// tungstenite's limits for one connection.
fn websocket_config(limits: &Limits) -> WebSocketConfig {
    let mut ws_config = WebSocketConfig::default();
    // tungstenite allocates its read buffer up front, keeps it, and zero-fills it on every
    // read: 128 KiB by default, i.e. 128 KiB per idle client (we measured 138 KB of RSS per
    // idle connection with tungstenite's defaults).
    // Commands are ~100-200 bytes; a larger message just takes more reads.
    ws_config.read_buffer_size = 256;
    // Frames are queued until our explicit flush, which batches a backlog into one write.
    ws_config.write_buffer_size = 64 * 1024;
    // Anything beyond one batch means the peer is not reading; the outbox limit and the
    // write timeout deal with that, this is only a backstop.
    ws_config.max_write_buffer_size = limits.max_outbound_bytes * 2 + 64 * 1024;
    ws_config.max_message_size = Some(limits.max_message_bytes);
    ws_config.max_frame_size = Some(limits.max_message_bytes);
    ws_config
}

type Body = Full<Bytes>;

/// The TCP connection a request arrived on.
#[derive(Debug, Clone)]
pub struct Peer {
    /// Remote address.
    pub addr: SocketAddr,
    /// The socket, for the connection an upgrade starts.
    pub socket: SharedSocket,
}

/// Routes one request.
pub async fn handle(
    req: Request<Incoming>,
    shared: Arc<Shared>,
    peer: Peer,
) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path();
    let settings = &shared.settings;
    let is_mount = mount_matches(
        path,
        &settings.server.mount_path,
        settings.protocol.compat.anchored_mount,
    );
    let response = if is_mount {
        cable(req, &shared, &peer)
    } else {
        match (req.method(), path) {
            (&Method::GET, "/health") => health(&shared),
            (&Method::GET, "/stats") => guarded(&req, &shared, peer.addr, || stats(&shared)),
            (&Method::GET, "/metrics") => guarded(&req, &shared, peer.addr, || {
                let accept = req
                    .headers()
                    .get(header::ACCEPT)
                    .and_then(|v| v.to_str().ok());
                let (body, content_type) = metrics::render(&shared, accept);
                let mut r = Response::new(Full::new(Bytes::from(body)));
                r.headers_mut()
                    .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
                r
            }),
            (&Method::POST, "/_broadcast") if settings.broadcast_api.enabled => {
                broadcast(req, &shared, peer.addr).await
            }
            (&Method::GET, "/console") if settings.console.enabled => {
                guarded(&req, &shared, peer.addr, console_page)
            }
            (&Method::GET, "/console/state") if settings.console.enabled => {
                guarded(&req, &shared, peer.addr, || {
                    match ConsoleState::of(&shared) {
                        Some(state) => json_response(StatusCode::OK, &state),
                        None => not_found(&shared),
                    }
                })
            }
            (&Method::POST, "/console/broadcast") if settings.console.enabled => {
                console_broadcast(req, &shared, peer.addr).await
            }
            (&Method::GET, "/dapr/subscribe") if settings.broker.dapr.is_some() => {
                dapr_subscribe(&shared)
            }
            (&Method::POST, route)
                if settings
                    .broker
                    .dapr
                    .as_ref()
                    .is_some_and(|d| d.topic_at(route).is_some()) =>
            {
                cloudevent(req, &shared, peer.addr).await
            }
            _ => not_found(&shared),
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

fn json_response(status: StatusCode, value: &impl serde::Serialize) -> Response<Body> {
    let body = serde_json::to_vec(value).unwrap_or_default();
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// Rails' answer to anything it will not upgrade.
fn not_found(shared: &Shared) -> Response<Body> {
    let content_type = if shared.settings.protocol.compat.charset_in_404 {
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

fn cable(mut req: Request<Incoming>, shared: &Arc<Shared>, peer: &Peer) -> Response<Body> {
    let settings = &shared.settings;
    if !is_websocket(&req) {
        tracing::info!(
            method = %req.method(),
            "Failed to upgrade to WebSocket (REQUEST_METHOD: {}, HTTP_CONNECTION: {}, HTTP_UPGRADE: {})",
            req.method(),
            header_str(req.headers(), header::CONNECTION),
            header_str(req.headers(), header::UPGRADE),
        );
        return not_found(shared);
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
        return not_found(shared);
    }
    if shared.refuses_new_connections() {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            "Server is restarting",
        );
    }
    let Some(slot) = shared.try_open() else {
        shared
            .stats
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
    let subprotocol = select_subprotocol(
        headers
            .get_all(header::SEC_WEBSOCKET_PROTOCOL)
            .iter()
            .filter_map(|v| v.to_str().ok()),
    );
    let cookie = cookie_header(headers);
    let auth = settings.auth.authenticate(
        Credentials {
            query: req.uri().query(),
            authorization: headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok()),
            cookie: cookie.as_deref(),
        },
        SystemTime::now(),
        settings.channels.wanted_claims(),
        settings.protocol.compat.drop_false_identifiers,
    );
    let (upgrade_response, websocket) =
        match hyper_tungstenite::upgrade(&mut req, Some(websocket_config(&settings.limits))) {
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
    if let Err(e) = connection::spawn(websocket, &peer.socket, peer.addr, auth, slot, shared) {
        tracing::warn!("{e} refused");
        return text(StatusCode::BAD_REQUEST, "text/plain", "Bad Request");
    }
    response
}

/// The `Cookie` header; several (HTTP/2 style, or a proxy's) are joined with "; " as Rack
/// sees them joined.
fn cookie_header(headers: &HeaderMap) -> Option<String> {
    let mut values = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| std::str::from_utf8(v.as_bytes()).ok());
    let first = values.next()?;
    let mut joined = first.to_string();
    for more in values {
        joined.push_str("; ");
        joined.push_str(more);
    }
    Some(joined)
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> &str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

fn health(shared: &Shared) -> Response<Body> {
    let report = shared.health_report();
    let status = if report.is_ok() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json_response(status, &report)
}

fn stats(shared: &Shared) -> Response<Body> {
    json_response(StatusCode::OK, &shared.stats_report())
}

/// 401 for a wrong key, 403 for a key-less endpoint called from elsewhere than loopback.
fn refused(refusal: Refusal) -> Response<Body> {
    let status = match refusal {
        Refusal::WrongKey => StatusCode::UNAUTHORIZED,
        Refusal::NotLoopback(_) | Refusal::ForeignHost => StatusCode::FORBIDDEN,
    };
    api_error(status, &refusal.to_string())
}

fn api_error(status: StatusCode, message: &str) -> Response<Body> {
    json_response(status, &serde_json::json!({ "error": message }))
}

/// The refusal for a request to one of ferrocable's own endpoints, if it may not use them
/// (see `broadcast_api`). A wrong key is answered 401 with a Basic challenge, so a browser
/// asks for it (any user name, the key as the password).
fn refusal<B>(req: &Request<B>, shared: &Shared, peer: SocketAddr) -> Option<Response<Body>> {
    let headers = req.headers();
    let get = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    let refusal = shared
        .settings
        .broadcast_api
        .admits(get(header::AUTHORIZATION), get(header::HOST), peer.ip())
        .err()?;
    let mut response = refused(refusal);
    if refusal == Refusal::WrongKey {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"ferrocable\", charset=\"UTF-8\""),
        );
    }
    Some(response)
}

/// `answer()` if the request may use ferrocable's own endpoints, else the refusal.
fn guarded<B>(
    req: &Request<B>,
    shared: &Shared,
    peer: SocketAddr,
    answer: impl FnOnce() -> Response<Body>,
) -> Response<Body> {
    refusal(req, shared, peer).unwrap_or_else(answer)
}

fn console_page() -> Response<Body> {
    let mut r = text(StatusCode::OK, "text/html; charset=utf-8", console::PAGE);
    let h = r.headers_mut();
    h.insert(
        "content-security-policy",
        HeaderValue::from_static(console::PAGE_POLICY),
    );
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// Whether a browser request comes from a page of this server (no `Origin`, as from curl, or
/// the `Origin` of `Host`): a page elsewhere must not post to the console (CSRF).
fn same_origin<B>(req: &Request<B>) -> bool {
    let headers = req.headers();
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let origin = origin.to_str().unwrap_or("");
    host.is_some_and(|host| {
        origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
            .is_some_and(|origin_host| origin_host.eq_ignore_ascii_case(host))
    })
}

/// `POST /console/broadcast`: the console's test broadcast, a JSON body as `/_broadcast`
/// takes it, from the console's own page.
async fn console_broadcast(
    req: Request<Incoming>,
    shared: &Shared,
    peer: SocketAddr,
) -> Response<Body> {
    if let Some(refused) = refusal(&req, shared, peer) {
        return refused;
    }
    let json_body = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    // A cross-site form can send neither JSON nor a same-origin Origin.
    if !json_body || !same_origin(&req) {
        return api_error(
            StatusCode::FORBIDDEN,
            "the console's broadcasts come from its own page (JSON, same origin)",
        );
    }
    broadcast(req, shared, peer).await
}

async fn broadcast(req: Request<Incoming>, shared: &Shared, peer: SocketAddr) -> Response<Body> {
    if let Some(refused) = refusal(&req, shared, peer) {
        return refused;
    }
    let body = match Limited::new(req.into_body(), broadcast_api::BODY_MAX)
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
    let items = match broadcast_api::parse_broadcasts(&body, shared.settings.limits.max_json_depth)
    {
        Ok(items) => items,
        Err(e) => return api_error(StatusCode::UNPROCESSABLE_ENTITY, &e),
    };
    let count = items.len();
    for (stream, data) in items {
        if let Err(e) = shared.broker.publish(&stream, data).await {
            tracing::warn!(stream, cause = %e, "broadcast API could not publish");
            let status = match e {
                // The broker's format cannot carry it: retrying will not help.
                PublishError::Refused(_) => StatusCode::UNPROCESSABLE_ENTITY,
                _ => StatusCode::SERVICE_UNAVAILABLE,
            };
            return api_error(status, &e.to_string());
        }
    }
    json_response(
        StatusCode::CREATED,
        &serde_json::json!({ "broadcasts": count }),
    )
}

fn dapr_subscribe(shared: &Shared) -> Response<Body> {
    match &shared.settings.broker.dapr {
        Some(dapr) => json_response(StatusCode::OK, &dapr.subscriptions()),
        None => not_found(shared),
    }
}

fn dapr_status(status: &'static str) -> Response<Body> {
    json_response(StatusCode::OK, &serde_json::json!({ "status": status }))
}

/// One CloudEvent delivered by Dapr: `SUCCESS` once published, `RETRY` when the broker
/// cannot publish now, `DROP` for an event that can never be delivered.
async fn cloudevent(req: Request<Incoming>, shared: &Shared, peer: SocketAddr) -> Response<Body> {
    let (Some(dapr), Some(input)) = (&shared.settings.broker.dapr, shared.broker.cloudevents())
    else {
        return not_found(shared);
    };
    let Some(topic) = dapr.topic_at(req.uri().path()) else {
        return not_found(shared);
    };
    let token = req
        .headers()
        .get("dapr-api-token")
        .and_then(|v| v.to_str().ok());
    if let Err(refusal) = dapr.admits(token, peer.ip()) {
        return refused(refusal);
    }
    let verdict = match Limited::new(req.into_body(), broadcast_api::BODY_MAX)
        .collect()
        .await
    {
        Ok(body) => topic.judge(&body.to_bytes(), shared.settings.limits.max_json_depth),
        // Retrying cannot make it smaller.
        Err(_) => Verdict::Drop(
            Rejection::Oversized,
            format!("body over {} bytes or unreadable", broadcast_api::BODY_MAX),
        ),
    };
    input.record(&topic.name, &verdict);
    let Verdict::Deliver(deliveries) = verdict else {
        return dapr_status("DROP");
    };
    for (stream, payload) in deliveries {
        match shared.broker.publish(&stream, payload).await {
            Ok(()) => {}
            Err(e @ PublishError::Refused(_)) => {
                input.record(
                    &topic.name,
                    &Verdict::Drop(Rejection::Oversized, e.to_string()),
                );
                return dapr_status("DROP");
            }
            Err(e) => {
                tracing::warn!(topic = %topic.name, stream, cause = %e, "could not publish a CloudEvent; Dapr will retry it");
                return dapr_status("RETRY");
            }
        }
    }
    dapr_status("SUCCESS")
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
