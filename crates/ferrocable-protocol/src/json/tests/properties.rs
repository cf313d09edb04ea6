//! Property tests over random values and near-miss mutations, with a seeded generator.

use super::*;

const ALPHABET: &[&str] = &[
    "a", "Z", " ", "/", "<", ">", "&", "\"", "\\", "\u{0}", "\u{1}", "\u{8}", "\t", "\n", "\u{c}",
    "\r", "\u{1f}", "\u{7f}", "é", "\u{ad}", "\u{2028}", "\u{2029}", "\u{2027}", "😀", "漢",
    "\u{feff}", "\u{fffd}",
];

fn random_string(rng: &mut Rng, max: usize) -> String {
    (0..rng.below(max)).map(|_| *rng.pick(ALPHABET)).collect()
}

fn random_value(rng: &mut Rng, depth: usize) -> Value {
    match rng.below(if depth > 4 { 6 } else { 9 }) {
        0 => Value::Null,
        1 => Value::Bool(rng.next() & 1 == 1),
        2 => {
            let digits: String = (0..1 + rng.below(30))
                .map(|i| char::from(b'0' + (rng.below(9) + usize::from(i == 0)) as u8))
                .collect();
            let sign = if rng.next() & 1 == 1 { "-" } else { "" };
            Value::Integer(Integer::from_decimal(&format!("{sign}{digits}")).unwrap())
        }
        3 => Value::Float(match rng.below(3) {
            0 => f64::from_bits(rng.next()),
            1 => (rng.next() % 100_000) as f64 / 100.0,
            _ => *rng.pick(&[
                0.0,
                -0.0,
                1e15,
                1e16,
                1e-4,
                1e-5,
                5e-324,
                f64::NAN,
                f64::INFINITY,
            ]),
        }),
        4 | 5 => Value::String(random_string(rng, 16)),
        6 => Value::Array(
            (0..rng.below(6))
                .map(|_| random_value(rng, depth + 1))
                .collect(),
        ),
        _ => Value::Object(
            (0..rng.below(6))
                .map(|_| (random_string(rng, 4), random_value(rng, depth + 1)))
                .collect(),
        ),
    }
}

fn has_duplicate_keys(v: &Value) -> bool {
    match v {
        Value::Array(items) => items.iter().any(has_duplicate_keys),
        Value::Object(pairs) => {
            (1..pairs.len()).any(|i| pairs[..i].iter().any(|(k, _)| *k == pairs[i].0))
                || pairs.iter().any(|(_, v)| has_duplicate_keys(v))
        }
        _ => false,
    }
}

#[test]
fn property_write_parse_write_is_stable() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..3000 {
        let v = random_value(&mut rng, 0);
        let first = encode(&v);
        let second =
            parsed_and_written(&first).unwrap_or_else(|e| panic!("{e}: {}", lossy(&first)));
        let third = parsed_and_written(&second).unwrap();
        assert_eq!(lossy(&second), lossy(&third));
        assert_eq!(
            reencode(&second, DEPTH),
            Ok(Reencoded::Canonical),
            "{}",
            lossy(&second)
        );
        if !has_duplicate_keys(&v) {
            assert_eq!(lossy(&first), lossy(&second));
            assert_eq!(reencode(&first, DEPTH), Ok(Reencoded::Canonical));
        }
    }
}

/// Canonical documents with a few bytes changed: plenty of near misses for the scan.
fn mutations(rng: &mut Rng, count: usize) -> Vec<Vec<u8>> {
    const BYTES: &[u8] = b"{}[]\":,\\/*-+.eE019tnua \n\x00\x1f\x7f\x80\xc3\xe2\xff<&";
    const PIECES: &[&[u8]] = &[
        b"\\u003c", b"\\u00e9", b"\\/", b"1.0", b"-0", b"1e5", b" ", b"\\ud800",
    ];
    let mut seeds: Vec<Vec<u8>> = (0..200).map(|_| encode(&random_value(rng, 0))).collect();
    for (_, v) in jsonl("oracle-reencode.jsonl", ORACLE_REENCODE) {
        if let Some(s) = v
            .get("frame_message")
            .and_then(Value::as_str)
            .filter(|s| s.len() < 300)
        {
            seeds.push(s.as_bytes().to_vec());
        }
    }
    (0..count)
        .map(|_| {
            let mut s = rng.pick(&seeds).clone();
            for _ in 0..1 + rng.below(3) {
                let at = rng.below(s.len() + 1);
                match rng.below(4) {
                    0 => s.insert(at, *rng.pick(BYTES)),
                    1 if at < s.len() => s[at] = *rng.pick(BYTES),
                    2 if at < s.len() => {
                        s.remove(at);
                    }
                    _ => {
                        let piece = *rng.pick(PIECES);
                        s.splice(at..at, piece.iter().copied());
                    }
                }
            }
            s
        })
        .collect()
}

