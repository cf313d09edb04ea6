//! The ActiveSupport JSON oracle vectors regenerated on Rails 7.2 (bin/gen-json-vectors
//! --rails 7.2, in the trixie chroot: activesupport 7.2.2.2, json 2.7.2, Ruby 3.3) against
//! ferrocable's encoder, and against the Rails 6.1 vectors (fixtures/json/oracle-*.jsonl,
//! which crates/ferrocable-protocol/src/json/tests.rs reads).
//!
//! The generator builds its inputs with the running Ruby (a few through the json gem), so
//! the two versions' input lists overlap almost entirely but not exactly; the comparison is
//! on the inputs both have, and every 7.2 vector, shared or not, is checked against ferrocable.

use std::collections::HashMap;

use ferrocable_protocol::json::{self, Reencoded};
use serde_json::Value as J;

const DEPTH: usize = 100;
const REENCODE_61: &str = include_str!("../fixtures/json/oracle-reencode.jsonl");
const STRINGS_61: &str = include_str!("../fixtures/json/oracle-strings.jsonl");
const REENCODE_72: &str = include_str!("../fixtures/json/rails-7.2/oracle-reencode.jsonl");
const STRINGS_72: &str = include_str!("../fixtures/json/rails-7.2/oracle-strings.jsonl");

/// (header, vectors). Lines are split on '\n' only: U+2028 inside a string is data.
fn jsonl(text: &str) -> (J, Vec<J>) {
    let mut lines = text.split('\n').filter(|l| !l.is_empty());
    let header = serde_json::from_str(lines.next().expect("header")).unwrap();
    let vectors = lines.map(|l| serde_json::from_str(l).unwrap()).collect();
    (header, vectors)
}

fn published(v: &J) -> Vec<u8> {
    match (v["published"].as_str(), v["published_hex"].as_str()) {
        (Some(s), _) => s.as_bytes().to_vec(),
        (_, Some(hex)) => (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect(),
        _ => panic!("vector without input: {v}"),
    }
}

/// What ferrocable sends as `message` for a published payload (None: dropped), by both the
/// fast path and parse-then-write, which must agree.
fn ferrocable_message(payload: &[u8]) -> Option<Vec<u8>> {
    let fast = json::reencode(payload, DEPTH).ok().map(|r| match r {
        Reencoded::Canonical => payload.to_vec(),
        Reencoded::Rewritten(bytes) => bytes,
    });
    let slow = json::parse(payload, DEPTH).ok().map(|v| {
        let mut out = Vec::new();
        json::write_value(&mut out, &v);
        out
    });
    assert_eq!(fast, slow, "fast and slow paths disagree on {payload:?}");
    fast
}

#[test]
fn rails_7_2_vectors_name_their_stack() {
    for text in [REENCODE_72, STRINGS_72] {
        let (header, _) = jsonl(text);
        assert_eq!(header["activesupport"], "7.2.2.2");
        assert_eq!(header["json"], "2.7.2");
    }
}

#[test]
fn ferrocable_matches_every_rails_7_2_broadcast_vector() {
    let (_, vectors) = jsonl(REENCODE_72);
    let mut failures = Vec::new();
    for v in &vectors {
        let input = published(v);
        let want = v["frame_message"].as_str().map(|s| s.as_bytes().to_vec());
        assert_eq!(want.is_none(), v["dropped"] == true, "{v}");
        let got = ferrocable_message(&input);
        if got != want {
            failures.push(format!(
                "{:?}: want {:?}, got {:?}",
                String::from_utf8_lossy(&input),
                want.map(|w| String::from_utf8_lossy(&w).into_owned()),
                got.map(|g| String::from_utf8_lossy(&g).into_owned())
            ));
        }
    }
    assert!(vectors.len() > 5000, "only {} vectors", vectors.len());
    assert!(
        failures.is_empty(),
        "{} of {} Rails 7.2 vectors differ:\n{}",
        failures.len(),
        vectors.len(),
        failures[..failures.len().min(20)].join("\n")
    );
}

#[test]
fn ferrocable_matches_every_rails_7_2_string_vector() {
    let (_, vectors) = jsonl(STRINGS_72);
    for v in &vectors {
        let (s, want) = (v["s"].as_str().unwrap(), v["encoded"].as_str().unwrap());
        let mut out = Vec::new();
        json::write_str(&mut out, s);
        assert_eq!(String::from_utf8(out).unwrap(), want, "{s:?}");
    }
    assert!(vectors.len() > 500);
}

/// Rails 6.1 and 7.2 give the same output for every input both files have.
#[test]
fn rails_6_1_and_7_2_agree_on_every_shared_input() {
    for (name, old, new, key) in [
        ("oracle-reencode", REENCODE_61, REENCODE_72, "published"),
        ("oracle-strings", STRINGS_61, STRINGS_72, "s"),
    ] {
        let index = |text: &str| -> HashMap<String, J> {
            jsonl(text)
                .1
                .into_iter()
                .map(|v| {
                    let k = v[key]
                        .as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| format!("hex:{}", v["published_hex"]));
                    (k, v)
                })
                .collect()
        };
        let (a, b) = (index(old), index(new));
        let shared: Vec<&String> = a.keys().filter(|k| b.contains_key(*k)).collect();
        let differ: Vec<&&String> = shared.iter().filter(|k| a[**k] != b[**k]).collect();
        // 9,562 of 9,569 (6.1) / 9,600 (7.2) broadcast inputs and 883 of 887 / 888 strings.
        assert!(
            shared.len() * 100 >= a.len() * 99,
            "{name}: only {} of {} inputs shared",
            shared.len(),
            a.len()
        );
        assert!(
            differ.is_empty(),
            "{name}: 6.1 and 7.2 differ on {} shared inputs, e.g. {:?}",
            differ.len(),
            differ.iter().take(5).collect::<Vec<_>>()
        );
    }
}
