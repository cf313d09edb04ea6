//! `cable-bench worker`: one client process holding up to ~10k Action Cable connections.
//!
//! A single-threaded tokio runtime, one small task per connection and one 4 KiB read buffer
//! each. A connection binds its source address (127.0.0.2.. so one address's port range is
//! not the limit), upgrades with a real HS256 JWT, waits for the welcome, subscribes, waits
//! for the confirm, then reads frames until the process ends. Every bench broadcast is
//! parsed in place (no allocation) and recorded: its latency in the window's histogram and
//! in a per-sequence (count, max) slot, from which the parent derives losses and the
//! last-recipient latency. The parent drives the worker with JSON lines on stdin and gets
//! JSON lines back on stdout.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{Semaphore, watch};

use crate::hist::Hist;
use crate::wire::{self, Kind};

/// Read buffer per connection: small; tungstenite's default 128 KiB would make the load
/// generator costlier than the server it measures.
const READ_BUF: usize = 4096;
/// Largest frame a connection grows its buffer for.
const MAX_FRAME: usize = 16 << 20;
/// Highest sequence number tracked per slot (bounds memory on a bogus payload).
const MAX_SEQ: u64 = 50_000_000;
/// Highest window number.
const MAX_WINDOWS: u64 = 4096;

/// What the parent tells a worker at spawn (JSON in argv).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct WorkerConfig {
    pub(crate) id: usize,
    /// Connection `i` goes to `urls[i % urls.len()]`.
    pub(crate) urls: Vec<String>,
    /// Global index of this worker's first connection.
    pub(crate) first: u64,
    pub(crate) count: u64,
    /// Connection `i` subscribes to stream `i % streams`.
    pub(crate) streams: u64,
    /// Source addresses 127.0.0.2 ..= 127.0.0.(1+sources); 0 binds nothing.
    pub(crate) sources: u32,
    /// New connections per second in this worker (0: as fast as `concurrency` allows).
    pub(crate) connect_rate: f64,
    /// Handshakes in flight at once.
    pub(crate) concurrency: usize,
    pub(crate) secret: String,
    pub(crate) origin: String,
    pub(crate) channel: String,
    /// Connections `i` with `(i·7919+13) mod 1000 < slow_per_mille` stop reading on `slow`.
    pub(crate) slow_per_mille: u32,
    /// SO_RCVBUF of those connections (small, so their backlog reaches the server fast).
    pub(crate) slow_rcvbuf: u32,
    pub(crate) handshake_timeout_s: f64,
    /// `Cookie` header values, one per line, used instead of tokens (`run --cookies`).
    #[serde(default)]
    pub(crate) cookies_file: Option<String>,
}

pub(crate) fn is_slow(i: u64, per_mille: u32) -> bool {
    (i.wrapping_mul(7919).wrapping_add(13)) % 1000 < per_mille as u64
}

pub(crate) fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

#[derive(Debug, Default)]
struct State {
    attempted: u64,
    welcomed: u64,
    confirmed: u64,
    failed: u64,
    failures: BTreeMap<String, u64>,
    welcome_hist: Hist,
    connect_hist: Hist,
    first_attempt_us: u64,
    last_confirm_us: u64,
    established_sent: bool,
    /// Per stream: confirmed connections still open and reading.
    active: Vec<u32>,
    closed: u64,
    close_reasons: BTreeMap<String, u64>,
    slowed: u64,
    hist: Vec<Hist>,
    received: Vec<u64>,
    dups: Vec<u64>,
    reorders: Vec<u64>,
    /// Per global sequence: [deliveries, max latency µs].
    seq: Vec<[u32; 2]>,
    pings: u64,
    others: u64,
    frames: u64,
    bytes: u64,
    reads: u64,
    grown: u64,
    pongs: u64,
}

impl State {
    fn fail(&mut self, kind: String) {
        self.failed += 1;
        *self.failures.entry(kind).or_insert(0) += 1;
    }

    fn window(&mut self, w: u64) -> usize {
        let w = w.min(MAX_WINDOWS) as usize;
        if self.hist.len() <= w {
            self.hist.resize_with(w + 1, Hist::default);
            self.received.resize(w + 1, 0);
            self.dups.resize(w + 1, 0);
            self.reorders.resize(w + 1, 0);
        }
        w
    }

