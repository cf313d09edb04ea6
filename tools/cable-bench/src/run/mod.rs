//! `cable-bench run`: the coordinator. Spawns worker processes (≤ ~10k connections each),
//! waits until every connection is confirmed, then runs the phases: publishing bench
//! broadcasts through Redis at an open-loop rate, holding idle, or switching slow clients
//! off; samples the server's CPU and memory from `/proc`; merges the workers' histograms
//! and per-sequence counts into one JSON result and a human summary.
//!
//! - `fleet`: the worker processes and their event stream;
//! - `connect`: the connect phase;
//! - `windows`: the publishing and idle windows;
//! - `probes`: the CPU and memory of the processes under test.

mod connect;
mod fleet;
mod probes;
mod windows;

use std::cell::{Cell, RefCell};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::client::{WorkerConfig, is_slow, now_us};
use crate::payload::{PayloadKind, Payloads};
use crate::procfs;
use crate::publish::Publisher;
use crate::wire;
use connect::Connected;
use fleet::Fleet;

#[derive(clap::Args, Debug, Clone)]
pub(crate) struct RunArgs {
    /// WebSocket URL(s) of the server(s); connection i goes to the (i mod n)-th.
    #[arg(long, value_delimiter = ',', required = true)]
    url: Vec<String>,
    /// Redis to PUBLISH on.
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    redis: String,
    /// How the bench broadcasts reach the server, as a Rails app would publish them:
    /// `redis` (PUBLISH, the Redis adapter), `solid_cable` (INSERT into --database, one row
    /// per broadcast), `notify` (PostgreSQL NOTIFY on --database, the PostgreSQL adapter).
    #[arg(long, default_value = "redis")]
    via: String,
    /// The database for --via solid_cable (sqlite3:PATH or postgres://...) or notify.
    #[arg(long, default_value = "")]
    database: String,
    /// Redis channel prefix (cable.yml channel_prefix); empty: none.
    #[arg(long, default_value = "")]
    prefix: String,
    /// Stream name of stream s is `<stream-prefix><s>`.
    #[arg(long, default_value = "bench_")]
    stream_prefix: String,
    /// HS256 key for the tokens (the server's SECRET_KEY_BASE).
    #[arg(long, env = "SECRET_KEY_BASE", default_value = "bench-secret")]
    secret: String,
    /// Origin header.
    #[arg(long, default_value = "http://localhost:5173")]
    origin: String,
    /// Channel class in the identifier.
    #[arg(long, default_value = "BenchChannel")]
    channel: String,
    /// Connections.
    #[arg(long, default_value_t = 1000)]
    clients: u64,
    /// Streams; connection i subscribes to stream i mod streams.
    #[arg(long, default_value_t = 1)]
    streams: u64,
    /// Client processes (0: one per --per-process connections).
    #[arg(long, default_value_t = 0)]
    processes: usize,
    /// Most connections per client process (the fd limit is per process).
    #[arg(long, default_value_t = 9500)]
    per_process: u64,
    /// Source addresses 127.0.0.2 .. 127.0.0.(1+N); 0 binds nothing.
    #[arg(long, default_value_t = 8)]
    sources: u32,
    /// New connections per second, all processes together (0: unlimited).
    #[arg(long, default_value_t = 2000.0)]
    connect_rate: f64,
    /// Handshakes in flight at once, all processes together.
    #[arg(long, default_value_t = 200)]
    concurrency: usize,
    /// Broadcast payload size in bytes (`json` payloads).
    #[arg(long, default_value_t = 200)]
    payload: usize,
    /// What broadcasts carry: `json` (padded to --payload) or `turbo` (a recorded 2 KB
    /// turbo-stream Rails published).
    #[arg(long, value_enum, default_value = "json")]
    payload_kind: PayloadKind,
    /// Phases, in order: warm:RATE:SECS, measure:NAME:RATE:SECS, sweep:SECS:RATE,RATE,...,
    /// idle:NAME:SECS, slow.
    #[arg(long = "phase")]
    phases: Vec<String>,
    /// Percent of connections that stop reading at the `slow` phase.
    #[arg(long, default_value_t = 0.0)]
    slow_percent: f64,
    /// SO_RCVBUF of the slow connections.
    #[arg(long, default_value_t = 4096)]
    slow_rcvbuf: u32,
    /// Seconds to wait after a window's last publish for deliveries to arrive.
    #[arg(long, default_value_t = 30.0)]
    drain_timeout: f64,
    /// Seconds allowed for all connections to be confirmed.
    #[arg(long, default_value_t = 300.0)]
    connect_timeout: f64,
    /// Seconds allowed for one connection's connect + upgrade + welcome + confirm.
    #[arg(long, default_value_t = 60.0)]
    handshake_timeout: f64,
    /// Server process id(s) to sample (CPU, RSS).
    #[arg(long, value_delimiter = ',')]
    server_pid: Vec<u32>,
    /// redis-server's pid, to report its CPU.
    #[arg(long)]
    redis_pid: Option<u32>,
    /// ferrocable `GET /stats` address(es) (host:port) to fetch at the end.
    #[arg(long, value_delimiter = ',')]
    stats_addr: Vec<String>,
    /// Per-recipient or last-recipient p99 above this fails a sweep step (ms).
    #[arg(long, default_value_t = 500.0)]
    fail_p99_ms: f64,
    /// Labels stored in the result.
    #[arg(long, default_value = "")]
    scenario: String,
    #[arg(long, default_value = "")]
    target: String,
    #[arg(long, default_value = "")]
    variant: String,
    /// A JSON file with the environment line, stored in the result.
    #[arg(long)]
    env_json: Option<PathBuf>,
    /// Free-form notes stored in the result.
    #[arg(long)]
    note: Vec<String>,
    /// Authenticate with cookies instead of tokens: a file of `Cookie` header values, one per
    /// line; connection i sends line i mod n (and no `?token=`).
    #[arg(long)]
    cookies: Option<String>,
    /// Write the result here.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Exit 1 unless every connection was confirmed and every broadcast delivered.
    #[arg(long)]
    require_all: bool,
    /// Less output.
    #[arg(long)]
    quiet: bool,
}

