//! What the coordinator reads of the processes under test, from `/proc`: CPU time
//! ([`Cpu`]) and resident memory of the server(s), the workers, Redis and itself.

use std::time::Instant;

use super::{Bench, round3};
use crate::procfs;

/// CPU seconds used so far, read at one instant; two readings give a span's use.
pub(super) struct Cpu {
    /// The server process(es).
    pub(super) server: f64,
    /// The worker processes.
    pub(super) clients: f64,
    /// redis-server, when its pid was given.
    pub(super) redis: f64,
    /// This process (the publisher).
    pub(super) me: f64,
    /// The whole box, busy (not idle) time.
    pub(super) box_busy: f64,
    pub(super) at: Instant,
}

/// Box CPU not attributed to the server, the clients, Redis or the publisher: other
/// processes, plus interrupt time the kernel does not charge to a process.
pub(super) fn other_cpu_pct(c0: &Cpu, c1: &Cpu) -> f64 {
    let wall = c1.at.duration_since(c0.at).as_secs_f64().max(1e-9);
    let ours = (c1.server - c0.server)
        + (c1.clients - c0.clients)
        + (c1.redis - c0.redis)
        + (c1.me - c0.me);
    round3(((c1.box_busy - c0.box_busy) - ours).max(0.0) / wall * 100.0)
}

impl Bench {
    /// The CPU used so far by each process under test.
    pub(super) fn cpu(&self) -> Cpu {
        Cpu {
            server: procfs::cpu_secs_all(&self.a.server_pid),
            clients: procfs::cpu_secs_all(&self.fleet.pids()),
            redis: self.a.redis_pid.and_then(procfs::cpu_secs).unwrap_or(0.0),
            me: procfs::self_cpu_secs(),
            box_busy: procfs::box_cpu_secs().0,
            at: Instant::now(),
        }
    }

    /// Resident memory of the server process(es), KB.
    pub(super) fn server_rss_kb(&self) -> u64 {
        procfs::rss_kb_all(&self.a.server_pid)
    }

    /// Resident memory of the worker processes, KB.
    pub(super) fn client_rss_kb(&self) -> u64 {
        procfs::rss_kb_all(&self.fleet.pids())
    }
}
