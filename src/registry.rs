//! Every welcomed connection, for the ping timer, shutdown and `/health`. Sharded by
//! connection id like the hub's stream index, so registering never contends across cores.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::outbox::ConnHandle;

/// Shards of the registry; the ping sweep visits them one at a time.
pub const SHARDS: usize = 64;

type ConnMap = HashMap<u64, Arc<ConnHandle>>;

/// Every welcomed connection.
#[derive(Debug)]
pub struct Registry {
    shards: Box<[Mutex<ConnMap>]>,
}

impl Default for Registry {
    fn default() -> Self {
        Registry {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }
}

impl Registry {
    fn shard(&self, id: u64) -> MutexGuard<'_, ConnMap> {
        self.shards[(id as usize) % SHARDS]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a connection.
    pub fn insert(&self, conn: Arc<ConnHandle>) {
        self.shard(conn.id).insert(conn.id, conn);
    }

    /// Removes a connection.
    pub fn remove(&self, id: u64) {
        self.shard(id).remove(&id);
    }

    /// Calls `f` for every connection, one shard lock at a time.
    pub fn for_each(&self, mut f: impl FnMut(&Arc<ConnHandle>)) {
        for shard in self.shards.iter() {
            let shard = shard.lock().unwrap_or_else(|e| e.into_inner());
            shard.values().for_each(&mut f);
        }
    }

    /// Calls `f` for every connection of one shard (`shard < SHARDS`), under its lock.
    pub fn for_each_in_shard(&self, shard: usize, f: impl FnMut(&Arc<ConnHandle>)) {
        if let Some(shard) = self.shards.get(shard) {
            let shard = shard.lock().unwrap_or_else(|e| e.into_inner());
            shard.values().for_each(f);
        }
    }

    /// Number of registered connections.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).len())
            .sum()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
