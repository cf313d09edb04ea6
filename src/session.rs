//! One WebSocket connection, from welcome to close, in one task.
//!
//! The task waits on two things: an inbound frame, or a wake-up from its [`ConnHandle`]
//! (frames queued by the hub, the ping timer, its own replies, or a close request). Queued
//! frames are written in one batch and flushed once, so a burst costs one syscall. The
//! session is generic over the WebSocket `Sink + Stream`, so it can be driven by any
//! transport in tests.
//!
//! Rails' error behaviour (protocol.md §3) is kept: every malformed or unknown command is
//! logged and ignored, the connection stays open. Only WebSocket-level violations close it,
//! with the code websocket-driver uses (1007 invalid UTF-8, 1009 too big, 1002 protocol).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use hyper_tungstenite::tungstenite::Error as WsError;
use hyper_tungstenite::tungstenite::Message;
use hyper_tungstenite::tungstenite::protocol::CloseFrame;
use hyper_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio::io::AsyncWrite;
use tracing::{debug, info, warn};

use crate::auth::{AuthError, Identity};
use crate::broker::Broker;
use crate::channels::{Action, ChannelRegistry, ChannelSpec, INTERNAL_STREAM_PREFIX};
use crate::config::{Limits, ProtocolSettings};
use crate::hub::{Hub, Registry};
use crate::outbox::{self, CloseRequest, ConnHandle, Frame, PendingConfirm};
use crate::protocol::incoming::{self, Command, CommandError};
use crate::protocol::json::{self, Value};
use crate::protocol::outgoing::{self, DisconnectReason, EscapedIdentifier};
use crate::stats::Stats;

/// How long a closing connection waits for the client's close frame.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// A server close frame with code 1000 and no reason: unmasked, FIN, opcode 8, length 2.
const CLOSE_1000: &[u8] = &[0x88, 0x02, 0x03, 0xE8];
/// Longest command text quoted in a log line.
const LOG_TEXT_MAX: usize = 300;

/// What every session shares.
#[derive(Debug)]
pub struct SessionContext {
    /// Stream index.
    pub hub: Arc<Hub>,
    /// Welcomed connections (pings, shutdown).
    pub registry: Arc<Registry>,
    /// Counters.
    pub stats: Arc<Stats>,
    /// Channel rules.
    pub channels: Arc<ChannelRegistry>,
    /// Where action broadcasts go.
    pub broker: Arc<Broker>,
    /// Wire behaviour.
    pub protocol: ProtocolSettings,
    /// Bounds.
    pub limits: Limits,
    /// Listen on `action_cable/<connection identifier>` for remote disconnects.
    pub remote_disconnect: bool,
    next_id: AtomicU64,
    /// Set once shutdown begins. Paired with the registry (see [`SessionContext::begin_shutdown`]).
    shutting_down: AtomicBool,
    /// WebSocket connections from the accepted upgrade until their task ends; what
    /// `limits.max_connections` bounds.
    open: Arc<AtomicUsize>,
}

