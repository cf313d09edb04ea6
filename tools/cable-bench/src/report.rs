//! `cable-bench report`: reads the result files of one `bin/bench` run and writes the side
//! by side tables (text/markdown), one combined JSON document and an SVG chart of R1 latency
//! against subscribers. The SVG is written by hand: a handful of lines and circles.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::{Value, json};

mod turbo;

#[derive(clap::Args, Debug, Clone)]
pub(crate) struct ReportArgs {
    /// Directory with the run files (*.json) and env.json.
    #[arg(long)]
    dir: PathBuf,
    /// Write the tables as markdown here.
    #[arg(long)]
    markdown: Option<PathBuf>,
    /// Write the combined JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write the R1 chart here.
    #[arg(long)]
    svg: Option<PathBuf>,
}

mod inputs;

const TARGETS: [&str; 3] = ["floor", "ferrocable", "actioncable"];

fn label(t: &str) -> &str {
    match t {
        "floor" => "raw floor",
        "ferrocable" => "ferrocable",
        "actioncable" => "Action Cable (Puma)",
        other => other,
    }
}

fn f(v: &Value) -> Option<f64> {
    v.as_f64()
}

fn num(v: &Value, digits: usize) -> String {
    match v.as_f64() {
        Some(x) => format!("{x:.digits$}"),
        None => "–".into(),
    }
}

fn big(x: f64) -> String {
    let s = format!("{x:.0}");
    let bytes = s.as_bytes();
    let mut out = String::new();
    for (i, c) in bytes.iter().enumerate() {
        if i > 0 && (bytes.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(*c as char);
    }
    out
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.1}x", a / b),
        _ => "–".into(),
    }
}

/// All runs, grouped by (scenario, variant, target); several repetitions keep the median.
struct Runs {
    by: BTreeMap<(String, String, String), Vec<Value>>,
}

impl Runs {
    fn get(&self, scenario: &str, variant: &str, target: &str) -> Option<&Value> {
        let v = self.by.get(&(
            scenario.to_string(),
            variant.to_string(),
            target.to_string(),
        ))?;
        if v.len() == 1 {
            return v.first();
        }
        // Median by the run's headline number.
        let mut sorted: Vec<&Value> = v.iter().collect();
        sorted.sort_by(|a, b| {
            headline(a)
                .partial_cmp(&headline(b))
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        sorted.get(sorted.len() / 2).copied()
    }

    fn reps(&self, scenario: &str, variant: &str, target: &str) -> usize {
        self.by
            .get(&(
                scenario.to_string(),
                variant.to_string(),
                target.to_string(),
            ))
            .map_or(0, |v| v.len())
    }

    fn variants(&self, scenario: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .by
            .keys()
            .filter(|k| k.0 == scenario)
            .map(|k| k.1.clone())
            .collect();
        v.dedup();
        v.sort_by_key(|s| {
            s.trim_start_matches(|c: char| !c.is_ascii_digit())
                .parse::<u64>()
                .unwrap_or(u64::MAX)
        });
        v.dedup();
        v
    }
}

fn headline(r: &Value) -> f64 {
    window(r, "measure")
        .and_then(|w| f(&w["last_recipient"]["p99_ms"]))
        .unwrap_or(0.0)
}

/// The first window of this kind (not warm-up).
fn window<'a>(r: &'a Value, kind: &str) -> Option<&'a Value> {
    r["windows"].as_array()?.iter().find(|w| w["kind"] == kind)
}

fn named<'a>(r: &'a Value, name: &str) -> Option<&'a Value> {
    r["windows"].as_array()?.iter().find(|w| w["name"] == name)
}

fn skipped(r: &Value) -> Option<String> {
    r["skipped"].as_str().map(|s| s.to_string())
}

fn failed(r: &Value) -> Option<String> {
    r["error"].as_str().map(|s| s.to_string())
}

fn not_run(r: Option<&Value>) -> Option<String> {
    match r {
        None => Some("not run".into()),
        Some(r) => skipped(r)
            .map(|s| format!("not run: {s}"))
            .or_else(|| failed(r).map(|e| format!("failed: {e}"))),
    }
}

pub(crate) fn main(a: ReportArgs) -> ExitCode {
    match report(&a) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cable-bench report: {e}");
            ExitCode::from(1)
        }
    }
}

