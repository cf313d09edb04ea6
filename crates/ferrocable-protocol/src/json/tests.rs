//! The codec against vectors from real Ruby (`fixtures/json/`), its quirks one by one, and
//! property tests ([`properties`]).

mod properties;

use super::canonical::float_is_canonical;
use super::parse::{INVALID_UTF8, TRAILING, UNEXPECTED_END};
use super::ruby_float::{FloatText, short_decimal};
use super::*;

/// Ruby's default `max_nesting`, which every vector file assumes.
const DEPTH: usize = 100;

const SHARED_BROADCASTS: &str = include_str!("../../../../fixtures/json/broadcast-reencode.jsonl");
const SHARED_IDENTIFIERS: &str = include_str!("../../../../fixtures/json/identifier-echo.jsonl");
const ORACLE_REENCODE: &str = include_str!("../../../../fixtures/json/oracle-reencode.jsonl");
const ORACLE_STRINGS: &str = include_str!("../../../../fixtures/json/oracle-strings.jsonl");

fn encode(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    write_value(&mut out, value);
    out
}

fn encode_str(s: &str) -> String {
    let mut out = Vec::new();
    write_str(&mut out, s);
    String::from_utf8(out).unwrap()
}

/// The frame `message` Action Cable would send for `payload`, via the fast path.
fn reencoded(payload: &[u8]) -> Result<Vec<u8>, ParseError> {
    Ok(match reencode(payload, DEPTH)? {
        Reencoded::Canonical => payload.to_vec(),
        Reencoded::Rewritten(bytes) => bytes,
    })
}

