//! The few bytes of WebSocket, Action Cable, RESP and HTTP the bench needs, by hand: no
//! buffers beyond the caller's, no allocation on the receive path.

/// A masked client → server text frame.
pub(crate) fn masked_text(payload: &[u8], key: [u8; 4]) -> Vec<u8> {
    masked(0x1, payload, key)
}

/// A masked client → server frame with this opcode.
pub(crate) fn masked(opcode: u8, payload: &[u8], key: [u8; 4]) -> Vec<u8> {
    let n = payload.len();
    let mut out = Vec::with_capacity(n + 14);
    out.push(0x80 | opcode);
    if n < 126 {
        out.push(0x80 | n as u8);
    } else if n < 65536 {
        out.push(0x80 | 126);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(n as u64).to_be_bytes());
    }
    out.extend_from_slice(&key);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    out
}

/// An unmasked server → client text frame header for a payload of `n` bytes.
pub(crate) fn server_header(n: usize, out: &mut Vec<u8>) {
    out.push(0x81);
    if n < 126 {
        out.push(n as u8);
    } else if n < 65536 {
        out.push(126);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&(n as u64).to_be_bytes());
    }
}

/// One complete frame found at the start of a buffer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FrameRef {
    pub(crate) opcode: u8,
    pub(crate) payload_start: usize,
    pub(crate) payload_end: usize,
    pub(crate) mask: Option<[u8; 4]>,
}

/// Parses the frame at the start of `buf`. `Ok(None)`: incomplete, `Err(needed)`: a
/// frame's header says it needs `needed` bytes in total (the caller may grow its buffer).
pub(crate) fn parse_frame(buf: &[u8]) -> Result<Option<FrameRef>, usize> {
    if buf.len() < 2 {
        return Ok(None);
    }
    let opcode = buf[0] & 0x0f;
    let masked = buf[1] & 0x80 != 0;
    let len7 = (buf[1] & 0x7f) as usize;
    let (len, mut pos) = match len7 {
        126 => {
            if buf.len() < 4 {
                return Ok(None);
            }
            (u16::from_be_bytes([buf[2], buf[3]]) as usize, 4)
        }
        127 => {
            if buf.len() < 10 {
                return Ok(None);
            }
            let mut b = [0u8; 8];
            b.copy_from_slice(&buf[2..10]);
            (u64::from_be_bytes(b) as usize, 10)
        }
        n => (n, 2),
    };
    let mask = if masked {
        if buf.len() < pos + 4 {
            return Ok(None);
        }
        let k = [buf[pos], buf[pos + 1], buf[pos + 2], buf[pos + 3]];
        pos += 4;
        Some(k)
    } else {
        None
    };
    let total = pos.saturating_add(len);
    if buf.len() < total {
        return Err(total);
    }
    Ok(Some(FrameRef {
        opcode,
        payload_start: pos,
        payload_end: total,
        mask,
    }))
}

/// What an Action Cable text frame is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Ping,
    Welcome,
    Confirm,
    Reject,
    Disconnect,
    /// A bench broadcast: global sequence, window, publish time (µs since the epoch).
    Bench {
        g: u64,
        w: u64,
        t: u64,
    },
    Other,
}

/// Classifies a frame. `prefix` is this connection's expected
/// `{"identifier":"…","message":` so the payload fields are found without searching.
pub(crate) fn classify(p: &[u8], prefix: &[u8]) -> Kind {
    if p.starts_with(prefix)
        && let Some(k) = bench_fields(&p[prefix.len()..])
    {
        return k;
    }
    if p.starts_with(b"{\"type\":\"ping\"") {
        return Kind::Ping;
    }
    if p.starts_with(b"{\"identifier\":") {
        if let Some(i) = find(p, b"\"message\":")
            && let Some(k) = bench_fields(&p[i + 10..])
        {
            return k;
        }
        if p.ends_with(b"\"type\":\"confirm_subscription\"}") {
            return Kind::Confirm;
        }
        if p.ends_with(b"\"type\":\"reject_subscription\"}") {
            return Kind::Reject;
        }
        return Kind::Other;
    }
    if p == b"{\"type\":\"welcome\"}" || p.starts_with(b"{\"type\":\"welcome\"") {
        return Kind::Welcome;
    }
    if p.starts_with(b"{\"type\":\"disconnect\"") {
        return Kind::Disconnect;
    }
    Kind::Other
}

