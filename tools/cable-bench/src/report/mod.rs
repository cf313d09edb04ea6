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

/// The quantiles of a latency table cell.
const P50_P99: &[&str] = &["p50", "p99"];
const P50_P99_MAX: &[&str] = &["p50", "p99", "max"];

/// One cell of a latency distribution (`w["per_recipient"]`): its `quantiles` (`p50` reads
/// `p50_ms`) in ms with one decimal, `1.2 / 3.4`.
fn ms(d: &Value, quantiles: &[&str]) -> String {
    quantiles
        .iter()
        .map(|q| num(&d[format!("{q}_ms").as_str()], 1))
        .collect::<Vec<_>>()
        .join(" / ")
}

/// A window's `delivered / lost` cell.
fn delivered_lost(w: &Value) -> String {
    format!(
        "{} / {}",
        big(f(&w["delivered"]).unwrap_or(0.0)),
        num(&w["lost"], 0)
    )
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

/// `a / b`, when both are there and `b` is above zero.
fn quotient(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    quotient(a, b).map_or("–".into(), |x| format!("{x:.1}x"))
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

    /// The run of a table's row, when there is one to show; a run that is not there (not run,
    /// skipped or failed) gets its row written here instead.
    fn shown(
        &self,
        md: &mut String,
        scenario: &str,
        variant: &str,
        target: &str,
        columns: usize,
    ) -> Option<&Value> {
        let r = self.get(scenario, variant, target);
        if let Some(why) = not_run(r) {
            not_run_row(md, variant, label(target), &why, columns);
            return None;
        }
        r
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

    /// The run of the scenario's last (largest) variant.
    fn largest(&self, scenario: &str, target: &str) -> Option<&Value> {
        self.get(scenario, self.variants(scenario).last()?, target)
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

/// A scenario's table: nothing when it has no runs; otherwise its heading, the rows `rows`
/// writes for each variant (given the table's number of columns), and the blank line that
/// ends it.
fn table(
    runs: &Runs,
    md: &mut String,
    scenario: &str,
    title: &str,
    header: &str,
    mut rows: impl FnMut(&mut String, &str, usize),
) {
    let variants = runs.variants(scenario);
    if variants.is_empty() {
        return;
    }
    let columns = heading(md, title, header);
    for v in &variants {
        rows(md, v, columns);
    }
    let _ = writeln!(md);
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
