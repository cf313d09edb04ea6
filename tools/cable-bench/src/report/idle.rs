//! R3: the memory subscribed connections cost while they are held idle.

use std::fmt::Write as _;

use super::{Runs, f, label, named, num, ratio, table};

pub(super) fn tables(runs: &Runs, md: &mut String) {
    table(
        runs,
        md,
        "R3",
        "R3 idle memory (subscribed connections held idle)",
        "connections | server | server RSS before → held MB | user-space RSS per connection | kernel slab per connection (both ends) | sockstat TCP inuse / mem pages | Action Cable ÷ ferrocable",
        |md, v, columns| {
            let fc = runs
                .get("R3", v, "ferrocable")
                .and_then(|r| named(r, "hold"))
                .and_then(|w| f(&w["server_rss_bytes_per_conn"]));
            for t in ["ferrocable", "actioncable"] {
                let Some(w) = runs
                    .shown(md, "R3", v, t, columns)
                    .and_then(|r| named(r, "hold"))
                else {
                    continue;
                };
                let per = f(&w["server_rss_bytes_per_conn"]);
                let _ = writeln!(
                    md,
                    "| {} | {} | {:.1} → {:.1} | {:.1} KB | {:.1} KB | {} / {} | {} |",
                    num(&w["connections"], 0),
                    label(t),
                    f(&w["server_rss_kb"]["baseline"]).unwrap_or(0.0) / 1024.0,
                    f(&w["server_rss_kb"]["end"]).unwrap_or(0.0) / 1024.0,
                    per.unwrap_or(0.0) / 1000.0,
                    f(&w["slab_bytes_per_conn_both_ends"]).unwrap_or(0.0) / 1000.0,
                    num(&w["sockstat_tcp"]["inuse"], 0),
                    num(&w["sockstat_tcp"]["mem_pages"], 0),
                    if t == "actioncable" {
                        ratio(per, fc)
                    } else {
                        String::new()
                    }
                );
            }
        },
    );
}
