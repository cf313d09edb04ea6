//! The "Broadcast inputs" tables: R1 and R2 run through each input ferrocable reads (runs
//! whose target is `ferrocable/<input>`, bin/bench --inputs) next to the same scenario through
//! Redis (target `ferrocable`), with the latency each input adds (its polling interval
//! included: a Solid Cable broadcast waits for the next poll).

use std::fmt::Write;

use serde_json::Value;

use super::{Runs, big, f, not_run, not_run_row, num, table, window};

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

fn poll_note(r: &Value) -> String {
    r["notes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .find_map(|n| n.strip_prefix("polling_interval_ms="))
        .map_or(String::new(), |ms| format!(", poll {ms} ms"))
}

/// Writes a row's cells after the input's, from its run and the Redis run of the same variant
/// (none for the Redis row itself).
type Row = fn(&Value, Option<&Value>) -> String;

pub(super) fn tables(runs: &Runs, md: &mut String) {
    let tables: [(&str, &str, &str, Row); 2] = [
        (
            "R1",
            "Broadcast inputs: R1 fan-out latency through each input",
            "subscribers | input | per-recipient p50 / p99 ms | last-recipient p50 / p99 ms | delivered / lost | added vs Redis, last-recipient p50 / p99 ms",
            r1_row,
        ),
        (
            "R2",
            "Broadcast inputs: R2 throughput through each input",
            "streams | input | highest sustained deliveries/s | at broadcasts/s | per / last p99 ms there | stopped because",
            r2_row,
        ),
    ];
    for (scenario, title, header, row) in tables {
        // Only a run through another input than Redis makes the table.
        let any = runs
            .by
            .keys()
            .any(|k| k.0 == scenario && k.2.starts_with("ferrocable/"));
        if any {
            table(runs, md, scenario, title, header, |md, v, columns| {
                rows(runs, md, scenario, v, columns, row);
            });
        }
    }
}

/// A variant's rows: one per input that ran (Redis always, as the reference).
fn rows(runs: &Runs, md: &mut String, scenario: &str, v: &str, columns: usize, row: Row) {
    let redis = runs.get(scenario, v, "ferrocable");
    for (target, label) in INPUTS {
        let r = runs.get(scenario, v, target);
        if target != "ferrocable" && r.is_none() {
            continue;
        }
        match (not_run(r), r) {
            (Some(why), _) => {
                not_run_row(md, v, label, &why, columns);
            }
            (None, Some(r)) => {
                let reference = (target != "ferrocable").then_some(redis).flatten();
                let _ = writeln!(
                    md,
                    "| {v} | {label}{} | {} |",
                    poll_note(r),
                    row(r, reference)
                );
            }
            (None, None) => {}
        }
    }
}

fn r1_row(r: &Value, redis: Option<&Value>) -> String {
    let Some(w) = window(r, "measure") else {
        return "no measured window | | |".into();
    };
    let redis = redis.and_then(|x| window(x, "measure"));
    let added = |q: &str| match (
        f(&w["last_recipient"][q]),
        redis.and_then(|x| f(&x["last_recipient"][q])),
    ) {
        (Some(a), Some(b)) => format!("{:+.1}", a - b),
        _ => "–".into(),
    };
    format!(
        "{} / {} | {} / {} | {} / {} | {} / {}",
        num(&w["per_recipient"]["p50_ms"], 2),
        num(&w["per_recipient"]["p99_ms"], 2),
        num(&w["last_recipient"]["p50_ms"], 2),
        num(&w["last_recipient"]["p99_ms"], 2),
        big(f(&w["delivered"]).unwrap_or(0.0)),
        big(f(&w["lost"]).unwrap_or(0.0)),
        added("p50_ms"),
        added("p99_ms"),
    )
}

fn r2_row(r: &Value, _redis: Option<&Value>) -> String {
    let best = &r["sweep"]["best"];
    let stop = r["sweep"]["stop"].as_str().unwrap_or("");
    if best.is_null() {
        return format!("none passed | | | {stop}");
    }
    format!(
        "{} | {} | {} / {} | {stop}",
        big(f(&best["deliveries_per_s"]).unwrap_or(0.0)),
        num(&best["rate_per_s"], 1),
        num(&best["per_recipient"]["p99_ms"], 1),
        num(&best["last_recipient"]["p99_ms"], 1),
    )
}
