//! One WebSocket connection, from welcome to close, in one task.
//!
//! The task waits on two things: an inbound frame, or a wake-up from its [`ConnHandle`]
//! (frames queued by the hub, the ping timer, its own replies, or a close request). Queued
//! frames are written in one batch and flushed once, so a burst costs one syscall. The
//! session is generic over the WebSocket `Sink + Stream`, so it can be driven by any
//! transport in tests.
//!
//! Rails' error behaviour (docs/PROTOCOL.md §3) is kept: every malformed or unknown command is
//! logged and ignored, the connection stays open. Only WebSocket-level violations close it,
//! with the code websocket-driver uses (1007 invalid UTF-8, 1009 too big, 1002 protocol).
//!
//! - `commands`: subscribe, unsubscribe and actions;
//! - `recheck`: periodic re-checks of subscriptions whose predicate asks for them;
//! - `end`: why the loop ended and how each ending closes the connection.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use futures_util::{Sink, SinkExt, Stream, StreamExt};
use hyper_tungstenite::tungstenite::Error as WsError;
use hyper_tungstenite::tungstenite::Message;
use tokio::io::AsyncWrite;
use tracing::{debug, warn};

use ferrocable_protocol::INTERNAL_STREAM_PREFIX;
use ferrocable_protocol::outgoing::{self, DisconnectReason, EscapedIdentifier};

mod commands;
mod end;
mod recheck;

use end::End;

use super::rate_limit::RateLimit;
use super::subscriptions::{Subscription, Subscriptions};
use crate::auth::{Authentication, Identity};
use crate::outbox::{self, CloseRequest, ConnHandle, Frame};
use crate::shared::{Shared, server_restart};
use crate::stats::Stamp;

/// How long a closing connection waits for the client's close frame (or to send its own).
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// A server close frame with code 1000 and no reason: unmasked, FIN, opcode 8, length 2.
const CLOSE_1000: &[u8] = &[0x88, 0x02, 0x03, 0xE8];

/// Runs a connection whose upgrade already happened. `ws` reads frames (and carries
/// tungstenite's control replies, which reach `conn`'s queue through [`crate::outbox::socket`]); `out`
/// is the socket's write side, on which the task writes whatever `conn` had to queue.
/// `auth` is the outcome of checking the upgrade request; a refusal gets Rails'
/// unauthorized disconnect and close.
///
/// Not an `async fn`: the session is built before the future exists, so the future stores
/// it once (an `async fn` would also keep its arguments, doubling the per-connection size).
pub(super) fn run<S, W>(
    ws: S,
    out: W,
    shared: Arc<Shared>,
    conn: Arc<ConnHandle>,
    auth: Authentication,
) -> impl std::future::Future<Output = &'static str>
where
    S: Stream<Item = Result<Message, WsError>> + Sink<Message, Error = WsError> + Unpin,
    W: AsyncWrite + Unpin,
{
    use futures_util::future::Either;
    let mut session = Session {
        ws,
        out,
        conn,
        rate: RateLimit::new(shared.settings.limits.max_commands_per_second),
        shared,
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
        check: None,
        recheck: None,
    };
    let pending = match auth {
        Authentication::Done(Ok(identity)) => {
            session.identity = identity;
            session.read_waker = Waker::from(session.read_signal.clone());
            return Either::Right(async move { session.serve().await });
        }
        Authentication::Done(Err(cause)) => Err(cause),
        Authentication::Pending(pending) => Ok(pending),
    };
    // Boxed: refusals and database lookups are the cold path, and an unboxed arm would size
    // every connection's future. For a lookup the 101 is out and, as Rails runs `connect`
    // after the upgrade, the welcome waits for it.
    Either::Left(Box::pin(async move {
        match pending {
            Err(cause) => {
                session.refuse(cause).await;
                "unauthorized"
            }
            Ok(pending) => match pending.finish().await {
                Ok(identity) => {
                    // The connection's span was opened before the lookup answered.
                    tracing::Span::current().record(
                        "identity",
                        tracing::field::display(&identity.connection_identifier),
                    );
                    session.identity = identity;
                    session.read_waker = Waker::from(session.read_signal.clone());
                    session.serve().await
                }
                Err(cause) => {
                    session.refuse(cause).await;
                    "unauthorized"
                }
            },
        }
    }))
}

struct Session<S, W> {
    ws: S,
    out: W,
    shared: Arc<Shared>,
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
    /// A subscribe waiting on its channel's database predicate; while it waits, inbound
    /// commands wait too (they are processed in order), outbound frames do not.
    check: Option<Box<commands::PendingCheck>>,
    /// Periodic re-checks of subscriptions whose predicate asks for them.
    recheck: Option<Box<recheck::Recheck>>,
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

/// What woke the connection's task.
enum Event {
    Outbound,
    Inbound(Option<Result<Message, WsError>>),
    /// The pending subscribe's predicate answered.
    Checked,
    /// A re-check round ended; these subscriptions lost their row.
    Rechecked(Vec<EscapedIdentifier>),
}

impl<S, W> Session<S, W>
where
    S: Stream<Item = Result<Message, WsError>> + Sink<Message, Error = WsError> + Unpin,
    W: AsyncWrite + Unpin,
{
    /// Serves a welcomed connection to its end; returns why it ended (for the log line).
    async fn serve(&mut self) -> &'static str {
        self.conn.push(&outgoing::text_frame(outgoing::WELCOME));
        if Box::pin(self.flush()).await.is_err() {
            return "client_closed";
        }
        self.register();
        let end = self.event_loop().await;
        self.finish(end).await
    }