#[derive(Debug, Clone)]
enum Phase {
    Publish {
        name: String,
        rate: f64,
        secs: f64,
        warm: bool,
    },
    Sweep {
        secs: f64,
        rates: Vec<f64>,
    },
    Idle {
        name: String,
        secs: f64,
    },
    Slow,
}

fn parse_phase(s: &str) -> Result<Phase, String> {
    let parts: Vec<&str> = s.split(':').collect();
    let num = |x: &str| -> Result<f64, String> {
        x.parse::<f64>()
            .map_err(|_| format!("phase {s:?}: {x:?} is not a number"))
    };
    match parts.as_slice() {
        ["warm", rate, secs] => Ok(Phase::Publish {
            name: "warmup".into(),
            rate: num(rate)?,
            secs: num(secs)?,
            warm: true,
        }),
        ["measure", name, rate, secs] => Ok(Phase::Publish {
            name: name.to_string(),
            rate: num(rate)?,
            secs: num(secs)?,
            warm: false,
        }),
        ["sweep", secs, rates] => Ok(Phase::Sweep {
            secs: num(secs)?,
            rates: rates.split(',').map(num).collect::<Result<_, _>>()?,
        }),
        ["idle", name, secs] => Ok(Phase::Idle {
            name: name.to_string(),
            secs: num(secs)?,
        }),
        ["slow"] => Ok(Phase::Slow),
        _ => Err(format!("unknown phase {s:?}")),
    }
}

/// Process samples taken once a second.
#[derive(Debug, Default)]
struct Sampler {
    peak_rss_kb: Cell<u64>,
    timeline: RefCell<Vec<Value>>,
}

struct Bench {
    a: RunArgs,
    fleet: Fleet,
    publisher: Publisher,
    sampler: Rc<Sampler>,
    next_g: u64,
    next_w: u64,
    tmp: PathBuf,
    t0: Instant,
    slowed: bool,
}

