//! R4 and R4C: connect storms (connect, upgrade, welcome, subscribe, confirm), with JWTs and
//! with Rails cookies and a PostgreSQL lookup.

use std::fmt::Write as _;

use super::{P50_P99_MAX, Runs, big, f, label, ms, num, table};

pub(super) fn tables(runs: &Runs, md: &mut String) {
    r4(
        runs,
        md,
        "R4",
        "R4 connect storm (JWT, connect + upgrade + welcome + subscribe + confirm)",
    );
    r4(
        runs,
        md,
        "R4C",
        "R4C connect storm with Rails cookies and a PostgreSQL lookup (the shop app: encrypted session cookie, `User.find_by(id:)`)",
    );
}

/// R4 and R4C (the same storm, authenticated by cookies and a database lookup).
fn r4(runs: &Runs, md: &mut String, scenario: &str, title: &str) {
    table(
        runs,
        md,
        scenario,
        title,
        "clients | server | concurrency | confirmed | confirmed per s | failures | to-confirm p50 / p99 / max ms | server CPU µs per connection | listen-queue overflows / SYN retransmits",
        |md, v, columns| {
            for t in ["ferrocable", "actioncable"] {
                let Some(r) = runs.shown(md, scenario, v, t, columns) else {
                    continue;
                };
                let c = &r["connect"];
                let failures = c["failures"].as_object().map_or(String::new(), |m| {
                    m.iter()
                        .map(|(k, v)| format!("{k}: {v}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                });
                let _ = writeln!(
                    md,
                    "| {v} | {} | {} | {} | {} | {} {} | {} | {} | {} / {} |",
                    label(t),
                    num(&c["concurrency"], 0),
                    num(&c["confirmed"], 0),
                    big(f(&c["confirmed_per_s"]).unwrap_or(0.0)),
                    num(&c["failed"], 0),
                    failures,
                    ms(&c["to_confirm"], P50_P99_MAX),
                    num(&c["server_cpu_us_per_connection"], 0),
                    num(&c["listen_overflows"], 0),
                    num(&c["syn_retransmits"], 0),
                );
            }
            let rate = |t: &str| {
                runs.get(scenario, v, t)
                    .and_then(|r| f(&r["connect"]["confirmed_per_s"]))
                    .filter(|x| *x > 0.0)
            };
            if let (Some(fc), Some(ac)) = (rate("ferrocable"), rate("actioncable")) {
                let _ = writeln!(
                    md,
                    "| {v} | ferrocable ÷ Action Cable | | | {:.1}x | | | | |",
                    fc / ac
                );
            }
        },
    );
}