/// Parses `{"g":<u64>,"w":<u64>,"t":<u64>,...` (or a turbo payload's fields) at the start
/// of `p`.
fn bench_fields(p: &[u8]) -> Option<Kind> {
    let Some(p) = p.strip_prefix(b"{\"g\":") else {
        return turbo_fields(p);
    };
    let (g, p) = digits(p)?;
    let p = p.strip_prefix(b",\"w\":")?;
    let (w, p) = digits(p)?;
    let p = p.strip_prefix(b",\"t\":")?;
    let (t, _) = digits(p)?;
    Some(Kind::Bench { g, w, t })
}

/// How a turbo payload (`payload.rs`) starts: its measuring fields are the first attribute.
pub(crate) const TURBO_FIELDS: &[u8] = br#""\u003cturbo-stream data-bench=\""#;

/// Parses a turbo payload's `"\u003cturbo-stream data-bench=\"G:W:T\"` at the start of `p`.
pub(crate) fn turbo_fields(p: &[u8]) -> Option<Kind> {
    let p = p.strip_prefix(TURBO_FIELDS)?;
    let (g, p) = digits(p)?;
    let (w, p) = digits(p.strip_prefix(b":")?)?;
    let (t, p) = digits(p.strip_prefix(b":")?)?;
    p.starts_with(br#"\""#).then_some(Kind::Bench { g, w, t })
}

fn digits(p: &[u8]) -> Option<(u64, &[u8])> {
    let mut v: u64 = 0;
    let mut i = 0;
    while i < p.len() && p[i].is_ascii_digit() {
        v = v.checked_mul(10)?.checked_add((p[i] - b'0') as u64)?;
        i += 1;
    }
    (i > 0).then_some((v, &p[i..]))
}

pub(crate) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// JSON string literal (with quotes) of `s`, escaping only what JSON requires; enough for the
/// bench's ASCII identifiers, which contain no `<>&` (ActiveSupport would escape those).
pub(crate) fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// The bench identifier for stream `s`, as the JS client's `JSON.stringify` writes it.
pub(crate) fn identifier(channel: &str, stream: u64) -> String {
    format!(
        "{{\"channel\":{},\"stream\":\"{stream}\"}}",
        json_string(channel)
    )
}

/// The bench payload: `{"g":G,"w":W,"t":T,"p":"xxx…"}`, padded to `size` bytes when possible.
pub(crate) fn payload(g: u64, w: u64, t: u64, size: usize, out: &mut Vec<u8>) {
    use std::io::Write;
    out.clear();
    let _ = write!(out, "{{\"g\":{g},\"w\":{w},\"t\":{t},\"p\":\"");
    let fixed = out.len() + 2;
    let pad = size.saturating_sub(fixed);
    out.extend(std::iter::repeat_n(b'x', pad));
    out.extend_from_slice(b"\"}");
}

/// A RESP command.
pub(crate) fn resp_command(args: &[&[u8]], out: &mut Vec<u8>) {
    use std::io::Write;
    let _ = write!(out, "*{}\r\n", args.len());
    for a in args {
        let _ = write!(out, "${}\r\n", a.len());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// A parsed RESP value (only what PUBLISH replies and SUBSCRIBE pushes contain).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Resp {
    Simple(Vec<u8>),
    Error(Vec<u8>),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Vec<Resp>),
}

/// Parses one RESP value at the start of `buf`: `Some((value, consumed))` or `None` if
/// incomplete.
pub(crate) fn parse_resp(buf: &[u8]) -> Option<(Resp, usize)> {
    let line_end = find(buf, b"\r\n")?;
    let line = &buf[1..line_end];
    let after = line_end + 2;
    match *buf.first()? {
        b'+' => Some((Resp::Simple(line.to_vec()), after)),
        b'-' => Some((Resp::Error(line.to_vec()), after)),
        b':' => Some((Resp::Int(parse_i64(line)?), after)),
        b'$' => {
            let n = parse_i64(line)?;
            if n < 0 {
                return Some((Resp::Bulk(None), after));
            }
            let n = n as usize;
            if buf.len() < after + n + 2 {
                return None;
            }
            Some((
                Resp::Bulk(Some(buf[after..after + n].to_vec())),
                after + n + 2,
            ))
        }
        b'*' => {
            let n = parse_i64(line)?;
            let mut pos = after;
            let mut items = Vec::with_capacity(n.max(0) as usize);
            for _ in 0..n.max(0) {
                let (v, used) = parse_resp(&buf[pos..])?;
                items.push(v);
                pos += used;
            }
            Some((Resp::Array(items), pos))
        }
        _ => Some((Resp::Error(b"unparseable RESP".to_vec()), buf.len())),
    }
}

fn parse_i64(s: &[u8]) -> Option<i64> {
    std::str::from_utf8(s).ok()?.parse().ok()
}

/// Host and port of `redis://[user:pass@]host:port[/db]` (password unsupported: loopback).
pub(crate) fn redis_addr(url: &str) -> Result<String, String> {
    let rest = url
        .strip_prefix("redis://")
        .ok_or_else(|| format!("not a redis:// URL: {url}"))?;
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    let hostport = rest.split('/').next().unwrap_or(rest);
    if hostport.contains(':') {
        Ok(hostport.to_string())
    } else {
        Ok(format!("{hostport}:6379"))
    }
}

/// (host:port, path with query) of `ws://host:port/path`.
pub(crate) fn ws_addr(url: &str) -> Result<(String, String), String> {
    let rest = url
        .strip_prefix("ws://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| format!("not a ws:// URL: {url}"))?;
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    Ok((hostport.to_string(), path.to_string()))
}

/// Checks the wire helpers (run by `cable-bench selftest`).
pub(crate) fn self_check() -> Result<(), String> {
    let id = identifier("BenchChannel", 7);
    let prefix = format!("{{\"identifier\":{},\"message\":", json_string(&id));
    let mut p = Vec::new();
    payload(12, 3, 1_700_000_000_000_000, 200, &mut p);
    if p.len() != 200 {
        return Err(format!("payload is {} bytes", p.len()));
    }
    let frame = format!("{prefix}{}}}", String::from_utf8_lossy(&p));
    match classify(frame.as_bytes(), prefix.as_bytes()) {
        Kind::Bench {
            g: 12,
            w: 3,
            t: 1_700_000_000_000_000,
        } => {}
        k => return Err(format!("classify: {k:?}")),
    }
    match classify(frame.as_bytes(), b"{\"identifier\":\"nope\"") {
        Kind::Bench { g: 12, .. } => {}
        k => return Err(format!("classify fallback: {k:?}")),
    }
    let confirm = format!(
        "{{\"identifier\":{},\"type\":\"confirm_subscription\"}}",
        json_string(&id)
    );
    if classify(confirm.as_bytes(), prefix.as_bytes()) != Kind::Confirm {
        return Err("confirm".into());
    }
    if classify(
        br#"{"type":"ping","message":1712345678}"#,
        prefix.as_bytes(),
    ) != Kind::Ping
    {
        return Err("ping".into());
    }
    let f = masked_text(b"hello", [1, 2, 3, 4]);
    let fr = parse_frame(&f)
        .map_err(|e| format!("{e}"))?
        .ok_or("incomplete")?;
    let k = fr.mask.ok_or("mask")?;
    let un: Vec<u8> = f[fr.payload_start..fr.payload_end]
        .iter()
        .enumerate()
        .map(|(i, b)| b ^ k[i % 4])
        .collect();
    if un != b"hello" {
        return Err("mask round trip".into());
    }
    let mut big = Vec::new();
    server_header(300, &mut big);
    big.extend(std::iter::repeat_n(b'a', 300));
    let fr = parse_frame(&big)
        .map_err(|e| format!("{e}"))?
        .ok_or("incomplete")?;
    // A truncated frame reports the size it needs.
    if fr.payload_end - fr.payload_start != 300 || parse_frame(&big[..100]).err() != Some(304) {
        return Err("16-bit length".into());
    }
    let push = b"*3\r\n$7\r\nmessage\r\n$3\r\na:b\r\n$2\r\n{}\r\n:5\r\n";
    let (v, used) = parse_resp(push).ok_or("resp")?;
    if used != push.len() - 4
        || v != Resp::Array(vec![
            Resp::Bulk(Some(b"message".to_vec())),
            Resp::Bulk(Some(b"a:b".to_vec())),
            Resp::Bulk(Some(b"{}".to_vec())),
        ])
    {
        return Err("resp array".into());
    }
    Ok(())
}
