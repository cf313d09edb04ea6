//! R5: slow consumers (a share of the subscribers stop reading) and what the others see.

use std::fmt::Write as _;

use super::fanout::suspect;
use super::{Runs, big, f, heading, label, named, not_run, not_run_row, num};

pub(super) fn tables(runs: &Runs, md: &mut String) {
    let variants = runs.variants("R5");
    if variants.is_empty() {
        return;
    }
    let columns = heading(
        md,
        "R5 slow consumers (1 % of subscribers stop reading, small receive buffer)",
        "subscribers | server | phase | per-recipient p50 / p99 ms | last-recipient p50 / p99 ms | delivered / lost (readers) | server RSS start → end MB | kernel TCP buffers start → end MB | slow-client disconnects",
    );
    for v in &variants {
        for t in ["ferrocable", "actioncable"] {
            let r = runs.get("R5", v, t);
            if let Some(why) = not_run(r) {
                not_run_row(md, v, label(t), &why, columns);
                continue;
            }
            let Some(r) = r else { continue };
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
                    "| {v} | {} | {} | {} / {} | {} / {} | {} / {} | {:.1} → {:.1} | {} → {} | {} |",
                    label(t),
                    desc,
                    num(&w["per_recipient"]["p50_ms"], 1),
                    num(&w["per_recipient"]["p99_ms"], 1),
                    num(&w["last_recipient"]["p50_ms"], 1),
                    num(&w["last_recipient"]["p99_ms"], 1),
                    big(f(&w["delivered"]).unwrap_or(0.0)),
                    num(&w["lost"], 0),
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
    }
    let _ = writeln!(md);
}
