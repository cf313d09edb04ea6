//! R1 and R2: one stream's fan-out, its latency at each subscriber count (R1) and the
//! highest rate it sustains (R2), for each server beside the raw floor.

use std::fmt::Write as _;

use serde_json::Value;

use super::{
    P50_P99_MAX, Runs, TARGETS, big, delivered_lost, f, label, ms, num, ratio, table, window,
};

pub(super) fn tables(runs: &Runs, md: &mut String) {
    r1(runs, md);
    r2(runs, md);
}

fn r1(runs: &Runs, md: &mut String) {
    table(
        runs,
        md,
        "R1",
        "R1 fan-out latency (one stream, 200 B payload, 2 broadcasts/s, measured after warm-up)",
        "subscribers | server | per-recipient p50 / p99 / max ms | last-recipient p50 / p99 / max ms | delivered / lost | server CPU µs/delivery | client CPU µs/delivery | client / other CPU % | last p99 vs floor | Action Cable ÷ ferrocable (last p99 / per p50)",
        |md, v, columns| {
            let floor_p99 = runs
                .get("R1", v, "floor")
                .and_then(|r| window(r, "measure"))
                .and_then(|w| f(&w["last_recipient"]["p99_ms"]));
            let fc = runs
                .get("R1", v, "ferrocable")
                .and_then(|r| window(r, "measure"));
            for t in TARGETS {
                let Some(r) = runs.shown(md, "R1", v, t, columns) else {
                    continue;
                };
                let Some(w) = window(r, "measure") else {
                    continue;
                };
                if f(&w["delivered"]).unwrap_or(0.0) == 0.0 {
                    let _ = writeln!(
                        md,
                        "| {v} | {} | nothing delivered within the {} s drain (backlog from warm-up) | | 0 / {} | | | | | |",
                        label(t),
                        num(&r["params"]["drain_timeout_s"], 0),
                        big(f(&w["expected"]).unwrap_or(0.0))
                    );
                    continue;
                }
                let reps = runs.reps("R1", v, t);
                let vs_floor = if t == "floor" {
                    "1.0x".into()
                } else {
                    ratio(f(&w["last_recipient"]["p99_ms"]), floor_p99)
                };
                let vs_fc = if t == "actioncable" {
                    format!(
                        "{}{} / {}",
                        if f(&w["lost"]).unwrap_or(0.0) > 0.0 {
                            "≥ "
                        } else {
                            ""
                        },
                        ratio(
                            f(&w["last_recipient"]["p99_ms"]),
                            fc.and_then(|x| f(&x["last_recipient"]["p99_ms"]))
                        ),
                        ratio(
                            f(&w["per_recipient"]["p50_ms"]),
                            fc.and_then(|x| f(&x["per_recipient"]["p50_ms"]))
                        )
                    )
                } else {
                    "".into()
                };
                let _ = writeln!(
                    md,
                    "| {v} | {}{} | {} | {} | {} | {} | {} | {} / {}{} | {} | {} |",
                    label(t),
                    if reps > 1 {
                        format!(" (median of {reps})")
                    } else {
                        String::new()
                    },
                    ms(&w["per_recipient"], P50_P99_MAX),
                    ms(&w["last_recipient"], P50_P99_MAX),
                    delivered_lost(w),
                    num(&w["server_cpu_us_per_delivery"], 2),
                    num(&w["client_cpu_us_per_delivery"], 2),
                    num(&w["client_cpu_pct"], 0),
                    num(&w["unattributed_cpu_pct"], 0),
                    suspect(w),
                    vs_floor,
                    vs_fc
                );
            }
        },
    );
}

/// A mark for windows whose numbers the load generator or other load may have bent:
/// clients above 80 % of their core, or more than 20 % of a core used by something else.
pub(super) fn suspect(w: &Value) -> &'static str {
    let client = f(&w["client_cpu_pct"]).unwrap_or(0.0);
    let other = f(&w["unattributed_cpu_pct"]).unwrap_or(0.0);
    if client > 80.0 || other > 20.0 {
        " ⚠"
    } else {
        ""
    }
}

fn r2(runs: &Runs, md: &mut String) {
    table(
        runs,
        md,
        "R2",
        "R2 throughput (rate doubles each step until p99 > 500 ms or a loss)",
        "streams | server | highest sustained deliveries/s | at broadcasts/s | per / last p99 ms there | server CPU µs/delivery there | server / client CPU % there | stopped because",
        |md, v, columns| {
            for t in ["ferrocable", "actioncable"] {
                let Some(r) = runs.shown(md, "R2", v, t, columns) else {
                    continue;
                };
                let best = &r["sweep"]["best"];
                let subs = r["params"]["clients"].as_u64().unwrap_or(0);
                let streams = r["params"]["streams"].as_u64().unwrap_or(1);
                let desc = format!(
                    "{v} ({} × {})",
                    big(streams as f64),
                    big((subs / streams.max(1)) as f64)
                );
                if best.is_null() {
                    // Its lowest step already failed: show what that step cost.
                    let first = window(r, "measure");
                    let us = first.and_then(|w| f(&w["server_cpu_us_per_delivery"]));
                    let _ = writeln!(
                        md,
                        "| {desc} | {} | none passed{} | | | {} | {} | {} |",
                        label(t),
                        us.filter(|u| *u > 0.0).map_or(String::new(), |u| format!(
                            " (one core at {u:.0} µs/delivery caps it near {}/s)",
                            big(1e6 / u)
                        )),
                        us.map_or("–".into(), |u| format!("{u:.1}")),
                        first.map_or("–".into(), |w| format!(
                            "{} / {}{}",
                            num(&w["server_cpu_pct"], 0),
                            num(&w["client_cpu_pct"], 0),
                            suspect(w)
                        )),
                        r["sweep"]["stop"].as_str().unwrap_or("")
                    );
                    continue;
                }
                let _ = writeln!(
                    md,
                    "| {desc} | {} | {} | {} | {} / {} | {} | {} / {}{} | {} |",
                    label(t),
                    big(f(&best["deliveries_per_s"]).unwrap_or(0.0)),
                    num(&best["rate_per_s"], 1),
                    num(&best["per_recipient"]["p99_ms"], 1),
                    num(&best["last_recipient"]["p99_ms"], 1),
                    num(&best["server_cpu_us_per_delivery"], 2),
                    num(&best["server_cpu_pct"], 0),
                    num(&best["client_cpu_pct"], 0),
                    suspect(best),
                    r["sweep"]["stop"].as_str().unwrap_or("")
                );
            }
        },
    );
}