    fn established_json(&self) -> Value {
        json!({
            "ev": "established",
            "attempted": self.attempted,
            "welcomed": self.welcomed,
            "confirmed": self.confirmed,
            "failed": self.failed,
            "failures": self.failures,
            "welcome_hist": self.welcome_hist.to_json(),
            "connect_hist": self.connect_hist.to_json(),
            "first_attempt_us": self.first_attempt_us,
            "last_confirm_us": self.last_confirm_us,
        })
    }
}

struct Ctx {
    cfg: WorkerConfig,
    /// Per stream: the identifier as a JSON string literal, and the frame prefix
    /// `{"identifier":"…","message":`, shared by every connection on the stream (one hot
    /// copy rather than one cold copy per connection).
    ids: Vec<(Rc<str>, Rc<[u8]>)>,
    targets: Vec<(SocketAddr, String, String)>,
    tokens: Vec<String>,
    state: RefCell<State>,
    sem: Semaphore,
    slow: watch::Receiver<bool>,
    start: Instant,
}

fn emit(v: &Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{v}");
    let _ = out.flush();
}

pub(crate) fn main(cfg_json: &str) -> std::process::ExitCode {
    let cfg: WorkerConfig = match serde_json::from_str(cfg_json) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cable-bench worker: bad config: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cable-bench worker: runtime: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, run(cfg));
    std::process::ExitCode::SUCCESS
}

async fn run(cfg: WorkerConfig) {
    let mut targets = Vec::new();
    for url in &cfg.urls {
        let (hostport, path) = match wire::ws_addr(url) {
            Ok(x) => x,
            Err(e) => {
                eprintln!("cable-bench worker: {e}");
                std::process::exit(2);
            }
        };
        let addr: SocketAddr = match tokio::net::lookup_host(&hostport)
            .await
            .ok()
            .and_then(|mut a| a.next())
        {
            Some(a) => a,
            None => {
                eprintln!("cable-bench worker: cannot resolve {hostport}");
                std::process::exit(2);
            }
        };
        targets.push((addr, hostport, path));
    }
    // Tokens are signed (or cookies read) before the clock starts: a connect storm measures
    // the server. With cookies, `tokens[j]` is the whole `Cookie` header value.
    let tokens = match crate::credentials::for_connections(
        cfg.cookies_file.as_deref(),
        &cfg.secret,
        cfg.first,
        cfg.count,
    ) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("cable-bench worker: {e}");
            std::process::exit(2);
        }
    };
    let (slow_tx, slow_rx) = watch::channel(false);
    let state = State {
        active: vec![0; cfg.streams.max(1) as usize],
        ..State::default()
    };
    let ids = (0..cfg.streams.max(1))
        .map(|stream| {
            let id_json = wire::json_string(&wire::identifier(&cfg.channel, stream));
            let prefix = format!("{{\"identifier\":{id_json},\"message\":").into_bytes();
            (Rc::from(id_json), Rc::from(prefix))
        })
        .collect();
    let ctx = Rc::new(Ctx {
        ids,
        sem: Semaphore::new(cfg.concurrency.max(1)),
        cfg,
        targets,
        tokens,
        state: RefCell::new(state),
        slow: slow_rx,
        start: Instant::now(),
    });

    // Commands from the parent, read by a plain thread.
    let (cmd_tx, mut cmd_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if cmd_tx.send(line).is_err() {
                break;
            }
        }
        // The parent is gone: nothing left to report to.
        std::process::exit(0);
    });

    let spawner = ctx.clone();
    tokio::task::spawn_local(async move {
        let count = spawner.cfg.count;
        if count == 0 {
            let st = spawner.state.borrow();
            emit(&st.established_json());
        }
        let rate = spawner.cfg.connect_rate;
        for j in 0..count {
            if rate > 0.0 {
                let at = spawner.start + Duration::from_secs_f64(j as f64 / rate);
                tokio::time::sleep_until(at.into()).await;
            }
            tokio::task::spawn_local(connection(spawner.clone(), j));
        }
    });

    while let Some(line) = cmd_rx.recv().await {
        let cmd: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
        match cmd["cmd"].as_str().unwrap_or("") {
            "active" => {
                let st = ctx.state.borrow();
                emit(&json!({"ev": "active", "counts": st.active}));
            }
            "count" => {
                let w = cmd["w"].as_u64().unwrap_or(0);
                let st = ctx.state.borrow();
                let n = st.received.get(w as usize).copied().unwrap_or(0);
                emit(&json!({"ev": "count", "w": w, "received": n}));
            }
            "slow" => {
                let designated = (0..ctx.cfg.count)
                    .filter(|j| is_slow(ctx.cfg.first + j, ctx.cfg.slow_per_mille))
                    .count();
                let _ = slow_tx.send(true);
                // Let the tasks see it before answering, so `active` is right afterwards.
                tokio::task::yield_now().await;
                tokio::time::sleep(Duration::from_millis(50)).await;
                let st = ctx.state.borrow();
                emit(&json!({"ev": "slow", "designated": designated, "slowed": st.slowed}));
            }
            "report" => {
                let w = cmd["w"].as_u64().unwrap_or(0);
                let g0 = cmd["g0"].as_u64().unwrap_or(0) as usize;
                let g1 = cmd["g1"].as_u64().unwrap_or(0) as usize;
                let path = cmd["path"].as_str().unwrap_or("").to_string();
                let reply = report(&ctx, w, g0, g1, &path);
                emit(&reply);
            }
            "progress" => {
                let st = ctx.state.borrow();
                emit(
                    &json!({"ev": "progress", "attempted": st.attempted, "confirmed": st.confirmed, "failed": st.failed}),
                );
            }
            "exit" => std::process::exit(0),
            other => eprintln!("cable-bench worker: unknown command {other:?}"),
        }
    }
}

