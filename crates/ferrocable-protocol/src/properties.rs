//! The properties the fuzz targets check, one function per target (`fuzz/fuzz_targets/`). The
//! unit tests replay `fuzz/regressions/<target>/*` through the same functions, so `cargo test`
//! judges every committed input exactly as the fuzzer did, without a fuzzer.
//!
//! Compiled for tests and with the `fuzzing` feature. Every check panics with a message naming
//! the property it broke; returning means the input passed.

use crate::{MAX_JSON_DEPTH, incoming, json, outgoing};
use incoming::{Command, CommandError, IdentifierError};
use json::{Reencoded, Value};

/// The largest `limits.max_json_depth` the config accepts: deep input must be safe there too.
const CONFIG_MAX_DEPTH: usize = 1000;

/// Target `command`: a client text frame as the session decodes it.
///
/// - `parse_command` never panics and agrees with `json::parse` (not JSON exactly when parse
///   fails, with the same error; not an object exactly when the value is not one).
/// - A `subscribe` identifier goes through [`identifier`]'s checks (`parse_identifier`, the
///   echo and the frames built from it).
/// - Any other string identifier is echoed faithfully; `message` data goes through
///   `parse_action`, whose action is never blank.
pub fn command(data: &[u8]) {
    let parsed = json::parse(data, MAX_JSON_DEPTH);
    let command = incoming::parse_command(data);
    match (&parsed, &command) {
        (Err(e), Err(CommandError::NotJson(e2))) => {
            assert_eq!(e, e2, "parse_command reports another error than parse");
        }
        (Err(e), other) => panic!("parse failed ({e}) but parse_command gave {other:?}"),
        (Ok(_), Err(CommandError::NotJson(e))) => {
            panic!("parse succeeded but parse_command says not JSON: {e}")
        }
        (Ok(value), Err(CommandError::NotAnObject)) => {
            assert!(
                value.as_object().is_none(),
                "an object called not an object"
            );
        }
        (Ok(value), _) => assert!(value.as_object().is_some(), "a non-object accepted"),
    }
    let identifier_field = parsed
        .as_ref()
        .ok()
        .and_then(|v| v.get("identifier"))
        .and_then(Value::as_str);
    match command {
        Ok(Command::Subscribe { identifier: id }) => {
            assert_eq!(identifier_field, Some(id.as_str()), "subscribe identifier");
            identifier_str(&id);
        }
        Ok(Command::Unsubscribe { identifier: id }) => {
            assert_eq!(identifier_field, id.as_deref(), "unsubscribe identifier");
            if let Some(id) = id {
                echo(&id);
            }
        }
        Ok(Command::Message {
            identifier: id,
            data: message_data,
        }) => {
            assert_eq!(identifier_field, id.as_deref(), "message identifier");
            if let Some(id) = id {
                echo(&id);
            }
            if let Some(message_data) = message_data {
                action(&message_data);
            }
        }
        Err(CommandError::IdentifierNotString) => {
            assert!(identifier_field.is_none(), "a string identifier refused");
        }
        Err(_) => {}
    }
}

/// Target `identifier`: a subscription identifier (the bytes, read as UTF-8 with invalid
/// sequences replaced, as every identifier the server sees is a Rust string).
///
/// - `parse_identifier` never panics and agrees with `json::parse`; a channel it finds is
///   the identifier's `channel` string.
/// - The echo (`EscapedIdentifier::new`, `write_str`) parses back, with our parser and with
///   `serde_json`, to exactly the identifier; it holds no raw control character, `<`, `>`,
///   `&`, U+2028 or U+2029 (ActiveSupport escapes them).
/// - The confirm, reject and message frames are valid JSON for `serde_json`, their
///   `identifier` is exactly the input, and they are canonical ActiveSupport JSON.
pub fn identifier(data: &[u8]) {
    identifier_str(&String::from_utf8_lossy(data));
}

