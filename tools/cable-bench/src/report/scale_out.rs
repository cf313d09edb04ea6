//! R6: scale-out, several server processes on one Redis and one stream.

use std::fmt::Write as _;

use super::{P50_P99, P50_P99_MAX, Runs, big, delivered_lost, f, label, ms, num, table, window};

pub(super) fn tables(runs: &Runs, md: &mut String) {
    table(
        runs,
        md,
        "R6",
        "R6 scale-out (several server processes on one Redis, one stream)",
        "connections | server | processes | last-recipient p50 / p99 / max ms | per-recipient p50 / p99 ms | delivered / lost | server CPU µs/delivery | total server RSS MB | RSS per connection",
        |md, v, columns| {
            for t in ["ferrocable", "actioncable"] {
                let Some(r) = runs.shown(md, "R6", v, t, columns) else {
                    continue;
                };
                let Some(w) = window(r, "measure") else {
                    continue;
                };
                let conns = f(&r["connect"]["confirmed"]).unwrap_or(0.0);
                let rss = f(&w["server_rss_kb"]["end"]).unwrap_or(0.0);
                let base = f(&r["baseline"]["server_rss_kb"]).unwrap_or(0.0);
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} | {} | {} | {} | {:.1} | {:.1} KB |",
                    big(conns),
                    label(t),
                    r["params"]["servers"].as_array().map_or(0, |a| a.len()),
                    ms(&w["last_recipient"], P50_P99_MAX),
                    ms(&w["per_recipient"], P50_P99),
                    delivered_lost(w),
                    num(&w["server_cpu_us_per_delivery"], 2),
                    rss / 1024.0,
                    if conns > 0.0 {
                        (rss - base) * 1024.0 / conns / 1000.0
                    } else {
                        0.0
                    },
                );
            }
        },
    );
}
