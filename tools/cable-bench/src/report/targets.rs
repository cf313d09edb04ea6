//! The "Issue 4 targets" table: each target beside what this run measured, met or not, and
//! the same rows as JSON for the combined document.

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::{Runs, big, f, heading, named, quotient, window};

/// Issue 4's targets against what this run measured.
pub(super) fn targets(runs: &Runs, md: &mut String) -> Value {
    let r1 = |t: &str, tier: &str| {
        runs.get("R1", tier, t)
            .and_then(|r| window(r, "measure"))
            .cloned()
    };
    let fc10 = r1("ferrocable", "10000");
    let floor10 = r1("floor", "10000");
    let ac10 = r1("actioncable", "10000");
    let g = |w: &Option<Value>, a: &str, b: &str| w.as_ref().and_then(|w| f(&w[a][b]));
    let g1 = |w: &Option<Value>, a: &str| w.as_ref().and_then(|w| f(&w[a]));
    let mut rows: Vec<Value> = Vec::new();
    let mut row = |measure: &str,
                   target: &str,
                   value: Option<f64>,
                   shown: String,
                   ok: Option<bool>,
                   ac: String| {
        rows.push(json!({"measure": measure, "target": target, "ferrocable": value, "shown": shown, "met": ok, "actioncable": ac}));
    };
    let last99 = g(&fc10, "last_recipient", "p99_ms");
    let floor99 = g(&floor10, "last_recipient", "p99_ms");
    let x_floor = quotient(last99, floor99);
    row(
        "R1 last-recipient p99 at 10k",
        "≤ 100 ms and ≤ 1.5x the raw floor",
        last99,
        format!(
            "{} ms ({} the floor's {} ms)",
            last99.map_or("–".into(), |x| format!("{x:.1}")),
            x_floor.map_or("–".into(), |x| format!("{x:.2}x")),
            floor99.map_or("–".into(), |x| format!("{x:.1}"))
        ),
        last99.map(|l| l <= 100.0 && x_floor.is_none_or(|x| x <= 1.5)),
        g(&ac10, "last_recipient", "p99_ms").map_or("–".into(), |x| format!("{x:.1} ms")),
    );
    let p50 = g(&fc10, "per_recipient", "p50_ms");
    row(
        "R1 per-recipient p50 at 10k",
        "≤ 40 ms",
        p50,
        p50.map_or("–".into(), |x| format!("{x:.1} ms")),
        p50.map(|x| x <= 40.0),
        g(&ac10, "per_recipient", "p50_ms").map_or("–".into(), |x| format!("{x:.1} ms")),
    );
    let best = |t: &str| -> Option<(f64, String)> {
        runs.variants("R2")
            .iter()
            .filter_map(|v| {
                let r = runs.get("R2", v, t)?;
                let d = f(&r["sweep"]["best"]["deliveries_per_s"])?;
                Some((d, v.clone()))
            })
            .max_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal))
    };
    let fb = best("ferrocable");
    row(
        "R2 sustained deliveries/s, no loss",
        "≥ 300,000",
        fb.as_ref().map(|x| x.0),
        fb.as_ref()
            .map_or("–".into(), |(d, v)| format!("{} ({v})", big(*d))),
        fb.as_ref().map(|x| x.0 >= 300_000.0),
        best("actioncable").map_or("–".into(), |(d, v)| format!("{} ({v})", big(d))),
    );
    let cpu = g1(&fc10, "server_cpu_us_per_delivery");
    row(
        "server CPU per delivery (R1 10k)",
        "≤ 3 µs",
        cpu,
        cpu.map_or("–".into(), |x| format!("{x:.2} µs")),
        cpu.map(|x| x <= 3.0),
        // A backlogged window counts only its own broadcasts' deliveries, which overstates
        // the cost: take Action Cable's smallest tier where it lost nothing.
        runs.variants("R1")
            .iter()
            .filter_map(|v| {
                let w = r1("actioncable", v)?;
                (f(&w["lost"])? == 0.0).then(|| (v.clone(), f(&w["server_cpu_us_per_delivery"])))
            })
            .next()
            .and_then(|(v, x)| {
                x.map(|x| format!("{x:.1} µs (at {v} subscribers, where it lost nothing)"))
            })
            .unwrap_or_else(|| "–".into()),
    );
    let mem = |t: &str| f(&named(runs.largest("R3", t)?, "hold")?["server_rss_bytes_per_conn"]);
    let fm = mem("ferrocable");
    let am = mem("actioncable");
    row(
        "R3 memory per idle connection (user space)",
        "≤ 8 KB",
        fm,
        fm.map_or("–".into(), |x| format!("{:.1} KB", x / 1000.0)),
        fm.map(|x| x <= 8000.0),
        am.map_or("–".into(), |x| format!("{:.1} KB", x / 1000.0)),
    );
    let storm = |t: &str| f(&runs.largest("R4", t)?["connect"]["confirmed_per_s"]);
    let fs = storm("ferrocable");
    row(
        "R4 connects/s with JWT",
        "≥ 5,000",
        fs,
        fs.map_or("–".into(), big),
        fs.map(|x| x >= 5000.0),
        storm("actioncable").map_or("–".into(), big),
    );
    // Ratio on R1: the largest tier both servers ran, last-recipient p99.
    // A tier where Action Cable delivered nothing has no latency to compare; where it lost
    // deliveries the ratio is a lower bound (its survivors' latency).
    let mut r1_ratio: Option<(f64, String)> = None;
    for v in runs.variants("R1") {
        let ac = r1("actioncable", &v);
        if ac.as_ref().and_then(|w| f(&w["delivered"])).unwrap_or(0.0) == 0.0 {
            continue;
        }
        let lower = ac.as_ref().and_then(|w| f(&w["lost"])).unwrap_or(0.0) > 0.0;
        let a = ac.as_ref().and_then(|w| f(&w["last_recipient"]["p99_ms"]));
        let b = r1("ferrocable", &v).and_then(|w| f(&w["last_recipient"]["p99_ms"]));
        if let Some(x) = quotient(a, b) {
            let tag = if lower {
                format!("{v} (a lower bound: Action Cable lost deliveries there)")
            } else {
                v.clone()
            };
            r1_ratio = Some((x, tag));
        }
    }
    row(
        "ratio vs Action Cable, R1 (last p99, largest tier where both delivered)",
        "≥ 10x",
        r1_ratio.as_ref().map(|x| x.0),
        r1_ratio
            .as_ref()
            .map_or("–".into(), |(x, v)| format!("{x:.1}x at {v}")),
        r1_ratio.as_ref().map(|x| x.0 >= 10.0),
        "1x".into(),
    );
    let r3_ratio = quotient(am, fm);
    row(
        "ratio vs Action Cable, R3 (memory per connection)",
        "≥ 10x",
        r3_ratio,
        r3_ratio.map_or("–".into(), |x| format!("{x:.1}x")),
        r3_ratio.map(|x| x >= 10.0),
        "1x".into(),
    );
    heading(
        md,
        "Issue 4 targets",
        "measure | target | ferrocable | Action Cable | verdict",
    );
    for r in &rows {
        let verdict = match r["met"].as_bool() {
            Some(true) => "met",
            Some(false) => "MISSED",
            None => "not measured",
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} |",
            r["measure"].as_str().unwrap_or(""),
            r["target"].as_str().unwrap_or(""),
            r["shown"].as_str().unwrap_or(""),
            r["actioncable"].as_str().unwrap_or(""),
            verdict
        );
    }
    let _ = writeln!(md);
    Value::Array(rows)
}
