//! JSON the way Rails reads and writes it.
//!
//! - [`parse`] is Ruby's `JSON.parse` as `ActiveSupport::JSON.decode` calls it (json 2.6.1,
//!   `quirks_mode: true`): what it accepts, what it refuses, and the odd values it produces.
//! - [`write_value`] and [`write_str`] are `ActiveSupport::JSON.encode` (Rails 6.1–8.0 with
//!   json ≤ 2.9; docs/PROTOCOL.md §4.4).
//! - [`reencode`] is the broadcast path (docs/PROTOCOL.md §4.2–4.3): decode then encode, with a
//!   scan that proves most payloads are already canonical so they can be spliced as is.
//! - The `_with` variants ([`write_value_with`], [`write_str_with`], [`reencode_with`]) take
//!   an [`Escaping`]: Rails 8.1 under `load_defaults 8.1` writes U+2028/U+2029 raw.
//!
//! Quirks of json 2.6.1 mirrored here, each checked against the real gem (the vectors in
//! `fixtures/json/oracle-*.jsonl`, written by `bin/gen-json-vectors`):
//!
//! - `/* … */` and `// …\n` comments count as whitespace between tokens; a `//` comment
//!   needs its newline, so `1 // x` at the end of the input is an error. Comment bodies may
//!   hold any bytes, invalid UTF-8 included.
//! - Whitespace is only space, `\t`, `\n`, `\r` (no `\f`, `\v` or BOM).
//! - A backslash before any character other than `"\/bfnrtu` or a control character is
//!   dropped: `"\q"` is `"q"`, `"\'"` is `"'"`.
//! - A high surrogate escape must be followed by at least six more bytes inside the string
//!   (else "incomplete surrogate pair"). If those do not start with `\u`, the escape becomes
//!   `?` and the next byte is swallowed (`"\ud800abcdef"` is `"?bcdef"`); if they do, the
//!   two escapes are combined without checking the second is a low surrogate
//!   (`"\ud800\u0041"` is U+10041). After such a swallow the unescaper pairs backslashes
//!   differently from the tokenizer, so `\u` with bad hex becomes U+FFFD and a trailing
//!   lone backslash reads the closing quote.
//! - `-0` is the integer 0, `-0.0` stays negative zero, `1e400` is Infinity (re-encoded as
//!   `null`), `01`, `1.`, `.5`, `+1`, `NaN` and `Infinity` are errors.
//! - Duplicate keys keep their first position and take the last value (Ruby `Hash#[]=`).
//! - Nesting deeper than `max_nesting` (default 100) is an error even for an empty `[]`.
//!
//! One deliberate difference: Ruby's parser lets a string hold bytes that are not UTF-8 (raw
//! invalid bytes, a lone low surrogate escape such as `"\udc00"`, or the UTF-8 left over
//! after a swallowed byte). Rails cannot re-encode such a string (the generator raises, so
//! the broadcast is dropped), and a Rust `String` cannot hold it, so [`parse`] refuses it.

use std::fmt;

/// A JSON value as Ruby's JSON.parse returns it.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `nil`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// Integers of any size; the text is canonical decimal ("-0" becomes "0").
    Integer(Integer),
    /// A Ruby Float; may be infinite (`1e400`), which the writer turns into `null`.
    Float(f64),
    /// A string; always valid UTF-8 (see the module docs).
    String(String),
    /// An array.
    Array(Vec<Value>),
    /// Keys in first-seen order; a repeated key keeps its first position and takes the last
    /// value (Ruby Hash semantics).
    Object(Vec<(String, Value)>),
}

impl Value {
    /// Ruby's `to_s` of a scalar as Action Cable interpolates it into a stream name: strings
    /// as is, integers as digits, floats as Float#to_s, true/false; None for null, arrays and
    /// objects.
    pub fn to_ruby_string(&self) -> Option<String> {
        match self {
            Value::String(s) => Some(s.clone()),
            Value::Integer(i) => Some(i.to_string()),
            Value::Float(f) => Some(ruby_float_to_s(*f)),
            Value::Bool(b) => Some(b.to_string()),
            Value::Null | Value::Array(_) | Value::Object(_) => None,
        }
    }