/// One of the `limits.max_connections` slots, released when dropped.
#[derive(Debug)]
pub struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl SessionContext {
    /// Bundles the shared parts.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        hub: Arc<Hub>,
        registry: Arc<Registry>,
        stats: Arc<Stats>,
        channels: Arc<ChannelRegistry>,
        broker: Arc<Broker>,
        protocol: ProtocolSettings,
        limits: Limits,
        remote_disconnect: bool,
    ) -> SessionContext {
        SessionContext {
            hub,
            registry,
            stats,
            channels,
            broker,
            protocol,
            limits,
            remote_disconnect,
            next_id: AtomicU64::new(1),
            shutting_down: AtomicBool::new(false),
            open: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Takes a connection slot, or `None` when `limits.max_connections` are open.
    pub fn try_open(&self) -> Option<Slot> {
        let before = self.open.fetch_add(1, Ordering::AcqRel);
        let slot = Slot(self.open.clone());
        (before < self.limits.max_connections).then_some(slot)
    }

    /// A fresh connection number.
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Whether shutdown has begun.
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    /// Tells every welcomed connection to go away with `server_restart`. A session that
    /// registers concurrently either is seen here or sees the flag itself (both sides write
    /// then read, sequentially consistent), so nobody is missed.
    pub fn begin_shutdown(&self) -> usize {
        self.shutting_down.store(true, Ordering::SeqCst);
        let mut told = 0;
        self.registry.for_each(|conn| {
            conn.close(server_restart());
            told += 1;
        });
        told
    }
}

fn server_restart() -> CloseRequest {
    CloseRequest::Disconnect {
        reason: DisconnectReason::ServerRestart,
        reconnect: "true".into(),
    }
}

struct Subscription {
    identifier: EscapedIdentifier,
    channel: Arc<ChannelSpec>,
    streams: Box<[Arc<str>]>,
    pending: Arc<PendingConfirm>,
    /// Kept only for channels with actions (their templates may read params).
    params: Option<Value>,
}

/// Why the session loop ended.
enum End {
    /// The peer closed or vanished.
    PeerGone,
    /// Someone asked us to close (shutdown, remote disconnect, too slow).
    Requested(CloseRequest),
    /// The peer broke the WebSocket protocol; close with this code and reason.
    Violation(CloseCode, String),
    /// A write stayed blocked too long.
    WriteTimeout,
}

/// Runs a connection whose upgrade already happened. `ws` reads frames (and carries
/// tungstenite's control replies, which reach `conn`'s queue through [`crate::io`]); `out`
/// is the socket's write side, on which the task writes whatever `conn` had to queue.
/// `auth` is the outcome of checking the upgrade request; a refusal gets Rails'
/// unauthorized disconnect and close.
///
/// Not an `async fn`: the session is built before the future exists, so the future stores
/// it once (an `async fn` would also keep its arguments, doubling the per-connection size).
pub fn run<S, W>(
    ws: S,
    out: W,
    ctx: Arc<SessionContext>,
    conn: Arc<ConnHandle>,
    auth: Result<Identity, AuthError>,
) -> impl std::future::Future<Output = ()>
where
    S: Stream<Item = Result<Message, WsError>> + Sink<Message, Error = WsError> + Unpin,
    W: AsyncWrite + Unpin,
{
    use futures_util::future::Either;
    let mut session = Session {
        ws,
        out,
        conn,
        rate: RateLimit::new(ctx.limits.max_commands_per_second),
        ctx,
        identity: Identity::default(),
        subscriptions: Subscriptions::default(),
        internal_stream: None,
        registered: false,
        batch: VecDeque::new(),
        read_waker: Waker::noop().clone(),
        read_signal: Arc::new(ReadSignal {
            ready: AtomicBool::new(true),
            task: futures_util::task::AtomicWaker::new(),
        }),
    };
    match auth {
        // Boxed: refusals are rare, and an unboxed arm would size every connection's future.
        Err(cause) => Either::Left(Box::pin(async move { session.refuse(cause).await })),
        Ok(identity) => {
            session.identity = identity;
            session.read_waker = Waker::from(session.read_signal.clone());
            Either::Right(async move { session.serve().await })
        }
    }
}

struct Session<S, W> {
    ws: S,
    out: W,
    ctx: Arc<SessionContext>,
    conn: Arc<ConnHandle>,
    identity: Identity,
    subscriptions: Subscriptions,
    internal_stream: Option<Arc<str>>,
    registered: bool,
    rate: RateLimit,
    /// Frames being written; swapped with the outbox's queue so both keep their buffers.
    batch: VecDeque<Frame>,
    /// Set when the socket may have something to read (see [`ReadSignal`]).
    read_signal: Arc<ReadSignal>,
    read_waker: Waker,
}

/// Remembers whether the socket signalled readability since we last found it empty.
///
/// A wake-up for outbound frames would otherwise also cost a read attempt (tungstenite
/// prepares its buffer and asks the socket) that almost always finds nothing: per delivery,
/// that was a measurable share of the server's CPU. The read side is polled with a waker
/// that sets this flag before waking the task, so the socket is read only when it said so.
struct ReadSignal {
    ready: AtomicBool,
    task: futures_util::task::AtomicWaker,
}

impl std::task::Wake for ReadSignal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref()
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.ready.store(true, Ordering::Release);
        self.task.wake();
    }
}

/// A connection's subscriptions by identifier. Most connections hold one to a few, so a
/// vector sized exactly is smaller than a hash map and no slower; the count is bounded by
/// `limits.max_subscriptions_per_connection`.
#[derive(Default)]
struct Subscriptions(Vec<Subscription>);