fn ms(us: f64) -> f64 {
    (us / 10.0).round() / 100.0
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

pub(crate) fn main(a: RunArgs) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cable-bench: runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let local = tokio::task::LocalSet::new();
    match local.block_on(&rt, run(a.clone())) {
        Ok((v, ok)) => {
            if let Some(out) = &a.out {
                if let Err(e) = std::fs::write(out, format!("{v:#}\n")) {
                    eprintln!("cable-bench: {}: {e}", out.display());
                    return ExitCode::from(2);
                }
            } else {
                println!("{v:#}");
            }
            if a.require_all && !ok {
                eprintln!(
                    "cable-bench: FAILED: not every subscribe confirmed or not every broadcast delivered"
                );
                return ExitCode::from(1);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cable-bench: {e}");
            ExitCode::from(1)
        }
    }
}

fn http_get(addr: &str, path: &str) -> Option<Value> {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut body = Vec::new();
    s.read_to_end(&mut body).ok()?;
    let i = wire::find(&body, b"\r\n\r\n")?;
    serde_json::from_slice(&body[i + 4..]).ok()
}

async fn run(mut a: RunArgs) -> Result<(Value, bool), String> {
    let payloads = Payloads::new(a.payload_kind, a.payload)?;
    // What each broadcast carries, as every result reports it.
    a.payload = payloads.len();
    let phases = a
        .phases
        .iter()
        .map(|p| parse_phase(p))
        .collect::<Result<Vec<_>, _>>()?;
    let env: Value = match &a.env_json {
        Some(p) => std::fs::read_to_string(p)
            .ok()
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or(Value::Null),
        None => Value::Null,
    };
    let started_at = now_us();
    let baseline = json!({
        "server_rss_kb": procfs::rss_kb_all(&a.server_pid),
        "server_cpu_s": round3(procfs::cpu_secs_all(&a.server_pid)),
        "slab_kb": procfs::meminfo_kb("Slab").unwrap_or(0),
        "sockstat_tcp_inuse": procfs::sockstat_tcp().map(|s| s.0).unwrap_or(0),
        "sockstat_tcp_mem_pages": procfs::sockstat_tcp().map(|s| s.1).unwrap_or(0),
        "server_threads": a.server_pid.first().and_then(|p| procfs::threads(*p)),
    });
    let publisher = Publisher::connect(
        &a.via,
        &a.redis,
        &a.database,
        &a.prefix,
        &a.stream_prefix,
        a.streams,
        payloads,
    )
    .await?;

    let procs = if a.processes > 0 {
        a.processes
    } else {
        a.clients.div_ceil(a.per_process.max(1)).max(1) as usize
    };
    let slow_per_mille = (a.slow_percent * 10.0).round() as u32;
    let mut configs = Vec::new();
    let mut first = 0;
    for id in 0..procs {
        let count = a.clients / procs as u64 + u64::from((id as u64) < a.clients % procs as u64);
        configs.push(WorkerConfig {
            id,
            urls: a.url.clone(),
            first,
            count,
            streams: a.streams.max(1),
            sources: a.sources,
            connect_rate: if a.connect_rate > 0.0 {
                a.connect_rate / procs as f64
            } else {
                0.0
            },
            concurrency: (a.concurrency / procs).max(1),
            secret: a.secret.clone(),
            origin: a.origin.clone(),
            channel: a.channel.clone(),
            slow_per_mille,
            slow_rcvbuf: a.slow_rcvbuf,
            handshake_timeout_s: a.handshake_timeout,
            cookies_file: a.cookies.clone(),
        });
        first += count;
    }
    let tmp = std::env::temp_dir().join(format!("cable-bench-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
    let fleet = Fleet::spawn(configs)?;
    let sampler = Rc::new(Sampler::default());
    {
        let s = sampler.clone();
        let pids = a.server_pid.clone();
        let t0 = Instant::now();
        tokio::task::spawn_local(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                let rss = procfs::rss_kb_all(&pids);
                s.peak_rss_kb.set(s.peak_rss_kb.get().max(rss));
                let cpu = procfs::cpu_secs_all(&pids);
                s.timeline.borrow_mut().push(json!([
                    round3(t0.elapsed().as_secs_f64()),
                    rss,
                    round3(cpu)
                ]));
            }
        });
    }
    let mut b = Bench {
        a: a.clone(),
        fleet,
        publisher,
        sampler,
        next_g: 0,
        next_w: 0,
        tmp: tmp.clone(),
        t0: Instant::now(),
        slowed: false,
    };
    let label = format!("{} {} {}", a.target, a.scenario, a.variant);
    if !a.quiet {
        eprintln!(
            "[{}] {} clients in {procs} process(es) to {} stream(s) on {} server(s)",
            label.trim(),
            a.clients,
            a.streams,
            a.url.len()
        );
    }

    let Connected {
        value: connect,
        confirmed,
        failed,
    } = b.connect().await?;

    let mut windows = Vec::new();
    let mut sweep_best: Option<Value> = None;
    let mut sweep_stop: Option<String> = None;
    let mut all_delivered = true;
    for phase in &phases {
        match phase {
            Phase::Publish {
                name,
                rate,
                secs,
                warm,
            } => {
                let v = b.publish_window(name, *rate, *secs, *warm).await?;
                if !*warm && v["lost"].as_u64().unwrap_or(0) > 0 {
                    all_delivered = false;
                }
                windows.push(v);
            }
            Phase::Sweep { secs, rates } => {
                for rate in rates {
                    let v = b
                        .publish_window(&format!("rate={rate}"), *rate, *secs, false)
                        .await?;
                    let pass = v["pass"].as_bool().unwrap_or(false);
                    windows.push(v.clone());
                    if pass {
                        sweep_best = Some(v);
                    } else if v["publisher_kept_up"] == false {
                        sweep_stop = Some(format!(
                            "stopped at {rate}/s: the publisher took {} s for a {secs} s step (it cannot publish this fast)",
                            v["publish_secs"]
                        ));
                        break;
                    } else {
                        sweep_stop = Some(format!(
                            "stopped at {rate}/s: lost {}, per-recipient p99 {} ms, last-recipient p99 {} ms",
                            v["lost"], v["per_recipient"]["p99_ms"], v["last_recipient"]["p99_ms"]
                        ));
                        break;
                    }
                }
                if sweep_stop.is_none() {
                    sweep_stop = Some("every step passed (raise the rates)".into());
                }
            }
            Phase::Idle { name, secs } => {
                let v = b.idle_window(name, *secs, confirmed, &baseline).await?;
                windows.push(v);
            }
            Phase::Slow => {
                let r = b
                    .fleet
                    .ask_all(json!({"cmd": "slow"}), "slow", Duration::from_secs(30))
                    .await?;
                let slowed: u64 = r.iter().map(|x| x["slowed"].as_u64().unwrap_or(0)).sum();
                let designated: u64 = r
                    .iter()
                    .map(|x| x["designated"].as_u64().unwrap_or(0))
                    .sum();
                b.slowed = true;
                if !a.quiet {
                    eprintln!(
                        "  slow: {slowed} of {designated} designated connections stopped reading"
                    );
                }
                windows.push(json!({"name": "slow", "kind": "slow", "designated": designated, "slowed": slowed}));
            }
        }
    }
    let stats: Vec<Value> = a
        .stats_addr
        .iter()
        .map(|addr| {
            let mut v = http_get(addr, "/stats").unwrap_or(Value::Null);
            if let Some(m) = v.as_object_mut() {
                m.remove("identities");
            }
            v
        })
        .collect();
    let ok = confirmed == a.clients && failed == 0 && all_delivered;
    let _ = std::fs::remove_dir_all(&tmp);
    let designated_slow = (0..a.clients)
        .filter(|i| is_slow(*i, slow_per_mille))
        .count();
    let result = json!({
        "cable_bench": 1,
        "scenario": a.scenario,
        "target": a.target,
        "variant": a.variant,
        "started_at_unix_us": started_at,
        "wall_s": round3(b.t0.elapsed().as_secs_f64()),
        "params": {
            "clients": a.clients,
            "streams": a.streams,
            "processes": procs,
            "sources": a.sources,
            "connect_rate": a.connect_rate,
            "concurrency": a.concurrency,
            "payload_bytes": a.payload,
            "payload_kind": a.payload_kind.name(),
            "phases": a.phases,
            "slow_percent": a.slow_percent,
            "slow_connections": designated_slow,
            "slow_rcvbuf": a.slow_rcvbuf,
            "servers": a.url,
            "redis_channel_prefix": a.prefix,
            "via": a.via,
            "drain_timeout_s": a.drain_timeout,
            "fail_p99_ms": a.fail_p99_ms,
        },
        "env": env,
        "notes": a.note,
        "baseline": baseline,
        "connect": connect,
        "windows": windows,
        "sweep": {"best": sweep_best, "stop": sweep_stop},
        "server_stats": stats,
        "client_rss_kb": b.client_rss_kb(),
        "timeline_s_rsskb_cpus": *b.sampler.timeline.borrow(),
        "ok": ok,
    });
    Ok((result, ok))
}
