//! The three commands (docs/PROTOCOL.md §3): subscribe, unsubscribe, and message (a channel
//! action). Every failure is logged and ignored, as Rails does; the only replies are the
//! confirm (once the streams are live) and the reject.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use bytes::Bytes;
use ferrocable_protocol::incoming::{self, Command, CommandError};
use ferrocable_protocol::json::{self, Value};
use ferrocable_protocol::outgoing::{self, EscapedIdentifier};
use futures_util::{Sink, Stream};
use hyper_tungstenite::tungstenite::Error as WsError;
use hyper_tungstenite::tungstenite::Message;
use tokio::io::AsyncWrite;
use tracing::{debug, info, warn};

use super::super::subscriptions::{ActionContext, Subscription};
use super::{Session, release};
use crate::channels::{Action, ChannelSpec, Fill, Rejection, predicate};
use crate::database::Row;
use crate::hub::PendingConfirm;

type Answer = Result<Arc<Row>, Rejection>;

/// A subscribe whose channel asked the database (see `Session::check`).
pub(super) struct PendingCheck {
    identifier: EscapedIdentifier,
    channel: Arc<ChannelSpec>,
    params: Value,
    /// The channel's verified signed name, if it has one (it streams first).
    verified: Option<String>,
    answer: Pin<Box<dyn Future<Output = Answer> + Send>>,
    outcome: Option<Answer>,
}

