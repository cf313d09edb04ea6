//! cable-bench: an Action Cable load generator that is cheaper than the server it measures
//! (method and results: docs/BENCHMARKS.md), plus the raw floor server and the report writer used by
//! `bin/bench`.
//!
//! ```text
//! cable-bench run --url ws://127.0.0.1:8080/cable --redis redis://127.0.0.1:6379 \
//!     --prefix ferrocable_bench_production --clients 10000 \
//!     --phase warm:2:10 --phase measure:r1:2:60 --server-pid 1234 --out r1.json
//! cable-bench floor --listen 127.0.0.1:9000 --channel ferrocable_bench_production:bench_0
//! cable-bench report --dir docs/benchmarks/runs/<stamp> --svg chart.svg --json all.json
//! ```
//!
//! `run` spawns `worker` processes (itself) holding ≤ `--per-process` connections each.

mod client;
mod credentials;
mod floor;
mod hist;
mod payload;
mod procfs;
mod publish;
mod report;
mod run;
mod wire;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "cable-bench",
    about = "Action Cable load generator and benchmark tools"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run one benchmark: connect, subscribe, publish, measure, write JSON.
    Run(Box<run::RunArgs>),
    /// The raw floor server (one write per client per broadcast).
    Floor(floor::FloorArgs),
    /// Combine result files into a table, a JSON document and an SVG chart.
    Report(report::ReportArgs),
    /// Wait until host:port accepts connections (and, with --path, answers HTTP 200).
    Wait {
        addr: String,
        #[arg(long)]
        path: Option<String>,
        #[arg(long, default_value_t = 60.0)]
        timeout: f64,
    },
    /// Print a free loopback TCP port.
    FreePort,
    /// Write a JSON object of KEY=VALUE pairs (numbers stay numbers) to a file.
    Record {
        out: std::path::PathBuf,
        pairs: Vec<String>,
    },
    /// Lay out Solid Cable's table in a database with the statements Rails ran (a
    /// recording of bin/record-inputs).
    DbSetup {
        /// sqlite3:PATH or postgres://...
        #[arg(long)]
        database: String,
        /// fixtures/inputs/rails-7.2/solid_cable.json (SQLite) or solid_cable_postgresql.json.
        #[arg(long)]
        schema: std::path::PathBuf,
    },
    /// Check the histogram and wire helpers.
    Selftest,
    /// Internal: one client process (spawned by `run`).
    #[command(hide = true)]
    Worker { config: String },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Run(a) => run::main(*a),
        Cmd::Floor(a) => floor::main(a),
        Cmd::Report(a) => report::main(a),
        Cmd::Worker { config } => client::main(&config),
        Cmd::Wait {
            addr,
            path,
            timeout,
        } => wait(&addr, path.as_deref(), timeout),
        Cmd::FreePort => {
            match std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()) {
                Ok(a) => {
                    println!("{}", a.port());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("cable-bench: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Cmd::Record { out, pairs } => {
            let mut m = serde_json::Map::new();
            for p in pairs {
                let (k, v) = p.split_once('=').unwrap_or((p.as_str(), ""));
                let value = match v.parse::<f64>() {
                    Ok(_) => serde_json::from_str(v).unwrap_or_else(|_| v.into()),
                    Err(_) => serde_json::Value::String(v.to_string()),
                };
                m.insert(k.to_string(), value);
            }
            match std::fs::write(&out, format!("{:#}\n", serde_json::Value::Object(m))) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("cable-bench record: {}: {e}", out.display());
                    ExitCode::from(1)
                }
            }
        }
        Cmd::DbSetup { database, schema } => match publish::db_setup(&database, &schema) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("cable-bench db-setup: {e}");
                ExitCode::from(1)
            }
        },
        Cmd::Selftest => match hist::self_check()
            .and_then(|_| wire::self_check())
            .and_then(|_| payload::self_check())
        {
            Ok(()) => {
                println!("selftest ok");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("selftest FAILED: {e}");
                ExitCode::from(1)
            }
        },
    }
}

fn wait(addr: &str, path: Option<&str>, timeout: f64) -> ExitCode {
    use std::io::{Read, Write};
    let deadline = Instant::now() + Duration::from_secs_f64(timeout);
    while Instant::now() < deadline {
        if let Ok(mut s) = std::net::TcpStream::connect(addr) {
            let Some(path) = path else {
                return ExitCode::SUCCESS;
            };
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
            let mut head = [0u8; 12];
            if s.write_all(req.as_bytes()).is_ok()
                && s.read_exact(&mut head).is_ok()
                && &head[9..12] == b"200"
            {
                return ExitCode::SUCCESS;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("cable-bench wait: {addr} not ready after {timeout}s");
    ExitCode::from(1)
}
