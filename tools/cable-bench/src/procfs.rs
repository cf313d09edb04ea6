//! Samples from `/proc`: a process's CPU time and memory, the kernel's slab and socket memory.

use std::sync::OnceLock;

fn clk_tck() -> f64 {
    static TCK: OnceLock<f64> = OnceLock::new();
    *TCK.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// User + system CPU seconds of `pid` (its threads included), or `None` if it is gone.
pub(crate) fn cpu_secs(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); utime is field 14, stime 15.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / clk_tck())
}

/// Sum of [`cpu_secs`] over several processes (missing ones count 0).
pub(crate) fn cpu_secs_all(pids: &[u32]) -> f64 {
    pids.iter().filter_map(|p| cpu_secs(*p)).sum()
}

fn status_kb(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Resident set size in KiB.
pub(crate) fn rss_kb(pid: u32) -> Option<u64> {
    status_kb(pid, "VmRSS:")
}

/// Sum of RSS over several processes.
pub(crate) fn rss_kb_all(pids: &[u32]) -> u64 {
    pids.iter().filter_map(|p| rss_kb(*p)).sum()
}

/// Thread count.
pub(crate) fn threads(pid: u32) -> Option<u64> {
    status_kb(pid, "Threads:")
}

/// A `/proc/meminfo` field in KiB.
pub(crate) fn meminfo_kb(key: &str) -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    info.lines()
        .find(|l| l.starts_with(key) && l[key.len()..].starts_with(':'))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// `/proc/net/sockstat` TCP line: (inuse, mem pages).
pub(crate) fn sockstat_tcp() -> Option<(u64, u64)> {
    let s = std::fs::read_to_string("/proc/net/sockstat").ok()?;
    let line = s.lines().find(|l| l.starts_with("TCP:"))?;
    let words: Vec<&str> = line.split_whitespace().collect();
    let get = |k: &str| -> Option<u64> {
        let i = words.iter().position(|w| *w == k)?;
        words.get(i + 1)?.parse().ok()
    };
    Some((get("inuse")?, get("mem")?))
}

/// This process's own CPU seconds.
pub(crate) fn self_cpu_secs() -> f64 {
    cpu_secs(std::process::id()).unwrap_or(0.0)
}

/// A `TcpExt:` counter from `/proc/net/netstat` (box-wide), e.g. `ListenOverflows`.
pub(crate) fn tcp_ext(key: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/net/netstat").ok()?;
    let mut lines = s.lines().filter(|l| l.starts_with("TcpExt:"));
    let names: Vec<&str> = lines.next()?.split_whitespace().collect();
    let values: Vec<&str> = lines.next()?.split_whitespace().collect();
    let i = names.iter().position(|n| *n == key)?;
    values.get(i)?.parse().ok()
}

/// Box-wide CPU seconds from `/proc/stat`: (busy, total) summed over all CPUs. Busy is
/// everything but idle and iowait.
pub(crate) fn box_cpu_secs() -> (f64, f64) {
    let Ok(s) = std::fs::read_to_string("/proc/stat") else {
        return (0.0, 0.0);
    };
    let Some(line) = s.lines().find(|l| l.starts_with("cpu ")) else {
        return (0.0, 0.0);
    };
    let v: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: f64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0.0) + v.get(4).copied().unwrap_or(0.0);
    ((total - idle) / clk_tck(), total / clk_tck())
}
