//! The `ActiveSupport::JSON.encode` writer: [`write_value`] and [`write_str`], and the one
//! place Rails versions differ in it ([`Escaping`]).

use super::Value;
use super::ruby_float::FloatText;

/// How ActiveSupport escapes strings where Rails versions and settings differ.
///
/// `<`, `>` and `&` are escaped by every version (`escape_html_entities_in_json`, on by
/// default). U+2028 and U+2029 are escaped by every version up to 8.0, and by 8.1 unless
/// `config.active_support.escape_js_separators_in_json` is false, which `load_defaults 8.1`
/// sets (JavaScript string literals may hold them since ES2019).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Escaping {
    /// Write U+2028 and U+2029 as `\u2028` and `\u2029`.
    pub js_separators: bool,
}

impl Escaping {
    /// Rails 6.1 to 8.0, and 8.1 with `escape_js_separators_in_json = true`.
    pub const ESCAPE_JS_SEPARATORS: Escaping = Escaping {
        js_separators: true,
    };
    /// Rails 8.1 under `load_defaults 8.1` (`escape_js_separators_in_json = false`).
    pub const RAW_JS_SEPARATORS: Escaping = Escaping {
        js_separators: false,
    };
}

impl Default for Escaping {
    /// What every Rails release before 8.1 writes.
    fn default() -> Self {
        Escaping::ESCAPE_JS_SEPARATORS
    }
}

/// Append ActiveSupport::JSON.encode(value): compact, keys in order, strings as
/// [`write_str`], integers exact, floats as Ruby `Float#to_s` (what json ≤ 2.9 writes),
/// NaN and ±Infinity as `null`.
pub fn write_value(out: &mut Vec<u8>, value: &Value) {
    write_value_with(out, value, Escaping::default());
}

/// [`write_value`] with the string escaping of a given Rails version and setting.
pub fn write_value_with(out: &mut Vec<u8>, value: &Value, escaping: Escaping) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Integer(i) => i.write_to(out),
        Value::Float(f) => write_float(out, *f),
        Value::String(s) => write_escaped(out, s.as_bytes(), escaping),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value_with(out, item, escaping);
            }
            out.push(b']');
        }
        Value::Object(pairs) => {
            out.push(b'{');
            for (i, (key, item)) in pairs.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_escaped(out, key.as_bytes(), escaping);
                out.push(b':');
                write_value_with(out, item, escaping);
            }
            out.push(b'}');
        }
    }
}

/// What [`write_str`] does with each byte: 0 copy, 1 escape, 2 look further (U+2028/9).
static WRITE_CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 0x20 {
        t[b] = 1;
        b += 1;
    }
    t[b'"' as usize] = 1;
    t[b'\\' as usize] = 1;
    t[b'<' as usize] = 1;
    t[b'>' as usize] = 1;
    t[b'&' as usize] = 1;
    t[0xE2] = 2;
    t
};

const HEX_LOWER: &[u8; 16] = b"0123456789abcdef";

/// Append a Rust string as an ActiveSupport-encoded JSON string literal, quotes included
/// (used to echo identifiers: docs/PROTOCOL.md §2): `"` and `\` escaped, `\b \f \n \r \t`, other
/// C0 controls as lowercase `\u00XX`, DEL, `/` and other non-ASCII raw, then `<` `>` `&` as
/// `\u003c` `\u003e` `\u0026` and U+2028/U+2029 as `\u2028`/`\u2029`.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    write_escaped(out, s.as_bytes(), Escaping::default());
}

/// [`write_str`] with the string escaping of a given Rails version and setting.
pub fn write_str_with(out: &mut Vec<u8>, s: &str, escaping: Escaping) {
    write_escaped(out, s.as_bytes(), escaping);
}

/// [`write_str`] for bytes known to be valid UTF-8.
pub(super) fn write_escaped(out: &mut Vec<u8>, bytes: &[u8], escaping: Escaping) {
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let class = WRITE_CLASS[usize::from(b)];
        if class == 0 {
            i += 1;
            continue;
        }
        let mut control = *b"\\u0000";
        let (escape, consumed): (&[u8], usize) = match b {
            b'"' => (b"\\\"", 1),
            b'\\' => (b"\\\\", 1),
            b'\n' => (b"\\n", 1),
            b'\r' => (b"\\r", 1),
            b'\t' => (b"\\t", 1),
            0x08 => (b"\\b", 1),
            0x0c => (b"\\f", 1),
            b'<' => (b"\\u003c", 1),
            b'>' => (b"\\u003e", 1),
            b'&' => (b"\\u0026", 1),
            0xE2 => match bytes.get(i + 1..i + 3) {
                Some([0x80, 0xA8]) if escaping.js_separators => (b"\\u2028", 3),
                Some([0x80, 0xA9]) if escaping.js_separators => (b"\\u2029", 3),
                _ => {
                    i += 1;
                    continue;
                }
            },
            _ => {
                control[4] = HEX_LOWER[usize::from(b >> 4)];
                control[5] = HEX_LOWER[usize::from(b & 0xF)];
                (&control, 1)
            }
        };
        out.extend_from_slice(&bytes[copied..i]);
        out.extend_from_slice(escape);
        i += consumed;
        copied = i;
    }
    out.extend_from_slice(&bytes[copied..]);
    out.push(b'"');
}

pub(super) fn write_i64(out: &mut Vec<u8>, n: i64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    let mut m = n.unsigned_abs();
    loop {
        i -= 1;
        buf[i] = b'0' + (m % 10) as u8;
        m /= 10;
        if m == 0 {
            break;
        }
    }
    if n < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(&buf[i..]);
}

pub(super) fn write_float(out: &mut Vec<u8>, f: f64) {
    if f.is_finite() {
        let mut buf = FloatText::new();
        out.extend_from_slice(buf.ruby(f));
    } else {
        out.extend_from_slice(b"null");
    }
}