    fn register(&mut self) {
        let shared = &self.shared;
        shared.registry.insert(self.conn.clone());
        self.conn.start_pings(shared.hub.beat());
        shared.stats.connections.fetch_add(1, Ordering::Relaxed);
        if !self.identity.connection_identifier.is_empty() {
            let stream = format!(
                "{INTERNAL_STREAM_PREFIX}{}",
                self.identity.connection_identifier
            );
            self.internal_stream = Some(shared.hub.join_internal(&stream, &self.conn));
        }
        self.registered = true;
        if shared.is_shutting_down() {
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
                Event::Checked => Box::pin(self.finish_check()).await,
                Event::Rechecked(gone) => self.end_revoked(gone),
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
        if self.recheck.is_some()
            && let Poll::Ready(gone) = self.poll_recheck(cx)
        {
            return Poll::Ready(Event::Rechecked(gone));
        }
        if let Some(check) = &mut self.check {
            return match check.poll_answer(cx) {
                Poll::Ready(()) => Poll::Ready(Event::Checked),
                Poll::Pending => Poll::Pending,
            };
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

    /// Writes whatever the outbox had to queue, with vectored writes, until it is empty;
    /// then producers write to the socket directly again. Each write that cannot complete
    /// at once is bounded by the write timeout. Returns the close request, if any.
    async fn flush(&mut self) -> Result<Option<CloseRequest>, End> {
        loop {
            let taken = self.conn.take_batch(&mut self.batch);
            if self.batch.is_empty() {
                // A burst may have grown the buffer; an idle connection should not keep it.
                if self.batch.capacity() > 64 {
                    self.batch.shrink_to(8);
                }
                return Ok(taken.close);
            }
            let count = self.batch.len() as u64;
            let write_timeout = self.shared.settings.limits.write_timeout;
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
            let stats = &self.shared.stats;
            match outcome {
                Ok(Ok(())) => {
                    stats.frames_delivered.add(self.conn.id, count);
                    // Once per batch: since it started (see `outbox::Taken::started`).
                    if let Some(received) = taken.started {
                        stats
                            .delivery_latency
                            .observe(self.conn.id, received.until(Stamp::now()));
                    }
                }
                Ok(Err(_)) | Err(_) => {
                    stats.frames_failed.fetch_add(count, Ordering::Relaxed);
                    return Err(match outcome {
                        Err(_) => End::WriteTimeout,
                        _ => End::PeerGone,
                    });
                }
            }
        }
    }

    async fn on_message(&mut self, message: Message) -> Result<(), End> {
        if matches!(
            message,
            Message::Text(_) | Message::Binary(_) | Message::Ping(_)
        ) && !self.rate.allow()
        {
            self.shared
                .stats
                .rate_limited_disconnects
                .fetch_add(1, Ordering::Relaxed);
            warn!(
                limit = self.shared.settings.limits.max_commands_per_second,
                "client sent frames faster than limits.max_commands_per_second; disconnecting"
            );
            return Err(End::Requested(CloseRequest::Disconnect {
                reason: DisconnectReason::TooManyRequests,
                reconnect: "true".into(),
            }));
        }
        if matches!(message, Message::Text(_) | Message::Binary(_)) {
            self.shared.stats.client_messages.add(self.conn.id, 1);
        }
        match message {
            Message::Text(text) => {
                Box::pin(self.on_command(text.as_str())).await;
                Ok(())
            }
            Message::Binary(_) => {
                self.shared
                    .stats
                    .client_messages_failed
                    .fetch_add(1, Ordering::Relaxed);
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
                        self.conn
                            .push_control(&bytes::Bytes::from_static(CLOSE_1000));
                    }
                    let _ = self.flush().await;
                })
                .await;
                Err(End::PeerGone)
            }
        }
    }
}

impl<S, W> Drop for Session<S, W> {
    /// Runs on every exit, panics included, so the hub and registry never keep a dead
    /// connection.
    fn drop(&mut self) {
        for sub in self.subscriptions.values() {
            release(&self.shared, self.conn.id, sub);
        }
        if let Some(stream) = &self.internal_stream {
            self.shared.hub.leave_internal(stream, self.conn.id);
        }
        if self.registered {
            self.shared.registry.remove(self.conn.id);
            self.shared
                .stats
                .connections
                .fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Takes a subscription out of the hub (and its pending confirm, which will never go out).
fn release(shared: &Shared, conn_id: u64, sub: &Subscription) {
    sub.pending.cancel();
    for stream in sub.streams.iter() {
        shared
            .hub
            .unsubscribe(stream, &sub.identifier, conn_id, Some(&sub.pending));
    }
    shared.stats.subscriptions.fetch_sub(1, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::ChannelSection;
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

    /// The server-wide state of a default configuration with one channel, `Chat`.
    fn context() -> Arc<Shared> {
        let mut raw = crate::config::RawConfig::default();
        raw.channels.insert(
            "Chat".into(),
            ChannelSection {
                streams: vec!["chat_{params.room}".into()],
                ..Default::default()
            },
        );
        let settings = crate::config::Settings::from_raw(&raw).unwrap();
        Arc::new(Shared::new(Arc::new(settings)))
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
        let task = tokio::spawn(run(
            bomb,
            wire.clone(),
            ctx.clone(),
            conn,
            Authentication::Done(Ok(identity)),
        ));
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
        let size = future_size(run::<Ws, crate::outbox::socket::SocketWriter>);
        assert!(size <= 900, "session future is {size} bytes (budget 900)");
    }
}
