//! `cable-bench report`: reads the result files of one `bin/bench` run and writes the side
//! by side tables (text/markdown), one combined JSON document and an SVG chart of R1 latency
//! against subscribers.
//!
//! One file per scenario's tables, in the report's order: `fanout` (R1, R2), `inputs`
//! (R1 and R2 per broadcast input), `idle` (R3), `storm` (R4, R4C), `slow` (R5),
//! `scale_out` (R6), `turbo` (R1 and R2 with the Turbo payload); then `targets` (issue 4's
//! targets) and `chart` (the SVG).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::{Value, json};

mod chart;
mod fanout;
mod idle;
mod inputs;
mod scale_out;
mod slow;
mod storm;
mod targets;
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

/// Writes a table's title (`### title`), its header row (`header`: the column names between
/// the outer bars, `a | b | c`) and the rule under it; returns the number of columns.
fn heading(md: &mut String, title: &str, header: &str) -> usize {
    let columns = header.matches('|').count() + 1;
    let _ = writeln!(md, "### {title}\n\n| {header} |");
    let _ = writeln!(md, "|{}", "---|".repeat(columns));
    columns
}

/// The row of a run that is not there (not run, skipped or failed): its variant, its server,
/// why, and empty cells up to `columns`.
fn not_run_row(md: &mut String, variant: &str, server: &str, why: &str, columns: usize) {
    let _ = writeln!(
        md,
        "| {variant} | {server} | {why} |{}",
        " |".repeat(columns - 3)
    );
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
    fanout::tables(&runs, &mut md);
    inputs::tables(&runs, &mut md);
    idle::tables(&runs, &mut md);
    storm::tables(&runs, &mut md);
    slow::tables(&runs, &mut md);
    scale_out::tables(&runs, &mut md);
    turbo::tables(&runs, &mut md);
    let verdicts = targets::targets(&runs, &mut md);
    if let Some(p) = &a.markdown {
        std::fs::write(p, &md).map_err(|e| format!("{}: {e}", p.display()))?;
    }
    if let Some(p) = &a.svg {
        std::fs::write(p, chart::svg(&runs, &env)).map_err(|e| format!("{}: {e}", p.display()))?;
    }
    if let Some(p) = &a.json {
        let doc = json!({"env": env, "targets": verdicts, "tables_markdown": md, "runs": all});
        std::fs::write(p, format!("{doc:#}\n")).map_err(|e| format!("{}: {e}", p.display()))?;
    }
    Ok(md)
}