#[test]
fn property_canonical_means_identity() {
    let mut rng = Rng(0xDEAD_BEEF_CAFE_F00D);
    let (mut canonical, mut rewritten, mut dropped) = (0, 0, 0);
    for input in mutations(&mut rng, 20_000) {
        match reencode(&input, DEPTH) {
            Ok(Reencoded::Canonical) => {
                canonical += 1;
                assert_eq!(
                    parsed_and_written(&input).as_deref(),
                    Ok(&input[..]),
                    "{}",
                    lossy(&input)
                );
            }
            Ok(Reencoded::Rewritten(bytes)) => {
                rewritten += 1;
                assert_ne!(bytes, input);
                assert_eq!(parsed_and_written(&input).as_deref(), Ok(&bytes[..]));
                assert_eq!(
                    reencode(&bytes, DEPTH),
                    Ok(Reencoded::Canonical),
                    "{}",
                    lossy(&bytes)
                );
            }
            Err(_) => {
                dropped += 1;
                assert!(parse(&input, DEPTH).is_err(), "{}", lossy(&input));
            }
        }
    }
    assert!(
        canonical > 1000 && rewritten > 1000 && dropped > 1000,
        "{canonical} {rewritten} {dropped}"
    );
}

fn serde_depth(v: &serde_json::Value) -> usize {
    match v {
        serde_json::Value::Array(items) => 1 + items.iter().map(serde_depth).max().unwrap_or(0),
        serde_json::Value::Object(map) => 1 + map.values().map(serde_depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// serde_json's default float parser can be a few ulps off (`-9.999999999999999E98`);
/// Ruby's and Rust's are exact (subnormals too), and the oracle vectors pin exact values.
fn close(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 1e-14 * a.abs().max(f64::MIN_POSITIVE)
}

fn same_as_serde(ours: &Value, theirs: &serde_json::Value) -> bool {
    use serde_json::Value as S;
    match (ours, theirs) {
        (Value::Null, S::Null) => true,
        (Value::Bool(a), S::Bool(b)) => a == b,
        (Value::String(a), S::String(b)) => a == b,
        (Value::Integer(a), S::Number(b)) => match (a.as_i64(), b.as_i64(), b.as_u64()) {
            (Some(a), Some(b), _) => a == b,
            (None, _, Some(b)) => a.to_string() == b.to_string(),
            // Beyond u64, or serde's `-0` (a float there).
            _ => b
                .as_f64()
                .zip(a.to_string().parse::<f64>().ok())
                .is_some_and(|(b, a)| close(a, b)),
        },
        (Value::Float(a), S::Number(b)) => b.as_f64().is_some_and(|b| close(*a, b)),
        (Value::Array(a), S::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(a, b)| same_as_serde(a, b))
        }
        (Value::Object(a), S::Object(b)) => {
            a.len() == b.len()
                && a.iter()
                    .all(|(k, v)| b.get(k).is_some_and(|b| same_as_serde(v, b)))
        }
        _ => false,
    }
}

#[test]
fn property_accepts_what_serde_json_accepts() {
    let mut rng = Rng(0x0123_4567_89AB_CDEF);
    let mut inputs = mutations(&mut rng, 20_000);
    for (_, v) in jsonl("oracle-reencode.jsonl", ORACLE_REENCODE) {
        if let Some(Value::String(s)) = v.get("published") {
            inputs.push(s.as_bytes().to_vec());
        }
    }
    let mut agreed = 0;
    for input in &inputs {
        let Ok(theirs) = serde_json::from_slice::<serde_json::Value>(input) else {
            continue;
        };
        if serde_depth(&theirs) > DEPTH {
            continue;
        }
        agreed += 1;
        let ours = parse(input, DEPTH).unwrap_or_else(|e| panic!("{e}: {}", lossy(input)));
        assert!(same_as_serde(&ours, &theirs), "{}", lossy(input));
        assert!(reencode(input, DEPTH).is_ok(), "{}", lossy(input));
    }
    assert!(agreed > 5000, "only {agreed} inputs accepted by serde_json");
}