impl PendingCheck {
    /// Ready once the predicate answered (the answer is kept for `finish_check`).
    pub(super) fn poll_answer(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.outcome.is_none() {
            match self.answer.as_mut().poll(cx) {
                Poll::Ready(answer) => self.outcome = Some(answer),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(())
    }
}

/// Longest command text quoted in a log line.
const LOG_TEXT_MAX: usize = 300;

impl<S, W> Session<S, W>
where
    S: Stream<Item = Result<Message, WsError>> + Sink<Message, Error = WsError> + Unpin,
    W: AsyncWrite + Unpin,
{
    pub(super) async fn on_command(&mut self, text: &str) {
        let depth = self.shared.settings.limits.max_json_depth;
        let parsed = incoming::parse_command_at_depth(text.as_bytes(), depth);
        if parsed.is_err() {
            self.shared
                .stats
                .client_messages_failed
                .fetch_add(1, Ordering::Relaxed);
        }
        match parsed {
            Ok(Command::Subscribe { identifier }) => self.subscribe(identifier),
            Ok(Command::Unsubscribe { identifier }) => self.unsubscribe(identifier),
            Ok(Command::Message { identifier, data }) => self.perform(identifier, data).await,
            // Some clients send {"type":"pong"} and {"type":"ping"} all the time.
            Err(CommandError::Unrecognized) => {
                debug!(command = %clip(text), "Received unrecognized command")
            }
            Err(CommandError::NotJson(e)) if e.is_too_deep() => {
                self.shared
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
        let escaped = self.escaped(&identifier);
        if self.subscriptions.contains(&escaped) {
            debug!(identifier = %clip(&identifier), "already subscribed; duplicate ignored");
            return;
        }
        let channel_ref = match incoming::parse_identifier_at_depth(
            &identifier,
            self.shared.settings.limits.max_json_depth,
        ) {
            Ok(r) => r,
            Err(e) => {
                info!(identifier = %clip(&identifier), cause = %e, "Could not execute command");
                return;
            }
        };
        let Some(channel) = self
            .shared
            .settings
            .channels
            .get(&channel_ref.channel)
            .cloned()
        else {
            info!(channel = %clip(&channel_ref.channel), "Subscription class not found");
            if self.shared.settings.protocol.reject_unknown_channels {
                self.reject(&escaped);
            }
            return;
        };
        if self.subscriptions.len() >= self.shared.settings.limits.max_subscriptions_per_connection
        {
            self.shared
                .stats
                .subscription_limit_rejections
                .fetch_add(1, Ordering::Relaxed);
            warn!(
                limit = self.shared.settings.limits.max_subscriptions_per_connection,
                channel = %channel.name,
                "subscription rejected: limits.max_subscriptions_per_connection reached"
            );
            self.reject(&escaped);
            return;
        }
        let verified = match channel.check_rules(&self.identity, &channel_ref.params) {
            Ok(verified) => verified,
            Err(rejection) if rejection.is_silent() => {
                info!(channel = %channel.name, cause = %rejection, "Could not execute command");
                return;
            }
            Err(rejection) => {
                info!(channel = %channel.name, cause = %rejection, "subscription rejected");
                self.reject(&escaped);
                return;
            }
        };
        if let Some(predicate) = channel.predicate().cloned() {
            // Asked off the command path: the session keeps flushing while it waits, and
            // reads the next command once the answer is in (see `Session::check`).
            let identity = self.identity.clone();
            let params = channel_ref.params.clone();
            let name = verified.clone();
            let answer = Box::pin(async move {
                predicate
                    .check(&identity, &params, name.as_deref(), false)
                    .await
            });
            self.check = Some(Box::new(PendingCheck {
                identifier: escaped,
                channel,
                params: channel_ref.params,
                verified,
                answer,
                outcome: None,
            }));
            return;
        }
        self.establish(escaped, channel, channel_ref.params, None, verified);
    }

    /// Finishes the subscribe whose predicate answered: streams, or Rails' rejection.
    pub(super) async fn finish_check(&mut self) {
        let Some(check) = self.check.take() else {
            return;
        };
        let PendingCheck {
            identifier,
            channel,
            params,
            verified,
            outcome,
            ..
        } = *check;
        match outcome.unwrap_or(Err(Rejection::NotAuthorized)) {
            Ok(row) => self.establish(
                identifier,
                channel,
                params,
                Some(predicate::row_value(&row)),
                verified,
            ),
            Err(rejection) => {
                if matches!(rejection, Rejection::Database(_)) {
                    warn!(channel = %channel.name, cause = %rejection, "subscription rejected: the authorize query did not answer");
                } else {
                    info!(channel = %channel.name, cause = %rejection, "subscription rejected");
                }
                self.reject(&identifier);
            }
        }
    }

    /// Subscribes to the channel's streams (or rejects when a template cannot be filled).
    fn establish(
        &mut self,
        escaped: EscapedIdentifier,
        channel: Arc<ChannelSpec>,
        params: Value,
        row: Option<Value>,
        verified: Option<String>,
    ) {
        let fill = Fill {
            identity: &self.identity,
            params: &params,
            row: row.as_ref(),
        };
        let recheck = channel.predicate().and_then(|p| p.recheck);
        // A re-check binds the verified name again (`signed_stream.<Model>`).
        let kept_name = verified.as_ref().filter(|_| recheck.is_some()).cloned();
        let streams = match channel.streams(&fill, verified) {
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
                    self.shared
                        .hub
                        .subscribe(stream, &shared_identifier, &self.conn, &pending);
                shared_identifier = id;
                name
            })
            .collect();
        pending.ready();
        debug!(channel = %channel.name, streams = ?streams, "subscribed");
        self.shared
            .stats
            .subscriptions
            .fetch_add(1, Ordering::Relaxed);
        if let Some(every) = recheck {
            self.schedule_recheck(every);
        }
        let context = (channel.has_actions() || recheck.is_some()).then(|| {
            Box::new(ActionContext {
                params,
                row,
                verified: kept_name,
            })
        });
        self.subscriptions.insert(Subscription {
            identifier: shared_identifier,
            channel,
            streams,
            pending,
            context,
        });
    }

    /// The identifier as every frame echoes it.
    fn escaped(&self, identifier: &str) -> EscapedIdentifier {
        EscapedIdentifier::with_escaping(identifier, self.shared.settings.protocol.escaping)
    }

    fn reject(&self, identifier: &EscapedIdentifier) {
        self.conn
            .push(&outgoing::text_frame(&outgoing::reject(identifier)));
    }

    fn unsubscribe(&mut self, identifier: Option<String>) {
        let removed = identifier
            .as_ref()
            .and_then(|id| self.subscriptions.remove(&self.escaped(id)));
        match removed {
            Some(sub) => {
                debug!(identifier = %clip(identifier.as_deref().unwrap_or("")), "Unsubscribing from channel");
                release(&self.shared, self.conn.id, &sub);
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
            .and_then(|id| self.subscriptions.get(&self.escaped(id)))
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
        let call = match incoming::parse_action_at_depth(
            &data,
            self.shared.settings.limits.max_json_depth,
        ) {
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
        let (params, row) = match &sub.context {
            Some(c) => (&c.params, c.row.as_ref()),
            None => (&Value::Null, None),
        };
        let fill = Fill {
            identity: &self.identity,
            params,
            row,
        };
        let escaping = self.shared.settings.protocol.escaping;
        match effect {
            Action::BroadcastTo {
                payload: Some(payload),
                ..
            } => json::write_value_with(&mut encoded, &payload.render(&fill, &call.data), escaping),
            _ => json::write_value_with(&mut encoded, &call.data, escaping),
        }
        match effect {
            Action::Transmit => {
                let message = String::from_utf8(encoded).unwrap_or_default();
                self.conn.push(&outgoing::text_frame(&outgoing::message(
                    &sub.identifier,
                    &message,
                )));
            }
            Action::BroadcastTo {
                stream: template, ..
            } => {
                let Some(stream) = template.render(&fill) else {
                    info!(channel = %sub.channel.name, action, "action's stream template has no value; nothing broadcast");
                    return;
                };
                let shared = self.shared.clone();
                if let Err(e) = Box::pin(shared.broker.publish(&stream, Bytes::from(encoded))).await
                {
                    warn!(stream, cause = %e, "action broadcast failed");
                }
            }
        }
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
