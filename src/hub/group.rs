//! The subscribers of one stream that share an identifier: one frame serves them all.
//!
//! The fan-out walks them in connection-id order. Ids grow in accept order, and what a write
//! touches for each connection was allocated as it was accepted: its handle and tokio's
//! registration in user space, its socket's structures in the kernel (and, on loopback, the
//! peer's). Walked in that order, consecutive writes touch neighbouring memory; walked in a
//! hash map's order, every write starts with cache misses. At 10,000 subscribers that was
//! most of ferrocable's cost over the raw floor (docs/BENCHMARKS.md, "Issue 8: where the
//! extra µs per delivery went").

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::outbox::ConnHandle;

#[derive(Debug, Default)]
pub(super) struct Group {
    /// By connection id.
    pub(super) members: BTreeMap<u64, Arc<ConnHandle>>,
    /// The members in id order, shared by every fan-out until the next change, so a
    /// broadcast costs one reference count instead of one per recipient (and no list to
    /// allocate). Dropped at every change, because it must not keep a departed connection
    /// (and its socket) alive; the next broadcast rebuilds it.
    snapshot: Option<Arc<[Arc<ConnHandle>]>>,
}

impl Group {
    pub(super) fn insert(&mut self, conn: &Arc<ConnHandle>) {
        self.snapshot = None;
        self.members.insert(conn.id, conn.clone());
    }

    pub(super) fn remove(&mut self, conn_id: u64) {
        self.snapshot = None;
        self.members.remove(&conn_id);
    }

    /// Every member, in id order, for one fan-out.
    pub(super) fn snapshot(&mut self) -> Arc<[Arc<ConnHandle>]> {
        self.snapshot
            .get_or_insert_with(|| self.members.values().cloned().collect())
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(id: u64) -> Arc<ConnHandle> {
        Arc::new(ConnHandle::new(id, 1 << 20, None))
    }

    fn ids(members: &[Arc<ConnHandle>]) -> Vec<u64> {
        members.iter().map(|c| c.id).collect()
    }

    #[test]
    fn the_fan_out_walks_members_in_id_order() {
        let mut group = Group::default();
        let conns: Vec<_> = [7, 3, 9, 1, 5].into_iter().map(conn).collect();
        for c in &conns {
            group.insert(c);
        }
        assert_eq!(ids(&group.snapshot()), [1, 3, 5, 7, 9]);
    }

    #[test]
    fn one_snapshot_serves_fan_outs_until_the_members_change() {
        let mut group = Group::default();
        let (a, b, c) = (conn(1), conn(2), conn(3));
        group.insert(&a);
        group.insert(&b);
        let first = group.snapshot();
        assert!(
            Arc::ptr_eq(&first, &group.snapshot()),
            "shared, not rebuilt"
        );
        group.insert(&c);
        assert_eq!(
            ids(&group.snapshot()),
            [1, 2, 3],
            "a new member gets the next one"
        );
        group.remove(2);
        assert_eq!(ids(&group.snapshot()), [1, 3]);
        // An earlier fan-out's copy is its own: it still lists whom that fan-out served.
        assert_eq!(ids(&first), [1, 2]);
    }

    #[test]
    fn a_departed_member_is_not_kept_alive_by_a_snapshot() {
        let mut group = Group::default();
        let (a, b) = (conn(1), conn(2));
        group.insert(&a);
        group.insert(&b);
        // A fan-out built it; the group keeps it until the next change.
        group.snapshot();
        assert_eq!(Arc::strong_count(&b), 3);
        group.remove(2);
        assert_eq!(Arc::strong_count(&b), 1, "only the test holds it now");
    }
}
