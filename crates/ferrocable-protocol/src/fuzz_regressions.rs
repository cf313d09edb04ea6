//! The fuzzers' committed corpus as unit tests: every file under `fuzz/regressions/<target>/`
//! (a minimised set of interesting inputs, plus any crasher a fuzzer found, named `crash-*`)
//! goes through the very properties its fuzz target checks ([`crate::properties`]), so
//! `cargo test` replays the corpus without a fuzzer or a nightly flag. `bin/fuzz` runs the
//! fuzzers and refreshes the corpus.

use crate::{MAX_JSON_DEPTH, json, properties};

use std::path::{Path, PathBuf};

/// The inputs committed for `target`, in name order.
fn inputs(target: &str) -> Vec<PathBuf> {
    // The corpus stays beside the fuzz targets, at the repository root.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/regressions")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("readable directory entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

/// Runs every input of `target` through `check`, collecting every failure before failing.
fn replay(target: &str, check: fn(&[u8])) -> usize {
    let files = inputs(target);
    let mut failures = Vec::new();
    for path in &files {
        let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if let Err(panic) = std::panic::catch_unwind(|| check(&data)) {
            let message = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("(no message)");
            failures.push(format!(
                "{}: {message}\n    input: {:?}",
                path.display(),
                String::from_utf8_lossy(&data[..data.len().min(300)])
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} {target} inputs fail (reproduce one with `RUSTC_BOOTSTRAP=1 cargo fuzz run -s none --target-dir fuzz/target {target} <file>`):\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
    files.len()
}

#[test]
fn command_corpus() {
    assert!(replay("command", properties::command) >= 20);
}

#[test]
fn identifier_corpus() {
    assert!(replay("identifier", properties::identifier) >= 20);
}

#[test]
fn encoder_corpus() {
    assert!(replay("encoder", properties::encoder) >= 20);
}

/// Hand-picked edges, checked by the same properties: Ruby's depth limit on both sides,
/// the parser's quirks, and what serde_json reads differently.
#[test]
fn table_of_edges() {
    let deep = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let nested_object =
        |depth: usize| format!("{}1{}", r#"{"a":"#.repeat(depth), "}".repeat(depth));
    let table: Vec<(&str, String)> = vec![
        ("100 levels pass", deep(100)),
        ("101 levels fail", deep(101)),
        ("1001 levels fail at the config maximum too", deep(1001)),
        ("100 nested objects", nested_object(100)),
        ("101 nested objects", nested_object(101)),
        ("big integer beyond f64", format!("-{}", "9".repeat(400))),
        ("integer beyond u64", "18446744073709551616".into()),
        ("i64 minimum", "-9223372036854775808".into()),
        ("negative zero integer", "-0".into()),
        ("negative zero float", "-0.0".into()),
        ("float overflow is null", "[1e400,-1e400]".into()),
        ("subnormal", "5e-324".into()),
        ("duplicate keys", r#"{"a":1,"b":2,"a":3}"#.into()),
        ("comments", "/* x */[1, // y\n2]".into()),
        ("swallowed surrogate", r#""\ud800abcdef""#.into()),
        ("combined surrogates", r#""\ud800\u0041""#.into()),
        ("html and separators", "\"<&>\u{2028}\u{2029}\"".into()),
        (
            "subscribe",
            r#"{"command":"subscribe","identifier":"{\"channel\":\"ChatChannel\",\"room\":\"<1>\"}"}"#
                .into(),
        ),
        (
            "message",
            r#"{"command":"message","identifier":"{\"channel\":\"ChatChannel\"}","data":"{\"action\":\" \"}"}"#
                .into(),
        ),
    ];
    for (name, input) in &table {
        for (target, check) in [
            ("command", properties::command as fn(&[u8])),
            ("identifier", properties::identifier),
            ("encoder", properties::encoder),
        ] {
            if std::panic::catch_unwind(|| check(input.as_bytes())).is_err() {
                panic!("{target}: {name}: {input:?}");
            }
        }
    }
    assert!(json::parse(deep(100).as_bytes(), MAX_JSON_DEPTH).is_ok());
    assert!(
        json::parse(deep(101).as_bytes(), MAX_JSON_DEPTH)
            .unwrap_err()
            .is_too_deep()
    );
}
