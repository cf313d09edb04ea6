//! JSON the way Rails reads and writes it.
//!
//! - [`parse`] is Ruby's `JSON.parse` as `ActiveSupport::JSON.decode` calls it (json 2.6.1,
//!   `quirks_mode: true`): what it accepts, what it refuses, and the odd values it produces.
//! - [`write_value`] and [`write_str`] are `ActiveSupport::JSON.encode` (Rails 6.1–8.0 with
//!   json ≤ 2.9; protocol.md §4.4).
//! - [`reencode`] is the broadcast path (protocol.md §4.2–4.3): decode then encode, with a
//!   scan that proves most payloads are already canonical so they can be spliced as is.
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

use std::collections::HashMap;
use std::fmt::{self, Write as _};

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

/// Why a text is not JSON as Ruby reads it, and where (a byte offset into the input).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    offset: usize,
    reason: &'static str,
}

impl ParseError {
    /// Byte offset into the input where parsing stopped.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// A short, fixed description of the problem.
    pub fn reason(&self) -> &'static str {
        self.reason
    }

    /// Whether the input was refused for nesting deeper than `max_depth` (Ruby's
    /// `JSON::NestingError`).
    pub fn is_too_deep(&self) -> bool {
        self.reason == TOO_DEEP
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.reason, self.offset)
    }
}

impl std::error::Error for ParseError {}

const UNEXPECTED_END: &str = "unexpected end of input";
const UNEXPECTED_BYTE: &str = "unexpected byte";
const TRAILING: &str = "unexpected data after the value";
const TOO_DEEP: &str = "nesting too deep";
const BAD_NUMBER: &str = "malformed number";
const BAD_COMMENT: &str = "malformed or unterminated comment";
const UNTERMINATED_STRING: &str = "unterminated string";
const CONTROL_IN_STRING: &str = "raw control character in string";
const BAD_UNICODE_ESCAPE: &str = "malformed \\u escape";
const INCOMPLETE_ESCAPE: &str = "incomplete unicode character escape sequence";
const INCOMPLETE_SURROGATE: &str = "incomplete surrogate pair";
const INVALID_UTF8: &str = "string is not valid UTF-8";

/// Parse like Ruby `ActiveSupport::JSON.decode` (= `JSON.parse(text, quirks_mode: true)`,
/// json gem 2.6.1): any value at top level, surrounding whitespace and comments allowed,
/// nesting deeper than `max_depth` refused (Ruby's default is 100: depth 101 is an error),
/// NaN/Infinity refused, strings that are not valid UTF-8 refused.
///
/// Unlike Ruby's `max_nesting`, 0 does not mean "unlimited": it allows scalars only. Keep
/// `max_depth` modest; dropping and writing values recurse once per level.
///
/// # Errors
///
/// Whenever Ruby would raise `JSON::ParserError` (or `JSON::NestingError`), and for strings
/// that are not valid UTF-8 (see the module docs).
pub fn parse(input: &[u8], max_depth: usize) -> Result<Value, ParseError> {
    let mut tree = TreeBuilder::default();
    Reader::new(input).document(&mut tree, max_depth)?;
    // A successful document always delivers exactly one value.
    tree.result.ok_or(ParseError {
        offset: 0,
        reason: UNEXPECTED_END,
    })
}

/// What the [`Reader`] reports, in document order. Two implementations: [`TreeBuilder`]
/// (for [`parse`]) and [`Writer`] (the slow path of [`reencode`], which writes
/// ActiveSupport's output directly instead of building a tree only to walk it).
trait Sink {
    fn open(&mut self, object: bool);
    fn close(&mut self, object: bool);
    /// A `,` between two elements or members.
    fn separator(&mut self);
    /// An object key (see [`Sink::string`]); its value follows.
    fn key(&mut self, key: &[u8], clean: bool);
    /// A string's bytes, valid UTF-8; `clean` when it holds nothing ActiveSupport escapes.
    fn string(&mut self, s: &[u8], clean: bool);
    /// `token` is `-?(0|[1-9][0-9]*)`; `digits` is it without the sign.
    fn integer(&mut self, negative: bool, digits: &[u8], token: &str);
    /// `token` is a JSON float (it has a fraction or an exponent).
    fn float(&mut self, token: &str);
    fn literal(&mut self, value: Literal);
}

/// The three keywords.
#[derive(Clone, Copy)]
enum Literal {
    Null,
    True,
    False,
}

/// The grammar of json 2.6.1's parser, reporting to a [`Sink`].
struct Reader<'a> {
    input: &'a [u8],
    pos: usize,
    /// Unescaped bytes of the current string, reused from string to string.
    scratch: Vec<u8>,
}

impl<'a> Reader<'a> {
    fn new(input: &'a [u8]) -> Self {
        Reader {
            input,
            pos: 0,
            scratch: Vec::new(),
        }
    }

    fn fail<T>(&self, reason: &'static str) -> Result<T, ParseError> {
        Err(ParseError {
            offset: self.pos,
            reason,
        })
    }