impl Subscriptions {
    /// Rails keys subscriptions by the identifier string as sent; escaping is one-to-one,
    /// so the escaped form (shared with the hub) serves as the key.
    fn position(&self, identifier: &EscapedIdentifier) -> Option<usize> {
        self.0.iter().position(|s| &s.identifier == identifier)
    }

    fn contains(&self, identifier: &EscapedIdentifier) -> bool {
        self.position(identifier).is_some()
    }

    fn get(&self, identifier: &EscapedIdentifier) -> Option<&Subscription> {
        self.position(identifier).map(|i| &self.0[i])
    }

    fn insert(&mut self, subscription: Subscription) {
        self.0.reserve_exact(1);
        self.0.push(subscription);
    }

    fn remove(&mut self, identifier: &EscapedIdentifier) -> Option<Subscription> {
        let i = self.position(identifier)?;
        let removed = self.0.swap_remove(i);
        if self.0.capacity() > 2 * self.0.len() + 4 {
            self.0.shrink_to_fit();
        }
        Some(removed)
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    fn values(&self) -> impl Iterator<Item = &Subscription> {
        self.0.iter()
    }
}

/// What woke the connection's task.
enum Event {
    Outbound,
    Inbound(Option<Result<Message, WsError>>),
}

/// A token bucket over inbound frames: `per_second` sustained, bursts of twice that.
struct RateLimit {
    per_second: u32,
    /// Thousandths of a frame, so refills need no floating point.
    milli_tokens: u64,
    last: tokio::time::Instant,
}

impl RateLimit {
    fn new(per_second: u32) -> RateLimit {
        RateLimit {
            per_second,
            milli_tokens: Self::capacity(per_second),
            last: tokio::time::Instant::now(),
        }
    }

    fn capacity(per_second: u32) -> u64 {
        u64::from(per_second) * 2 * 1000
    }

