//! `cable-bench floor`: the raw floor. Not an Action Cable server: it answers the upgrade and
//! the subscribe with canned frames (so the same clients can measure it), then for every
//! message on its one Redis channel builds the broadcast frame once and does one `write` per
//! client, in a loop, on one thread. Whatever a real server adds on top of this is its cost.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::rc::Rc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::wire;

#[derive(clap::Args, Debug, Clone)]
pub(crate) struct FloorArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Redis to SUBSCRIBE on.
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    redis: String,
    /// The one Redis channel to relay (e.g. ferrocable_bench_production:bench_0).
    #[arg(long)]
    channel: String,
    /// The order of the writes: `accept` (the order the clients connected in) or `shuffled`
    /// (a fixed pseudo-random permutation), to show what the order costs: the kernel objects
    /// of sockets accepted one after another sit close together in memory.
    #[arg(long, default_value = "accept")]
    order: Order,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    Accept,
    Shuffled,
}

struct Conn {
    s: TcpStream,
    /// Bytes a full socket buffer did not take, written by a helper task in order.
    backlog: RefCell<Vec<u8>>,
}

#[derive(Default)]
struct Floor {
    conns: RefCell<Vec<Rc<Conn>>>,
    /// `{"identifier":<literal>,"message":` of the first subscriber (all share it).
    prefix: RefCell<Option<Vec<u8>>>,
    /// With `--order shuffled`: the permutation of `conns` to write in (rebuilt when a client
    /// joined since the last broadcast).
    shuffled: Option<RefCell<Vec<usize>>>,
}

pub(crate) fn main(a: FloorArgs) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cable-bench floor: {e}");
            return ExitCode::from(2);
        }
    };
    let local = tokio::task::LocalSet::new();
    match local.block_on(&rt, serve(a)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cable-bench floor: {e}");
            ExitCode::from(1)
        }
    }
}

async fn serve(a: FloorArgs) -> Result<(), String> {
    let listener = TcpListener::bind(a.listen)
        .await
        .map_err(|e| format!("bind {}: {e}", a.listen))?;
    let floor = Rc::new(Floor {
        shuffled: (a.order == Order::Shuffled).then(RefCell::default),
        ..Floor::default()
    });
    let addr = wire::redis_addr(&a.redis)?;
    let mut redis = TcpStream::connect(&addr)
        .await
        .map_err(|e| format!("redis {addr}: {e}"))?;
    let mut cmd = Vec::new();
    wire::resp_command(&[b"SUBSCRIBE", a.channel.as_bytes()], &mut cmd);
    redis.write_all(&cmd).await.map_err(|e| e.to_string())?;
    eprintln!(
        "cable-bench floor listening on {} relaying {}",
        listener.local_addr().map_err(|e| e.to_string())?,
        a.channel
    );
    let relay = floor.clone();
    tokio::task::spawn_local(async move {
        if let Err(e) = relay_loop(redis, relay).await {
            eprintln!("cable-bench floor: redis: {e}");
            std::process::exit(1);
        }
    });
    loop {
        let Ok((s, _)) = listener.accept().await else {
            continue;
        };
        let f = floor.clone();
        tokio::task::spawn_local(async move {
            let _ = handshake(s, f).await;
        });
    }
}

async fn handshake(mut s: TcpStream, floor: Rc<Floor>) -> Result<(), String> {
    let _ = s.set_nodelay(true);
    let mut buf = vec![0u8; 4096];
    let mut have = 0;
    let head_end = loop {
        if let Some(i) = wire::find(&buf[..have], b"\r\n\r\n") {
            break i + 4;
        }
        if have == buf.len() {
            return Err("head too long".into());
        }
        let n = s.read(&mut buf[have..]).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("eof".into());
        }
        have += n;
    };
    let mut out =
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Protocol: actioncable-v1-json\r\n\r\n"
            .to_vec();
    let welcome = br#"{"type":"welcome"}"#;
    wire::server_header(welcome.len(), &mut out);
    out.extend_from_slice(welcome);
    s.write_all(&out).await.map_err(|e| e.to_string())?;
    buf.copy_within(head_end..have, 0);
    have -= head_end;
    // The subscribe command.
    let (payload, literal) = loop {
        match wire::parse_frame(&buf[..have]) {
            Ok(Some(f)) => {
                let mut p = buf[f.payload_start..f.payload_end].to_vec();
                if let Some(k) = f.mask {
                    for (i, b) in p.iter_mut().enumerate() {
                        *b ^= k[i % 4];
                    }
                }
                let lit = identifier_literal(&p).ok_or("no identifier")?;
                break (p, lit);
            }
            Ok(None) | Err(_) => {
                if have == buf.len() {
                    return Err("frame too long".into());
                }
                let n = s.read(&mut buf[have..]).await.map_err(|e| e.to_string())?;
                if n == 0 {
                    return Err("eof".into());
                }
                have += n;
            }
        }
    };
    drop(payload);
    let confirm = format!(
        "{{\"identifier\":{},\"type\":\"confirm_subscription\"}}",
        String::from_utf8_lossy(&literal)
    );
    let mut out = Vec::new();
    wire::server_header(confirm.len(), &mut out);
    out.extend_from_slice(confirm.as_bytes());
    s.write_all(&out).await.map_err(|e| e.to_string())?;
    floor.prefix.borrow_mut().get_or_insert_with(|| {
        let mut p = b"{\"identifier\":".to_vec();
        p.extend_from_slice(&literal);
        p.extend_from_slice(b",\"message\":");
        p
    });
    floor.conns.borrow_mut().push(Rc::new(Conn {
        s,
        backlog: RefCell::new(Vec::new()),
    }));
    Ok(())
}

