//! The R1 chart, as SVG written by hand: a handful of lines and circles.

use std::fmt::Write as _;

use serde_json::Value;

use super::{Runs, TARGETS, big, f, label, window};

/// Log-log chart: subscribers (x) against latency in ms (y), per server: last-recipient p99
/// (solid) and per-recipient p50 (dashed).
pub(super) fn svg(runs: &Runs, env: &Value) -> String {
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