    /// The value under `key` if this is an object holding it.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Object(pairs) => pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The integer, if this is one that fits in an `i64`.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Integer(i) => i.as_i64(),
            _ => None,
        }
    }

    /// The elements, if this is an array.
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(items) => Some(items),
            _ => None,
        }
    }

    /// The key/value pairs in order, if this is an object.
    pub fn as_object(&self) -> Option<&[(String, Value)]> {
        match self {
            Value::Object(pairs) => Some(pairs),
            _ => None,
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

impl From<i64> for Value {
    fn from(n: i64) -> Self {
        Value::Integer(n.into())
    }
}

/// An integer of any size, like Ruby's Integer: an `i64` when it fits, else its decimal text.
///
/// The representation is normalised (text only beyond the `i64` range), so `==` compares
/// values.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Integer(IntRepr);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum IntRepr {
    Small(i64),
    /// Canonical decimal: optional `-`, no leading zeros, outside the `i64` range.
    Big(Box<str>),
}

impl Integer {
    /// Reads JSON's integer grammar, `-?(0|[1-9][0-9]*)`, of any length; `None` otherwise.
    pub fn from_decimal(text: &str) -> Option<Self> {
        let digits = text.strip_prefix('-').unwrap_or(text).as_bytes();
        let canonical = match digits {
            [b'0'] => true,
            [b'1'..=b'9', rest @ ..] => rest.iter().all(u8::is_ascii_digit),
            _ => false,
        };
        canonical.then(|| Self::from_json_digits(text.starts_with('-'), digits, text))
    }

    /// `digits` is the magnitude of `text`, already checked against the JSON grammar.
    fn from_json_digits(negative: bool, digits: &[u8], text: &str) -> Self {
        let mut magnitude: u64 = 0;
        for &d in digits {
            match magnitude
                .checked_mul(10)
                .and_then(|m| m.checked_add(u64::from(d - b'0')))
            {
                Some(m) => magnitude = m,
                None => return Integer(IntRepr::Big(text.into())),
            }
        }
        let small = if negative {
            // i64::MIN's magnitude is one more than i64::MAX.
            (magnitude <= 1 << 63).then(|| (magnitude as i64).wrapping_neg())
        } else {
            i64::try_from(magnitude).ok()
        };
        match small {
            Some(n) => Integer(IntRepr::Small(n)),
            None => Integer(IntRepr::Big(text.into())),
        }
    }

    /// The value, if it fits in an `i64`.
    pub fn as_i64(&self) -> Option<i64> {
        match self.0 {
            IntRepr::Small(n) => Some(n),
            IntRepr::Big(_) => None,
        }
    }

    fn write_to(&self, out: &mut Vec<u8>) {
        match &self.0 {
            IntRepr::Small(n) => write_i64(out, *n),
            IntRepr::Big(text) => out.extend_from_slice(text.as_bytes()),
        }
    }
}

impl From<i64> for Integer {
    fn from(n: i64) -> Self {
        Integer(IntRepr::Small(n))
    }
}

impl From<i32> for Integer {
    fn from(n: i32) -> Self {
        Integer(IntRepr::Small(n.into()))
    }
}

impl From<u32> for Integer {
    fn from(n: u32) -> Self {
        Integer(IntRepr::Small(n.into()))
    }
}

impl From<u64> for Integer {
    fn from(n: u64) -> Self {
        match i64::try_from(n) {
            Ok(small) => Integer(IntRepr::Small(small)),
            Err(_) => Integer(IntRepr::Big(n.to_string().into())),
        }
    }
}

impl fmt::Display for Integer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            IntRepr::Small(n) => write!(f, "{n}"),
            IntRepr::Big(text) => f.write_str(text),
        }
    }
}

mod canonical;
mod parse;
mod ruby_float;
mod write;

#[cfg(test)]
mod tests;

pub use canonical::{Reencoded, reencode, reencode_with};
pub use parse::{ParseError, parse};
pub use write::{Escaping, write_str, write_str_with, write_value, write_value_with};

use ruby_float::ruby_float_to_s;
use write::write_i64;
