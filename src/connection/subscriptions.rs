//! A connection's subscriptions, keyed by the identifier string as the client sent it.

use std::sync::Arc;

use ferrocable_protocol::json::Value;
use ferrocable_protocol::outgoing::EscapedIdentifier;

use crate::channels::ChannelSpec;
use crate::hub::PendingConfirm;

/// One subscription of a connection.
pub(super) struct Subscription {
    /// The identifier as sent, escaped once and shared with the hub: the subscription's key.
    pub(super) identifier: EscapedIdentifier,
    /// Its channel class.
    pub(super) channel: Arc<ChannelSpec>,
    /// The hub's copies of its stream names.
    pub(super) streams: Box<[Arc<str>]>,
    /// Its confirm, until every stream is live.
    pub(super) pending: Arc<PendingConfirm>,
    /// Kept only for channels with actions (their templates may read params and the row)
    /// or with re-checks (which bind the params again).
    pub(super) context: Option<Box<ActionContext>>,
}

/// What a channel's actions may read besides the identity.
pub(super) struct ActionContext {
    /// The subscription's params.
    pub(super) params: Value,
    /// The row of the channel's `authorize` query, if it has one.
    pub(super) row: Option<Value>,
    /// The verified signed name, kept when the `authorize` query is re-checked (it may bind
    /// the record the name is about).
    pub(super) verified: Option<String>,
}

/// A connection's subscriptions by identifier. Most connections hold one to a few, so a
/// vector sized exactly is smaller than a hash map and no slower; the count is bounded by
/// `limits.max_subscriptions_per_connection`.
#[derive(Default)]
pub(super) struct Subscriptions(Vec<Subscription>);

impl Subscriptions {
    /// Rails keys subscriptions by the identifier string as sent; escaping is one-to-one,
    /// so the escaped form (shared with the hub) serves as the key.
    pub(super) fn position(&self, identifier: &EscapedIdentifier) -> Option<usize> {
        self.0.iter().position(|s| &s.identifier == identifier)
    }

    pub(super) fn contains(&self, identifier: &EscapedIdentifier) -> bool {
        self.position(identifier).is_some()
    }

    pub(super) fn get(&self, identifier: &EscapedIdentifier) -> Option<&Subscription> {
        self.position(identifier).map(|i| &self.0[i])
    }

    pub(super) fn insert(&mut self, subscription: Subscription) {
        self.0.reserve_exact(1);
        self.0.push(subscription);
    }

    pub(super) fn remove(&mut self, identifier: &EscapedIdentifier) -> Option<Subscription> {
        let i = self.position(identifier)?;
        let removed = self.0.swap_remove(i);
        if self.0.capacity() > 2 * self.0.len() + 4 {
            self.0.shrink_to_fit();
        }
        Some(removed)
    }

    pub(super) fn len(&self) -> usize {
        self.0.len()
    }

    pub(super) fn values(&self) -> impl Iterator<Item = &Subscription> {
        self.0.iter()
    }
}
