//! How a connection ends: why its loop stopped ([`End`]), and what goes on the wire for each
//! reason. A requested close (shutdown, remote disconnect, too slow, a refused `connect`)
//! gets Rails' disconnect frame and a polite close 1000; a WebSocket violation gets
//! websocket-driver's close code and wording; a peer that is gone or stopped reading gets
//! nothing, as nothing can reach it.

use std::sync::atomic::Ordering;

use futures_util::{Sink, SinkExt, Stream, StreamExt};
use hyper_tungstenite::tungstenite::Error as WsError;
use hyper_tungstenite::tungstenite::Message;
use hyper_tungstenite::tungstenite::protocol::CloseFrame;
use hyper_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio::io::AsyncWrite;
use tracing::{debug, info, warn};

use ferrocable_protocol::outgoing::{self, DisconnectReason};

use super::{CLOSE_GRACE, Session};
use crate::auth::AuthError;
use crate::outbox::CloseRequest;

/// Why the session loop ended.
pub(super) enum End {
    /// The peer closed or vanished.
    PeerGone,
    /// Someone asked us to close (shutdown, remote disconnect, too slow).
    Requested(CloseRequest),
    /// The peer broke the WebSocket protocol; close with this code and reason.
    Violation(CloseCode, String),
    /// A write stayed blocked too long.
    WriteTimeout,
}

impl<S, W> Session<S, W>
where
    S: Stream<Item = Result<Message, WsError>> + Sink<Message, Error = WsError> + Unpin,
    W: AsyncWrite + Unpin,
{
    /// Rails' answer to a failed `connect`: the unauthorized disconnect, then close 1000.
    pub(super) async fn refuse(&mut self, cause: AuthError) {
        self.shared
            .stats
            .unauthorized_connections
            .fetch_add(1, Ordering::Relaxed);
        self.shared.stats.auth_refusals.add(cause.reason());
        if cause.is_configuration_problem() {
            warn!(cause = %cause, "An unauthorized connection attempt was rejected");
        } else {
            info!(cause = %cause, "An unauthorized connection attempt was rejected");
        }
        let frame = outgoing::disconnect(DisconnectReason::Unauthorized, "false");
        self.close_politely(Some(frame)).await;
    }

    /// Closes the connection the way `end` calls for; returns why it ended (for the log line).
    pub(super) async fn finish(&mut self, end: End) -> &'static str {
        // Each arm says why the connection ended; nothing but constants and the request's own
        // word outlive the awaits, so the reason costs the connection's future nothing.
        match end {
            End::PeerGone => {
                debug!("connection closed by the client");
                "client_closed"
            }
            End::Requested(request) => {
                let reason = close_reason(&request);
                let frame = match &request {
                    CloseRequest::Disconnect { reason, reconnect } => {
                        Some(outgoing::disconnect(*reason, reconnect))
                    }
                    CloseRequest::CloseOnly => None,
                    CloseRequest::TooSlow => {
                        self.shared
                            .stats
                            .slow_client_disconnects
                            .fetch_add(1, Ordering::Relaxed);
                        warn!(
                            limit = self.shared.settings.limits.max_outbound_bytes,
                            "client too slow: outbound queue full, disconnecting"
                        );
                        Some(outgoing::disconnect(DisconnectReason::TooSlow, "true"))
                    }
                };
                drop(request);
                // Cold paths are boxed so the connection's future stays small: it lives as
                // long as the connection, so every byte is multiplied by the client count.
                Box::pin(self.close_politely(frame)).await;
                reason
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
                "protocol_error"
            }
            End::WriteTimeout => {
                // A peer that stopped reading: its queue has usually overflowed by now too.
                // The socket cannot take a too_slow frame, so the connection is just dropped.
                let stats = &self.shared.stats;
                stats.write_timeouts.fetch_add(1, Ordering::Relaxed);
                stats
                    .slow_client_disconnects
                    .fetch_add(1, Ordering::Relaxed);
                warn!(
                    timeout_secs = self.shared.settings.limits.write_timeout.as_secs(),
                    queued_bytes = self.conn.queued_bytes(),
                    "client too slow: a write stayed blocked past the write timeout; dropping the connection"
                );
                "write_timeout"
            }
        }
    }

    pub(super) fn classify(&self, error: WsError) -> End {
        use hyper_tungstenite::tungstenite::error::CapacityError;
        if let WsError::Capacity(CapacityError::MessageTooLong { size, max_size }) = &error {
            self.shared
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
            tokio::time::timeout(
                self.shared.settings.limits.write_timeout,
                self.ws.send(close)
            )
            .await,
            Ok(Ok(()))
        ) || self.flush().await.is_err()
        {
            return;
        }
        let ws = &mut self.ws;
        let drain = async { while let Some(Ok(_)) = ws.next().await {} };
        let _ = tokio::time::timeout(CLOSE_GRACE, drain).await;
    }
}

/// Why a requested close ended the connection, in a word, for the "connection closed" log
/// line: the disconnect reason sent to the client.
fn close_reason(request: &CloseRequest) -> &'static str {
    match request {
        CloseRequest::Disconnect { reason, .. } => match reason {
            DisconnectReason::Unauthorized => "unauthorized",
            DisconnectReason::ServerRestart => "server_restart",
            DisconnectReason::Remote | DisconnectReason::Unspecified => "remote",
            DisconnectReason::TooSlow => "too_slow",
            DisconnectReason::TooManyRequests => "too_many_requests",
        },
        CloseRequest::CloseOnly => "remote",
        CloseRequest::TooSlow => "too_slow",
    }
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
