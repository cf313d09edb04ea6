//! `cable-bench run`: the coordinator. Spawns worker processes (≤ ~10k connections each),
//! waits until every connection is confirmed, then runs the phases: publishing bench
//! broadcasts through Redis at an open-loop rate, holding idle, or switching slow clients
//! off; samples the server's CPU and memory from `/proc`; merges the workers' histograms
//! and per-sequence counts into one JSON result and a human summary.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitCode, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::client::{WorkerConfig, is_slow, now_us};
use crate::hist::Hist;
use crate::payload::{PayloadKind, Payloads};
use crate::procfs;
use crate::publish::Publisher;
use crate::wire;

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

struct Worker {
    child: Child,
    stdin: ChildStdin,
    pid: u32,
}

/// The client processes and their event stream.
struct Fleet {
    workers: Vec<Worker>,
    rx: mpsc::UnboundedReceiver<(usize, Option<Value>)>,
    pending: Vec<VecDeque<Value>>,
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for w in &mut self.workers {
            let _ = writeln!(w.stdin, "{}", json!({"cmd": "exit"}));
        }
        let deadline = Instant::now() + Duration::from_secs(3);
        for w in &mut self.workers {
            loop {
                if let Ok(Some(_)) = w.child.try_wait() {
                    break;
                }
                if Instant::now() > deadline {
                    let _ = w.child.kill();
                    let _ = w.child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

impl Fleet {
    fn spawn(configs: Vec<WorkerConfig>) -> Result<Fleet, String> {
        let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
        let (tx, rx) = mpsc::unbounded_channel();
        let mut workers = Vec::new();
        for cfg in configs {
            let id = cfg.id;
            let arg = serde_json::to_string(&cfg).map_err(|e| e.to_string())?;
            let mut child = Command::new(&exe)
                .arg("worker")
                .arg(arg)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .map_err(|e| format!("spawn worker: {e}"))?;
            let stdout = child.stdout.take().ok_or("no worker stdout")?;
            let stdin = child.stdin.take().ok_or("no worker stdin")?;
            let pid = child.id();
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    match serde_json::from_str::<Value>(&line) {
                        Ok(v) => {
                            if tx.send((id, Some(v))).is_err() {
                                return;
                            }
                        }
                        Err(_) => eprintln!("worker {id}: {line}"),
                    }
                }
                let _ = tx.send((id, None));
            });
            workers.push(Worker { child, stdin, pid });
        }
        let n = workers.len();
        Ok(Fleet {
            workers,
            rx,
            pending: vec![VecDeque::new(); n],
        })
    }

    fn pids(&self) -> Vec<u32> {
        self.workers.iter().map(|w| w.pid).collect()
    }

    fn send(&mut self, id: usize, cmd: &Value) -> Result<(), String> {
        let w = &mut self.workers[id];
        writeln!(w.stdin, "{cmd}")
            .and_then(|_| w.stdin.flush())
            .map_err(|e| format!("worker {id}: {e}"))
    }

    /// Waits for one `ev` event from every worker.
    async fn collect(&mut self, ev: &str, timeout: Duration) -> Result<Vec<Value>, String> {
        let n = self.workers.len();
        let mut got: Vec<Option<Value>> = vec![None; n];
        for (i, q) in self.pending.iter_mut().enumerate() {
            if let Some(pos) = q.iter().position(|v| v["ev"] == ev) {
                got[i] = q.remove(pos);
            }
        }
        let deadline = tokio::time::Instant::now() + timeout;
        while got.iter().any(Option::is_none) {
            let msg = tokio::time::timeout_at(deadline, self.rx.recv())
                .await
                .map_err(|_| {
                    let missing: Vec<usize> = (0..n).filter(|i| got[*i].is_none()).collect();
                    format!("timed out waiting for {ev:?} from worker(s) {missing:?}")
                })?;
            match msg {
                Some((id, Some(v))) => {
                    if v["ev"] == ev && got[id].is_none() {
                        got[id] = Some(v);
                    } else {
                        self.pending[id].push_back(v);
                    }
                }
                Some((id, None)) => return Err(format!("worker {id} exited")),
                None => return Err("all workers gone".into()),
            }
        }
        Ok(got.into_iter().flatten().collect())
    }

    async fn ask_all(
        &mut self,
        cmd: Value,
        ev: &str,
        timeout: Duration,
    ) -> Result<Vec<Value>, String> {
        for i in 0..self.workers.len() {
            self.send(i, &cmd)?;
        }
        self.collect(ev, timeout).await
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

struct Cpu {
    server: f64,
    clients: f64,
    redis: f64,
    me: f64,
    box_busy: f64,
    at: Instant,
}

/// Box CPU not attributed to the server, the clients, Redis or the publisher: other
/// processes, plus interrupt time the kernel does not charge to a process.
fn other_cpu_pct(c0: &Cpu, c1: &Cpu) -> f64 {
    let wall = c1.at.duration_since(c0.at).as_secs_f64().max(1e-9);
    let ours = (c1.server - c0.server)
        + (c1.clients - c0.clients)
        + (c1.redis - c0.redis)
        + (c1.me - c0.me);
    round3(((c1.box_busy - c0.box_busy) - ours).max(0.0) / wall * 100.0)
}

impl Bench {
    fn cpu(&self) -> Cpu {
        Cpu {
            server: procfs::cpu_secs_all(&self.a.server_pid),
            clients: procfs::cpu_secs_all(&self.fleet.pids()),
            redis: self.a.redis_pid.and_then(procfs::cpu_secs).unwrap_or(0.0),
            me: procfs::self_cpu_secs(),
            box_busy: procfs::box_cpu_secs().0,
            at: Instant::now(),
        }
    }

    fn server_rss_kb(&self) -> u64 {
        procfs::rss_kb_all(&self.a.server_pid)
    }

    fn client_rss_kb(&self) -> u64 {
        procfs::rss_kb_all(&self.fleet.pids())
    }

    async fn active(&mut self) -> Result<Vec<u64>, String> {
        let replies = self
            .fleet
            .ask_all(json!({"cmd": "active"}), "active", Duration::from_secs(30))
            .await?;
        let mut sum = vec![0u64; self.a.streams.max(1) as usize];
        for r in replies {
            for (i, c) in r["counts"].as_array().into_iter().flatten().enumerate() {
                if i < sum.len() {
                    sum[i] += c.as_u64().unwrap_or(0);
                }
            }
        }
        Ok(sum)
    }

    async fn received(&mut self, w: u64) -> Result<u64, String> {
        let replies = self
            .fleet
            .ask_all(
                json!({"cmd": "count", "w": w}),
                "count",
                Duration::from_secs(30),
            )
            .await?;
        Ok(replies
            .iter()
            .map(|r| r["received"].as_u64().unwrap_or(0))
            .sum())
    }

    /// One publishing window: `rate` broadcasts/s for `secs`, then drain, then merge.
    async fn publish_window(
        &mut self,
        name: &str,
        rate: f64,
        secs: f64,
        warm: bool,
    ) -> Result<Value, String> {
        let w = self.next_w;
        self.next_w += 1;
        let active = self.active().await?;
        let tcp_start = procfs::sockstat_tcp().map(|s| s.1 * 4);
        let rss_start = self.server_rss_kb();
        self.sampler.peak_rss_kb.set(rss_start);
        let c0 = self.cpu();
        let g0 = self.next_g;
        let total = ((rate * secs).round() as u64).max(1);
        let start = Instant::now();
        let mut k = 0u64;
        while k < total {
            let at = start + Duration::from_secs_f64(k as f64 / rate);
            tokio::time::sleep_until(at.into()).await;
            let due = (((start.elapsed().as_secs_f64() * rate).floor() as u64) + 1).min(total);
            let n = due.max(k + 1) - k;
            self.publisher
                .publish(self.next_g..self.next_g + n, w)
                .await?;
            self.next_g += n;
            k += n;
        }
        let publish_secs = start.elapsed().as_secs_f64();
        let g1 = self.next_g;
        self.publisher.wait_replies(Duration::from_secs(10)).await;
        let streams = active.len() as u64;
        let expected: u64 = (g0..g1).map(|g| active[(g % streams) as usize]).sum();
        // Drain: until everything expected arrived or the timeout passes.
        let drain_start = Instant::now();
        while drain_start.elapsed().as_secs_f64() < self.a.drain_timeout {
            if self.received(w).await? >= expected {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let drain_secs = drain_start.elapsed().as_secs_f64();
        let c1 = self.cpu();
        let rss_end = self.server_rss_kb();
        let rss_peak = self.sampler.peak_rss_kb.get().max(rss_end);

        // Merge the workers' reports.
        for i in 0..self.fleet.workers.len() {
            let path = self.tmp.join(format!("w{w}-p{i}.bin"));
            let cmd = json!({"cmd": "report", "w": w, "g0": g0, "g1": g1, "path": path});
            self.fleet.send(i, &cmd)?;
        }
        let reports = self
            .fleet
            .collect("report", Duration::from_secs(60))
            .await?;
        let n = (g1 - g0) as usize;
        let mut counts = vec![0u64; n];
        let mut maxes = vec![0u32; n];
        let mut per = Hist::default();
        let (mut dups, mut reorders, mut closed, mut pings) = (0u64, 0u64, 0u64, 0u64);
        let mut close_reasons: BTreeMap<String, u64> = BTreeMap::new();
        for r in &reports {
            per.merge(&Hist::from_json(&r["hist"]));
            dups += r["dups"].as_u64().unwrap_or(0);
            reorders += r["reorders"].as_u64().unwrap_or(0);
            closed += r["closed"].as_u64().unwrap_or(0);
            pings += r["pings"].as_u64().unwrap_or(0);
            for (k, v) in r["close_reasons"].as_object().into_iter().flatten() {
                *close_reasons.entry(k.clone()).or_insert(0) += v.as_u64().unwrap_or(0);
            }
            let path = r["seq_file"].as_str().unwrap_or("");
            let bytes = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
            let _ = std::fs::remove_file(path);
            for (j, chunk) in bytes.chunks_exact(8).enumerate().take(n) {
                let c = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
                let m = u32::from_le_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]);
                counts[j] += c as u64;
                maxes[j] = maxes[j].max(m);
            }
        }
        let mut last = Hist::default();
        let mut lost = 0u64;
        let mut excess = 0u64;
        let mut incomplete = 0u64;
        for j in 0..n {
            let g = g0 + j as u64;
            let want = active[(g % streams) as usize];
            lost += want.saturating_sub(counts[j]);
            excess += counts[j].saturating_sub(want);
            if counts[j] < want {
                incomplete += 1;
            }
            if counts[j] > 0 {
                last.record(maxes[j] as u64);
            }
        }
        let delivered: u64 = counts.iter().sum();
        let cpu_server = c1.server - c0.server;
        let cpu_clients = c1.clients - c0.clients;
        let per_delivery = |cpu: f64| {
            if delivered == 0 {
                0.0
            } else {
                round3(cpu / delivered as f64 * 1e6)
            }
        };
        let p99_ms = per.quantile(0.99) as f64 / 1000.0;
        let last_p99_ms = last.quantile(0.99) as f64 / 1000.0;
        let pass = lost == 0 && p99_ms <= self.a.fail_p99_ms && last_p99_ms <= self.a.fail_p99_ms;
        let wall = c1.at.duration_since(c0.at).as_secs_f64();
        let v = json!({
            "window": w,
            "name": name,
            "kind": if warm { "warmup" } else { "measure" },
            "rate_per_s": rate,
            "secs": secs,
            "publish_secs": round3(publish_secs),
            "drain_secs": round3(drain_secs),
            "broadcasts": g1 - g0,
            "subscribers": active.iter().sum::<u64>(),
            "streams": streams,
            "payload_bytes": self.a.payload,
            "expected": expected,
            "delivered": delivered,
            "lost": lost,
            "incomplete_broadcasts": incomplete,
            "duplicates": dups + excess,
            "reordered": reorders,
            "deliveries_per_s": round3(delivered as f64 / publish_secs.max(1e-9)),
            "per_recipient": per.summary_ms(),
            "last_recipient": last.summary_ms(),
            "server_cpu_s": round3(cpu_server),
            "server_cpu_pct": round3(cpu_server / wall * 100.0),
            "server_cpu_us_per_delivery": per_delivery(cpu_server),
            "client_cpu_s": round3(cpu_clients),
            "client_cpu_pct": round3(cpu_clients / wall * 100.0),
            "client_cpu_us_per_delivery": per_delivery(cpu_clients),
            "redis_cpu_s": round3(c1.redis - c0.redis),
            "publisher_cpu_s": round3(c1.me - c0.me),
            "box_busy_pct": round3((c1.box_busy - c0.box_busy) / wall * 100.0),
            "unattributed_cpu_pct": other_cpu_pct(&c0, &c1),
            "server_rss_kb": {"start": rss_start, "end": rss_end, "peak": rss_peak},
            // Box-wide memory in TCP socket buffers (sockstat "mem", 4 KiB pages): where a
            // stalled reader's backlog sits before the server has to queue it itself.
            "tcp_mem_kb": {"start": tcp_start, "end": procfs::sockstat_tcp().map(|s| s.1 * 4)},
            "client_closed_total": closed,
            "client_close_reasons": close_reasons,
            "pings_received_total": pings,
            "redis_zero_receiver_publishes": self.publisher.zero_receivers(),
            "redis_errors": self.publisher.errors(),
            "pass": pass,
        });
        if !self.a.quiet {
            eprintln!(
                "  {name} ({rate}/s x {secs}s, {} broadcasts to {} subs): delivered {delivered}/{expected}, lost {lost}, dup {}, reord {reorders}; per-recipient p50/p99/max {}/{}/{} ms; last-recipient p50/p99/max {}/{}/{} ms; server {:.1} us/delivery ({:.0}% cpu), clients {:.1} us/delivery ({:.0}% cpu), other {:.0}% cpu; RSS {} -> {} MB",
                g1 - g0,
                active.iter().sum::<u64>(),
                dups + excess,
                ms(per.quantile(0.5) as f64),
                ms(per.quantile(0.99) as f64),
                ms(per.max() as f64),
                ms(last.quantile(0.5) as f64),
                ms(last.quantile(0.99) as f64),
                ms(last.max() as f64),
                per_delivery(cpu_server),
                cpu_server / wall * 100.0,
                per_delivery(cpu_clients),
                cpu_clients / wall * 100.0,
                other_cpu_pct(&c0, &c1),
                rss_start / 1024,
                rss_end / 1024,
            );
        }
        Ok(v)
    }

    async fn idle_window(
        &mut self,
        name: &str,
        secs: f64,
        confirmed: u64,
        baseline: &Value,
    ) -> Result<Value, String> {
        let w = self.next_w;
        self.next_w += 1;
        let rss_start = self.server_rss_kb();
        self.sampler.peak_rss_kb.set(rss_start);
        let c0 = self.cpu();
        tokio::time::sleep(Duration::from_secs_f64(secs)).await;
        let c1 = self.cpu();
        let rss_end = self.server_rss_kb();
        let slab_end = procfs::meminfo_kb("Slab").unwrap_or(0);
        let sock_end = procfs::sockstat_tcp().unwrap_or((0, 0));
        let rss_base = baseline["server_rss_kb"].as_u64().unwrap_or(0);
        let slab_base = baseline["slab_kb"].as_u64().unwrap_or(0);
        let per_conn = |delta_kb: i64| {
            if confirmed == 0 {
                0.0
            } else {
                round3(delta_kb as f64 * 1024.0 / confirmed as f64)
            }
        };
        let rss_per_conn = per_conn(rss_end as i64 - rss_base as i64);
        let slab_per_conn = per_conn(slab_end as i64 - slab_base as i64);
        let v = json!({
            "window": w,
            "name": name,
            "kind": "idle",
            "secs": secs,
            "connections": confirmed,
            "server_rss_kb": {"baseline": rss_base, "start": rss_start, "end": rss_end, "peak": self.sampler.peak_rss_kb.get().max(rss_end)},
            "server_rss_bytes_per_conn": rss_per_conn,
            "slab_kb": {"baseline": slab_base, "end": slab_end},
            "slab_bytes_per_conn_both_ends": slab_per_conn,
            "sockstat_tcp": {"baseline_inuse": baseline["sockstat_tcp_inuse"], "inuse": sock_end.0, "mem_pages": sock_end.1},
            "server_cpu_s": round3(c1.server - c0.server),
            "client_cpu_s": round3(c1.clients - c0.clients),
            "unattributed_cpu_pct": other_cpu_pct(&c0, &c1),
            "client_rss_kb": self.client_rss_kb(),
        });
        if !self.a.quiet {
            eprintln!(
                "  {name} ({secs}s idle, {confirmed} conns): server RSS {} -> {} MB = {:.0} B/conn over baseline; kernel slab {:.0} B/conn (both ends); server cpu {:.2}s",
                rss_start / 1024,
                rss_end / 1024,
                rss_per_conn,
                slab_per_conn,
                c1.server - c0.server
            );
        }
        Ok(v)
    }
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

    // Connect phase.
    let c0 = b.cpu();
    let overflows0 = procfs::tcp_ext("ListenOverflows").unwrap_or(0);
    let drops0 = procfs::tcp_ext("ListenDrops").unwrap_or(0);
    let retrans0 = procfs::tcp_ext("TCPSynRetrans").unwrap_or(0);
    let est = b
        .fleet
        .collect("established", Duration::from_secs_f64(a.connect_timeout))
        .await;
    let est = match est {
        Ok(e) => e,
        Err(e) => {
            // Report what we have rather than nothing.
            let prog = b
                .fleet
                .ask_all(
                    json!({"cmd": "progress"}),
                    "progress",
                    Duration::from_secs(10),
                )
                .await
                .unwrap_or_default();
            let confirmed: u64 = prog
                .iter()
                .map(|p| p["confirmed"].as_u64().unwrap_or(0))
                .sum();
            return Err(format!(
                "connect phase: {e} ({confirmed}/{} confirmed)",
                a.clients
            ));
        }
    };
    let c1 = b.cpu();
    let mut connect_hist = Hist::default();
    let mut welcome_hist = Hist::default();
    let mut failures: BTreeMap<String, u64> = BTreeMap::new();
    let (mut confirmed, mut failed, mut attempted) = (0u64, 0u64, 0u64);
    let mut first_us = u64::MAX;
    let mut last_us = 0u64;
    for e in &est {
        confirmed += e["confirmed"].as_u64().unwrap_or(0);
        failed += e["failed"].as_u64().unwrap_or(0);
        attempted += e["attempted"].as_u64().unwrap_or(0);
        connect_hist.merge(&Hist::from_json(&e["connect_hist"]));
        welcome_hist.merge(&Hist::from_json(&e["welcome_hist"]));
        for (k, v) in e["failures"].as_object().into_iter().flatten() {
            *failures.entry(k.clone()).or_insert(0) += v.as_u64().unwrap_or(0);
        }
        let f = e["first_attempt_us"].as_u64().unwrap_or(0);
        if f > 0 {
            first_us = first_us.min(f);
        }
        last_us = last_us.max(e["last_confirm_us"].as_u64().unwrap_or(0));
    }
    let connect_secs = if last_us > first_us {
        (last_us - first_us) as f64 / 1e6
    } else {
        0.0
    };
    let connect = json!({
        "attempted": attempted,
        "confirmed": confirmed,
        "failed": failed,
        "failures": failures,
        "duration_s": round3(connect_secs),
        "confirmed_per_s": round3(if connect_secs > 0.0 { confirmed as f64 / connect_secs } else { 0.0 }),
        "connect_rate_limit": a.connect_rate,
        "concurrency": a.concurrency,
        "to_confirm": connect_hist.summary_ms(),
        "to_welcome": welcome_hist.summary_ms(),
        "server_cpu_s": round3(c1.server - c0.server),
        "server_cpu_us_per_connection": round3(if confirmed > 0 { (c1.server - c0.server) / confirmed as f64 * 1e6 } else { 0.0 }),
        "client_cpu_s": round3(c1.clients - c0.clients),
        "server_rss_kb": b.server_rss_kb(),
        "slab_kb": procfs::meminfo_kb("Slab").unwrap_or(0),
        // Box-wide kernel counters: accept-queue overflows make clients retransmit their SYN
        // after 1 s, which shows up as a 1 s step in to_confirm.
        "listen_overflows": procfs::tcp_ext("ListenOverflows").unwrap_or(0).saturating_sub(overflows0),
        "listen_drops": procfs::tcp_ext("ListenDrops").unwrap_or(0).saturating_sub(drops0),
        "syn_retransmits": procfs::tcp_ext("TCPSynRetrans").unwrap_or(0).saturating_sub(retrans0),
    });
    if !a.quiet {
        eprintln!(
            "  connect: {confirmed}/{} confirmed in {connect_secs:.1}s ({:.0}/s), to-confirm p50/p99 {}/{} ms, failed {failed} {:?}, listen overflows {}, SYN retransmits {}",
            a.clients,
            if connect_secs > 0.0 {
                confirmed as f64 / connect_secs
            } else {
                0.0
            },
            ms(connect_hist.quantile(0.5) as f64),
            ms(connect_hist.quantile(0.99) as f64),
            failures,
            connect["listen_overflows"],
            connect["syn_retransmits"]
        );
    }

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