fn report(ctx: &Ctx, w: u64, g0: usize, g1: usize, path: &str) -> Value {
    let mut st = ctx.state.borrow_mut();
    let wi = st.window(w);
    let mut bytes = Vec::with_capacity(g1.saturating_sub(g0) * 8);
    for g in g0..g1 {
        let [c, m] = st.seq.get(g).copied().unwrap_or([0, 0]);
        bytes.extend_from_slice(&c.to_le_bytes());
        bytes.extend_from_slice(&m.to_le_bytes());
    }
    let written = std::fs::write(path, &bytes).map_err(|e| e.to_string());
    json!({
        "ev": "report",
        "w": w,
        "seq_file": path,
        "seq_error": written.err(),
        "hist": st.hist[wi].to_json(),
        "received": st.received[wi],
        "dups": st.dups[wi],
        "reorders": st.reorders[wi],
        "closed": st.closed,
        "close_reasons": st.close_reasons,
        "slowed": st.slowed,
        "pings": st.pings,
        "others": st.others,
        "frames": st.frames,
        "bytes": st.bytes,
        "reads": st.reads,
        "grown": st.grown,
        "pongs": st.pongs,
        "confirmed": st.confirmed,
    })
}

/// A connection's read buffer: `b[start..end]` holds unparsed bytes.
struct RBuf {
    b: Vec<u8>,
    start: usize,
    end: usize,
}

impl RBuf {
    fn new() -> RBuf {
        RBuf {
            b: vec![0; READ_BUF],
            start: 0,
            end: 0,
        }
    }

    fn data(&self) -> &[u8] {
        &self.b[self.start..self.end]
    }

    /// Makes room at the end (moving unparsed bytes to the front, growing for a frame of
    /// `need` bytes).
    fn make_room(&mut self, need: usize) -> Result<(), String> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        if self.end == self.b.len() || need > self.b.len() - self.start {
            self.b.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if need > self.b.len() {
            if need > MAX_FRAME {
                return Err(format!("frame of {need} bytes"));
            }
            self.b.resize(need.next_power_of_two(), 0);
        }
        Ok(())
    }

    async fn fill(&mut self, s: &mut TcpStream, need: usize) -> Result<usize, String> {
        self.make_room(need)?;
        let n = s
            .read(&mut self.b[self.end..])
            .await
            .map_err(|e| format!("read: {:?}", e.kind()))?;
        self.end += n;
        Ok(n)
    }
}

