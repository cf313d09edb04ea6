//! The Turbo payload tables (`bin/bench --payload json,turbo`): R1-turbo and R2-turbo beside
//! R1 and R2 with the 200 B payload, per broadcast and per delivered byte, so the cost of a
//! realistic 2 KB turbo-stream can be read against the small-payload figures.

use std::fmt::Write as _;

use serde_json::Value;

use super::{P50_P99, Runs, TARGETS, big, f, label, ms, num, ratio, table, window};

/// Server CPU per delivered KB of payload, in µs.
fn cpu_per_kb(w: &Value) -> Option<f64> {
    let us = f(&w["server_cpu_us_per_delivery"])?;
    let bytes = f(&w["payload_bytes"]).filter(|b| *b > 0.0)?;
    Some(us / bytes * 1000.0)
}

pub(super) fn tables(runs: &Runs, md: &mut String) {
    r1(runs, md);
    r2(runs, md);
}

fn r1(runs: &Runs, md: &mut String) {
    let title = format!(
        "R1 with the Turbo payload (one stream, a {} B turbo-stream Rails published, 2 broadcasts/s) beside the 200 B run",
        payload_bytes(runs, "R1-turbo")
    );
    table(
        runs,
        md,
        "R1-turbo",
        &title,
        "subscribers | server | last-recipient p50 / p99 ms (turbo) | the same with 200 B | server CPU µs/delivery turbo / 200 B | server CPU µs per delivered KB turbo / 200 B | per KB, turbo ÷ 200 B",
        |md, v, _| {
            for t in TARGETS {
                let Some(turbo) = runs
                    .get("R1-turbo", v, t)
                    .and_then(|r| window(r, "measure"))
                else {
                    continue;
                };
                let small = runs.get("R1", v, t).and_then(|r| window(r, "measure"));
                let last = |w: Option<&Value>| {
                    w.map_or("–".into(), |w| ms(&w["last_recipient"], P50_P99))
                };
                let kb = |w: Option<&Value>| w.and_then(cpu_per_kb);
                let _ = writeln!(
                    md,
                    "| {v} | {} | {} | {} | {} / {} | {} / {} | {} |",
                    label(t),
                    last(Some(turbo)),
                    last(small),
                    num(&turbo["server_cpu_us_per_delivery"], 2),
                    small.map_or("–".into(), |w| num(&w["server_cpu_us_per_delivery"], 2)),
                    kb(Some(turbo)).map_or("–".into(), |x| format!("{x:.2}")),
                    kb(small).map_or("–".into(), |x| format!("{x:.2}")),
                    ratio(kb(Some(turbo)), kb(small)),
                );
            }
        },
    );
}

fn r2(runs: &Runs, md: &mut String) {
    let title = format!(
        "R2 with the Turbo payload ({} B) beside the 200 B run: highest sustained rate",
        payload_bytes(runs, "R2-turbo")
    );
    table(
        runs,
        md,
        "R2-turbo",
        &title,
        "streams | server | deliveries/s turbo / 200 B | delivered payload MB/s turbo / 200 B | server CPU µs/delivery there, turbo / 200 B | stopped because (turbo)",
        |md, v, _| {
            for t in ["ferrocable", "actioncable"] {
                let Some(turbo) = runs.get("R2-turbo", v, t) else {
                    continue;
                };
                let small = runs.get("R2", v, t);
                let best = |r: Option<&Value>| {
                    r.map(|r| r["sweep"]["best"].clone())
                        .filter(|b| !b.is_null())
                };
                let rate = |b: &Option<Value>| b.as_ref().and_then(|b| f(&b["deliveries_per_s"]));
                let mbs = |b: &Option<Value>| {
                    b.as_ref().and_then(|b| {
                        Some(f(&b["deliveries_per_s"])? * f(&b["payload_bytes"])? / 1e6)
                    })
                };
                let (bt, bs) = (best(Some(turbo)), best(small));
                let show = |x: Option<f64>, digits: usize| {
                    x.map_or("–".into(), |x| format!("{x:.digits$}"))
                };
                let _ = writeln!(
                    md,
                    "| {v} | {} | {} / {} | {} / {} | {} / {} | {} |",
                    label(t),
                    rate(&bt).map_or("none passed".into(), big),
                    rate(&bs).map_or("–".into(), big),
                    show(mbs(&bt), 1),
                    show(mbs(&bs), 1),
                    bt.as_ref()
                        .map_or("–".into(), |b| num(&b["server_cpu_us_per_delivery"], 2)),
                    bs.as_ref()
                        .map_or("–".into(), |b| num(&b["server_cpu_us_per_delivery"], 2)),
                    turbo["sweep"]["stop"].as_str().unwrap_or("")
                );
            }
        },
    );
}

/// The payload size the turbo runs report.
fn payload_bytes(runs: &Runs, scenario: &str) -> String {
    runs.variants(scenario)
        .iter()
        .flat_map(|v| TARGETS.iter().filter_map(move |t| runs.get(scenario, v, t)))
        .find_map(|r| f(&r["params"]["payload_bytes"]))
        .map_or("~2,000".into(), big)
}