fn identifier_str(id: &str) {
    let parsed = json::parse(id.as_bytes(), MAX_JSON_DEPTH);
    match (incoming::parse_identifier(id), &parsed) {
        (Ok(channel_ref), Ok(value)) => {
            assert_eq!(
                &channel_ref.params, value,
                "params are the parsed identifier"
            );
            assert_eq!(
                value.get("channel").and_then(Value::as_str),
                Some(channel_ref.channel.as_str()),
                "channel is the identifier's channel string"
            );
        }
        (Err(IdentifierError::NotJson(e)), Err(e2)) => {
            assert_eq!(&e, e2, "parse_identifier reports another error than parse");
        }
        (Err(IdentifierError::NotAnObject), Ok(value)) => {
            assert!(
                value.as_object().is_none(),
                "an object called not an object"
            );
        }
        (Err(IdentifierError::NoChannel), Ok(value)) => {
            assert!(
                value.get("channel").and_then(Value::as_str).is_none(),
                "a string channel not found"
            );
        }
        (ours, parsed) => panic!("parse_identifier gave {ours:?}, parse gave {parsed:?}"),
    }
    echo(id);
}

/// The identifier echo and the frames that carry it.
fn echo(id: &str) {
    let escaped = outgoing::EscapedIdentifier::new(id);
    let mut literal = Vec::new();
    json::write_str(&mut literal, id);
    assert_eq!(
        escaped.as_str().as_bytes(),
        &literal[..],
        "EscapedIdentifier is write_str"
    );
    assert_eq!(
        json::parse(&literal, 0),
        Ok(Value::String(id.to_owned())),
        "the echo parses back to the identifier"
    );
    assert_eq!(
        serde_json::from_slice::<String>(&literal).ok().as_deref(),
        Some(id),
        "serde_json reads the echo as the identifier"
    );
    assert!(
        !literal
            .iter()
            .any(|&b| b < 0x20 || matches!(b, b'<' | b'>' | b'&')),
        "the echo holds a raw control character or <, >, &"
    );
    assert!(
        !escaped.as_str().contains(['\u{2028}', '\u{2029}']),
        "the echo holds a raw U+2028 or U+2029"
    );
    for (frame, key, value) in [
        (
            outgoing::confirm(&escaped),
            "type",
            serde_json::json!("confirm_subscription"),
        ),
        (
            outgoing::reject(&escaped),
            "type",
            serde_json::json!("reject_subscription"),
        ),
        (
            outgoing::message(&escaped, r#"{"a":1}"#),
            "message",
            serde_json::json!({"a": 1}),
        ),
    ] {
        let parsed: serde_json::Value = serde_json::from_str(&frame)
            .unwrap_or_else(|e| panic!("frame is not JSON for serde_json ({e}): {frame:?}"));
        let object = parsed.as_object().expect("a frame is an object");
        assert_eq!(object.len(), 2, "frame has two keys: {frame:?}");
        assert_eq!(
            object.get("identifier").and_then(serde_json::Value::as_str),
            Some(id),
            "frame identifier is the input exactly"
        );
        assert_eq!(object.get(key), Some(&value), "frame {key}");
        assert_eq!(
            json::reencode(frame.as_bytes(), MAX_JSON_DEPTH),
            Ok(Reencoded::Canonical),
            "frame is canonical ActiveSupport JSON: {frame:?}"
        );
    }
}

/// A `message` command's data: decoded, its action never blank.
fn action(message_data: &str) {
    let parsed = json::parse(message_data.as_bytes(), MAX_JSON_DEPTH);
    match (incoming::parse_action(message_data), &parsed) {
        (Ok(call), Ok(value)) => {
            assert_eq!(&call.data, value, "action data is the parsed data");
            if let Some(name) = &call.action {
                assert!(!name.trim().is_empty(), "blank action {name:?}");
            }
            // Rails: (data["action"].presence || :receive).to_sym
            match value.get("action") {
                Some(Value::String(s)) if !s.trim().is_empty() => {
                    assert_eq!(call.action.as_deref(), Some(s.as_str()), "string action")
                }
                _ => assert_eq!(call.action, None, "blank action must be receive"),
            }
        }
        (Err(IdentifierError::NotJson(e)), Err(e2)) => {
            assert_eq!(&e, e2, "parse_action reports another error than parse");
        }
        (Err(IdentifierError::NotAnObject), Ok(value)) => {
            assert!(
                value.as_object().is_none(),
                "an object called not an object"
            );
        }
        // Refusing an object can only be about its action: Rails raises for one that is
        // neither blank nor a string (it has no `to_sym`).
        (Err(e), Ok(value)) if value.as_object().is_some() => assert!(
            !matches!(
                value.get("action"),
                None | Some(Value::Null | Value::String(_))
            ),
            "refused data whose action is a string or absent: {e}"
        ),
        (ours, parsed) => panic!("parse_action gave {ours:?}, parse gave {parsed:?}"),
    }
}

/// Target `encoder`: a broadcast payload through `reencode`, and `parse` + `write_value`.
///
/// - Neither panics; they accept the same inputs and fail with the same error.
/// - `Canonical` means the input is exactly what parse + write gives; `Rewritten(bytes)`
///   means `bytes` is exactly that and differs from the input.
/// - The output is valid JSON for `serde_json`, escapes what ActiveSupport escapes, reads
///   back (ours) to the same value (infinities as `null`), and is a fixed point: writing it
///   again gives the same bytes, and `reencode` calls it canonical.
/// - Nesting follows Ruby's rule: a document nested `d` deep passes with `max_depth = d`
///   and fails with `d - 1`, a `NestingError` at the bracket that opens level `d`; so 100
///   levels pass and 101 fail by default.
/// - Whatever `serde_json` (correctly rounded floats) accepts, nested at most 100 deep, we
///   accept too, with the same value when it has no duplicate keys: strings exactly,
///   integers exactly, floats bit for bit.
/// - The same holds at the largest configurable depth (1000), which must not overflow the
///   stack.
pub fn encoder(data: &[u8]) {
    let parsed = encoder_at_depth(data, MAX_JSON_DEPTH);
    match &parsed {
        Err(e) if e.is_too_deep() => {
            if let Err(e2) = encoder_at_depth(data, CONFIG_MAX_DEPTH) {
                assert!(
                    e2.offset() > e.offset(),
                    "a deeper limit failed earlier: {e2} vs {e}"
                );
            }
        }
        _ => {}
    }
    if let Ok(theirs) = serde_json::from_slice::<SerdeValue>(data) {
        let depth = theirs.depth();
        match &parsed {
            Ok(_) if depth <= MAX_JSON_DEPTH && theirs.has_duplicate_keys() => {}
            Ok(ours) if depth <= MAX_JSON_DEPTH => {
                if let Err(path) = same_as_serde(ours, &theirs) {
                    panic!("our value differs from serde_json's at {path}");
                }
            }
            Err(e) if depth > MAX_JSON_DEPTH => {
                assert!(
                    e.is_too_deep(),
                    "serde_json depth {depth}, ours failed with {e}"
                );
            }
            Ok(_) => panic!("serde_json depth {depth} > {MAX_JSON_DEPTH}, we accepted it"),
            Err(e) => panic!("serde_json accepts it (depth {depth}), we refuse it: {e}"),
        }
    }
}

fn encoder_at_depth(data: &[u8], max_depth: usize) -> Result<Value, json::ParseError> {
    let parsed = json::parse(data, max_depth);
    let reencoded = json::reencode(data, max_depth);
    let value = match (&reencoded, parsed) {
        (Err(e), Err(e2)) => {
            assert_eq!(e, &e2, "reencode and parse fail differently");
            check_depth_error(data, &e2, max_depth);
            return Err(e2);
        }
        (Ok(r), Err(e)) => panic!("parse failed ({e}) but reencode gave {r:?}"),
        (Err(e), Ok(_)) => panic!("parse succeeded but reencode failed: {e}"),
        (Ok(_), Ok(value)) => value,
    };
    let mut written = Vec::new();
    json::write_value(&mut written, &value);
    match reencoded {
        Ok(Reencoded::Canonical) => assert_eq!(
            lossy(data),
            lossy(&written),
            "Canonical, but parse + write differs from the input"
        ),
        Ok(Reencoded::Rewritten(bytes)) => {
            assert_eq!(
                lossy(&bytes),
                lossy(&written),
                "Rewritten differs from parse + write"
            );
            assert_ne!(bytes, data, "Rewritten to the input itself");
        }
        Err(_) => unreachable!(),
    }
    check_output(&written, &value);
    check_depth_ok(data, max_depth);
    check_raw_separators(data, max_depth, &value);
    Ok(value)
}

/// Rails 8.1's raw U+2028/U+2029 ([`json::Escaping::RAW_JS_SEPARATORS`]): the fast path
/// agrees with parse + write, and the output differs from the default one exactly where
/// the default writes `\u2028` or `\u2029`.
fn check_raw_separators(data: &[u8], max_depth: usize, value: &Value) {
    let raw = json::Escaping::RAW_JS_SEPARATORS;
    let mut written = Vec::new();
    json::write_value_with(&mut written, value, raw);
    match json::reencode_with(data, max_depth, raw) {
        Ok(Reencoded::Canonical) => assert_eq!(lossy(data), lossy(&written)),
        Ok(Reencoded::Rewritten(bytes)) => assert_eq!(lossy(&bytes), lossy(&written)),
        Err(e) => panic!("reencode_with failed where reencode did not: {e}"),
    }
    let mut escaped = Vec::new();
    json::write_value(&mut escaped, value);
    assert_eq!(
        lossy(&written),
        unescape_separators(&lossy(&escaped)),
        "raw separators differ elsewhere"
    );
}

/// `\u2028` and `\u2029` escapes made raw, with escaped backslashes kept as they are.
fn unescape_separators(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let mut rest = json;
    while let Some(at) = rest.find('\\') {
        out.push_str(&rest[..at]);
        let escape = &rest[at..];
        let (text, len) = if escape.starts_with("\\u2028") {
            ("\u{2028}", 6)
        } else if escape.starts_with("\\u2029") {
            ("\u{2029}", 6)
        } else {
            let len = 1 + escape[1..].chars().next().map_or(0, char::len_utf8);
            (&escape[..len], len)
        };
        out.push_str(text);
        rest = &escape[len..];
    }
    out.push_str(rest);
    out
}

/// The writer's output for `value`: valid, escaped, and a fixed point.
fn check_output(written: &[u8], value: &Value) {
    // serde_json (without arbitrary_precision) refuses integers beyond the f64 range, which
    // are valid JSON that Ruby writes digit for digit.
    let theirs = match serde_json::from_slice::<SerdeValue>(written) {
        Ok(theirs) => Some(theirs),
        Err(e) if has_huge_integer(value) && e.to_string().contains("number out of range") => None,
        Err(e) => panic!(
            "output is not JSON for serde_json ({e}): {}",
            lossy(written)
        ),
    };
    assert!(
        !written.iter().any(|&b| matches!(b, b'<' | b'>' | b'&')),
        "output holds a raw <, > or &"
    );
    assert!(
        !lossy(written).contains(['\u{2028}', '\u{2029}']),
        "output holds a raw U+2028 or U+2029"
    );
    let again = json::parse(written, usize::MAX)
        .unwrap_or_else(|e| panic!("output does not parse ({e}): {}", lossy(written)));
    if let Err(path) = same_value(&finite(value), &again) {
        panic!("output reads back to another value at {path}");
    }
    if let Some(theirs) = theirs {
        assert!(!theirs.has_duplicate_keys(), "output has duplicate keys");
        if let Err(path) = same_as_serde(&again, &theirs) {
            panic!("serde_json reads the output differently at {path}");
        }
    }
    let mut rewritten = Vec::new();
    json::write_value(&mut rewritten, &again);
    assert_eq!(
        lossy(written),
        lossy(&rewritten),
        "writing the output again changes it"
    );
    assert_eq!(
        json::reencode(written, usize::MAX),
        Ok(Reencoded::Canonical),
        "reencode does not call the output canonical"
    );
}

/// A document that parsed at `max_depth` is `d <= max_depth` deep: it parses with exactly
/// `d` and fails with `d - 1`.
fn check_depth_ok(data: &[u8], max_depth: usize) {
    let (_, depth) = text_depth(data, data.len());
    assert!(depth <= max_depth, "depth {depth} accepted at {max_depth}");
    assert!(
        json::parse(data, depth).is_ok(),
        "depth {depth} refused at max_depth {depth}"
    );
    if depth > 0 {
        let e = json::parse(data, depth - 1)
            .expect_err("accepted with max_depth one less than its depth");
        assert!(e.is_too_deep(), "depth {depth} at {}: {e}", depth - 1);
        check_depth_error(data, &e, depth - 1);
    }
}

/// A nesting error sits at the bracket that would open level `max_depth + 1`.
fn check_depth_error(data: &[u8], e: &json::ParseError, max_depth: usize) {
    if !e.is_too_deep() {
        return;
    }
    assert!(
        matches!(data.get(e.offset()), Some(b'[' | b'{')),
        "nesting error not at a bracket: {e}"
    );
    assert_eq!(
        text_depth(data, e.offset()).0,
        max_depth,
        "nesting error at the wrong level: {e}"
    );
}

/// How many containers are open at `end`, and the most open at once before it, in
/// `data[..end]`, a prefix the parser accepted: brackets counted outside strings and
/// comments, independently of the parser.
fn text_depth(data: &[u8], end: usize) -> (usize, usize) {
    let (mut depth, mut max, mut i) = (0usize, 0usize, 0);
    while i < end {
        match data[i] {
            b'"' => {
                i += 1;
                while i < end && data[i] != b'"' {
                    i += if data[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'/' if data.get(i + 1) == Some(&b'*') => {
                i += 2 + data[i + 2..]
                    .windows(2)
                    .position(|w| w == b"*/")
                    .map_or(end, |p| p + 1);
            }
            b'/' if data.get(i + 1) == Some(&b'/') => {
                i += 2 + data[i + 2..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .unwrap_or(end);
            }
            b'[' | b'{' => {
                depth += 1;
                max = max.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    (depth, max)
}

/// Whether the value holds an integer too big for an f64 (serde_json refuses those).
fn has_huge_integer(value: &Value) -> bool {
    match value {
        Value::Integer(i) => i.to_string().parse::<f64>().map_or(true, f64::is_infinite),
        Value::Array(items) => items.iter().any(has_huge_integer),
        Value::Object(pairs) => pairs.iter().any(|(_, v)| has_huge_integer(v)),
        _ => false,
    }
}

/// The value with non-finite floats as `null`, which is how the writer writes them.
fn finite(value: &Value) -> Value {
    match value {
        Value::Float(f) if !f.is_finite() => Value::Null,
        Value::Array(items) => Value::Array(items.iter().map(finite).collect()),
        Value::Object(pairs) => {
            Value::Object(pairs.iter().map(|(k, v)| (k.clone(), finite(v))).collect())
        }
        other => other.clone(),
    }
}

/// Structural equality with floats compared bit for bit; `Err` names the first difference.
fn same_value(a: &Value, b: &Value) -> Result<(), String> {
    match (a, b) {
        (Value::Float(x), Value::Float(y)) if x.to_bits() == y.to_bits() => Ok(()),
        (Value::Array(xs), Value::Array(ys)) if xs.len() == ys.len() => {
            for (i, (x, y)) in xs.iter().zip(ys).enumerate() {
                same_value(x, y).map_err(|p| format!("[{i}]{p}"))?;
            }
            Ok(())
        }
        (Value::Object(xs), Value::Object(ys)) if xs.len() == ys.len() => {
            for ((kx, x), (ky, y)) in xs.iter().zip(ys) {
                if kx != ky {
                    return Err(format!(" key {kx:?} vs {ky:?}"));
                }
                same_value(x, y).map_err(|p| format!("[{kx:?}]{p}"))?;
            }
            Ok(())
        }
        (Value::Float(_) | Value::Array(_) | Value::Object(_), _) => {
            Err(format!(": {a:?} vs {b:?}"))
        }
        _ if a == b => Ok(()),
        _ => Err(format!(": {a:?} vs {b:?}")),
    }
}

/// A JSON value as `serde_json` reads it, objects as ordered pairs so that duplicate keys
/// stay visible.
#[derive(Debug, Clone, PartialEq)]
pub enum SerdeValue {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A negative integer that fits an `i64`.
    I64(i64),
    /// A non-negative integer that fits a `u64`.
    U64(u64),
    /// Any other number (serde_json reads big integers and `-0` as floats too).
    F64(f64),
    /// A string.
    String(String),
    /// An array.
    Array(Vec<SerdeValue>),
    /// An object, every pair kept in order.
    Object(Vec<(String, SerdeValue)>),
}

impl SerdeValue {
    /// Nesting depth by Ruby's count: every container, even an empty one, is a level.
    pub fn depth(&self) -> usize {
        match self {
            SerdeValue::Array(items) => 1 + items.iter().map(Self::depth).max().unwrap_or(0),
            SerdeValue::Object(pairs) => {
                1 + pairs.iter().map(|(_, v)| v.depth()).max().unwrap_or(0)
            }
            _ => 0,
        }
    }

    /// Whether any object repeats a key.
    pub fn has_duplicate_keys(&self) -> bool {
        match self {
            SerdeValue::Array(items) => items.iter().any(Self::has_duplicate_keys),
            SerdeValue::Object(pairs) => {
                let mut keys: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
                keys.sort_unstable();
                keys.windows(2).any(|w| w[0] == w[1])
                    || pairs.iter().any(|(_, v)| v.has_duplicate_keys())
            }
            _ => false,
        }
    }
}

impl<'de> serde::Deserialize<'de> for SerdeValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SerdeVisitor)
    }
}

#[derive(Debug)]
struct SerdeVisitor;

impl<'de> serde::de::Visitor<'de> for SerdeVisitor {
    type Value = SerdeValue;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E>(self) -> Result<SerdeValue, E> {
        Ok(SerdeValue::Null)
    }

    fn visit_bool<E>(self, b: bool) -> Result<SerdeValue, E> {
        Ok(SerdeValue::Bool(b))
    }

    fn visit_i64<E>(self, n: i64) -> Result<SerdeValue, E> {
        Ok(SerdeValue::I64(n))
    }

    fn visit_u64<E>(self, n: u64) -> Result<SerdeValue, E> {
        Ok(SerdeValue::U64(n))
    }

    fn visit_f64<E>(self, f: f64) -> Result<SerdeValue, E> {
        Ok(SerdeValue::F64(f))
    }

    fn visit_str<E>(self, s: &str) -> Result<SerdeValue, E> {
        Ok(SerdeValue::String(s.to_owned()))
    }

    fn visit_string<E>(self, s: String) -> Result<SerdeValue, E> {
        Ok(SerdeValue::String(s))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<SerdeValue, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(SerdeValue::Array(items))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<SerdeValue, A::Error> {
        let mut pairs = Vec::new();
        while let Some(pair) = map.next_entry()? {
            pairs.push(pair);
        }
        Ok(SerdeValue::Object(pairs))
    }
}

/// Whether this build's `serde_json` reads floats correctly rounded (`float_roundtrip`, as
/// the fuzz crate enables). The main crate's does not, so its replay of the corpus allows
/// serde_json's known error of an ulp or two.
pub fn serde_floats_exact() -> bool {
    // Without float_roundtrip serde_json reads this one ulp off.
    const TEXT: &str = "-9.999999999999999e98";
    serde_json::from_str::<f64>(TEXT).ok() == TEXT.parse::<f64>().ok()
}

fn same_float(ours: f64, theirs: f64) -> bool {
    ours.to_bits() == theirs.to_bits()
        || (!serde_floats_exact()
            && (ours - theirs).abs() <= 1e-14 * ours.abs().max(f64::MIN_POSITIVE))
}

/// Our value against serde_json's: strings exactly, integers exactly, floats bit for bit;
/// `Err` names the first difference.
fn same_as_serde(ours: &Value, theirs: &SerdeValue) -> Result<(), String> {
    let same = match (ours, theirs) {
        (Value::Null, SerdeValue::Null) => true,
        (Value::Bool(a), SerdeValue::Bool(b)) => a == b,
        (Value::String(a), SerdeValue::String(b)) => a == b,
        (Value::Integer(a), SerdeValue::I64(b)) => a.as_i64() == Some(*b),
        (Value::Integer(a), SerdeValue::U64(b)) => a.to_string() == b.to_string(),
        // Beyond u64 (or serde_json's `-0`): its float must be the integer correctly rounded.
        (Value::Integer(a), SerdeValue::F64(b)) => a
            .to_string()
            .parse::<f64>()
            .is_ok_and(|a| a == *b || same_float(a, *b)),
        (Value::Float(a), SerdeValue::F64(b)) => same_float(*a, *b),
        (Value::Array(a), SerdeValue::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                same_as_serde(x, y).map_err(|p| format!("[{i}]{p}"))?;
            }
            true
        }
        (Value::Object(a), SerdeValue::Object(b)) if a.len() == b.len() => {
            for ((kx, x), (ky, y)) in a.iter().zip(b) {
                if kx != ky {
                    return Err(format!(" key {kx:?} vs {ky:?}"));
                }
                same_as_serde(x, y).map_err(|p| format!("[{kx:?}]{p}"))?;
            }
            true
        }
        _ => false,
    };
    if same {
        Ok(())
    } else {
        Err(format!(": ours {ours:?}, serde_json {theirs:?}"))
    }
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