async fn connection(ctx: Rc<Ctx>, j: u64) {
    let Ok(permit) = ctx.sem.acquire().await else {
        return;
    };
    let i = ctx.cfg.first + j;
    let stream = i % ctx.cfg.streams.max(1);
    let slow = is_slow(i, ctx.cfg.slow_per_mille);
    let t0 = Instant::now();
    {
        let mut st = ctx.state.borrow_mut();
        st.attempted += 1;
        if st.first_attempt_us == 0 {
            st.first_attempt_us = now_us();
        }
    }
    let limit = Duration::from_secs_f64(ctx.cfg.handshake_timeout_s.max(0.1));
    let result = tokio::time::timeout(limit, establish(&ctx, i, j, stream, slow, t0)).await;
    drop(permit);
    let (mut sock, mut rb, prefix) = match result {
        Ok(Ok(x)) => x,
        Ok(Err(kind)) => {
            let mut st = ctx.state.borrow_mut();
            st.fail(kind);
            done_one(&ctx, &mut st);
            return;
        }
        Err(_) => {
            let mut st = ctx.state.borrow_mut();
            st.fail("timeout".into());
            done_one(&ctx, &mut st);
            return;
        }
    };
    {
        let mut st = ctx.state.borrow_mut();
        st.confirmed += 1;
        st.connect_hist.record(t0.elapsed().as_micros() as u64);
        st.last_confirm_us = now_us();
        st.active[stream as usize] += 1;
        done_one(&ctx, &mut st);
    }
    let mut last: Option<u64> = None;
    let mut slow_rx = ctx.slow.clone();
    let mut need = 0;
    let end = loop {
        // Parse what is buffered.
        let mut pong: Option<Vec<u8>> = None;
        let mut close: Option<String> = None;
        {
            let now = now_us();
            let mut st = ctx.state.borrow_mut();
            loop {
                match wire::parse_frame(rb.data()) {
                    Ok(Some(f)) => {
                        let base = rb.start;
                        let p = &rb.b[base + f.payload_start..base + f.payload_end];
                        st.frames += 1;
                        match f.opcode {
                            0x1 | 0x2 => on_text(&mut st, p, &prefix, now, &mut last),
                            0x8 => close = Some("close frame".into()),
                            0x9 => pong = Some(p.to_vec()),
                            _ => st.others += 1,
                        }
                        rb.start += f.payload_end;
                        need = 0;
                    }
                    Ok(None) => break,
                    Err(n) => {
                        if n > rb.b.len() {
                            st.grown += 1;
                        }
                        need = n;
                        break;
                    }
                }
            }
        }
        if let Some(p) = pong {
            ctx.state.borrow_mut().pongs += 1;
            let key = (i as u32).to_le_bytes();
            if sock.write_all(&wire::masked(0xA, &p, key)).await.is_err() {
                break "write error".to_string();
            }
        }
        if let Some(c) = close {
            break c;
        }
        let n = if slow {
            tokio::select! {
                biased;
                r = slow_rx.wait_for(|v| *v) => {
                    drop(r);
                    {
                        let mut st = ctx.state.borrow_mut();
                        st.slowed += 1;
                        st.active[stream as usize] -= 1;
                    }
                    // Stop reading for good; the socket stays open until the process ends.
                    std::future::pending::<()>().await;
                    return;
                }
                r = rb.fill(&mut sock, need) => r,
            }
        } else {
            rb.fill(&mut sock, need).await
        };
        match n {
            Ok(0) => break "eof".to_string(),
            Ok(n) => {
                let mut st = ctx.state.borrow_mut();
                st.reads += 1;
                st.bytes += n as u64;
            }
            Err(e) => break e,
        }
    };
    let mut st = ctx.state.borrow_mut();
    st.closed += 1;
    st.active[stream as usize] -= 1;
    *st.close_reasons.entry(end).or_insert(0) += 1;
}

fn on_text(st: &mut State, p: &[u8], prefix: &[u8], now: u64, last: &mut Option<u64>) {
    match wire::classify(p, prefix) {
        Kind::Bench { g, w, t } => {
            let wi = st.window(w);
            if *last == Some(g) {
                st.dups[wi] += 1;
                return;
            }
            if last.is_some_and(|l| g < l) {
                st.reorders[wi] += 1;
            }
            *last = Some(last.map_or(g, |l| l.max(g)));
            let lat = now.saturating_sub(t);
            st.hist[wi].record(lat);
            st.received[wi] += 1;
            if g < MAX_SEQ {
                let gi = g as usize;
                if st.seq.len() <= gi {
                    st.seq.resize(gi + 1, [0, 0]);
                }
                let slot = &mut st.seq[gi];
                slot[0] += 1;
                slot[1] = slot[1].max(lat.min(u32::MAX as u64) as u32);
            }
        }
        Kind::Ping => st.pings += 1,
        _ => st.others += 1,
    }
}

fn done_one(ctx: &Ctx, st: &mut State) {
    if st.confirmed + st.failed == ctx.cfg.count && !st.established_sent {
        st.established_sent = true;
        emit(&st.established_json());
    }
}