    /// Takes one frame's token; false when the bucket is empty.
    fn allow(&mut self) -> bool {
        let now = tokio::time::Instant::now();
        let elapsed_ms = now.duration_since(self.last).as_millis() as u64;
        if elapsed_ms > 0 {
            self.last = now;
            self.milli_tokens = (self.milli_tokens + elapsed_ms * u64::from(self.per_second))
                .min(Self::capacity(self.per_second));
        }
        if self.milli_tokens >= 1000 {
            self.milli_tokens -= 1000;
            true
        } else {
            false
        }
    }
}

impl<S, W> Session<S, W>
where
    S: Stream<Item = Result<Message, WsError>> + Sink<Message, Error = WsError> + Unpin,
    W: AsyncWrite + Unpin,
{
    /// Rails' answer to a failed `connect`: the unauthorized disconnect, then close 1000.
    async fn refuse(&mut self, cause: AuthError) {
        self.ctx.stats.unauthorized.fetch_add(1, Ordering::Relaxed);
        info!(cause = %cause, "An unauthorized connection attempt was rejected");
        let frame = outgoing::disconnect(DisconnectReason::Unauthorized, "false");
        self.close_politely(Some(frame)).await;
    }

    async fn serve(&mut self) {
        self.conn.push(&outgoing::text_frame(outgoing::WELCOME));
        if Box::pin(self.flush()).await.is_err() {
            return;
        }
        self.register();
        let end = self.event_loop().await;
        match end {
            End::PeerGone => debug!("connection closed by the client"),
            End::Requested(request) => {
                let frame = match &request {
                    CloseRequest::Disconnect { reason, reconnect } => {
                        Some(outgoing::disconnect(*reason, reconnect))
                    }
                    CloseRequest::CloseOnly => None,
                    CloseRequest::TooSlow => {
                        self.ctx
                            .stats
                            .slow_disconnects
                            .fetch_add(1, Ordering::Relaxed);
                        warn!(
                            limit = self.ctx.limits.max_outbound_bytes,
                            "client too slow: outbound queue full, disconnecting"
                        );
                        Some(outgoing::disconnect(DisconnectReason::TooSlow, "true"))
                    }
                };
                // Cold paths are boxed so the connection's future stays small: it lives as
                // long as the connection, so every byte is multiplied by the client count.
                Box::pin(self.close_politely(frame)).await;
            }
            End::Violation(code, reason) => {
                info!(code = u16::from(code), "failing the connection: {reason}");
                // websocket-driver sends its close and drops TCP without waiting for an echo.
                let close = Message::Close(Some(CloseFrame {
                    code,
                    reason: reason.into(),
                }));
                Box::pin(async {
                    let _ = tokio::time::timeout(CLOSE_GRACE, self.ws.send(close)).await;
                    let _ = self.flush().await;
                })
                .await;
            }
            End::WriteTimeout => {
                // A peer that stopped reading: its queue has usually overflowed by now too.
                // The socket cannot take a too_slow frame, so the connection is just dropped.
                let stats = &self.ctx.stats;
                stats.write_timeouts.fetch_add(1, Ordering::Relaxed);
                stats.slow_disconnects.fetch_add(1, Ordering::Relaxed);
                warn!(
                    timeout_secs = self.ctx.limits.write_timeout.as_secs(),
                    queued_bytes = self.conn.queued_bytes(),
                    "client too slow: a write stayed blocked past the write timeout; dropping the connection"
                );
            }
        }
    }

    fn register(&mut self) {
        let ctx = &self.ctx;
        ctx.registry.insert(self.conn.clone());
        ctx.stats.connections.fetch_add(1, Ordering::Relaxed);
        if ctx.remote_disconnect && !self.identity.connection_identifier.is_empty() {
            let stream = format!(
                "{INTERNAL_STREAM_PREFIX}{}",
                self.identity.connection_identifier
            );
            self.internal_stream = Some(ctx.hub.join_internal(&stream, &self.conn));
        }
        self.registered = true;
        if ctx.is_shutting_down() {
            self.conn.close(server_restart());
        }
    }

    async fn event_loop(&mut self) -> End {
        let conn = self.conn.clone();
        loop {
            let event = {
                let woken = conn.woken();
                let mut woken = std::pin::pin!(woken);
                std::future::poll_fn(|cx| self.poll_event(cx, woken.as_mut())).await
            };
            match event {
                // Boxed: with direct writes the task only writes when a socket was full.
                Event::Outbound => match Box::pin(self.flush()).await {
                    Err(end) => return end,
                    Ok(Some(request)) => return End::Requested(request),
                    Ok(None) => {}
                },
                Event::Inbound(None) => return End::PeerGone,
                Event::Inbound(Some(Ok(message))) => {
                    if let Err(end) = self.on_message(message).await {
                        return end;
                    }
                }
                Event::Inbound(Some(Err(e))) => return self.classify(e),
            }
        }
    }

    /// Outbound first (what the hub queued), then the socket, but only if it signalled.
    fn poll_event(
        &mut self,
        cx: &mut Context<'_>,
        woken: std::pin::Pin<&mut impl std::future::Future<Output = ()>>,
    ) -> Poll<Event> {
        if woken.poll(cx).is_ready() {
            return Poll::Ready(Event::Outbound);
        }
        self.read_signal.task.register(cx.waker());
        if self.read_signal.ready.swap(false, Ordering::AcqRel) {
            let mut read_cx = Context::from_waker(&self.read_waker);
            if let Poll::Ready(item) = self.ws.poll_next_unpin(&mut read_cx) {
                // tungstenite may hold more frames from the same read: look again next time.
                self.read_signal.ready.store(true, Ordering::Release);
                return Poll::Ready(Event::Inbound(item));
            }
        }
        Poll::Pending
    }

    fn classify(&self, error: WsError) -> End {
        use hyper_tungstenite::tungstenite::error::CapacityError;
        if let WsError::Capacity(CapacityError::MessageTooLong { size, max_size }) = &error {
            self.ctx
                .stats
                .oversized_messages
                .fetch_add(1, Ordering::Relaxed);
            info!(
                size,
                max_size, "inbound message over limits.max_message_bytes"
            );
        }
        match violation(&error) {
            Some((code, reason)) => End::Violation(code, reason),
            None => End::PeerGone,
        }
    }

    /// Writes whatever the outbox had to queue, with vectored writes, until it is empty;
    /// then producers write to the socket directly again. Each write that cannot complete
    /// at once is bounded by the write timeout. Returns the close request, if any.
    async fn flush(&mut self) -> Result<Option<CloseRequest>, End> {
        loop {
            let close = self.conn.take_batch(&mut self.batch);
            if self.batch.is_empty() {
                // A burst may have grown the buffer; an idle connection should not keep it.
                if self.batch.capacity() > 64 {
                    self.batch.shrink_to(8);
                }
                return Ok(close);
            }
            let count = self.batch.len() as u64;
            let write_timeout = self.ctx.limits.write_timeout;
            let outcome = {
                let batch = outbox::write_frames(&mut self.out, &mut self.batch);
                let mut batch = std::pin::pin!(batch);
                // Nearly every write completes at once; only a write that has to wait gets a
                // timer (boxed, so the connection's future does not carry one while idle).
                match futures_util::FutureExt::now_or_never(batch.as_mut()) {
                    Some(done) => Ok(done),
                    None => Box::pin(tokio::time::timeout(write_timeout, batch)).await,
                }
            };
            self.batch.clear();
            match outcome {
                Ok(Ok(())) => self.ctx.stats.frames_delivered.add(self.conn.id, count),
                Ok(Err(_)) => return Err(End::PeerGone),
                Err(_) => return Err(End::WriteTimeout),
            }
        }
    }

    /// Sends an optional last frame, then close 1000, then waits briefly for the client's
    /// close so the closing handshake completes as Rails' does.
    async fn close_politely(&mut self, last: Option<String>) {
        if let Some(text) = last {
            self.conn.push_control(&outgoing::text_frame(&text));
        }
        // Through tungstenite, so it knows the close is ours and will not echo the client's;
        // its bytes reach the outbox after the frame above.
        let close = Message::Close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        }));
        if !matches!(
            tokio::time::timeout(self.ctx.limits.write_timeout, self.ws.send(close)).await,
            Ok(Ok(()))
        ) || self.flush().await.is_err()
        {
            return;
        }
        let ws = &mut self.ws;
        let drain = async { while let Some(Ok(_)) = ws.next().await {} };
        let _ = tokio::time::timeout(CLOSE_GRACE, drain).await;
    }

    async fn on_message(&mut self, message: Message) -> Result<(), End> {
        if matches!(
            message,
            Message::Text(_) | Message::Binary(_) | Message::Ping(_)
        ) && !self.rate.allow()
        {
            self.ctx
                .stats
                .rate_limited_disconnects
                .fetch_add(1, Ordering::Relaxed);
            warn!(
                limit = self.ctx.limits.max_commands_per_second,
                "client sent frames faster than limits.max_commands_per_second; disconnecting"
            );
            return Err(End::Requested(CloseRequest::Disconnect {
                reason: DisconnectReason::TooManyRequests,
                reconnect: "true".into(),
            }));
        }
        match message {
            Message::Text(text) => {
                Box::pin(self.on_command(text.as_str())).await;
                Ok(())
            }
            Message::Binary(_) => {
                // websocket-driver before 0.8 (what Rails 7.2 apps pin) hands Rails a byte
                // array, which it refuses to handle.
                debug!("Couldn't handle non-string message: binary frame ignored");
                Ok(())
            }
            // tungstenite queued the pong (or the close reply); send it now.
            Message::Ping(_) => {
                self.ws.flush().await.map_err(|_| End::PeerGone)?;
                Box::pin(self.flush()).await.map(|_| ())
            }
            Message::Pong(_) | Message::Frame(_) => Ok(()),
            Message::Close(frame) => {
                Box::pin(async {
                    if frame.is_some() {
                        // tungstenite queued an echo of the client's code and reason, which
                        // is what websocket-driver answers too (close_by_client).
                        let _ = tokio::time::timeout(CLOSE_GRACE, self.ws.flush()).await;
                    } else {
                        // A close frame without a status code (a browser's `ws.close()`,
                        // @rails/actioncable's `consumer.disconnect()`): websocket-driver
                        // answers close 1000 with an empty reason, but tungstenite queued an
                        // empty close frame (the client would see 1005). Send Rails' frame
                        // instead; tungstenite's queued reply is never flushed, because the
                        // connection ends right here (conformance `close_without_code`).
                        self.conn.push_control(&Bytes::from_static(CLOSE_1000));
                    }
                    let _ = self.flush().await;
                })
                .await;
                Err(End::PeerGone)
            }
        }
    }

    async fn on_command(&mut self, text: &str) {
        let depth = self.ctx.limits.max_json_depth;
        match incoming::parse_command_at_depth(text.as_bytes(), depth) {
            Ok(Command::Subscribe { identifier }) => self.subscribe(identifier),
            Ok(Command::Unsubscribe { identifier }) => self.unsubscribe(identifier),
            Ok(Command::Message { identifier, data }) => self.perform(identifier, data).await,
            // Hafaloha's client sends {"type":"pong"} and {"type":"ping"} all the time.
            Err(CommandError::Unrecognized) => {
                debug!(command = %clip(text), "Received unrecognized command")
            }
            Err(CommandError::NotJson(e)) if e.is_too_deep() => {
                self.ctx
                    .stats
                    .deep_json_commands
                    .fetch_add(1, Ordering::Relaxed);
                info!(
                    limit = depth,
                    "command nested deeper than limits.max_json_depth ignored"
                );
            }
            Err(e) => info!(command = %clip(text), cause = %e, "Could not execute command"),
        }
    }

    fn subscribe(&mut self, identifier: String) {
        let escaped = EscapedIdentifier::new(&identifier);
        if self.subscriptions.contains(&escaped) {
            debug!(identifier = %clip(&identifier), "already subscribed; duplicate ignored");
            return;
        }
        let channel_ref = match incoming::parse_identifier_at_depth(
            &identifier,
            self.ctx.limits.max_json_depth,
        ) {
            Ok(r) => r,
            Err(e) => {
                info!(identifier = %clip(&identifier), cause = %e, "Could not execute command");
                return;
            }
        };
        let Some(channel) = self.ctx.channels.get(&channel_ref.channel).cloned() else {
            info!(channel = %clip(&channel_ref.channel), "Subscription class not found");
            if self.ctx.protocol.reject_unknown_channels {
                self.reject(&escaped);
            }
            return;
        };
        if self.subscriptions.len() >= self.ctx.limits.max_subscriptions_per_connection {
            self.ctx
                .stats
                .subscription_limit_rejections
                .fetch_add(1, Ordering::Relaxed);
            warn!(
                limit = self.ctx.limits.max_subscriptions_per_connection,
                channel = %channel.name,
                "subscription rejected: limits.max_subscriptions_per_connection reached"
            );
            self.reject(&escaped);
            return;
        }
        let streams = match channel.decide(&self.identity, &channel_ref.params) {
            Ok(streams) => streams,
            Err(rejection) => {
                info!(channel = %channel.name, cause = %rejection, "subscription rejected");
                self.reject(&escaped);
                return;
            }
        };
        let pending = Arc::new(PendingConfirm::new(
            streams.len(),
            self.conn.clone(),
            outgoing::text_frame(&outgoing::confirm(&escaped)),
        ));
        let mut shared_identifier = escaped;
        // Keep the hub's copies: one allocation per stream and identifier, not per client.
        let streams: Box<[Arc<str>]> = streams
            .iter()
            .map(|stream| {
                let (name, id) =
                    self.ctx
                        .hub
                        .subscribe(stream, &shared_identifier, &self.conn, &pending);
                shared_identifier = id;
                name
            })
            .collect();
        pending.ready();
        debug!(channel = %channel.name, streams = ?streams, "subscribed");
        self.ctx.stats.subscriptions.fetch_add(1, Ordering::Relaxed);
        let params = channel.has_actions().then_some(channel_ref.params);
        self.subscriptions.insert(Subscription {
            identifier: shared_identifier,
            channel,
            streams,
            pending,
            params,
        });
    }

    fn reject(&self, identifier: &EscapedIdentifier) {
        self.conn
            .push(&outgoing::text_frame(&outgoing::reject(identifier)));
    }

    fn unsubscribe(&mut self, identifier: Option<String>) {
        let removed = identifier
            .as_ref()
            .and_then(|id| self.subscriptions.remove(&EscapedIdentifier::new(id)));
        match removed {
            Some(sub) => {
                debug!(identifier = %clip(identifier.as_deref().unwrap_or("")), "Unsubscribing from channel");
                release(&self.ctx, self.conn.id, &sub);
            }
            None => info!(
                identifier = %clip(identifier.as_deref().unwrap_or("(not a string)")),
                "Unable to find subscription with identifier"
            ),
        }
    }

    async fn perform(&mut self, identifier: Option<String>, data: Option<String>) {
        let Some(sub) = identifier
            .as_ref()
            .and_then(|id| self.subscriptions.get(&EscapedIdentifier::new(id)))
        else {
            info!(
                identifier = %clip(identifier.as_deref().unwrap_or("(not a string)")),
                "Unable to find subscription with identifier"
            );
            return;
        };
        let Some(data) = data else {
            info!("Could not execute command: message data is not a string");
            return;
        };
        let call = match incoming::parse_action_at_depth(&data, self.ctx.limits.max_json_depth) {
            Ok(call) => call,
            Err(e) => {
                info!(data = %clip(&data), cause = %e, "Could not execute command");
                return;
            }
        };
        let action = call.action.as_deref().unwrap_or("receive");
        let Some(effect) = sub.channel.action(action) else {
            info!(channel = %sub.channel.name, action = %clip(action), "Unable to process action");
            return;
        };
        let mut encoded = Vec::with_capacity(data.len());
        json::write_value(&mut encoded, &call.data);
        match effect {
            Action::Transmit => {
                let message = String::from_utf8(encoded).unwrap_or_default();
                self.conn.push(&outgoing::text_frame(&outgoing::message(
                    &sub.identifier,
                    &message,
                )));
            }
            Action::BroadcastTo(template) => {
                let params = sub.params.as_ref().unwrap_or(&Value::Null);
                let Some(stream) = template.render(&self.identity, params) else {
                    info!(channel = %sub.channel.name, action, "action's stream template has no value; nothing broadcast");
                    return;
                };
                let broker = self.ctx.broker.clone();
                if let Err(e) = Box::pin(broker.publish(&stream, Bytes::from(encoded))).await {
                    warn!(stream, cause = %e, "action broadcast failed");
                }
            }
        }
    }
}