fn report(a: &ReportArgs) -> Result<String, String> {
    let mut runs = Runs {
        by: BTreeMap::new(),
    };
    let mut all = Vec::new();
    let mut env = Value::Null;
    let mut entries: Vec<_> = std::fs::read_dir(&a.dir)
        .map_err(|e| format!("{}: {e}", a.dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    entries.sort();
    for p in entries {
        let text = std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        let v: Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))?;
        if p.file_name().is_some_and(|n| n == "env.json") {
            env = v;
            continue;
        }
        if v["cable_bench"].is_null() {
            continue;
        }
        let text = |x: &Value| match x {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        };
        let key = (
            text(&v["scenario"]),
            text(&v["variant"]),
            text(&v["target"]),
        );
        runs.by.entry(key).or_default().push(v.clone());
        all.push(v);
    }
    let mut md = String::new();
    if !env.is_null() {
        let _ = writeln!(md, "Environment: {}\n", env["line"].as_str().unwrap_or(""));
    }
    r1(&runs, &mut md);
    r2(&runs, &mut md);
    inputs::tables(&runs, &mut md);
    r3(&runs, &mut md);
    r4(
        &runs,
        &mut md,
        "R4",
        "R4 connect storm (JWT, connect + upgrade + welcome + subscribe + confirm)",
    );
    r4(
        &runs,
        &mut md,
        "R4C",
        "R4C connect storm with Rails cookies and a PostgreSQL lookup (the shop app: encrypted session cookie, `User.find_by(id:)`)",
    );
    r5(&runs, &mut md);
    r6(&runs, &mut md);
    turbo::tables(&runs, &mut md);
    let verdicts = targets(&runs, &mut md);
    if let Some(p) = &a.markdown {
        std::fs::write(p, &md).map_err(|e| format!("{}: {e}", p.display()))?;
    }
    if let Some(p) = &a.svg {
        std::fs::write(p, svg(&runs, &env)).map_err(|e| format!("{}: {e}", p.display()))?;
    }
    if let Some(p) = &a.json {
        let doc = json!({"env": env, "targets": verdicts, "tables_markdown": md, "runs": all});
        std::fs::write(p, format!("{doc:#}\n")).map_err(|e| format!("{}: {e}", p.display()))?;
    }
    Ok(md)
}

fn r1(runs: &Runs, md: &mut String) {
    let variants = runs.variants("R1");
    if variants.is_empty() {
        return;
    }
    let _ = writeln!(
        md,
        "### R1 fan-out latency (one stream, 200 B payload, 2 broadcasts/s, measured after warm-up)\n"
    );
    let _ = writeln!(
        md,
        "| subscribers | server | per-recipient p50 / p99 / max ms | last-recipient p50 / p99 / max ms | delivered / lost | server CPU µs/delivery | client CPU µs/delivery | client / other CPU % | last p99 vs floor | Action Cable ÷ ferrocable (last p99 / per p50) |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|---|");
    for v in &variants {
        let floor_p99 = runs
            .get("R1", v, "floor")
            .and_then(|r| window(r, "measure"))
            .and_then(|w| f(&w["last_recipient"]["p99_ms"]));
        let fc = runs
            .get("R1", v, "ferrocable")
            .and_then(|r| window(r, "measure"));
        for t in TARGETS {
            let r = runs.get("R1", v, t);
            if let Some(why) = not_run(r) {
                let _ = writeln!(md, "| {v} | {} | {why} | | | | | | | |", label(t));
                continue;
            }
            let Some(w) = r.and_then(|r| window(r, "measure")) else {
                continue;
            };
            if f(&w["delivered"]).unwrap_or(0.0) == 0.0 {
                let _ = writeln!(
                    md,
                    "| {v} | {} | nothing delivered within the {} s drain (backlog from warm-up) | | 0 / {} | | | | | |",
                    label(t),
                    num(
                        &r.map_or(Value::Null, |r| r["params"]["drain_timeout_s"].clone()),
                        0
                    ),
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
                "| {v} | {}{} | {} / {} / {} | {} / {} / {} | {} / {} | {} | {} | {} / {}{} | {} | {} |",
                label(t),
                if reps > 1 {
                    format!(" (median of {reps})")
                } else {
                    String::new()
                },
                num(&w["per_recipient"]["p50_ms"], 1),
                num(&w["per_recipient"]["p99_ms"], 1),
                num(&w["per_recipient"]["max_ms"], 1),
                num(&w["last_recipient"]["p50_ms"], 1),
                num(&w["last_recipient"]["p99_ms"], 1),
                num(&w["last_recipient"]["max_ms"], 1),
                big(f(&w["delivered"]).unwrap_or(0.0)),
                num(&w["lost"], 0),
                num(&w["server_cpu_us_per_delivery"], 2),
                num(&w["client_cpu_us_per_delivery"], 2),
                num(&w["client_cpu_pct"], 0),
                num(&w["unattributed_cpu_pct"], 0),
                suspect(w),
                vs_floor,
                vs_fc
            );
        }
    }
    let _ = writeln!(md);
}

/// A mark for windows whose numbers the load generator or other load may have bent:
/// clients above 80 % of their core, or more than 20 % of a core used by something else.
fn suspect(w: &Value) -> &'static str {
    let client = f(&w["client_cpu_pct"]).unwrap_or(0.0);
    let other = f(&w["unattributed_cpu_pct"]).unwrap_or(0.0);
    if client > 80.0 || other > 20.0 {
        " ⚠"
    } else {
        ""
    }
}