/// The raw JSON string literal (quotes included) after `"identifier":`.
fn identifier_literal(cmd: &[u8]) -> Option<Vec<u8>> {
    let i = wire::find(cmd, b"\"identifier\":")? + 13;
    let rest = &cmd[i..];
    let start = rest.iter().position(|b| *b == b'"')?;
    let mut j = start + 1;
    while j < rest.len() {
        match rest[j] {
            b'\\' => j += 2,
            b'"' => return Some(rest[start..=j].to_vec()),
            _ => j += 1,
        }
    }
    None
}

async fn relay_loop(mut redis: TcpStream, floor: Rc<Floor>) -> Result<(), String> {
    let mut buf = vec![0u8; 65536];
    let mut have = 0;
    let mut frame = Vec::new();
    loop {
        if have == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
        let n = redis
            .read(&mut buf[have..])
            .await
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("eof".into());
        }
        have += n;
        let mut pos = 0;
        while let Some((v, used)) = wire::parse_resp(&buf[pos..have]) {
            pos += used;
            let wire::Resp::Array(items) = v else {
                continue;
            };
            let (Some(wire::Resp::Bulk(Some(kind))), Some(wire::Resp::Bulk(Some(payload)))) =
                (items.first(), items.get(2))
            else {
                continue;
            };
            if kind != b"message" {
                continue;
            }
            let Some(prefix) = floor.prefix.borrow().clone() else {
                continue;
            };
            frame.clear();
            wire::server_header(prefix.len() + payload.len() + 1, &mut frame);
            frame.extend_from_slice(&prefix);
            frame.extend_from_slice(payload);
            frame.push(b'}');
            fan_out(&floor, &frame);
        }
        buf.copy_within(pos..have, 0);
        have -= pos;
    }
}

/// One `write` per client. A full socket (never at the bench's rates) queues the rest for a
/// helper task, so order is kept.
fn fan_out(floor: &Floor, frame: &[u8]) {
    let conns = floor.conns.borrow();
    let Some(shuffled) = &floor.shuffled else {
        conns.iter().for_each(|c| write_one(c, frame));
        return;
    };
    let mut order = shuffled.borrow_mut();
    if order.len() != conns.len() {
        *order = permutation(conns.len());
    }
    order.iter().for_each(|&i| write_one(&conns[i], frame));
}

/// 0..n in a fixed pseudo-random order (Fisher-Yates driven by xorshift64).
fn permutation(n: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in (1..n).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        order.swap(i, (x % (i as u64 + 1)) as usize);
    }
    order
}

fn write_one(c: &Rc<Conn>, frame: &[u8]) {
    if !c.backlog.borrow().is_empty() {
        c.backlog.borrow_mut().extend_from_slice(frame);
        return;
    }
    let written = match c.s.try_write(frame) {
        Ok(n) => n,
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => 0,
        Err(_) => frame.len(),
    };
    if written < frame.len() {
        c.backlog.borrow_mut().extend_from_slice(&frame[written..]);
        let c = c.clone();
        tokio::task::spawn_local(async move {
            loop {
                if c.s.writable().await.is_err() {
                    return;
                }
                let mut b = c.backlog.borrow_mut();
                match c.s.try_write(&b) {
                    Ok(n) => {
                        b.drain(..n);
                        if b.is_empty() {
                            return;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(_) => {
                        b.clear();
                        return;
                    }
                }
            }
        });
    }
}