    fn fail_here<T>(&self) -> Result<T, ParseError> {
        self.fail(if self.pos < self.input.len() {
            UNEXPECTED_BYTE
        } else {
            UNEXPECTED_END
        })
    }

    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    /// One value and nothing but whitespace after it. Iterative, with the open containers
    /// in a `Vec`, so deep input costs no native stack.
    fn document(&mut self, sink: &mut impl Sink, max_depth: usize) -> Result<(), ParseError> {
        // Kind of each open container: true for an object.
        let mut open: Vec<bool> = Vec::new();
        self.skip_ignored()?;
        'value: loop {
            match self.peek() {
                Some(bracket @ (b'[' | b'{')) => {
                    // Ruby checks the depth on entering, before looking inside.
                    if open.len() >= max_depth {
                        return self.fail(TOO_DEEP);
                    }
                    let object = bracket == b'{';
                    self.pos += 1;
                    self.skip_ignored()?;
                    sink.open(object);
                    if self.peek() == Some(if object { b'}' } else { b']' }) {
                        self.pos += 1;
                        sink.close(object);
                    } else {
                        open.push(object);
                        if object {
                            self.key(sink)?;
                        }
                        continue 'value;
                    }
                }
                Some(b'"') => {
                    let (s, clean) = self.string()?;
                    sink.string(s, clean);
                }
                Some(b'-' | b'0'..=b'9') => self.number(sink)?,
                Some(b'n') => self.literal(sink, b"null", Literal::Null)?,
                Some(b't') => self.literal(sink, b"true", Literal::True)?,
                Some(b'f') => self.literal(sink, b"false", Literal::False)?,
                _ => return self.fail_here(),
            }
            loop {
                self.skip_ignored()?;
                let Some(&object) = open.last() else {
                    return if self.pos == self.input.len() {
                        Ok(())
                    } else {
                        self.fail(TRAILING)
                    };
                };
                match self.peek() {
                    Some(b',') => {
                        self.pos += 1;
                        self.skip_ignored()?;
                        sink.separator();
                        if object {
                            self.key(sink)?;
                        }
                        continue 'value;
                    }
                    Some(b']') if !object => {
                        self.pos += 1;
                        open.pop();
                        sink.close(false);
                    }
                    Some(b'}') if object => {
                        self.pos += 1;
                        open.pop();
                        sink.close(true);
                    }
                    _ => return self.fail_here(),
                }
            }
        }
    }

    /// Whitespace and comments, which json 2.6.1 allows between any two tokens.
    fn skip_ignored(&mut self) -> Result<(), ParseError> {
        loop {
            match self.peek() {
                Some(b' ' | b'\t' | b'\n' | b'\r') => self.pos += 1,
                Some(b'/') => {
                    let rest = &self.input[self.pos..];
                    let len = match rest.get(1) {
                        Some(b'*') => rest[2..].windows(2).position(|w| w == b"*/").map(|i| i + 4),
                        Some(b'/') => rest[2..].iter().position(|&b| b == b'\n').map(|i| i + 3),
                        _ => None,
                    };
                    match len {
                        Some(len) => self.pos += len,
                        None => return self.fail(BAD_COMMENT),
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    /// An object key and its `:`, leaving the position at the value.
    fn key(&mut self, sink: &mut impl Sink) -> Result<(), ParseError> {
        if self.peek() != Some(b'"') {
            return self.fail_here();
        }
        let (key, clean) = self.string()?;
        sink.key(key, clean);
        self.skip_ignored()?;
        if self.peek() != Some(b':') {
            return self.fail_here();
        }
        self.pos += 1;
        self.skip_ignored()
    }

    fn literal(
        &mut self,
        sink: &mut impl Sink,
        word: &[u8],
        value: Literal,
    ) -> Result<(), ParseError> {
        if !self.input[self.pos..].starts_with(word) {
            return self.fail_here();
        }
        self.pos += word.len();
        sink.literal(value);
        Ok(())
    }

    fn number(&mut self, sink: &mut impl Sink) -> Result<(), ParseError> {
        let input = self.input;
        let start = self.pos;
        let negative = input[start] == b'-';
        let int_start = start + usize::from(negative);
        let mut i = int_start;
        match input.get(i) {
            Some(b'0') => i += 1,
            Some(b'1'..=b'9') => i = skip_digits(input, i + 1),
            _ => {
                self.pos = i;
                return self.fail(BAD_NUMBER);
            }
        }
        let int_end = i;
        // Where Ruby's float machine fails it falls back to the integer machine, but the
        // byte after that integer (`.`, `e`, `-`) is then always an error, so failing here
        // gives the same verdict.
        if input.get(i) == Some(&b'.') {
            if !input.get(i + 1).is_some_and(u8::is_ascii_digit) {
                self.pos = i;
                return self.fail(BAD_NUMBER);
            }
            i = skip_digits(input, i + 2);
        }
        if matches!(input.get(i), Some(b'e' | b'E')) {
            i += 1;
            if matches!(input.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            if !input.get(i).is_some_and(u8::is_ascii_digit) {
                self.pos = i;
                return self.fail(BAD_NUMBER);
            }
            i = skip_digits(input, i + 1);
        }
        self.pos = i;
        let Ok(token) = std::str::from_utf8(&input[start..i]) else {
            return self.fail(BAD_NUMBER);
        };
        if i == int_end {
            sink.integer(negative, &input[int_start..int_end], token);
        } else {
            sink.float(token);
        }
        Ok(())
    }

    /// A string starting at the opening quote: its unescaped bytes (valid UTF-8), and whether
    /// ActiveSupport would write them back unchanged.
    fn string(&mut self) -> Result<(&[u8], bool), ParseError> {
        let input = self.input;
        let start = self.pos + 1;
        let mut i = start;
        let mut escaped = false;
        let mut dirty = false;
        let mut invalid_at = None;
        // First find the end the way the tokenizer does (`\` pairs with the next byte),
        // noting what the writer will need to know on the way.
        let end = loop {
            while i < input.len() && STRING_CLASS[usize::from(input[i])] == PLAIN {
                i += 1;
            }
            let Some(&b) = input.get(i) else {
                self.pos = i;
                return self.fail(UNTERMINATED_STRING);
            };
            match STRING_CLASS[usize::from(b)] {
                HTML => {
                    dirty = true;
                    i += 1;
                }
                HIGH => match utf8_sequence(&input[i..]) {
                    Some((len, separator)) => {
                        dirty |= separator;
                        i += len;
                    }
                    // Not an error yet: an escape further on may swallow this byte.
                    None => {
                        invalid_at.get_or_insert(i);
                        i += 1;
                    }
                },
                _ if b == b'"' => break i,
                _ if b == b'\\' => {
                    escaped = true;
                    match input.get(i + 1) {
                        Some(b'u') => {
                            let hex_ok = input
                                .get(i + 2..i + 6)
                                .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit));
                            if !hex_ok {
                                self.pos = i;
                                return self.fail(BAD_UNICODE_ESCAPE);
                            }
                            i += 6;
                        }
                        Some(&c) if c < 0x20 => {
                            self.pos = i + 1;
                            return self.fail(CONTROL_IN_STRING);
                        }
                        Some(_) => i += 2,
                        None => {
                            self.pos = i + 1;
                            return self.fail(UNTERMINATED_STRING);
                        }
                    }
                }
                _ => {
                    self.pos = i;
                    return self.fail(CONTROL_IN_STRING);
                }
            }
        };
        self.pos = end + 1;
        if !escaped {
            return match invalid_at {
                None => Ok((&input[start..end], !dirty)),
                Some(offset) => Err(ParseError {
                    offset,
                    reason: INVALID_UTF8,
                }),
            };
        }
        self.scratch.clear();
        unescape(&mut self.scratch, input, start, end)?;
        match std::str::from_utf8(&self.scratch) {
            Ok(_) => Ok((&self.scratch, false)),
            Err(_) => Err(ParseError {
                offset: start,
                reason: INVALID_UTF8,
            }),
        }
    }
}

/// Classes of string bytes for [`Reader::string`].
const PLAIN: u8 = 0;
/// `<`, `>`, `&`: fine in the input, escaped by ActiveSupport.
const HTML: u8 = 1;
/// Start of a multi-byte sequence (or an invalid byte).
const HIGH: u8 = 2;
/// `"`, `\` and control characters.
const SPECIAL: u8 = 3;

static STRING_CLASS: [u8; 256] = {
    let mut t = [PLAIN; 256];
    let mut b = 0;
    while b < 0x20 {
        t[b] = SPECIAL;
        b += 1;
    }
    let mut b = 0x80;
    while b < 0x100 {
        t[b] = HIGH;
        b += 1;
    }
    t[b'"' as usize] = SPECIAL;
    t[b'\\' as usize] = SPECIAL;
    t[b'<' as usize] = HTML;
    t[b'>' as usize] = HTML;
    t[b'&' as usize] = HTML;
    t
};

/// Builds the [`Value`] tree for [`parse`].
#[derive(Default)]
struct TreeBuilder {
    /// Open containers; an object also holds the key its next value belongs to.
    stack: Vec<Frame>,
    result: Option<Value>,
}

enum Frame {
    Array(Vec<Value>),
    Object(Vec<(String, Value)>, String),
}

impl TreeBuilder {
    fn value(&mut self, value: Value) {
        match self.stack.last_mut() {
            None => self.result = Some(value),
            Some(Frame::Array(items)) => items.push(value),
            Some(Frame::Object(pairs, key)) => pairs.push((std::mem::take(key), value)),
        }
    }
}

impl Sink for TreeBuilder {
    fn open(&mut self, object: bool) {
        self.stack.push(if object {
            Frame::Object(Vec::new(), String::new())
        } else {
            Frame::Array(Vec::new())
        });
    }

    fn close(&mut self, _object: bool) {
        match self.stack.pop() {
            Some(Frame::Array(items)) => self.value(Value::Array(items)),
            Some(Frame::Object(pairs, _)) => {
                self.value(Value::Object(collapse_duplicate_keys(pairs)));
            }
            None => {}
        }
    }

    fn separator(&mut self) {}

    fn key(&mut self, key: &[u8], _clean: bool) {
        if let Some(Frame::Object(_, slot)) = self.stack.last_mut() {
            *slot = utf8_string(key);
        }
    }

    fn string(&mut self, s: &[u8], _clean: bool) {
        self.value(Value::String(utf8_string(s)));
    }

    fn integer(&mut self, negative: bool, digits: &[u8], token: &str) {
        self.value(Value::Integer(Integer::from_json_digits(
            negative, digits, token,
        )));
    }

    fn float(&mut self, token: &str) {
        // Ruby reads floats with David Gay's correctly rounded strtod, as Rust does; a
        // grammatical token always parses (overflow gives infinity).
        self.value(Value::Float(token.parse().unwrap_or(f64::NAN)));
    }

    fn literal(&mut self, value: Literal) {
        self.value(match value {
            Literal::Null => Value::Null,
            Literal::True => Value::Bool(true),
            Literal::False => Value::Bool(false),
        });
    }
}

/// Writes ActiveSupport's encoding of the document as it is read: the slow path of
/// [`reencode`], without a tree. Duplicate keys are rare and only known at the end of an
/// object, so an object that has them is re-read from the output and written again.
struct Writer {
    out: Vec<u8>,
    /// For each open object: where it starts in `out`, and its first entry in `keys`.
    objects: Vec<(usize, usize)>,
    /// Where each key of the open objects sits in `out` (quotes included). Written keys are
    /// canonical, so equal keys have equal bytes.
    keys: Vec<(usize, usize)>,
}

impl Sink for Writer {
    fn open(&mut self, object: bool) {
        if object {
            self.objects.push((self.out.len(), self.keys.len()));
            self.out.push(b'{');
        } else {
            self.out.push(b'[');
        }
    }

    fn close(&mut self, object: bool) {
        if !object {
            self.out.push(b']');
            return;
        }
        self.out.push(b'}');
        let Some((start, first_key)) = self.objects.pop() else {
            return;
        };
        let keys = &self.keys[first_key..];
        if spans_repeat(&self.out, keys) {
            // Our own output: valid, canonical, and no deeper than the input.
            if let Ok(value) = parse(&self.out[start..], usize::MAX) {
                self.out.truncate(start);
                write_value(&mut self.out, &value);
            }
        }
        self.keys.truncate(first_key);
    }

    fn separator(&mut self) {
        self.out.push(b',');
    }

    fn key(&mut self, key: &[u8], clean: bool) {
        let start = self.out.len();
        self.string(key, clean);
        self.keys.push((start, self.out.len()));
        self.out.push(b':');
    }

    fn string(&mut self, s: &[u8], clean: bool) {
        if clean {
            self.out.reserve(s.len() + 2);
            self.out.push(b'"');
            self.out.extend_from_slice(s);
            self.out.push(b'"');
        } else {
            write_escaped(&mut self.out, s);
        }
    }

    fn integer(&mut self, _negative: bool, _digits: &[u8], token: &str) {
        // The grammar already rules out leading zeros; only "-0" is not canonical.
        let canonical = if token == "-0" { "0" } else { token };
        self.out.extend_from_slice(canonical.as_bytes());
    }

    fn float(&mut self, token: &str) {
        if short_float_is_canonical(token.as_bytes()) == Some(true) {
            self.out.extend_from_slice(token.as_bytes());
        } else {
            write_float(&mut self.out, token.parse().unwrap_or(f64::NAN));
        }
    }

    fn literal(&mut self, value: Literal) {
        self.out.extend_from_slice(match value {
            Literal::Null => b"null",
            Literal::True => b"true",
            Literal::False => b"false",
        });
    }
}

/// A `String` of bytes the [`Reader`] has already checked; never lossy in practice.
fn utf8_string(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Whether two of the `(start, end)` byte ranges of `out` hold equal bytes.
fn spans_repeat(out: &[u8], spans: &[(usize, usize)]) -> bool {
    let text = |&(start, end): &(usize, usize)| &out[start..end];
    match spans.len() {
        0 | 1 => false,
        n if n <= 16 => (1..n).any(|i| spans[..i].iter().any(|s| text(s) == text(&spans[i]))),
        _ => {
            let mut keys: Vec<&[u8]> = spans.iter().map(text).collect();
            keys.sort_unstable();
            keys.windows(2).any(|w| w[0] == w[1])
        }
    }
}

fn skip_digits(input: &[u8], mut i: usize) -> usize {
    while input.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    i
}

/// json 2.6.1's `json_string_unescape`, step for step, over `input[start..end]`, where
/// `input[end]` is the closing quote. After a swallowed byte its pairing of backslashes can
/// differ from the tokenizer's, and it may then read the closing quote itself; mirroring it
/// exactly is what keeps the odd results identical.
fn unescape(out: &mut Vec<u8>, input: &[u8], start: usize, end: usize) -> Result<(), ParseError> {
    let (mut p, mut pe) = (start, start);
    while pe < end {
        if input[pe] != b'\\' {
            pe += 1;
            continue;
        }
        out.extend_from_slice(&input[p..pe]);
        pe += 1;
        match input[pe] {
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'"' => out.push(b'"'),
            b'\\' => out.push(b'\\'),
            b'b' => out.push(0x08),
            b'f' => out.push(0x0c),
            b'u' => {
                if pe + 4 > end {
                    return Err(ParseError {
                        offset: pe,
                        reason: INCOMPLETE_ESCAPE,
                    });
                }
                let mut ch = hex4(&input[pe + 1..pe + 5]);
                pe += 4;
                if ch & 0xFC00 == 0xD800 {
                    pe += 1;
                    if pe + 6 > end {
                        return Err(ParseError {
                            offset: pe,
                            reason: INCOMPLETE_SURROGATE,
                        });
                    }
                    if input[pe] == b'\\' && input[pe + 1] == b'u' {
                        let low = hex4(&input[pe + 2..pe + 6]);
                        ch =
                            (((ch & 0x3F) << 10) | ((((ch >> 6) & 0xF) + 1) << 16)) | (low & 0x3FF);
                        pe += 5;
                    } else {
                        out.push(b'?');
                        pe += 1;
                        p = pe;
                        continue;
                    }
                }
                push_utf32(out, ch);
            }
            _ => {
                // Unknown escape: drop the backslash, keep the byte.
                p = pe;
                continue;
            }
        }
        pe += 1;
        p = pe;
    }
    if pe > p {
        out.extend_from_slice(&input[p..pe]);
    }
    Ok(())
}

/// `unescape_unicode`: four hex digits, or U+FFFD if any is not one.
fn hex4(h: &[u8]) -> u32 {
    h.iter()
        .try_fold(0, |acc, &b| Some((acc << 4) | char::from(b).to_digit(16)?))
        .unwrap_or(0xFFFD)
}

/// `convert_UTF32_to_UTF8`, which also encodes surrogates (the caller validates).
fn push_utf32(out: &mut Vec<u8>, ch: u32) {
    // The casts keep the low bits on purpose, as the C code does.
    if ch <= 0x7F {
        out.push(ch as u8);
    } else if ch <= 0x7FF {
        out.extend_from_slice(&[(ch >> 6) as u8 | 0xC0, (ch & 0x3F) as u8 | 0x80]);
    } else if ch <= 0xFFFF {
        out.extend_from_slice(&[
            (ch >> 12) as u8 | 0xE0,
            ((ch >> 6) & 0x3F) as u8 | 0x80,
            (ch & 0x3F) as u8 | 0x80,
        ]);
    } else {
        out.extend_from_slice(&[
            (ch >> 18) as u8 | 0xF0,
            ((ch >> 12) & 0x3F) as u8 | 0x80,
            ((ch >> 6) & 0x3F) as u8 | 0x80,
            (ch & 0x3F) as u8 | 0x80,
        ]);
    }
}

/// Ruby's `Hash#[]=` semantics for a finished object. Duplicates are rare, so first check
/// cheaply whether there are any.
fn collapse_duplicate_keys(pairs: Vec<(String, Value)>) -> Vec<(String, Value)> {
    let has_duplicates = match pairs.len() {
        0 | 1 => false,
        n if n <= 16 => (1..n).any(|i| pairs[..i].iter().any(|(k, _)| *k == pairs[i].0)),
        _ => {
            let mut keys: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
            keys.sort_unstable();
            keys.windows(2).any(|w| w[0] == w[1])
        }
    };
    if !has_duplicates {
        return pairs;
    }
    let mut out: Vec<(String, Value)> = Vec::with_capacity(pairs.len());
    let mut index: HashMap<String, usize> = HashMap::with_capacity(pairs.len());
    for (key, value) in pairs {
        match index.get(&key) {
            Some(&i) => out[i].1 = value,
            None => {
                index.insert(key.clone(), out.len());
                out.push((key, value));
            }
        }
    }
    out
}

/// Append ActiveSupport::JSON.encode(value): compact, keys in order, strings as
/// [`write_str`], integers exact, floats as Ruby `Float#to_s` (what json ≤ 2.9 writes),
/// NaN and ±Infinity as `null`.
pub fn write_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Integer(i) => i.write_to(out),
        Value::Float(f) => write_float(out, *f),
        Value::String(s) => write_str(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, item);
            }
            out.push(b']');
        }
        Value::Object(pairs) => {
            out.push(b'{');
            for (i, (key, item)) in pairs.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_str(out, key);
                out.push(b':');
                write_value(out, item);
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
/// (used to echo identifiers: protocol.md §2): `"` and `\` escaped, `\b \f \n \r \t`, other
/// C0 controls as lowercase `\u00XX`, DEL, `/` and other non-ASCII raw, then `<` `>` `&` as
/// `\u003c` `\u003e` `\u0026` and U+2028/U+2029 as `\u2028`/`\u2029`.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    write_escaped(out, s.as_bytes());
}

/// [`write_str`] for bytes known to be valid UTF-8.
fn write_escaped(out: &mut Vec<u8>, bytes: &[u8]) {
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
                Some([0x80, 0xA8]) => (b"\\u2028", 3),
                Some([0x80, 0xA9]) => (b"\\u2029", 3),
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

fn write_i64(out: &mut Vec<u8>, n: i64) {
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

fn write_float(out: &mut Vec<u8>, f: f64) {
    if f.is_finite() {
        let mut buf = FloatText::new();
        out.extend_from_slice(buf.ruby(f));
    } else {
        out.extend_from_slice(b"null");
    }
}

/// Ruby's `Float#to_s`, non-finite values included (`"Infinity"`, `"NaN"`).
fn ruby_float_to_s(f: f64) -> String {
    if f.is_nan() {
        "NaN".to_owned()
    } else if f.is_infinite() {
        if f > 0.0 { "Infinity" } else { "-Infinity" }.to_owned()
    } else {
        let mut buf = FloatText::new();
        String::from_utf8_lossy(buf.ruby(f)).into_owned()
    }
}

/// A stack buffer for one formatted float, so that formatting never allocates.
struct FloatText {
    buf: [u8; 32],
    len: usize,
}

impl fmt::Write for FloatText {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        self.buf
            .get_mut(self.len..end)
            .ok_or(fmt::Error)?
            .copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

impl FloatText {
    fn new() -> Self {
        FloatText {
            buf: [0; 32],
            len: 0,
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }

    fn push_zeros(&mut self, n: usize) {
        self.buf[self.len..self.len + n].fill(b'0');
        self.len += n;
    }

    /// `flo_to_s` from Ruby's numeric.c for a finite `f`. Its digits come from dtoa mode 0:
    /// the shortest that round-trip, the nearest of those, a tie going to the even digit.
    /// Rust's `{:e}` gives the same digits except on that tie, where it rounds up; its exact
    /// mode (`{:.N e}`) rounds half to even, so a possible tie is settled with it.
    fn ruby(&mut self, f: f64) -> &[u8] {
        let v = f.abs();
        if let Some((mut c, decpt)) = short_decimal(v) {
            while c % 10 == 0 {
                c /= 10;
            }
            let mut digits = [0u8; 15];
            let mut at = digits.len();
            while c > 0 {
                at -= 1;
                digits[at] = b'0' + (c % 10) as u8;
                c /= 10;
            }
            return self.layout(f.is_sign_negative(), &digits[at..], decpt);
        }
        self.ruby_general(f)
    }

    /// [`FloatText::ruby`] through `{:e}`, for any finite `f`.
    fn ruby_general(&mut self, f: f64) -> &[u8] {
        let v = f.abs();
        self.len = 0;
        // Cannot fail: `{:e}` of an f64 is at most 24 bytes ("2.2250738585072014e-308").
        let _ = write!(self, "{v:e}");
        let mut digits = Digits::read(&self.buf[..self.len]);
        if digits.last_is_odd() && tie_possible(v, &digits) {
            self.len = 0;
            let _ = write!(self, "{:.*e}", digits.len - 1, v);
            let exact = &self.buf[..self.len];
            let other = Digits::read(exact);
            let round_trips = std::str::from_utf8(exact)
                .ok()
                .and_then(|text| text.parse::<f64>().ok())
                == Some(v);
            if other.digits() != digits.digits() && round_trips {
                digits = other;
            }
        }
        self.layout(f.is_sign_negative(), digits.digits(), digits.exponent + 1)
    }

    /// The rest of `flo_to_s`: `digits` (no leading or trailing zeros, except a lone "0")
    /// are the significant digits, `decpt` where the decimal point goes (value =
    /// 0.digits × 10^decpt).
    fn layout(&mut self, negative: bool, digits: &[u8], decpt: i32) -> &[u8] {
        let digs = digits.len();
        self.len = 0;
        if negative {
            self.push(b"-");
        }
        if decpt > 0 && (decpt as usize) < digs {
            let (int, frac) = digits.split_at(decpt as usize);
            self.push(int);
            self.push(b".");
            self.push(frac);
        } else if decpt > 0 && decpt <= 15 {
            self.push(digits);
            self.push_zeros(decpt as usize - digs);
            self.push(b".0");
        } else if decpt <= 0 && decpt > -4 {
            self.push(b"0.");
            self.push_zeros(decpt.unsigned_abs() as usize);
            self.push(digits);
        } else {
            self.push(&digits[..1]);
            self.push(b".");
            if digs > 1 {
                self.push(&digits[1..]);
            } else {
                self.push(b"0");
            }
            let e = decpt - 1;
            self.push(if e < 0 { b"e-" } else { b"e+" });
            let e = e.unsigned_abs();
            if e >= 100 {
                self.push(&[b'0' + (e / 100) as u8]);
            }
            self.push(&[b'0' + (e / 10 % 10) as u8, b'0' + (e % 10) as u8]);
        }
        &self.buf[..self.len]
    }
}

/// Powers of ten that are exact doubles.
const EXACT_POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// The decimal `c × 10^-k` with the fewest digits that reads back as `v` (positive), when
/// one with at most 15 significant digits exists (prices, counts, most human numbers):
/// returned as `c` (may end in zeros) and `decpt` as in [`FloatText::layout`]. Such a decimal
/// is the only one of ≤ 15 digits mapping to `v` (15 digits always survive a trip through a
/// double), so it is what dtoa's shortest mode prints, ties and all, and costs a few
/// multiplications instead of a `{:e}`. `None` means "use the general path".
fn short_decimal(v: f64) -> Option<(u64, i32)> {
    if !(1e-7..1e15).contains(&v) {
        return None;
    }
    for (k, &scale) in EXACT_POW10.iter().enumerate() {
        let x = v * scale;
        if x >= 1e15 {
            return None;
        }
        // Truncation is one instruction where `round` is a libm call; the check below makes
        // any rounding choice safe.
        let c = (x + 0.5) as u64;
        let candidate = c as f64;
        // A true hit is within an ulp or two of x: skip the division for everything else.
        if (candidate - x).abs() > x * 1e-12 {
            continue;
        }
        // c < 2^53 and scale are exact, so the division rounds correctly: it is the double
        // nearest to the decimal, exactly as parsing its text would give.
        if c > 0 && candidate / scale == v {
            return Some((c, (c.ilog10() + 1) as i32 - k as i32));
        }
    }
    None
}

/// Whether the exact value of `v` (finite, positive) lies exactly halfway between two
/// candidates of `shortest`'s length, which needs its exact decimal expansion to have one
/// digit more than `shortest`. Cheap and exact except for huge integers, where it says yes
/// and lets the caller check.
fn tie_possible(v: f64, shortest: &Digits) -> bool {
    let bits = v.to_bits();
    let biased = ((bits >> 52) & 0x7FF) as i32;
    let fraction = bits & ((1 << 52) - 1);
    let (mut m, mut e2) = if biased == 0 {
        (fraction, -1074)
    } else {
        (fraction | 1 << 52, biased - 1075)
    };
    if m == 0 {
        return false;
    }
    e2 += m.trailing_zeros() as i32;
    m >>= m.trailing_zeros();
    let wanted = shortest.len as i32 + 1;
    if e2 < 0 {
        // m / 2^k with m odd ends exactly at the k-th decimal, in a 5.
        shortest.exponent + 1 - e2 == wanted
    } else if e2 <= 10 {
        let mut x = m << e2;
        while x % 10 == 0 {
            x /= 10;
        }
        x.ilog10() as i32 + 1 == wanted
    } else {
        true
    }
}

/// The significant digits and decimal exponent of a `{:e}`-formatted float.
struct Digits {
    buf: [u8; 17],
    len: usize,
    exponent: i32,
}

impl Digits {
    /// Reads `d[.ddd]e[-]x`; `{:e}` of an f64 never has more than 17 digits.
    fn read(sci: &[u8]) -> Self {
        let e_at = sci.iter().position(|&b| b == b'e').unwrap_or(sci.len());
        let mut digits = Digits {
            buf: [b'0'; 17],
            len: 0,
            exponent: std::str::from_utf8(&sci[(e_at + 1).min(sci.len())..])
                .ok()
                .and_then(|e| e.parse().ok())
                .unwrap_or(0),
        };
        for &d in sci[..e_at].iter().filter(|d| d.is_ascii_digit()).take(17) {
            digits.buf[digits.len] = d;
            digits.len += 1;
        }
        digits.len = digits.len.max(1);
        digits
    }

    fn digits(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    fn last_is_odd(&self) -> bool {
        self.buf[self.len - 1] & 1 == 1
    }
}

/// Outcome of re-encoding a broadcast payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reencoded {
    /// The payload is already exactly what ActiveSupport would write: splice it as is.
    Canonical,
    /// It is not: use these bytes.
    Rewritten(Vec<u8>),
}

/// Decode-then-encode a broadcast payload as Action Cable does (protocol.md §4.2–4.3).
///
/// A single validating scan first tries to prove the payload is already canonical (valid,
/// compact, only the escapes ActiveSupport writes, canonical numbers, no raw `<>&` or
/// U+2028/9, no duplicate keys) and then returns [`Reencoded::Canonical`] without
/// allocating; otherwise the payload is parsed and written again in one streaming pass.
///
/// # Errors
///
/// Exactly when Rails drops the broadcast: invalid JSON, nesting deeper than `max_depth`, or
/// a string that is not UTF-8 (Ruby parses that but cannot encode it), as for [`parse`].
pub fn reencode(payload: &[u8], max_depth: usize) -> Result<Reencoded, ParseError> {
    if is_canonical(payload, max_depth) {
        return Ok(Reencoded::Canonical);
    }
    let mut writer = Writer {
        out: Vec::with_capacity(payload.len() + payload.len() / 8),
        objects: Vec::new(),
        keys: Vec::new(),
    };
    Reader::new(payload).document(&mut writer, max_depth)?;
    let out = writer.out;
    // The scan gives up on some canonical inputs (very deep, very many keys).
    if out == payload {
        Ok(Reencoded::Canonical)
    } else {
        Ok(Reencoded::Rewritten(out))
    }
}

/// Deepest nesting the canonical scan tracks; deeper payloads take the slow path.
const SCAN_MAX_DEPTH: usize = 128;
/// Keys of the open objects the scan remembers for its duplicate check; more take the
/// slow path.
const SCAN_MAX_KEYS: usize = 64;
/// Marks the start of an object's keys in [`Scanner::keys`].
const KEY_MARK: (u32, u32) = (u32::MAX, 0);

/// Whether `input` is exactly what `write_value(parse(input))` would produce. `false` only
/// means "not proven": the caller then parses for real.
fn is_canonical(input: &[u8], max_depth: usize) -> bool {
    // Key positions are stored as u32.
    if input.len() >= u32::MAX as usize {
        return false;
    }
    let mut scanner = Scanner {
        input,
        pos: 0,
        is_object: [false; SCAN_MAX_DEPTH],
        depth: 0,
        keys: [KEY_MARK; SCAN_MAX_KEYS],
        key_count: 0,
    };
    scanner.document(max_depth.min(SCAN_MAX_DEPTH)).is_some()
}

struct Scanner<'a> {
    input: &'a [u8],
    pos: usize,
    /// Kind of each open container.
    is_object: [bool; SCAN_MAX_DEPTH],
    depth: usize,
    /// (start, len) of each key of each open object, keys included with their quotes. In
    /// canonical form equal strings have equal bytes, so raw bytes are compared.
    keys: [(u32, u32); SCAN_MAX_KEYS],
    key_count: usize,
}

/// Bytes a canonical string holds raw (all others need a closer look).
static CANONICAL_PLAIN: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0x20;
    while b < 0x80 {
        t[b] = true;
        b += 1;
    }
    t[b'"' as usize] = false;
    t[b'\\' as usize] = false;
    t[b'<' as usize] = false;
    t[b'>' as usize] = false;
    t[b'&' as usize] = false;
    t
};

impl Scanner<'_> {
    fn document(&mut self, max_depth: usize) -> Option<()> {
        'value: loop {
            match *self.input.get(self.pos)? {
                open @ (b'{' | b'[') => {
                    if self.depth >= max_depth {
                        return None;
                    }
                    let is_object = open == b'{';
                    let close = if is_object { b'}' } else { b']' };
                    if self.input.get(self.pos + 1) == Some(&close) {
                        self.pos += 2;
                    } else {
                        self.pos += 1;
                        self.open(is_object)?;
                        if is_object {
                            self.key()?;
                        }
                        continue 'value;
                    }
                }
                b'"' => self.string()?,
                b'-' | b'0'..=b'9' => self.number()?,
                b't' => self.literal(b"true")?,
                b'f' => self.literal(b"false")?,
                b'n' => self.literal(b"null")?,
                _ => return None,
            }
            loop {
                let Some(depth) = self.depth.checked_sub(1) else {
                    return (self.pos == self.input.len()).then_some(());
                };
                let is_object = self.is_object[depth];
                match (*self.input.get(self.pos)?, is_object) {
                    (b',', _) => {
                        self.pos += 1;
                        if is_object {
                            self.key()?;
                        }
                        continue 'value;
                    }
                    (b']', false) => {
                        self.pos += 1;
                        self.depth = depth;
                    }
                    (b'}', true) => {
                        self.pos += 1;
                        self.depth = depth;
                        while let Some(top) = self.key_count.checked_sub(1) {
                            self.key_count = top;
                            if self.keys[top] == KEY_MARK {
                                break;
                            }
                        }
                    }
                    _ => return None,
                }
            }
        }
    }

    fn open(&mut self, is_object: bool) -> Option<()> {
        *self.is_object.get_mut(self.depth)? = is_object;
        self.depth += 1;
        if is_object {
            *self.keys.get_mut(self.key_count)? = KEY_MARK;
            self.key_count += 1;
        }
        Some(())
    }

    /// A key, checked against the object's earlier keys, and its `:`.
    fn key(&mut self) -> Option<()> {
        let start = self.pos;
        if self.input.get(start) != Some(&b'"') {
            return None;
        }
        self.string()?;
        let key = &self.input[start..self.pos];
        for &(s, len) in self.keys[..self.key_count].iter().rev() {
            if (s, len) == KEY_MARK {
                break;
            }
            if len as usize == key.len() && &self.input[s as usize..][..key.len()] == key {
                return None;
            }
        }
        // Both fit: the input is shorter than u32::MAX.
        *self.keys.get_mut(self.key_count)? = (start as u32, key.len() as u32);
        self.key_count += 1;
        if self.input.get(self.pos) != Some(&b':') {
            return None;
        }
        self.pos += 1;
        Some(())
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        self.input[self.pos..].starts_with(word).then(|| {
            self.pos += word.len();
        })
    }

    fn string(&mut self) -> Option<()> {
        let input = self.input;
        let mut i = self.pos + 1;
        loop {
            while i < input.len() && CANONICAL_PLAIN[usize::from(input[i])] {
                i += 1;
            }
            match *input.get(i)? {
                b'"' => {
                    self.pos = i + 1;
                    return Some(());
                }
                b'\\' => i += canonical_escape_len(&input[i..])?,
                0x80.. => match utf8_sequence(&input[i..])? {
                    (len, false) => i += len,
                    (_, true) => return None,
                },
                _ => return None,
            }
        }
    }

    fn number(&mut self) -> Option<()> {
        let input = self.input;
        let start = self.pos;
        let mut i = start + usize::from(input[start] == b'-');
        match *input.get(i)? {
            b'0' => i += 1,
            b'1'..=b'9' => i = skip_digits(input, i + 1),
            _ => return None,
        }
        let int_end = i;
        if input.get(i) == Some(&b'.') {
            if !input.get(i + 1).is_some_and(u8::is_ascii_digit) {
                return None;
            }
            i = skip_digits(input, i + 2);
        }
        // Ruby writes a lowercase `e`; an `E` makes the caller fail, as it should.
        if input.get(i) == Some(&b'e') {
            i += 1;
            if matches!(input.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            if !input.get(i).is_some_and(u8::is_ascii_digit) {
                return None;
            }
            i = skip_digits(input, i + 1);
        }
        self.pos = i;
        let token = &input[start..i];
        if i == int_end {
            return (token != b"-0").then_some(());
        }
        float_is_canonical(token).then_some(())
    }
}

/// Whether a float token (JSON grammar) is what Ruby would print for it.
fn float_is_canonical(token: &[u8]) -> bool {
    if let Some(answer) = short_float_is_canonical(token) {
        return answer;
    }
    let Some(f) = std::str::from_utf8(token)
        .ok()
        .and_then(|t| t.parse::<f64>().ok())
        .filter(|f| f.is_finite())
    else {
        return false;
    };
    FloatText::new().ruby(f) == token
}

/// [`short_float_is_canonical`] for `int.frac` without an exponent, the common case, by the
/// rules of `flo_to_s` directly.
fn fixed_float_is_canonical(int: &[u8], frac: &[u8]) -> Option<bool> {
    if frac == b"0" {
        // "ddd.0": Ruby writes it so up to 15 integer digits (a zero too, "-0.0" included).
        return Some(int.len() <= 15);
    }
    if frac.last() == Some(&b'0') {
        return Some(false);
    }
    let significant = if int == b"0" {
        // "0.000ddd": at most three zeros after the point, else Ruby uses an exponent.
        let zeros = frac.iter().take_while(|&&d| d == b'0').count();
        if zeros > 3 {
            return Some(false);
        }
        frac.len() - zeros
    } else {
        int.len() + frac.len()
    };
    (significant <= 15).then_some(true)
}

/// Decides without parsing when the token has at most 15 significant digits in the normal
/// range: such a decimal survives the trip through a double, so no shorter one maps to the
/// same double and its digits are the shortest; only the layout needs checking. `None` when
/// the token is outside that case.
fn short_float_is_canonical(token: &[u8]) -> Option<bool> {
    let unsigned = token.strip_prefix(b"-").unwrap_or(token);
    if let Some(point) = unsigned.iter().position(|&b| b == b'.') {
        let (int, frac) = (&unsigned[..point], &unsigned[point + 1..]);
        if frac.iter().all(u8::is_ascii_digit) {
            return fixed_float_is_canonical(int, frac);
        }
    }
    // Ruby writes a lowercase `e`.
    if token.contains(&b'E') {
        return Some(false);
    }
    let (negative, unsigned) = match token.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, token),
    };
    let (mantissa, exponent) = match unsigned.iter().position(|&b| b == b'e') {
        Some(at) => {
            let text = std::str::from_utf8(&unsigned[at + 1..]).ok()?;
            // Longer exponents may overflow or underflow: let the slow path decide.
            (text.len() <= 4).then_some(())?;
            (&unsigned[..at], text.parse::<i32>().ok()?)
        }
        None => (unsigned, 0),
    };
    let point = mantissa.iter().position(|&b| b == b'.')?;
    // The j-th digit, skipping the point.
    let digit = |j: usize| mantissa[j + usize::from(j >= point)];
    let len = mantissa.len() - 1;
    let Some(first) = (0..len).position(|j| digit(j) != b'0') else {
        return Some(token == b"0.0" || token == b"-0.0");
    };
    let last = (0..len).rposition(|j| digit(j) != b'0')?;
    let count = last - first + 1;
    if count > 15 {
        return None;
    }
    let decpt = point as i32 - first as i32 + exponent;
    if !(-290..=300).contains(&decpt) {
        return None;
    }
    let mut digits = [0u8; 15];
    for (slot, j) in digits.iter_mut().zip(first..=last) {
        *slot = digit(j);
    }
    Some(FloatText::new().layout(negative, &digits[..count], decpt) == token)
}

/// Length of an escape ActiveSupport itself writes at the start of `s`, else `None`.
fn canonical_escape_len(s: &[u8]) -> Option<usize> {
    match *s.get(1)? {
        b'"' | b'\\' | b'b' | b'f' | b'n' | b'r' | b't' => Some(2),
        b'u' => {
            let canonical = match *s.get(2..6)? {
                [b'0', b'0', b'3', b'c' | b'e'] | [b'0', b'0', b'2', b'6'] => true,
                [b'2', b'0', b'2', b'8' | b'9'] => true,
                [b'0', b'0', hi @ (b'0' | b'1'), lo] => {
                    let lo = match lo {
                        b'0'..=b'9' => lo - b'0',
                        b'a'..=b'f' => lo - b'a' + 10,
                        _ => return None,
                    };
                    // These five have short forms.
                    !matches!((hi - b'0') << 4 | lo, 0x08 | 0x09 | 0x0a | 0x0c | 0x0d)
                }
                _ => false,
            };
            canonical.then_some(6)
        }
        _ => None,
    }
}

/// Length of the valid UTF-8 sequence at the start of `s` (which starts with a byte ≥ 0x80),
/// and whether it is U+2028 or U+2029 (which ActiveSupport escapes); `None` if invalid.
fn utf8_sequence(s: &[u8]) -> Option<(usize, bool)> {
    let (len, second) = match s[0] {
        0xC2..=0xDF => (2, 0x80..=0xBF),
        0xE0 => (3, 0xA0..=0xBF),
        0xE1..=0xEC | 0xEE..=0xEF => (3, 0x80..=0xBF),
        0xED => (3, 0x80..=0x9F),
        0xF0 => (4, 0x90..=0xBF),
        0xF1..=0xF3 => (4, 0x80..=0xBF),
        0xF4 => (4, 0x80..=0x8F),
        _ => return None,
    };
    let seq = s.get(..len)?;
    if !second.contains(&seq[1]) || !seq[2..].iter().all(|&b| (0x80..=0xBF).contains(&b)) {
        return None;
    }
    Some((len, seq == [0xE2, 0x80, 0xA8] || seq == [0xE2, 0x80, 0xA9]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ruby's default `max_nesting`, which every vector file assumes.
    const DEPTH: usize = 100;

    const SHARED_BROADCASTS: &str = include_str!("../../fixtures/json/broadcast-reencode.jsonl");
    const SHARED_IDENTIFIERS: &str = include_str!("../../fixtures/json/identifier-echo.jsonl");
    const ORACLE_REENCODE: &str = include_str!("../../fixtures/json/oracle-reencode.jsonl");
    const ORACLE_STRINGS: &str = include_str!("../../fixtures/json/oracle-strings.jsonl");

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
                let value = parse(line.as_bytes(), DEPTH)
                    .unwrap_or_else(|e| panic!("{name}:{}: {e}", n + 1));
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
        let ok =
            |input: &str, want: &str| assert_eq!(reenc(input), Ok(want.to_owned()), "{input:?}");
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

    /// xorshift64*: enough randomness for property tests without a dependency.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
            &items[self.below(items.len())]
        }
    }

    const ALPHABET: &[&str] = &[
        "a", "Z", " ", "/", "<", ">", "&", "\"", "\\", "\u{0}", "\u{1}", "\u{8}", "\t", "\n",
        "\u{c}", "\r", "\u{1f}", "\u{7f}", "é", "\u{ad}", "\u{2028}", "\u{2029}", "\u{2027}", "😀",
        "漢", "\u{feff}", "\u{fffd}",
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
}