type Established = (TcpStream, RBuf, Rc<[u8]>);

async fn establish(
    ctx: &Ctx,
    i: u64,
    j: u64,
    stream: u64,
    slow: bool,
    t0: Instant,
) -> Result<Established, String> {
    let (addr, hostport, path) = &ctx.targets[(i % ctx.targets.len() as u64) as usize];
    let sock = TcpSocket::new_v4().map_err(|e| format!("socket: {:?}", e.kind()))?;
    if slow && ctx.cfg.slow_rcvbuf > 0 {
        let _ = sock.set_recv_buffer_size(ctx.cfg.slow_rcvbuf);
    }
    if ctx.cfg.sources > 0 {
        let last = 2 + (i % ctx.cfg.sources as u64) as u8;
        let src = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, last), 0));
        sock.bind(src)
            .map_err(|e| format!("bind: {:?}", e.kind()))?;
    }
    let mut s = sock
        .connect(*addr)
        .await
        .map_err(|e| format!("connect: {:?}", e.kind()))?;
    let _ = s.set_nodelay(true);
    let sep = if path.contains('?') { '&' } else { '?' };
    let credential = &ctx.tokens[j as usize];
    let (query, cookie) = match ctx.cfg.cookies_file {
        Some(_) => (String::new(), format!("Cookie: {credential}\r\n")),
        None => (format!("{sep}token={credential}"), String::new()),
    };
    let request = format!(
        "GET {path}{query} HTTP/1.1\r\nHost: {hostport}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: actioncable-v1-json, actioncable-unsupported\r\n\
         Origin: {origin}\r\n{cookie}\r\n",
        origin = ctx.cfg.origin,
    );
    s.write_all(request.as_bytes())
        .await
        .map_err(|e| format!("write: {:?}", e.kind()))?;
    let mut rb = RBuf::new();
    let head_end = loop {
        if let Some(k) = wire::find(rb.data(), b"\r\n\r\n") {
            break k;
        }
        if rb.end == rb.b.len() {
            return Err("HTTP head too long".into());
        }
        if rb.fill(&mut s, 0).await? == 0 {
            return Err("eof in HTTP head".into());
        }
    };
    let status = rb.data().get(9..12).unwrap_or(b"???").to_vec();
    if status != b"101" {
        return Err(format!("HTTP {}", String::from_utf8_lossy(&status)));
    }
    rb.start += head_end + 4;

    let (id_json, prefix) = ctx.ids[stream as usize].clone();
    let key = (i as u32 ^ 0x5a5a_5a5a).to_le_bytes();
    let mut subscribed = false;
    let mut need = 0;
    loop {
        loop {
            let f = match wire::parse_frame(rb.data()) {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(n) => {
                    need = n;
                    break;
                }
            };
            need = 0;
            let base = rb.start;
            let p = &rb.b[base + f.payload_start..base + f.payload_end];
            let kind = if f.opcode == 0x8 {
                return Err(if subscribed {
                    "closed before confirm"
                } else {
                    "closed before welcome"
                }
                .into());
            } else if f.opcode == 0x1 {
                wire::classify(p, &prefix)
            } else {
                Kind::Other
            };
            let text = (kind == Kind::Disconnect).then(|| String::from_utf8_lossy(p).into_owned());
            rb.start += f.payload_end;
            match kind {
                Kind::Welcome if !subscribed => {
                    ctx.state.borrow_mut().welcomed += 1;
                    ctx.state
                        .borrow_mut()
                        .welcome_hist
                        .record(t0.elapsed().as_micros() as u64);
                    let cmd = format!("{{\"command\":\"subscribe\",\"identifier\":{id_json}}}");
                    s.write_all(&wire::masked_text(cmd.as_bytes(), key))
                        .await
                        .map_err(|e| format!("write: {:?}", e.kind()))?;
                    subscribed = true;
                }
                Kind::Confirm if subscribed => return Ok((s, rb, prefix)),
                Kind::Reject => return Err("rejected".into()),
                Kind::Disconnect => return Err(format!("disconnect {}", text.unwrap_or_default())),
                _ => {}
            }
        }
        if rb.fill(&mut s, need).await? == 0 {
            return Err(if subscribed {
                "eof before confirm"
            } else {
                "eof before welcome"
            }
            .into());
        }
    }
}
