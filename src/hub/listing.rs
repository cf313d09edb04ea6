//! What the hub reports about itself: the stream and identity counts behind `/stats` and
//! `/metrics`, and the listing the console shows. Each walks every shard, one lock at a time,
//! so a report never holds up more than one shard's subscribes and deliveries at once.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use ferrocable_protocol::INTERNAL_STREAM_PREFIX;

use super::Hub;

/// The streams as the console lists them ([`Hub::listing`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamListing {
    /// Streams with subscribers.
    pub total: usize,
    /// The most subscribed ones, with their subscriber counts.
    pub top: Vec<(String, usize)>,
    /// The streams of each watched connection.
    pub by_connection: HashMap<u64, Vec<String>>,
}

impl Hub {
    /// Identities (connection identifiers) with their connection counts, from the
    /// remote-disconnect streams: the number of distinct ones and the `top` largest.
    pub fn identities(&self, top: usize) -> (usize, Vec<(String, usize)>) {
        let mut all = Vec::new();
        for shard in self.locked_shards() {
            for (name, entry) in &shard.streams {
                if let Some(id) = name.strip_prefix(INTERNAL_STREAM_PREFIX)
                    && !entry.internal.is_empty()
                {
                    all.push((id.to_string(), entry.internal.len()));
                }
            }
        }
        let unique = all.len();
        all.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        all.truncate(top);
        (unique, all)
    }

    /// How many distinct identities (connection identifiers) have connections: what
    /// [`Hub::identities`] counts, without collecting them.
    pub fn identity_count(&self) -> usize {
        self.locked_shards()
            .map(|shard| {
                shard
                    .streams
                    .iter()
                    .filter(|(name, entry)| {
                        name.starts_with(INTERNAL_STREAM_PREFIX) && !entry.internal.is_empty()
                    })
                    .count()
            })
            .sum()
    }

    /// The streams with subscribers (not the internal ones): how many, the `limit` most
    /// subscribed with their subscriber counts, and the streams each of the `watched`
    /// connections listens to (for the console). Names are shared, not copied, until the
    /// end.
    pub fn listing(&self, limit: usize, watched: &HashSet<u64>) -> StreamListing {
        let mut all: Vec<(Arc<str>, usize)> = Vec::new();
        let mut by_connection: HashMap<u64, Vec<String>> = HashMap::new();
        for shard in self.locked_shards() {
            for (name, entry) in &shard.streams {
                if entry.groups.is_empty() {
                    continue;
                }
                let subscribers = entry.groups.iter().map(|(_, g)| g.members.len()).sum();
                for (_, group) in &entry.groups {
                    for id in group.members.keys().filter(|id| watched.contains(id)) {
                        by_connection.entry(*id).or_default().push(name.to_string());
                    }
                }
                all.push((name.clone(), subscribers));
            }
        }
        let total = all.len();
        all.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        all.truncate(limit);
        for streams in by_connection.values_mut() {
            streams.sort_unstable();
            streams.dedup();
        }
        StreamListing {
            total,
            top: all.into_iter().map(|(n, c)| (n.to_string(), c)).collect(),
            by_connection,
        }
    }

    /// Number of streams with local listeners.
    pub fn stream_count(&self) -> usize {
        self.locked_shards().map(|shard| shard.streams.len()).sum()
    }
}
