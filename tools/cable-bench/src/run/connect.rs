//! The connect phase: every worker opens its share of the connections (connect, upgrade,
//! welcome, subscribe, confirm); the workers' histograms and failure counts are merged with
//! the server's CPU and the box's TCP counters over the same span.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

use super::{Bench, ms, round3};
use crate::hist::Hist;
use crate::procfs;

/// What the connect phase measured.
pub(super) struct Connected {
    /// The result's `connect` section.
    pub(super) value: Value,
    /// Connections confirmed, all workers together.
    pub(super) confirmed: u64,
    /// Connections that failed.
    pub(super) failed: u64,
}

impl Bench {
    /// Waits until every worker reports its connections established (or the connect timeout
    /// passes: then what was confirmed is said in the error).
    pub(super) async fn connect(&mut self) -> Result<Connected, String> {
        let c0 = self.cpu();
        let overflows0 = procfs::tcp_ext("ListenOverflows").unwrap_or(0);
        let drops0 = procfs::tcp_ext("ListenDrops").unwrap_or(0);
        let retrans0 = procfs::tcp_ext("TCPSynRetrans").unwrap_or(0);
        let est = self
            .fleet
            .collect(
                "established",
                Duration::from_secs_f64(self.a.connect_timeout),
            )
            .await;
        let est = match est {
            Ok(e) => e,
            Err(e) => {
                // Report what we have rather than nothing.
                let prog = self
                    .fleet
                    .ask_all(
                        json!({"cmd": "progress"}),
                        "progress",
                        Duration::from_secs(10),
                    )
                    .await
                    .unwrap_or_default();
                let confirmed: u64 = prog
                    .iter()
                    .map(|p| p["confirmed"].as_u64().unwrap_or(0))
                    .sum();
                return Err(format!(
                    "connect phase: {e} ({confirmed}/{} confirmed)",
                    self.a.clients
                ));
            }
        };
        let c1 = self.cpu();
        let mut connect_hist = Hist::default();
        let mut welcome_hist = Hist::default();
        let mut failures: BTreeMap<String, u64> = BTreeMap::new();
        let (mut confirmed, mut failed, mut attempted) = (0u64, 0u64, 0u64);
        let mut first_us = u64::MAX;
        let mut last_us = 0u64;
        for e in &est {
            confirmed += e["confirmed"].as_u64().unwrap_or(0);
            failed += e["failed"].as_u64().unwrap_or(0);
            attempted += e["attempted"].as_u64().unwrap_or(0);
            connect_hist.merge(&Hist::from_json(&e["connect_hist"]));
            welcome_hist.merge(&Hist::from_json(&e["welcome_hist"]));
            for (k, v) in e["failures"].as_object().into_iter().flatten() {
                *failures.entry(k.clone()).or_insert(0) += v.as_u64().unwrap_or(0);
            }
            let f = e["first_attempt_us"].as_u64().unwrap_or(0);
            if f > 0 {
                first_us = first_us.min(f);
            }
            last_us = last_us.max(e["last_confirm_us"].as_u64().unwrap_or(0));
        }
        let connect_secs = if last_us > first_us {
            (last_us - first_us) as f64 / 1e6
        } else {
            0.0
        };
        let connect = json!({
            "attempted": attempted,
            "confirmed": confirmed,
            "failed": failed,
            "failures": failures,
            "duration_s": round3(connect_secs),
            "confirmed_per_s": round3(if connect_secs > 0.0 { confirmed as f64 / connect_secs } else { 0.0 }),
            "connect_rate_limit": self.a.connect_rate,
            "concurrency": self.a.concurrency,
            "to_confirm": connect_hist.summary_ms(),
            "to_welcome": welcome_hist.summary_ms(),
            "server_cpu_s": round3(c1.server - c0.server),
            "server_cpu_us_per_connection": round3(if confirmed > 0 { (c1.server - c0.server) / confirmed as f64 * 1e6 } else { 0.0 }),
            "client_cpu_s": round3(c1.clients - c0.clients),
            "server_rss_kb": self.server_rss_kb(),
            "slab_kb": procfs::meminfo_kb("Slab").unwrap_or(0),
            // Box-wide kernel counters: accept-queue overflows make clients retransmit their SYN
            // after 1 s, which shows up as a 1 s step in to_confirm.
            "listen_overflows": procfs::tcp_ext("ListenOverflows").unwrap_or(0).saturating_sub(overflows0),
            "listen_drops": procfs::tcp_ext("ListenDrops").unwrap_or(0).saturating_sub(drops0),
            "syn_retransmits": procfs::tcp_ext("TCPSynRetrans").unwrap_or(0).saturating_sub(retrans0),
        });
        if !self.a.quiet {
            eprintln!(
                "  connect: {confirmed}/{} confirmed in {connect_secs:.1}s ({:.0}/s), to-confirm p50/p99 {}/{} ms, failed {failed} {:?}, listen overflows {}, SYN retransmits {}",
                self.a.clients,
                if connect_secs > 0.0 {
                    confirmed as f64 / connect_secs
                } else {
                    0.0
                },
                ms(connect_hist.quantile(0.5) as f64),
                ms(connect_hist.quantile(0.99) as f64),
                failures,
                connect["listen_overflows"],
                connect["syn_retransmits"]
            );
        }
        Ok(Connected {
            value: connect,
            confirmed,
            failed,
        })
    }
}