fn r2(runs: &Runs, md: &mut String) {
    let variants = runs.variants("R2");
    if variants.is_empty() {
        return;
    }
    let _ = writeln!(
        md,
        "### R2 throughput (rate doubles each step until p99 > 500 ms or a loss)\n"
    );
    let _ = writeln!(
        md,
        "| streams | server | highest sustained deliveries/s | at broadcasts/s | per / last p99 ms there | server CPU µs/delivery there | server / client CPU % there | stopped because |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|");
    for v in &variants {
        for t in ["ferrocable", "actioncable"] {
            let r = runs.get("R2", v, t);
            if let Some(why) = not_run(r) {
                let _ = writeln!(md, "| {v} | {} | {why} | | | | | |", label(t));
                continue;
            }
            let Some(r) = r else { continue };
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
                let first = r["windows"]
                    .as_array()
                    .and_then(|a| a.iter().find(|w| w["kind"] == "measure"));
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
    }
    let _ = writeln!(md);
}

fn r3(runs: &Runs, md: &mut String) {
    let variants = runs.variants("R3");
    if variants.is_empty() {
        return;
    }
    let _ = writeln!(
        md,
        "### R3 idle memory (subscribed connections held idle)\n"
    );
    let _ = writeln!(
        md,
        "| connections | server | server RSS before → held MB | user-space RSS per connection | kernel slab per connection (both ends) | sockstat TCP inuse / mem pages | Action Cable ÷ ferrocable |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|");
    for v in &variants {
        let fc = runs
            .get("R3", v, "ferrocable")
            .and_then(|r| named(r, "hold"))
            .and_then(|w| f(&w["server_rss_bytes_per_conn"]));
        for t in ["ferrocable", "actioncable"] {
            let r = runs.get("R3", v, t);
            if let Some(why) = not_run(r) {
                let _ = writeln!(md, "| {v} | {} | {why} | | | | |", label(t));
                continue;
            }
            let Some(w) = r.and_then(|r| named(r, "hold")) else {
                continue;
            };
            let per = f(&w["server_rss_bytes_per_conn"]);
            let _ = writeln!(
                md,
                "| {} | {} | {:.1} → {:.1} | {:.1} KB | {:.1} KB | {} / {} | {} |",
                num(&w["connections"], 0),
                label(t),
                f(&w["server_rss_kb"]["baseline"]).unwrap_or(0.0) / 1024.0,
                f(&w["server_rss_kb"]["end"]).unwrap_or(0.0) / 1024.0,
                per.unwrap_or(0.0) / 1000.0,
                f(&w["slab_bytes_per_conn_both_ends"]).unwrap_or(0.0) / 1000.0,
                num(&w["sockstat_tcp"]["inuse"], 0),
                num(&w["sockstat_tcp"]["mem_pages"], 0),
                if t == "actioncable" {
                    ratio(per, fc)
                } else {
                    String::new()
                }
            );
        }
    }
    let _ = writeln!(md);
}

/// R4 and R4C (the same storm, authenticated by cookies and a database lookup).
fn r4(runs: &Runs, md: &mut String, scenario: &str, title: &str) {
    let variants = runs.variants(scenario);
    if variants.is_empty() {
        return;
    }
    let _ = writeln!(md, "### {title}\n");
    let _ = writeln!(
        md,
        "| clients | server | concurrency | confirmed | confirmed per s | failures | to-confirm p50 / p99 / max ms | server CPU µs per connection | listen-queue overflows / SYN retransmits |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|");
    for v in &variants {
        for t in ["ferrocable", "actioncable"] {
            let r = runs.get(scenario, v, t);
            if let Some(why) = not_run(r) {
                let _ = writeln!(md, "| {v} | {} | {why} | | | | | | |", label(t));
                continue;
            }
            let Some(r) = r else { continue };
            let c = &r["connect"];
            let failures = c["failures"].as_object().map_or(String::new(), |m| {
                m.iter()
                    .map(|(k, v)| format!("{k}: {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            });
            let _ = writeln!(
                md,
                "| {v} | {} | {} | {} | {} | {} {} | {} / {} / {} | {} | {} / {} |",
                label(t),
                num(&c["concurrency"], 0),
                num(&c["confirmed"], 0),
                big(f(&c["confirmed_per_s"]).unwrap_or(0.0)),
                num(&c["failed"], 0),
                failures,
                num(&c["to_confirm"]["p50_ms"], 1),
                num(&c["to_confirm"]["p99_ms"], 1),
                num(&c["to_confirm"]["max_ms"], 1),
                num(&c["server_cpu_us_per_connection"], 0),
                num(&c["listen_overflows"], 0),
                num(&c["syn_retransmits"], 0),
            );
        }
        let rate = |t: &str| {
            runs.get(scenario, v, t)
                .and_then(|r| f(&r["connect"]["confirmed_per_s"]))
                .filter(|x| *x > 0.0)
        };
        if let (Some(fc), Some(ac)) = (rate("ferrocable"), rate("actioncable")) {
            let _ = writeln!(
                md,
                "| {v} | ferrocable ÷ Action Cable | | | {:.1}x | | | | |",
                fc / ac
            );
        }
    }
    let _ = writeln!(md);
}

fn r5(runs: &Runs, md: &mut String) {
    let variants = runs.variants("R5");
    if variants.is_empty() {
        return;
    }
    let _ = writeln!(
        md,
        "### R5 slow consumers (1 % of subscribers stop reading, small receive buffer)\n"
    );
    let _ = writeln!(
        md,
        "| subscribers | server | phase | per-recipient p50 / p99 ms | last-recipient p50 / p99 ms | delivered / lost (readers) | server RSS start → end MB | kernel TCP buffers start → end MB | slow-client disconnects |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|");
    for v in &variants {
        for t in ["ferrocable", "actioncable"] {
            let r = runs.get("R5", v, t);
            if let Some(why) = not_run(r) {
                let _ = writeln!(md, "| {v} | {} | {why} | | | | | | |", label(t));
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

fn r6(runs: &Runs, md: &mut String) {
    let variants = runs.variants("R6");
    if variants.is_empty() {
        return;
    }
    let _ = writeln!(
        md,
        "### R6 scale-out (several server processes on one Redis, one stream)\n"
    );
    let _ = writeln!(
        md,
        "| connections | server | processes | last-recipient p50 / p99 / max ms | per-recipient p50 / p99 ms | delivered / lost | server CPU µs/delivery | total server RSS MB | RSS per connection |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|");
    for v in &variants {
        for t in ["ferrocable", "actioncable"] {
            let r = runs.get("R6", v, t);
            if let Some(why) = not_run(r) {
                let _ = writeln!(md, "| {v} | {} | {why} | | | | | | |", label(t));
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

/// Issue 4's targets against what this run measured.
fn targets(runs: &Runs, md: &mut String) -> Value {
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
    let x_floor = match (last99, floor99) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    };
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
    let mem = |t: &str| -> Option<f64> {
        let v = runs.variants("R3");
        let r = runs.get("R3", v.last()?, t)?;
        f(&named(r, "hold")?["server_rss_bytes_per_conn"])
    };
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
    let storm = |t: &str| -> Option<f64> {
        let v = runs.variants("R4");
        let r = runs.get("R4", v.last()?, t)?;
        f(&r["connect"]["confirmed_per_s"])
    };
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
        if let (Some(a), Some(b)) = (a, b)
            && b > 0.0
        {
            let tag = if lower {
                format!("{v} (a lower bound: Action Cable lost deliveries there)")
            } else {
                v.clone()
            };
            r1_ratio = Some((a / b, tag));
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
    let r3_ratio = match (am, fm) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    };
    row(
        "ratio vs Action Cable, R3 (memory per connection)",
        "≥ 10x",
        r3_ratio,
        r3_ratio.map_or("–".into(), |x| format!("{x:.1}x")),
        r3_ratio.map(|x| x >= 10.0),
        "1x".into(),
    );
    let _ = writeln!(md, "### Issue 4 targets\n");
    let _ = writeln!(
        md,
        "| measure | target | ferrocable | Action Cable | verdict |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|");
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

/// Log-log chart: subscribers (x) against latency in ms (y), per server: last-recipient p99
/// (solid) and per-recipient p50 (dashed).
fn svg(runs: &Runs, env: &Value) -> String {
    let (w, h) = (760.0, 470.0);
    let (left, right, top, bottom) = (70.0, 200.0, 40.0, 60.0);
    let pw = w - left - right;
    let ph = h - top - bottom;
    let mut dead: Vec<(&str, u64)> = Vec::new();
    let mut points: Vec<(&str, u64, f64, f64, bool)> = Vec::new();
    for v in runs.variants("R1") {
        let Ok(n) = v.parse::<u64>() else { continue };
        for t in TARGETS {
            if let Some(win) = runs.get("R1", &v, t).and_then(|r| window(r, "measure")) {
                if f(&win["delivered"]).unwrap_or(0.0) == 0.0 {
                    dead.push((t, n));
                    continue;
                }
                let lossy = f(&win["lost"]).unwrap_or(0.0) > 0.0;
                if let (Some(a), Some(b)) = (
                    f(&win["last_recipient"]["p99_ms"]),
                    f(&win["per_recipient"]["p50_ms"]),
                ) {
                    points.push((t, n, a.max(0.1), b.max(0.1), lossy));
                }
            }
        }
    }
    let xs: Vec<f64> = points
        .iter()
        .map(|p| p.1 as f64)
        .chain(dead.iter().map(|d| d.1 as f64))
        .collect();
    let ys: Vec<f64> = points.iter().flat_map(|p| [p.2, p.3]).collect();
    let xmin = xs.iter().cloned().fold(f64::INFINITY, f64::min).min(1000.0) * 0.8;
    let xmax = xs.iter().cloned().fold(0.0, f64::max).max(20000.0) * 1.1;
    let ymin_dec = ys
        .iter()
        .cloned()
        .fold(f64::INFINITY, f64::min)
        .min(10.0)
        .log10()
        .floor();
    let ymax_dec = ys
        .iter()
        .cloned()
        .fold(0.0, f64::max)
        .max(1000.0)
        .log10()
        .ceil();
    let x = |v: f64| left + (v.ln() - xmin.ln()) / (xmax.ln() - xmin.ln()) * pw;
    let y = |v: f64| top + ph - (v.log10() - ymin_dec) / (ymax_dec - ymin_dec) * ph;
    let color = |t: &str| match t {
        "floor" => "#777777",
        "ferrocable" => "#d9480f",
        _ => "#1c7ed6",
    };
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{left}" y="22" font-size="15" font-weight="bold">R1 fan-out latency vs subscribers (one stream, 2 broadcasts/s, log-log)</text>"#
    );
    // Grid: decades on y, tiers on x.
    let mut d = ymin_dec;
    while d <= ymax_dec + 1e-9 {
        let v = 10f64.powf(d);
        let yy = y(v);
        let _ = writeln!(
            s,
            r##"<line x1="{left}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="#dddddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            left + pw,
            left - 6.0,
            yy + 4.0,
            if v >= 1.0 {
                format!("{v:.0} ms")
            } else {
                format!("{v} ms")
            }
        );
        d += 1.0;
    }
    let mut tiers: Vec<u64> = points
        .iter()
        .map(|p| p.1)
        .chain(dead.iter().map(|d| d.1))
        .collect();
    tiers.sort_unstable();
    tiers.dedup();
    for t in &tiers {
        let xx = x(*t as f64);
        let _ = writeln!(
            s,
            r##"<line x1="{xx:.1}" y1="{top}" x2="{xx:.1}" y2="{:.1}" stroke="#eeeeee"/><text x="{xx:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
            top + ph,
            top + ph + 18.0,
            big(*t as f64)
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">subscribers to one stream</text>"#,
        left + pw / 2.0,
        h - 18.0
    );
    // The 100 ms target (last-recipient p99 at 10k).
    if (ymin_dec..=ymax_dec).contains(&2.0) {
        let yy = y(100.0);
        let _ = writeln!(
            s,
            r##"<line x1="{left}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="#2b8a3e" stroke-dasharray="2,3"/><text x="{:.1}" y="{:.1}" fill="#2b8a3e">target 100 ms</text>"##,
            left + pw,
            left + 4.0,
            yy - 4.0
        );
    }
    let _ = writeln!(
        s,
        r##"<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#444444"/>"##
    );
    let mut ly = top + 10.0;
    for t in TARGETS {
        let mut ser: Vec<&(&str, u64, f64, f64, bool)> =
            points.iter().filter(|p| p.0 == t).collect();
        if ser.is_empty() {
            continue;
        }
        ser.sort_by_key(|p| p.1);
        let c = color(t);
        for (idx, dash) in [(2usize, ""), (3usize, r#" stroke-dasharray="6,4""#)] {
            let pts: Vec<String> = ser
                .iter()
                .map(|p| {
                    let val = if idx == 2 { p.2 } else { p.3 };
                    format!("{:.1},{:.1}", x(p.1 as f64), y(val))
                })
                .collect();
            let _ = writeln!(
                s,
                r#"<polyline points="{}" fill="none" stroke="{c}" stroke-width="2"{dash}/>"#,
                pts.join(" ")
            );
            for p in &ser {
                let val = if idx == 2 { p.2 } else { p.3 };
                let _ = writeln!(
                    s,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="3.5" fill="{}" stroke="{c}" stroke-width="1.5"><title>{} {} subs: {:.1} ms{}</title></circle>"#,
                    x(p.1 as f64),
                    y(val),
                    if p.4 { "white" } else { c },
                    label(t),
                    p.1,
                    val,
                    if p.4 {
                        " (some deliveries lost: latency of those delivered)"
                    } else {
                        ""
                    }
                );
            }
        }
        let lx = left + pw + 15.0;
        let _ = writeln!(
            s,
            r#"<line x1="{lx}" y1="{ly}" x2="{}" y2="{ly}" stroke="{c}" stroke-width="2"/><text x="{}" y="{}">{}</text>"#,
            lx + 24.0,
            lx + 30.0,
            ly + 4.0,
            label(t)
        );
        ly += 22.0;
    }
    let lx = left + pw + 15.0;
    let _ = writeln!(
        s,
        r##"<line x1="{lx}" y1="{ly}" x2="{}" y2="{ly}" stroke="#333333" stroke-width="2"/><text x="{}" y="{}">last-recipient p99</text>"##,
        lx + 24.0,
        lx + 30.0,
        ly + 4.0
    );
    ly += 20.0;
    let _ = writeln!(
        s,
        r##"<line x1="{lx}" y1="{ly}" x2="{}" y2="{ly}" stroke="#333333" stroke-width="2" stroke-dasharray="6,4"/><text x="{}" y="{}">per-recipient p50</text>"##,
        lx + 24.0,
        lx + 30.0,
        ly + 4.0
    );
    for (k, (t, n)) in dead.iter().enumerate() {
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="{}" font-size="11">✕ {}: nothing delivered in time</text>"#,
            x(*n as f64),
            top + 14.0 + 13.0 * k as f64,
            color(t),
            label(t)
        );
    }
    ly += 20.0;
    let _ = writeln!(
        s,
        r##"<circle cx="{:.1}" cy="{ly}" r="3.5" fill="white" stroke="#333333" stroke-width="1.5"/><text x="{:.1}" y="{:.1}">lost deliveries</text>"##,
        left + pw + 27.0,
        left + pw + 45.0,
        ly + 4.0
    );
    let envline = env["short"].as_str().unwrap_or("");
    let _ = writeln!(
        s,
        r##"<text x="{left}" y="{:.1}" font-size="10" fill="#666666">{}</text>"##,
        h - 4.0,
        xml(envline)
    );
    let _ = writeln!(s, "</svg>");
    s
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
