//! The measuring windows: a publishing window (broadcasts at an open-loop rate, then the
//! drain, then the workers' per-sequence counts merged into loss, duplicates and latency) and
//! an idle window (memory per connection over the baseline).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::probes::other_cpu_pct;
use super::{Bench, ms, round3};
use crate::hist::Hist;
use crate::procfs;

impl Bench {
    async fn active(&mut self) -> Result<Vec<u64>, String> {
        let replies = self
            .fleet
            .ask_all(json!({"cmd": "active"}), "active", Duration::from_secs(30))
            .await?;
        let mut sum = vec![0u64; self.a.streams.max(1) as usize];
        for r in replies {
            for (i, c) in r["counts"].as_array().into_iter().flatten().enumerate() {
                if i < sum.len() {
                    sum[i] += c.as_u64().unwrap_or(0);
                }
            }
        }
        Ok(sum)
    }

    async fn received(&mut self, w: u64) -> Result<u64, String> {
        let replies = self
            .fleet
            .ask_all(
                json!({"cmd": "count", "w": w}),
                "count",
                Duration::from_secs(30),
            )
            .await?;
        Ok(replies
            .iter()
            .map(|r| r["received"].as_u64().unwrap_or(0))
            .sum())
    }

    /// One publishing window: `rate` broadcasts/s for `secs`, then drain, then merge.
    pub(super) async fn publish_window(
        &mut self,
        name: &str,
        rate: f64,
        secs: f64,
        warm: bool,
    ) -> Result<Value, String> {
        let w = self.next_w;
        self.next_w += 1;
        let active = self.active().await?;
        let tcp_start = procfs::sockstat_tcp().map(|s| s.1 * 4);
        let rss_start = self.server_rss_kb();
        self.sampler.peak_rss_kb.set(rss_start);
        let c0 = self.cpu();
        let g0 = self.next_g;
        let total = ((rate * secs).round() as u64).max(1);
        let start = Instant::now();
        let mut k = 0u64;
        while k < total {
            let at = start + Duration::from_secs_f64(k as f64 / rate);
            tokio::time::sleep_until(at.into()).await;
            let due = (((start.elapsed().as_secs_f64() * rate).floor() as u64) + 1).min(total);
            let n = due.max(k + 1) - k;
            self.publisher
                .publish(self.next_g..self.next_g + n, w)
                .await?;
            self.next_g += n;
            k += n;
        }
        let publish_secs = start.elapsed().as_secs_f64();
        let g1 = self.next_g;
        self.publisher.wait_replies(Duration::from_secs(10)).await;
        let streams = active.len() as u64;
        let expected: u64 = (g0..g1).map(|g| active[(g % streams) as usize]).sum();
        // Drain: until everything expected arrived or the timeout passes.
        let drain_start = Instant::now();
        while drain_start.elapsed().as_secs_f64() < self.a.drain_timeout {
            if self.received(w).await? >= expected {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let drain_secs = drain_start.elapsed().as_secs_f64();
        let c1 = self.cpu();
        let rss_end = self.server_rss_kb();
        let rss_peak = self.sampler.peak_rss_kb.get().max(rss_end);

        // Merge the workers' reports.
        for i in 0..self.fleet.workers.len() {
            let path = self.tmp.join(format!("w{w}-p{i}.bin"));
            let cmd = json!({"cmd": "report", "w": w, "g0": g0, "g1": g1, "path": path});
            self.fleet.send(i, &cmd)?;
        }
        let reports = self
            .fleet
            .collect("report", Duration::from_secs(60))
            .await?;
        let n = (g1 - g0) as usize;
        let mut counts = vec![0u64; n];
        let mut maxes = vec![0u32; n];
        let mut per = Hist::default();
        let (mut dups, mut reorders, mut closed, mut pings) = (0u64, 0u64, 0u64, 0u64);
        let mut close_reasons: BTreeMap<String, u64> = BTreeMap::new();
        for r in &reports {
            per.merge(&Hist::from_json(&r["hist"]));
            dups += r["dups"].as_u64().unwrap_or(0);
            reorders += r["reorders"].as_u64().unwrap_or(0);
            closed += r["closed"].as_u64().unwrap_or(0);
            pings += r["pings"].as_u64().unwrap_or(0);
            for (k, v) in r["close_reasons"].as_object().into_iter().flatten() {
                *close_reasons.entry(k.clone()).or_insert(0) += v.as_u64().unwrap_or(0);
            }
            let path = r["seq_file"].as_str().unwrap_or("");
            let bytes = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
            let _ = std::fs::remove_file(path);
            for (j, chunk) in bytes.chunks_exact(8).enumerate().take(n) {
                let c = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
                let m = u32::from_le_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]);
                counts[j] += c as u64;
                maxes[j] = maxes[j].max(m);
            }
        }
        if std::env::var_os("CABLE_BENCH_EACH").is_some() {
            // Each broadcast's last-recipient latency in publish order (µs), to tell a periodic
            // slow broadcast from a random one.
            eprintln!("  each last-recipient us: {maxes:?}");
        }
        let mut last = Hist::default();
        let mut lost = 0u64;
        let mut excess = 0u64;
        let mut incomplete = 0u64;
        for j in 0..n {
            let g = g0 + j as u64;
            let want = active[(g % streams) as usize];
            lost += want.saturating_sub(counts[j]);
            excess += counts[j].saturating_sub(want);
            if counts[j] < want {
                incomplete += 1;
            }
            if counts[j] > 0 {
                last.record(maxes[j] as u64);
            }
        }
        let delivered: u64 = counts.iter().sum();
        let cpu_server = c1.server - c0.server;
        let cpu_clients = c1.clients - c0.clients;
        let per_delivery = |cpu: f64| {
            if delivered == 0 {
                0.0
            } else {
                round3(cpu / delivered as f64 * 1e6)
            }
        };
        let p99_ms = per.quantile(0.99) as f64 / 1000.0;
        let last_p99_ms = last.quantile(0.99) as f64 / 1000.0;
        // A publisher one statement at a time (the SQL inputs) can fall behind the asked rate:
        // such a step measures the publisher, and at the next doubling it would run for minutes.
        let publisher_kept_up = publish_secs <= secs * 1.25 + 0.5;
        let pass = lost == 0
            && publisher_kept_up
            && p99_ms <= self.a.fail_p99_ms
            && last_p99_ms <= self.a.fail_p99_ms;
        let wall = c1.at.duration_since(c0.at).as_secs_f64();
        let v = json!({
            "window": w,
            "name": name,
            "kind": if warm { "warmup" } else { "measure" },
            "rate_per_s": rate,
            "secs": secs,
            "publish_secs": round3(publish_secs),
            "publisher_kept_up": publisher_kept_up,
            "drain_secs": round3(drain_secs),
            "broadcasts": g1 - g0,
            "subscribers": active.iter().sum::<u64>(),
            "streams": streams,
            "payload_bytes": self.a.payload,
            "expected": expected,
            "delivered": delivered,
            "lost": lost,
            "incomplete_broadcasts": incomplete,
            "duplicates": dups + excess,
            "reordered": reorders,
            "deliveries_per_s": round3(delivered as f64 / publish_secs.max(1e-9)),
            "per_recipient": per.summary_ms(),
            "last_recipient": last.summary_ms(),
            "server_cpu_s": round3(cpu_server),
            "server_cpu_pct": round3(cpu_server / wall * 100.0),
            "server_cpu_us_per_delivery": per_delivery(cpu_server),
            "client_cpu_s": round3(cpu_clients),
            "client_cpu_pct": round3(cpu_clients / wall * 100.0),
            "client_cpu_us_per_delivery": per_delivery(cpu_clients),
            "redis_cpu_s": round3(c1.redis - c0.redis),
            "publisher_cpu_s": round3(c1.me - c0.me),
            "box_busy_pct": round3((c1.box_busy - c0.box_busy) / wall * 100.0),
            "unattributed_cpu_pct": other_cpu_pct(&c0, &c1),
            "server_rss_kb": {"start": rss_start, "end": rss_end, "peak": rss_peak},
            // Box-wide memory in TCP socket buffers (sockstat "mem", 4 KiB pages): where a
            // stalled reader's backlog sits before the server has to queue it itself.
            "tcp_mem_kb": {"start": tcp_start, "end": procfs::sockstat_tcp().map(|s| s.1 * 4)},
            "client_closed_total": closed,
            "client_close_reasons": close_reasons,
            "pings_received_total": pings,
            "redis_zero_receiver_publishes": self.publisher.zero_receivers(),
            "redis_errors": self.publisher.errors(),
            "pass": pass,
        });
        if !self.a.quiet {
            eprintln!(
                "  {name} ({rate}/s x {secs}s, {} broadcasts to {} subs): delivered {delivered}/{expected}, lost {lost}, dup {}, reord {reorders}; per-recipient p50/p99/max {}/{}/{} ms; last-recipient p50/p99/max {}/{}/{} ms; server {:.1} us/delivery ({:.0}% cpu), clients {:.1} us/delivery ({:.0}% cpu), other {:.0}% cpu; RSS {} -> {} MB",
                g1 - g0,
                active.iter().sum::<u64>(),
                dups + excess,
                ms(per.quantile(0.5) as f64),
                ms(per.quantile(0.99) as f64),
                ms(per.max() as f64),
                ms(last.quantile(0.5) as f64),
                ms(last.quantile(0.99) as f64),
                ms(last.max() as f64),
                per_delivery(cpu_server),
                cpu_server / wall * 100.0,
                per_delivery(cpu_clients),
                cpu_clients / wall * 100.0,
                other_cpu_pct(&c0, &c1),
                rss_start / 1024,
                rss_end / 1024,
            );
        }
        Ok(v)
    }