/// The same through the slow path only.
fn parsed_and_written(payload: &[u8]) -> Result<Vec<u8>, ParseError> {
    parse(payload, DEPTH).map(|v| encode(&v))
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn hex_decode(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

/// The vector lines of a .jsonl file, parsed with our own parser, header lines skipped
/// by the caller.
fn jsonl(name: &str, text: &str) -> Vec<(usize, Value)> {
    text.lines()
        .enumerate()
        .map(|(n, line)| {
            let value =
                parse(line.as_bytes(), DEPTH).unwrap_or_else(|e| panic!("{name}:{}: {e}", n + 1));
            (n + 1, value)
        })
        .collect()
}

/// Checks every broadcast vector of a file both ways; returns (vectors, how many took
/// the canonical fast path).
fn check_broadcast_vectors(name: &str, text: &str) -> (usize, usize) {
    let mut failures = Vec::new();
    let (mut count, mut canonical) = (0, 0);
    for (line, v) in jsonl(name, text) {
        let published = match (v.get("published"), v.get("published_hex")) {
            (Some(Value::String(s)), _) => s.as_bytes().to_vec(),
            (_, Some(Value::String(hex))) => hex_decode(hex),
            _ => continue,
        };
        count += 1;
        let want = v.get("frame_message").and_then(Value::as_str);
        assert_eq!(
            want.is_none(),
            v.get("dropped") == Some(&Value::Bool(true)),
            "{name}:{line}: a vector is either dropped or has a frame_message"
        );
        let fast = reencoded(&published);
        let slow = parsed_and_written(&published);
        let ok = match want {
            Some(want) => {
                fast.as_deref() == Ok(want.as_bytes()) && slow.as_deref() == Ok(want.as_bytes())
            }
            None => fast.is_err() && slow.is_err(),
        };
        if !ok {
            failures.push(format!(
                "{name}:{line}: published {:?}\n    want        {want:?}\n    reencode    {:?}\n    parse+write {:?}",
                lossy(&published),
                fast.map(|b| lossy(&b)),
                slow.map(|b| lossy(&b)),
            ));
        }
        if reencode(&published, DEPTH) == Ok(Reencoded::Canonical) {
            canonical += 1;
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {count} vectors failed:\n{}",
        failures.len(),
        failures[..failures.len().min(25)].join("\n")
    );
    (count, canonical)
}

#[test]
fn shared_broadcast_vectors() {
    let (count, _) = check_broadcast_vectors("broadcast-reencode.jsonl", SHARED_BROADCASTS);
    assert_eq!(count, 40);
}

#[test]
fn oracle_broadcast_vectors() {
    let (count, canonical) = check_broadcast_vectors("oracle-reencode.jsonl", ORACLE_REENCODE);
    assert!(count > 5000, "only {count} vectors");
    // The fast path must actually be taken for what Rails itself publishes.
    assert!(
        canonical > 2000,
        "only {canonical} vectors took the fast path"
    );
}

#[test]
fn oracle_files_name_the_ruby_stack() {
    for (name, text) in [
        ("oracle-reencode.jsonl", ORACLE_REENCODE),
        ("oracle-strings.jsonl", ORACLE_STRINGS),
    ] {
        let header = &jsonl(name, text)[0].1;
        assert_eq!(
            header.get("activesupport").and_then(Value::as_str),
            Some("6.1.7.10")
        );
        assert_eq!(header.get("json").and_then(Value::as_str), Some("2.6.1"));
    }
}

#[test]
fn identifier_echo_vectors() {
    let vectors = jsonl("identifier-echo.jsonl", SHARED_IDENTIFIERS);
    assert_eq!(vectors.len(), 10);
    for (line, v) in vectors {
        let identifier = v.get("identifier").and_then(Value::as_str).unwrap();
        for (field, rest) in [
            ("confirm_frame", &b",\"type\":\"confirm_subscription\"}"[..]),
            ("message_frame", &b",\"message\":{\"a\":1}}"[..]),
        ] {
            let mut frame = b"{\"identifier\":".to_vec();
            write_str(&mut frame, identifier);
            frame.extend_from_slice(rest);
            let want = v.get(field).and_then(Value::as_str).unwrap();
            assert_eq!(lossy(&frame), want, "identifier-echo.jsonl:{line} {field}");
        }
    }
}

#[test]
fn oracle_string_vectors() {
    let mut count = 0;
    for (line, v) in jsonl("oracle-strings.jsonl", ORACLE_STRINGS) {
        let (Some(s), Some(want)) = (
            v.get("s").and_then(Value::as_str),
            v.get("encoded").and_then(Value::as_str),
        ) else {
            continue;
        };
        count += 1;
        assert_eq!(encode_str(s), want, "oracle-strings.jsonl:{line}");
        assert_eq!(reencode(want.as_bytes(), DEPTH), Ok(Reencoded::Canonical));
    }
    assert!(count > 500, "only {count} vectors");
}

/// `Ok(frame message)` or `Err(())` for a dropped broadcast.
fn reenc(input: &str) -> Result<String, ()> {
    let fast = reencoded(input.as_bytes()).map(|b| lossy(&b)).map_err(drop);
    let slow = parsed_and_written(input.as_bytes())
        .map(|b| lossy(&b))
        .map_err(drop);
    assert_eq!(fast, slow, "fast and slow paths disagree on {input:?}");
    fast
}

#[test]
fn ruby_parser_quirks() {
    let ok = |input: &str, want: &str| assert_eq!(reenc(input), Ok(want.to_owned()), "{input:?}");
    let refused = |input: &str| assert_eq!(reenc(input), Err(()), "{input:?}");
    // Comments are whitespace; `//` needs its newline; bodies may be any bytes.
    ok("/* a */ [ /* b */ 1 // c\n , 2 ] /**/", "[1,2]");
    ok("{/*x*/\"a\"/*y*/:/*z*/1/*w*/}", "{\"a\":1}");
    ok("/***/42", "42");
    refused("42 // no newline");
    refused("/*/42");
    refused("[1]/*");
    refused("[1]/x/");
    assert_eq!(parse(b"/* \xff\xfe */ 42", DEPTH), Ok(Value::from(42)));
    // Only four whitespace bytes.
    ok(" \t\r\n42\n", "42");
    refused("\x0c42");
    refused("\x0b42");
    refused("\u{feff}42");
    // Unknown escapes drop the backslash.
    ok(r#""\q\'\/\x41""#, r#""q'/x41""#);
    ok("\"\\é\"", "\"é\"");
    // Surrogates.
    ok(r#""\ud83d\ude00\uD83D\uDE00""#, "\"😀😀\"");
    refused(r#""\ud800""#);
    refused(r#""\ud800abcde""#);
    ok(r#""\ud800abcdef""#, r#""?bcdef""#);
    ok(r#""\ud800\nabcde""#, r#""?nabcde""#);
    ok(r#""\ud800\"abcde""#, r#""?\"abcde""#);
    ok(r#""\ud800\u0041""#, "\"\u{10041}\"");
    ok(r#""\ud800\\u0041""#, r#""?A""#);
    ok(r#""\ud800\\u004""#, "\"?\u{fffd}\"");
    ok(r#""\ud800\\u12zz""#, "\"?\u{fffd}\"");
    ok(r#""\ud800\\\\\\""#, r#""?\\\\\"""#);
    refused(r#""\ud800\\u00""#);
    refused("\"\\ud800éabcd\""); // swallows half of the é
    refused(r#""\udc00""#); // Ruby parses it, but cannot encode it
    // Numbers.
    ok("-0", "0");
    ok("-0.0", "-0.0");
    ok("[1E2,1e+2,1.0e-7,0e0]", "[100.0,100.0,1.0e-07,0.0]");
    ok("[1e400,-1e400,1e-400,-1e-400]", "[null,null,0.0,-0.0]");
    for bad in [
        "01",
        "-01",
        "1.",
        ".5",
        "1.e5",
        "+1",
        "-",
        "1e",
        "1e+",
        "NaN",
        "Infinity",
        "-Infinity",
        "[-Infinity]",
    ] {
        refused(bad);
    }
    // Raw control characters are refused, DEL is not.
    refused("\"a\tb\"");
    refused("\"a\u{0}b\"");
    ok("\"a\u{7f}b\"", "\"a\u{7f}b\"");
    // Duplicate keys: first position, last value.
    ok(r#"{"k":1,"z":0,"k":2}"#, r#"{"k":2,"z":0}"#);
    ok(r#"{"a":1,"\u0061":2}"#, r#"{"a":2}"#);
}

#[test]
fn depth_limit_matches_ruby() {
    let arrays = |d: usize| format!("{}{}", "[".repeat(d), "]".repeat(d));
    let objects = |d: usize| format!("{}1{}", "{\"a\":".repeat(d), "}".repeat(d));
    for d in [1, 99, 100] {
        assert!(reenc(&arrays(d)).is_ok(), "depth {d}");
        assert!(reenc(&objects(d)).is_ok(), "depth {d}");
    }
    for d in [101, 102, 1000] {
        assert!(
            parse(arrays(d).as_bytes(), DEPTH)
                .unwrap_err()
                .is_too_deep()
        );
        assert!(
            reencode(objects(d).as_bytes(), DEPTH)
                .unwrap_err()
                .is_too_deep()
        );
    }
    // Ruby checks on entry, so an empty container at depth 101 counts.
    let empty = format!("{}{{}}{}", "[".repeat(100), "]".repeat(100));
    assert!(reencode(empty.as_bytes(), DEPTH).unwrap_err().is_too_deep());
    // Deeper than the scan tracks: still right, through the slow path.
    let deep = arrays(300);
    assert_eq!(reencode(deep.as_bytes(), 300), Ok(Reencoded::Canonical));
    assert_eq!(reencode(b"1", 0), Ok(Reencoded::Canonical));
    assert!(reencode(b"[]", 0).is_err());
    // Unterminated deep input is an error, not a stack overflow.
    assert!(parse("[".repeat(100_000).as_bytes(), usize::MAX).is_err());
}

#[test]
fn invalid_utf8_empty_input_and_trailing_garbage() {
    for bad in [
        &b"\"\xff\""[..],
        b"\"\xc3\"",
        b"\"\xed\xa0\x80\"",
        b"\"\xf4\x90\x80\x80\"",
        b"\"\xc0\xaf\"",
        b"{\"\xe2\x82\":1}",
        b"\xff",
        b"[\"a\"]\xff",
    ] {
        assert!(parse(bad, DEPTH).is_err(), "{bad:?}");
        assert!(reencode(bad, DEPTH).is_err(), "{bad:?}");
    }
    let e = parse(b"[\"ok\",\"\xff\"]", DEPTH).unwrap_err();
    assert_eq!((e.offset(), e.reason()), (7, INVALID_UTF8));
    for empty in [&b""[..], b" ", b"\n\t", b"/**/", b"// x\n"] {
        let e = parse(empty, DEPTH).unwrap_err();
        assert_eq!(e.reason(), UNEXPECTED_END, "{empty:?}");
        assert!(reencode(empty, DEPTH).is_err());
    }
    for trailing in [
        "{\"a\":1}}",
        "[1]]",
        "1 2",
        "true false",
        "nulll",
        "\"a\"\"b\"",
        "{} x",
        "[1]\u{0}",
    ] {
        assert!(parse(trailing.as_bytes(), DEPTH).is_err(), "{trailing:?}");
        assert!(
            reencode(trailing.as_bytes(), DEPTH).is_err(),
            "{trailing:?}"
        );
    }
    assert_eq!(
        parse(b"{\"a\":1} x", DEPTH).unwrap_err(),
        ParseError {
            offset: 8,
            reason: TRAILING
        }
    );
    assert_eq!(
        parse(b"[1,]", DEPTH).unwrap_err().to_string(),
        "unexpected byte at byte 3"
    );
}

#[test]
fn floats_print_as_ruby_float_to_s() {
    for (f, want) in [
        (0.0, "0.0"),
        (-0.0, "-0.0"),
        (1.0, "1.0"),
        (1000.0, "1000.0"),
        (1e-7, "1.0e-07"),
        (1e20, "1.0e+20"),
        (1e15, "1.0e+15"),
        (1e14, "100000000000000.0"),
        (999999999999999.0, "999999999999999.0"),
        (123456789012345.6, "123456789012345.6"),
        (1234567890123456.7, "1234567890123456.8"),
        (1234567890123456.0, "1.234567890123456e+15"),
        (5e-324, "5.0e-324"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
        (0.0001, "0.0001"),
        (0.00012, "0.00012"),
        (1e-5, "1.0e-05"),
        (-12.75, "-12.75"),
        (0.30000000000000004, "0.30000000000000004"),
        (1e100, "1.0e+100"),
    ] {
        assert_eq!(
            Value::Float(f).to_ruby_string().as_deref(),
            Some(want),
            "{f:e}"
        );
        assert_eq!(lossy(&encode(&Value::Float(f))), want);
    }
    for (f, text) in [
        (f64::INFINITY, "Infinity"),
        (f64::NEG_INFINITY, "-Infinity"),
        (f64::NAN, "NaN"),
    ] {
        assert_eq!(Value::Float(f).to_ruby_string().as_deref(), Some(text));
        assert_eq!(encode(&Value::Float(f)), b"null");
    }
}

#[test]
fn float_shortcut_agrees_with_the_general_path() {
    let mut rng = Rng(0x05EE_D0FF_10A7);
    let mut shortcut = 0;
    for i in 0..200_000 {
        let f = match i % 4 {
            // Human numbers: a few decimals, any magnitude in range.
            0 => (rng.next() % 10_000_000) as f64 / 10f64.powi(rng.below(12) as i32),
            1 => (rng.next() % 1_000_000_000_000_000) as f64 / 10f64.powi(rng.below(23) as i32),
            2 => f64::from_bits(rng.next()),
            _ => rng.below(100_000) as f64 * 0.01 - 500.0,
        };
        if !f.is_finite() {
            continue;
        }
        let (mut a, mut b) = (FloatText::new(), FloatText::new());
        assert_eq!(lossy(a.ruby(f)), lossy(b.ruby_general(f)), "{f:e}");
        let text = lossy(a.ruby(f));
        assert_eq!(
            text.parse::<f64>().ok(),
            Some(f),
            "{text} does not read back"
        );
        if short_decimal(f.abs()).is_some() {
            shortcut += 1;
        }
        // The canonical check agrees with the formatter on its own output.
        assert!(float_is_canonical(text.as_bytes()), "{text}");
    }
    assert!(shortcut > 50_000, "shortcut taken {shortcut} times");
}

#[test]
fn duplicate_keys_in_the_streaming_writer() {
    for (input, want) in [
        (r#"{"a":1,"a":2}"#, r#"{"a":2}"#),
        (
            r#"{"a":{"b":1,"b":2},"a":{"c":3,"c":4}}"#,
            r#"{"a":{"c":4}}"#,
        ),
        (
            r#"[{"x":1, "x":[{"y":1,"y":2}]}, {"x":3}]"#,
            r#"[{"x":[{"y":2}]},{"x":3}]"#,
        ),
        (
            r#"{"\u003c":1,"<":2,"a\/":3,"a/":4}"#,
            r#"{"\u003c":2,"a/":4}"#,
        ),
    ] {
        assert_eq!(reenc(input), Ok(want.to_owned()), "{input}");
    }
    // Many keys: the writer's sort-based check, and more keys than the scan remembers.
    let keys = |n: usize, dup: bool| {
        let mut members: Vec<String> = (0..n).map(|i| format!("\"k{i}\":{i}")).collect();
        if dup {
            members.push("\"k7\":\"last\"".to_owned());
        }
        format!("{{{}}}", members.join(","))
    };
    for n in [10, 17, 63, 64, 65, 200] {
        let unique = keys(n, false);
        assert_eq!(
            reencode(unique.as_bytes(), DEPTH),
            Ok(Reencoded::Canonical),
            "{n}"
        );
        let doubled = reenc(&keys(n, true)).unwrap();
        assert!(doubled.contains("\"k7\":\"last\",\"k8\""), "{n}: {doubled}");
        assert_eq!(doubled.matches("\"k7\"").count(), 1);
    }
    // Keys of nested objects count separately, and are forgotten when they close.
    let nested = format!("[{}]", vec![keys(40, false); 5].join(","));
    assert_eq!(reencode(nested.as_bytes(), DEPTH), Ok(Reencoded::Canonical));
}

#[test]
fn integers_of_any_size() {
    for text in ["0", "-1", "9223372036854775807", "-9223372036854775808"] {
        let n = Integer::from_decimal(text).unwrap();
        assert!(n.as_i64().is_some(), "{text}");
        assert_eq!(n.to_string(), text);
    }
    for text in [
        "9223372036854775808",
        "-9223372036854775809",
        "123456789012345678901234567890",
    ] {
        let n = Integer::from_decimal(text).unwrap();
        assert_eq!(n.as_i64(), None, "{text}");
        assert_eq!(n.to_string(), text);
    }
    assert_eq!(Integer::from_decimal("-0"), Some(Integer::from(0)));
    for bad in ["", "-", "01", "+1", "1.0", "1e3", " 1"] {
        assert_eq!(Integer::from_decimal(bad), None, "{bad:?}");
    }
    assert_eq!(Integer::from(u64::MAX).to_string(), "18446744073709551615");
    assert_eq!(
        Integer::from(u64::MAX),
        Integer::from_decimal("18446744073709551615").unwrap()
    );
    assert_eq!(encode(&Value::from(i64::MIN)), b"-9223372036854775808");
}

#[test]
fn value_accessors() {
    let v = parse(
        br#"{"channel":"Chat","room":1,"f":2.5,"ok":true,"n":null,"a":[1]}"#,
        DEPTH,
    )
    .unwrap();
    assert_eq!(v.get("channel").and_then(Value::as_str), Some("Chat"));
    assert_eq!(
        v.get("room").and_then(Value::to_ruby_string).as_deref(),
        Some("1")
    );
    assert_eq!(
        v.get("f").and_then(Value::to_ruby_string).as_deref(),
        Some("2.5")
    );
    assert_eq!(
        v.get("ok").and_then(Value::to_ruby_string).as_deref(),
        Some("true")
    );
    assert_eq!(v.get("n").and_then(Value::to_ruby_string), None);
    assert_eq!(v.get("a").and_then(Value::to_ruby_string), None);
    assert_eq!(v.get("room").and_then(Value::as_i64), Some(1));
    assert_eq!(
        v.get("a").and_then(Value::as_array).map(<[_]>::len),
        Some(1)
    );
    assert_eq!(v.as_object().map(<[_]>::len), Some(6));
    assert_eq!(v.get("missing"), None);
    assert_eq!(Value::from("x").get("x"), None);
    assert_eq!(Value::Null.as_str(), None);
}

#[test]
fn write_str_escapes_like_activesupport() {
    assert_eq!(
        encode_str("<b>Tom & Jerry</b>"),
        r#""\u003cb\u003eTom \u0026 Jerry\u003c/b\u003e""#
    );
    assert_eq!(
        encode_str("\u{1}\u{1f}\u{7f}\t\n\r\u{8}\u{c}"),
        "\"\\u0001\\u001f\u{7f}\\t\\n\\r\\b\\f\""
    );
    assert_eq!(
        encode_str("a\u{2028}b\u{2029}c\u{2027}é😀/"),
        "\"a\\u2028b\\u2029c\u{2027}é😀/\""
    );
    assert_eq!(encode_str(r#"q"b\"#), r#""q\"b\\""#);
    assert_eq!(encode_str(""), r#""""#);
}

/// Rails 8.1 under `load_defaults 8.1` (`escape_js_separators_in_json = false`): U+2028 and
/// U+2029 raw, everything else as before; escaped separators in a payload become raw.
#[test]
fn rails_8_1_leaves_js_separators_raw() {
    let raw = Escaping::RAW_JS_SEPARATORS;
    let mut out = Vec::new();
    write_str_with(&mut out, "a\u{2028}<b>\u{2029}&", raw);
    assert_eq!(lossy(&out), "\"a\u{2028}\\u003cb\\u003e\u{2029}\\u0026\"");
    let mut out = Vec::new();
    write_value_with(
        &mut out,
        &parse("{\"k\u{2028}\":[\"\u{2029}\"]}".as_bytes(), DEPTH).unwrap(),
        raw,
    );
    assert_eq!(lossy(&out), "{\"k\u{2028}\":[\"\u{2029}\"]}");

    let reencoded_as =
        |payload: &str, escaping| match reencode_with(payload.as_bytes(), DEPTH, escaping).unwrap()
        {
            Reencoded::Canonical => (true, payload.to_string()),
            Reencoded::Rewritten(bytes) => (false, lossy(&bytes)),
        };
    // The same two payloads swap roles between the two settings.
    let escaped = "\"x\\u2028y\\u2029\"";
    let literal = "\"x\u{2028}y\u{2029}\"";
    assert_eq!(
        reencoded_as(escaped, Escaping::default()),
        (true, escaped.into())
    );
    assert_eq!(
        reencoded_as(literal, Escaping::default()),
        (false, escaped.into())
    );
    assert_eq!(reencoded_as(literal, raw), (true, literal.into()));
    assert_eq!(reencoded_as(escaped, raw), (false, literal.into()));
    // Keys too, and a duplicate key rewritten through the slow path keeps the setting.
    assert_eq!(
        reencoded_as("{\"\\u2028\":1,\"\\u2028\":2}", raw),
        (false, "{\"\u{2028}\":2}".into())
    );
    // HTML characters stay escaped under both settings.
    assert_eq!(
        reencoded_as("\"<\u{2028}\"", raw),
        (false, "\"\\u003c\u{2028}\"".into())
    );
    assert_eq!(
        crate::outgoing::EscapedIdentifier::with_escaping("{\"r\":\"\u{2028}\"}", raw).as_str(),
        "\"{\\\"r\\\":\\\"\u{2028}\\\"}\""
    );
}

/// xorshift64*: enough randomness for property tests without a dependency.
pub(super) struct Rng(u64);

impl Rng {
    pub(super) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub(super) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub(super) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}
