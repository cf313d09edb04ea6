//! A short-lived, bounded cache of query results, so that a connect storm (every tab of every
//! user reconnecting after a deploy) costs one query per distinct session, not one per socket.
//!
//! Policy (written down because it bounds memory):
//! - every entry lives at most `ttl`; a hit on an older entry is a miss;
//! - two generations, each holding at most `max_entries / 2` entries: inserts go to the young
//!   one; when it is full, the old generation is dropped whole and the young one becomes old.
//!   Lookups read both. So at most `max_entries` entries exist, eviction is O(1) amortised,
//!   and what goes first is what was inserted longest ago (not necessarily least used);
//! - "no row" answers are cached like rows (a storm of bad tokens is cheap too). A revoked
//!   session (row deleted) is therefore still accepted for at most `ttl` after the delete;
//!   `database.cache_ttl_ms = 0` turns the cache off;
//! - errors (timeouts, a dead database) are never cached.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{Bound, Row};

/// The key: the query's text and the values bound to it.
pub(super) type Key = (Arc<str>, Vec<Bound>);

/// A cached answer: the row, or `None` for "no row".
pub(super) type Answer = Option<Arc<Row>>;

#[derive(Debug, Default)]
struct Generations {
    young: HashMap<Key, (Instant, Answer)>,
    old: HashMap<Key, (Instant, Answer)>,
}

/// See the module docs.
#[derive(Debug)]
pub(super) struct Cache {
    ttl: Duration,
    per_generation: usize,
    inner: Mutex<Generations>,
}

impl Cache {
    pub(super) fn new(ttl: Duration, max_entries: usize) -> Cache {
        Cache {
            ttl,
            per_generation: (max_entries / 2).max(1),
            inner: Mutex::new(Generations::default()),
        }
    }

    fn enabled(&self) -> bool {
        !self.ttl.is_zero()
    }

    /// The cached answer, if one younger than the TTL exists.
    pub(super) fn get(&self, key: &Key, now: Instant) -> Option<Answer> {
        if !self.enabled() {
            return None;
        }
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let (at, answer) = inner.young.get(key).or_else(|| inner.old.get(key))?;
        (now.duration_since(*at) < self.ttl).then(|| answer.clone())
    }

    pub(super) fn put(&self, key: Key, answer: Answer, now: Instant) {
        if !self.enabled() {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if inner.young.len() >= self.per_generation && !inner.young.contains_key(&key) {
            let young = std::mem::take(&mut inner.young);
            inner.old = young;
        }
        inner.young.insert(key, (now, answer));
    }

    /// Entries held (both generations).
    pub(super) fn len(&self) -> usize {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.young.len() + inner.old.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: i64) -> Key {
        (Arc::from("SELECT 1"), vec![Bound::Int(n)])
    }

    #[test]
    fn entries_expire_after_the_ttl() {
        let cache = Cache::new(Duration::from_secs(5), 100);
        let t0 = Instant::now();
        cache.put(key(1), None, t0);
        assert_eq!(cache.get(&key(1), t0 + Duration::from_secs(4)), Some(None));
        assert_eq!(cache.get(&key(1), t0 + Duration::from_secs(5)), None);
        assert_eq!(cache.get(&key(2), t0), None);
    }

    #[test]
    fn never_holds_more_than_the_bound_and_drops_the_oldest_first() {
        let cache = Cache::new(Duration::from_secs(60), 10);
        let t0 = Instant::now();
        for n in 0..1000 {
            cache.put(key(n), None, t0);
            assert!(cache.len() <= 10, "{} entries", cache.len());
        }
        assert_eq!(cache.get(&key(999), t0), Some(None));
        assert_eq!(cache.get(&key(0), t0), None);
    }

    #[test]
    fn a_zero_ttl_disables_it() {
        let cache = Cache::new(Duration::ZERO, 10);
        cache.put(key(1), None, Instant::now());
        assert_eq!(cache.len(), 0);
        assert_eq!(cache.get(&key(1), Instant::now()), None);
    }
}
