//! The three commands (docs/PROTOCOL.md §3): subscribe, unsubscribe, and message (a channel
//! action). Every failure is logged and ignored, as Rails does; the only replies are the
//! confirm (once the streams are live) and the reject.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use ferrocable_protocol::incoming::{self, Command, CommandError};
use ferrocable_protocol::json::{self, Value};
use ferrocable_protocol::outgoing::{self, EscapedIdentifier};
use futures_util::{Sink, Stream};
use hyper_tungstenite::tungstenite::Error as WsError;
use hyper_tungstenite::tungstenite::Message;
use tokio::io::AsyncWrite;
use tracing::{debug, info, warn};

use super::super::subscriptions::Subscription;
use super::{Session, release};
use crate::channels::Action;
use crate::hub::PendingConfirm;

/// Longest command text quoted in a log line.
const LOG_TEXT_MAX: usize = 300;

impl<S, W> Session<S, W>
where
    S: Stream<Item = Result<Message, WsError>> + Sink<Message, Error = WsError> + Unpin,
    W: AsyncWrite + Unpin,
{
    pub(super) async fn on_command(&mut self, text: &str) {
        let depth = self.shared.settings.limits.max_json_depth;
        match incoming::parse_command_at_depth(text.as_bytes(), depth) {
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
        let streams = match channel.decide(&self.identity, &channel_ref.params) {
            Ok(streams) => streams,
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
        // PREDICATE (issue 10): a channel's async authorization predicate (a custom Turbo
        // channel's membership check: `turbo_stream_from @room, :messages, channel:
        // RoomMessagesChannel`) plugs in here, after the pure rules and before the hub
        // subscribes: await it, and on refusal log and `self.reject(&escaped)` as above.
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
        let params = channel.has_actions().then_some(channel_ref.params);
        self.subscriptions.insert(Subscription {
            identifier: shared_identifier,
            channel,
            streams,
            pending,
            params,
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
        json::write_value_with(
            &mut encoded,
            &call.data,
            self.shared.settings.protocol.escaping,
        );
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