impl<S, W> Drop for Session<S, W> {
    /// Runs on every exit, panics included, so the hub and registry never keep a dead
    /// connection.
    fn drop(&mut self) {
        for sub in self.subscriptions.values() {
            release(&self.ctx, self.conn.id, sub);
        }
        if let Some(stream) = &self.internal_stream {
            self.ctx.hub.leave_internal(stream, self.conn.id);
        }
        if self.registered {
            self.ctx.registry.remove(self.conn.id);
            self.ctx.stats.connections.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Takes a subscription out of the hub (and its pending confirm, which will never go out).
fn release(ctx: &SessionContext, conn_id: u64, sub: &Subscription) {
    sub.pending.cancel();
    for stream in sub.streams.iter() {
        ctx.hub
            .unsubscribe(stream, &sub.identifier, conn_id, Some(&sub.pending));
    }
    ctx.stats.subscriptions.fetch_sub(1, Ordering::Relaxed);
}

/// The close websocket-driver (Rails' WebSocket layer) sends for a broken frame, with its
/// wording; `None` when the error is the connection going away rather than a violation.
fn violation(error: &WsError) -> Option<(CloseCode, String)> {
    use hyper_tungstenite::tungstenite::error::ProtocolError as P;
    let protocol = |reason: String| Some((CloseCode::Protocol, reason));
    match error {
        WsError::Capacity(_) => Some((CloseCode::Size, "WebSocket frame length too large".into())),
        WsError::Utf8(_) => Some((
            CloseCode::Invalid,
            "Could not decode a text frame as UTF-8".into(),
        )),
        WsError::Protocol(p) => match p {
            P::UnmaskedFrameFromClient => Some((
                CloseCode::Unsupported,
                "Received unmasked frame but masking is required".into(),
            )),
            P::UnknownControlFrameType(op) | P::UnknownDataFrameType(op) => {
                protocol(format!("Unrecognized frame opcode: {op}"))
            }
            P::UnexpectedContinueFrame => protocol("Received unexpected continuation frame".into()),
            P::ExpectedFragment(_) => protocol(
                "Received new data frame but previous continuous frame is unfinished".into(),
            ),
            P::FragmentedControlFrame => protocol("Received fragmented control frame".into()),
            P::ControlFrameTooBig => {
                protocol("Received control frame having too long payload".into())
            }
            P::NonZeroReservedBits => protocol("One or more reserved bits are on".into()),
            P::ResetWithoutClosingHandshake => None,
            other => protocol(other.to_string()),
        },
        _ => None,
    }
}

fn clip(text: &str) -> &str {
    if text.len() <= LOG_TEXT_MAX {
        return text;
    }
    let mut end = LOG_TEXT_MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ChannelSection, RailsCompat};
    use crate::hub::HubOptions;
    use std::collections::VecDeque;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    /// A transport that plays a script of client frames, then blows up.
    struct Bomb {
        script: VecDeque<Message>,
    }

    impl Stream for Bomb {
        type Item = Result<Message, WsError>;
        fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
            match self.script.pop_front() {
                Some(m) => Poll::Ready(Some(Ok(m))),
                None => panic!("injected fault in a connection's task"),
            }
        }
    }

    impl Sink<Message> for Bomb {
        type Error = WsError;
        fn poll_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), WsError>> {
            Poll::Ready(Ok(()))
        }
        fn start_send(self: Pin<&mut Self>, _: Message) -> Result<(), WsError> {
            Ok(())
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), WsError>> {
            Poll::Ready(Ok(()))
        }
        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), WsError>> {
            Poll::Ready(Ok(()))
        }
    }

    fn context() -> Arc<SessionContext> {
        let stats = Arc::new(Stats::default());
        let hub = Arc::new(Hub::new(
            false,
            stats.clone(),
            HubOptions {
                remote_disconnect_frame: true,
                max_json_depth: 100,
            },
        ));
        let channel = ChannelSpec::compile(
            "Chat",
            &ChannelSection {
                streams: vec!["chat_{params.room}".into()],
                ..Default::default()
            },
            &[],
        )
        .unwrap();
        let limits = crate::config::Settings::from_raw(&Default::default())
            .unwrap()
            .limits;
        Arc::new(SessionContext::new(
            hub.clone(),
            Arc::new(Registry::default()),
            stats,
            Arc::new(ChannelRegistry::new(vec![channel])),
            Arc::new(Broker::Memory(hub)),
            ProtocolSettings {
                ping_interval: Duration::from_secs(3),
                compat: RailsCompat {
                    remote_disconnect_frame: true,
                    charset_in_404: true,
                    anchored_mount: true,
                    drop_false_identifiers: true,
                    base_class_is_channel: false,
                },
                reject_unknown_channels: false,
            },
            limits,
            true,
        ))
    }

    /// Collects what the session writes to its socket.
    #[derive(Clone, Default)]
    struct Wire(Arc<std::sync::Mutex<Vec<u8>>>);

    impl AsyncWrite for Wire {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Poll::Ready(Ok(buf.len()))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_connection_is_contained_and_cleaned_up() {
        let ctx = context();
        let identity = Identity {
            connection_identifier: "user-1".into(),
            ..Identity::default()
        };
        let bomb = Bomb {
            script: VecDeque::from([Message::Text(
                r#"{"command":"subscribe","identifier":"{\"channel\":\"Chat\",\"room\":\"1\"}"}"#
                    .into(),
            )]),
        };
        let wire = Wire::default();
        let conn = Arc::new(ConnHandle::new(1, 1 << 20, None));
        let task = tokio::spawn(run(bomb, wire.clone(), ctx.clone(), conn, Ok(identity)));
        let outcome = task.await;
        assert!(outcome.unwrap_err().is_panic(), "the task panicked");
        // The runtime (and so the process) is fine, and nothing of the dead connection is
        // left in the hub, the registry or the counters.
        let written = wire.0.lock().unwrap().clone();
        assert_eq!(
            outgoing::text_payload(&written[..20]),
            Some(outgoing::WELCOME)
        );
        assert!(ctx.registry.is_empty());
        assert_eq!(ctx.hub.stream_count(), 0);
        assert_eq!(ctx.stats.connections.load(Ordering::Relaxed), 0);
        assert_eq!(ctx.stats.subscriptions.load(Ordering::Relaxed), 0);
        assert!(tokio::spawn(async { 1 + 1 }).await.is_ok());
    }
}

#[cfg(test)]
mod size_budget {
    use super::*;

    fn future_size<A, B, C, D, E, F: std::future::Future>(_: impl Fn(A, B, C, D, E) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    /// The connection's future lives as long as the connection: a change that bloats it
    /// (an unboxed cold path, a big local held across an await) costs memory per client.
    #[test]
    fn a_connection_future_stays_small() {
        type Ws = hyper_tungstenite::HyperWebsocketStream;
        let size = future_size(run::<Ws, crate::io::SocketWriter>);
        assert!(size <= 900, "session future is {size} bytes (budget 900)");
    }
}