    pub(super) async fn idle_window(
        &mut self,
        name: &str,
        secs: f64,
        confirmed: u64,
        baseline: &Value,
    ) -> Result<Value, String> {
        let w = self.next_w;
        self.next_w += 1;
        let rss_start = self.server_rss_kb();
        self.sampler.peak_rss_kb.set(rss_start);
        let c0 = self.cpu();
        tokio::time::sleep(Duration::from_secs_f64(secs)).await;
        let c1 = self.cpu();
        let rss_end = self.server_rss_kb();
        let slab_end = procfs::meminfo_kb("Slab").unwrap_or(0);
        let sock_end = procfs::sockstat_tcp().unwrap_or((0, 0));
        let rss_base = baseline["server_rss_kb"].as_u64().unwrap_or(0);
        let slab_base = baseline["slab_kb"].as_u64().unwrap_or(0);
        let per_conn = |delta_kb: i64| {
            if confirmed == 0 {
                0.0
            } else {
                round3(delta_kb as f64 * 1024.0 / confirmed as f64)
            }
        };
        let rss_per_conn = per_conn(rss_end as i64 - rss_base as i64);
        let slab_per_conn = per_conn(slab_end as i64 - slab_base as i64);
        let v = json!({
            "window": w,
            "name": name,
            "kind": "idle",
            "secs": secs,
            "connections": confirmed,
            "server_rss_kb": {"baseline": rss_base, "start": rss_start, "end": rss_end, "peak": self.sampler.peak_rss_kb.get().max(rss_end)},
            "server_rss_bytes_per_conn": rss_per_conn,
            "slab_kb": {"baseline": slab_base, "end": slab_end},
            "slab_bytes_per_conn_both_ends": slab_per_conn,
            "sockstat_tcp": {"baseline_inuse": baseline["sockstat_tcp_inuse"], "inuse": sock_end.0, "mem_pages": sock_end.1},
            "server_cpu_s": round3(c1.server - c0.server),
            "client_cpu_s": round3(c1.clients - c0.clients),
            "unattributed_cpu_pct": other_cpu_pct(&c0, &c1),
            "client_rss_kb": self.client_rss_kb(),
        });
        if !self.a.quiet {
            eprintln!(
                "  {name} ({secs}s idle, {confirmed} conns): server RSS {} -> {} MB = {:.0} B/conn over baseline; kernel slab {:.0} B/conn (both ends); server cpu {:.2}s",
                rss_start / 1024,
                rss_end / 1024,
                rss_per_conn,
                slab_per_conn,
                c1.server - c0.server
            );
        }
        Ok(v)
    }
}
