//! The "Broadcast inputs" tables: R1 and R2 run through each input ferrocable reads (runs
//! whose target is `ferrocable/<input>`, bin/bench --inputs) next to the same scenario through
//! Redis (target `ferrocable`), with the latency each input adds (its polling interval
//! included: a Solid Cable broadcast waits for the next poll).

use std::fmt::Write;

use serde_json::Value;

use super::{Runs, big, f, not_run, num, window};

/// The inputs, in table order: (target, label).
const INPUTS: [(&str, &str); 4] = [
    ("ferrocable", "Redis adapter (PUBLISH)"),
    (
        "ferrocable/solid_cable_sqlite",
        "Solid Cable on SQLite (INSERT, polled)",
    ),
    (
        "ferrocable/solid_cable_pg",
        "Solid Cable on PostgreSQL (INSERT, polled)",
    ),
    ("ferrocable/pg_notify", "PostgreSQL adapter (NOTIFY)"),
];

fn any_input(runs: &Runs, scenario: &str) -> bool {
    runs.by
        .keys()
        .any(|k| k.0 == scenario && k.2.starts_with("ferrocable/"))
}

fn poll_note(r: &Value) -> String {
    r["notes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .find_map(|n| n.strip_prefix("polling_interval_ms="))
        .map_or(String::new(), |ms| format!(", poll {ms} ms"))
}

pub(super) fn tables(runs: &Runs, md: &mut String) {
    if any_input(runs, "R1") {
        r1(runs, md);
    }
    if any_input(runs, "R2") {
        r2(runs, md);
    }
}

fn r1(runs: &Runs, md: &mut String) {
    let _ = writeln!(
        md,
        "### Broadcast inputs: R1 fan-out latency through each input\n"
    );
    let _ = writeln!(
        md,
        "| subscribers | input | per-recipient p50 / p99 ms | last-recipient p50 / p99 ms | delivered / lost | added vs Redis, last-recipient p50 / p99 ms |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|");
    for v in runs.variants("R1") {
        let redis = runs
            .get("R1", &v, "ferrocable")
            .and_then(|r| window(r, "measure"));
        for (target, label) in INPUTS {
            let r = runs.get("R1", &v, target);
            if target != "ferrocable" && r.is_none() {
                continue;
            }
            if let Some(why) = not_run(r) {
                let _ = writeln!(md, "| {v} | {label} | {why} | | | |");
                continue;
            }
            let Some(r) = r else { continue };
            let Some(w) = window(r, "measure") else {
                continue;
            };
            let added = |q: &str| match (
                f(&w["last_recipient"][q]),
                redis.and_then(|x| f(&x["last_recipient"][q])),
            ) {
                (Some(a), Some(b)) if target != "ferrocable" => format!("{:+.1}", a - b),
                _ => "–".into(),
            };
            let _ = writeln!(
                md,
                "| {v} | {label}{} | {} / {} | {} / {} | {} / {} | {} / {} |",
                poll_note(r),
                num(&w["per_recipient"]["p50_ms"], 2),
                num(&w["per_recipient"]["p99_ms"], 2),
                num(&w["last_recipient"]["p50_ms"], 2),
                num(&w["last_recipient"]["p99_ms"], 2),
                big(f(&w["delivered"]).unwrap_or(0.0)),
                big(f(&w["lost"]).unwrap_or(0.0)),
                added("p50_ms"),
                added("p99_ms"),
            );
        }
    }
    let _ = writeln!(md);
}

fn r2(runs: &Runs, md: &mut String) {
    let _ = writeln!(
        md,
        "### Broadcast inputs: R2 throughput through each input\n"
    );
    let _ = writeln!(
        md,
        "| streams | input | highest sustained deliveries/s | at broadcasts/s | per / last p99 ms there | stopped because |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|");
    for v in runs.variants("R2") {
        for (target, label) in INPUTS {
            let r = runs.get("R2", &v, target);
            if target != "ferrocable" && r.is_none() {
                continue;
            }
            if let Some(why) = not_run(r) {
                let _ = writeln!(md, "| {v} | {label} | {why} | | | |");
                continue;
            }
            let Some(r) = r else { continue };
            let best = &r["sweep"]["best"];
            let stop = r["sweep"]["stop"].as_str().unwrap_or("");
            if best.is_null() {
                let _ = writeln!(
                    md,
                    "| {v} | {label}{} | none passed | | | {stop} |",
                    poll_note(r)
                );
                continue;
            }
            let _ = writeln!(
                md,
                "| {v} | {label}{} | {} | {} | {} / {} | {stop} |",
                poll_note(r),
                big(f(&best["deliveries_per_s"]).unwrap_or(0.0)),
                num(&best["rate_per_s"], 1),
                num(&best["per_recipient"]["p99_ms"], 1),
                num(&best["last_recipient"]["p99_ms"], 1),
            );
        }
    }
    let _ = writeln!(md);
}
