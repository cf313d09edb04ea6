//! Periodic re-checks (`[channels.<Name>.authorize] recheck_secs`): a subscription whose
//! predicate stops returning a row (the membership was deleted) is ended.
//!
//! Rails has no message for "the server ended your subscription"; apps that re-check
//! (GitLab's `periodically :revalidate_access`) stop streaming and the client never learns
//! why. ferrocable stops the streams **and** sends `reject_subscription` for the identifier,
//! which `@rails/actioncable` handles as a rejection: it forgets the subscription and calls
//! its `rejected()` callback, and does not resubscribe. A re-check that fails (database down
//! or slow) keeps the subscription: an outage does not end everyone's subscriptions.
//!
//! One timer per connection, at the shortest interval among its subscriptions; the checks of
//! one round run one after another, beside the connection's traffic (they never hold up its
//! commands or deliveries).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use ferrocable_protocol::outgoing::{self, EscapedIdentifier};
use futures_util::{Sink, Stream};
use hyper_tungstenite::tungstenite::Error as WsError;
use hyper_tungstenite::tungstenite::Message;
use tokio::io::AsyncWrite;
use tokio::time::{Instant, Sleep};
use tracing::info;

use super::{Session, release};
use crate::channels::Rejection;

type Round = Pin<Box<dyn Future<Output = Vec<EscapedIdentifier>> + Send>>;

/// The connection's re-check timer and the round in progress.
pub(super) struct Recheck {
    every: Duration,
    timer: Pin<Box<Sleep>>,
    running: Option<Round>,
}

impl<S, W> Session<S, W>
where
    S: Stream<Item = Result<Message, WsError>> + Sink<Message, Error = WsError> + Unpin,
    W: AsyncWrite + Unpin,
{
    /// A subscription that wants re-checks every `every` was established.
    pub(super) fn schedule_recheck(&mut self, every: Duration) {
        match &mut self.recheck {
            Some(r) if r.every <= every => {}
            Some(r) => {
                r.every = every;
                r.timer.as_mut().reset(Instant::now() + every);
            }
            None => {
                self.recheck = Some(Box::new(Recheck {
                    every,
                    timer: Box::pin(tokio::time::sleep(every)),
                    running: None,
                }))
            }
        }
    }

    /// Starts a round when the timer fires; `Ready` with the identifiers whose row is gone
    /// when a round ends.
    pub(super) fn poll_recheck(&mut self, cx: &mut Context<'_>) -> Poll<Vec<EscapedIdentifier>> {
        let fire = match &mut self.recheck {
            Some(r) if r.running.is_none() => r.timer.as_mut().poll(cx).is_ready(),
            _ => false,
        };
        if fire {
            let round = self.recheck_round();
            if let Some(r) = &mut self.recheck {
                r.running = Some(round);
            }
        }
        let Some(r) = &mut self.recheck else {
            return Poll::Pending;
        };
        let Some(running) = &mut r.running else {
            return Poll::Pending;
        };
        let Poll::Ready(gone) = running.as_mut().poll(cx) else {
            return Poll::Pending;
        };
        r.running = None;
        r.timer.as_mut().reset(Instant::now() + r.every);
        // Registers the timer's waker for the next round.
        let _ = r.timer.as_mut().poll(cx);
        Poll::Ready(gone)
    }

    fn recheck_round(&self) -> Round {
        let identity = self.identity.clone();
        let due: Vec<_> = self
            .subscriptions
            .values()
            .filter_map(|sub| {
                let predicate = sub.channel.predicate()?;
                predicate.recheck?;
                let context = sub.context.as_ref()?;
                Some((
                    sub.identifier.clone(),
                    Arc::clone(predicate),
                    context.params.clone(),
                    context.verified.clone(),
                ))
            })
            .collect();
        Box::pin(async move {
            let mut gone = Vec::new();
            for (identifier, predicate, params, verified) in due {
                if let Err(Rejection::NotAuthorized) = predicate
                    .check(&identity, &params, verified.as_deref(), true)
                    .await
                {
                    gone.push(identifier);
                }
            }
            gone
        })
    }

    /// Ends the subscriptions whose row is gone: streams stopped, `reject_subscription` sent.
    pub(super) fn end_revoked(&mut self, gone: Vec<EscapedIdentifier>) {
        for identifier in gone {
            let Some(sub) = self.subscriptions.remove(&identifier) else {
                continue;
            };
            info!(channel = %sub.channel.name, "authorize re-check found no row: subscription ended");
            release(&self.shared, self.conn.id, &sub);
            self.conn
                .push(&outgoing::text_frame(&outgoing::reject(&sub.identifier)));
        }
        let any_left = self
            .subscriptions
            .values()
            .any(|s| s.channel.predicate().is_some_and(|p| p.recheck.is_some()));
        if !any_left {
            self.recheck = None;
        }
    }
}
