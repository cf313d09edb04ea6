//! The json 2.6.1 grammar ([`Reader`]) reporting to a [`Sink`], and [`parse`], whose sink
//! builds the [`Value`] tree. The quirks it mirrors are listed in the [module docs](super).

use std::collections::HashMap;
use std::fmt;

use super::{Integer, Value};

/// Why a text is not JSON as Ruby reads it, and where (a byte offset into the input).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub(super) offset: usize,
    pub(super) reason: &'static str,
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

pub(super) const UNEXPECTED_END: &str = "unexpected end of input";
pub(super) const UNEXPECTED_BYTE: &str = "unexpected byte";
pub(super) const TRAILING: &str = "unexpected data after the value";
pub(super) const TOO_DEEP: &str = "nesting too deep";
pub(super) const BAD_NUMBER: &str = "malformed number";
pub(super) const BAD_COMMENT: &str = "malformed or unterminated comment";
pub(super) const UNTERMINATED_STRING: &str = "unterminated string";
pub(super) const CONTROL_IN_STRING: &str = "raw control character in string";
pub(super) const BAD_UNICODE_ESCAPE: &str = "malformed \\u escape";
pub(super) const INCOMPLETE_ESCAPE: &str = "incomplete unicode character escape sequence";
pub(super) const INCOMPLETE_SURROGATE: &str = "incomplete surrogate pair";
pub(super) const INVALID_UTF8: &str = "string is not valid UTF-8";

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
pub(super) trait Sink {
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
pub(super) enum Literal {
    Null,
    True,
    False,
}

/// The grammar of json 2.6.1's parser, reporting to a [`Sink`].
pub(super) struct Reader<'a> {
    input: &'a [u8],
    pos: usize,
    /// Unescaped bytes of the current string, reused from string to string.
    scratch: Vec<u8>,
}

impl<'a> Reader<'a> {
    pub(super) fn new(input: &'a [u8]) -> Self {
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
    pub(super) fn document(
        &mut self,
        sink: &mut impl Sink,
        max_depth: usize,
    ) -> Result<(), ParseError> {
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

/// A `String` of bytes the [`Reader`] has already checked; never lossy in practice.
pub(super) fn utf8_string(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub(super) fn skip_digits(input: &[u8], mut i: usize) -> usize {
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

/// Length of the valid UTF-8 sequence at the start of `s` (which starts with a byte ≥ 0x80),
/// and whether it is U+2028 or U+2029 (which ActiveSupport escapes); `None` if invalid.
pub(super) fn utf8_sequence(s: &[u8]) -> Option<(usize, bool)> {
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
