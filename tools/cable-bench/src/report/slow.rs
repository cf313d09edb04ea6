//! R5: slow consumers (a share of the subscribers stop reading) and what the others see.

use std::fmt::Write as _;

use super::fanout::suspect;
use super::{P50_P99, Runs, delivered_lost, f, label, ms, named, num, table};

pub(super) fn tables(runs: &Runs, md: &mut String) {
    table(
        runs,
        md,
        "R5",
        "R5 slow consumers (1 % of subscribers stop reading, small receive buffer)",
        "subscribers | server | phase | per-recipient p50 / p99 ms | last-recipient p50 / p99 ms | delivered / lost (readers) | server RSS start → end MB | kernel TCP buffers start → end MB | slow-client disconnects",
        |md, v, columns| {
            for t in ["ferrocable", "actioncable"] {
                let Some(r) = runs.shown(md, "R5", v, t, columns) else {
                    continue;
                };
                let slow_disc = r["server_stats"]
                    .as_array()
                    .and_then(|a| a.first())
                    .and_then(|s| s["slow_client_disconnects"].as_u64())
                    .map_or("n/a".to_string(), |n| n.to_string());
                for phase in ["baseline", "slow", "burst-baseline", "burst-slow"] {
                    let Some(w) = named(r, &format!("r5-{phase}")) else {
                        continue;
                    };
                    let desc = format!(
                        "{}, {}/s{}",
                        if phase.ends_with("baseline") {
                            "all reading"
                        } else {
                            "1 % stopped"
                        },
                        num(&w["rate_per_s"], 0),
                        suspect(w)
                    );
                    let last_slow = phase == "burst-slow"
                        || (phase == "slow" && named(r, "r5-burst-slow").is_none());
                    let _ = writeln!(
                        md,
                        "| {v} | {} | {} | {} | {} | {} | {:.1} → {:.1} | {} → {} | {} |",
                        label(t),
                        desc,
                        ms(&w["per_recipient"], P50_P99),
                        ms(&w["last_recipient"], P50_P99),
                        delivered_lost(w),
                        f(&w["server_rss_kb"]["start"]).unwrap_or(0.0) / 1024.0,
                        f(&w["server_rss_kb"]["end"]).unwrap_or(0.0) / 1024.0,
                        f(&w["tcp_mem_kb"]["start"])
                            .map_or("–".into(), |x| format!("{:.1}", x / 1024.0)),
                        f(&w["tcp_mem_kb"]["end"])
                            .map_or("–".into(), |x| format!("{:.1}", x / 1024.0)),
                        if last_slow { slow_disc.as_str() } else { "" },
                    );
                }
            }
        },
    );
}
