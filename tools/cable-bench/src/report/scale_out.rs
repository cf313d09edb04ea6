//! R6: scale-out, several server processes on one Redis and one stream.

use std::fmt::Write as _;

use super::{Runs, big, f, heading, label, not_run, not_run_row, num, window};

pub(super) fn tables(runs: &Runs, md: &mut String) {
    let variants = runs.variants("R6");
    if variants.is_empty() {
        return;
    }
    let columns = heading(
        md,
        "R6 scale-out (several server processes on one Redis, one stream)",
        "connections | server | processes | last-recipient p50 / p99 / max ms | per-recipient p50 / p99 ms | delivered / lost | server CPU µs/delivery | total server RSS MB | RSS per connection",
    );
    for v in &variants {
        for t in ["ferrocable", "actioncable"] {
            let r = runs.get("R6", v, t);
            if let Some(why) = not_run(r) {
                not_run_row(md, v, label(t), &why, columns);
                continue;
            }
            let Some(r) = r else { continue };
            let Some(w) = window(r, "measure") else {
                continue;
            };
            let conns = f(&r["connect"]["confirmed"]).unwrap_or(0.0);
            let rss = f(&w["server_rss_kb"]["end"]).unwrap_or(0.0);
            let base = f(&r["baseline"]["server_rss_kb"]).unwrap_or(0.0);
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} / {} / {} | {} / {} | {} / {} | {} | {:.1} | {:.1} KB |",
                big(conns),
                label(t),
                r["params"]["servers"].as_array().map_or(0, |a| a.len()),
                num(&w["last_recipient"]["p50_ms"], 1),
                num(&w["last_recipient"]["p99_ms"], 1),
                num(&w["last_recipient"]["max_ms"], 1),
                num(&w["per_recipient"]["p50_ms"], 1),
                num(&w["per_recipient"]["p99_ms"], 1),
                big(f(&w["delivered"]).unwrap_or(0.0)),
                num(&w["lost"], 0),
                num(&w["server_cpu_us_per_delivery"], 2),
                rss / 1024.0,
                if conns > 0.0 {
                    (rss - base) * 1024.0 / conns / 1000.0
                } else {
                    0.0
                },
            );
        }
    }
    let _ = writeln!(md);
}
