//! The broadcast path: [`reencode`] proves most payloads already canonical with one scan
//! ([`Scanner`]) and splices them as they are; the rest are rewritten in one streaming pass
//! by the [`Writer`] sink, without building a tree.

use super::parse::{Literal, ParseError, Reader, Sink, parse, skip_digits, utf8_sequence};
use super::ruby_float::FloatText;
use super::write::{Escaping, write_escaped, write_float, write_value_with};

/// Outcome of re-encoding a broadcast payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reencoded {
    /// The payload is already exactly what ActiveSupport would write: splice it as is.
    Canonical,
    /// It is not: use these bytes.
    Rewritten(Vec<u8>),
}

/// Decode-then-encode a broadcast payload as Action Cable does (docs/PROTOCOL.md §4.2–4.3).
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
    reencode_with(payload, max_depth, Escaping::default())
}

/// [`reencode`] with the string escaping of a given Rails version and setting: under
/// [`Escaping::RAW_JS_SEPARATORS`] a raw U+2028 is canonical and `\u2028` is not.
///
/// # Errors
///
/// As [`reencode`].
pub fn reencode_with(
    payload: &[u8],
    max_depth: usize,
    escaping: Escaping,
) -> Result<Reencoded, ParseError> {
    if is_canonical(payload, max_depth, escaping) {
        return Ok(Reencoded::Canonical);
    }
    let mut writer = Writer {
        out: Vec::with_capacity(payload.len() + payload.len() / 8),
        objects: Vec::new(),
        keys: Vec::new(),
        escaping,
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
fn is_canonical(input: &[u8], max_depth: usize, escaping: Escaping) -> bool {
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
        escaping,
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
    escaping: Escaping,
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
                b'\\' => i += canonical_escape_len(&input[i..], self.escaping)?,
                0x80.. => match utf8_sequence(&input[i..])? {
                    (len, separator) if !separator || !self.escaping.js_separators => i += len,
                    _ => return None,
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
pub(super) fn float_is_canonical(token: &[u8]) -> bool {
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
fn canonical_escape_len(s: &[u8], escaping: Escaping) -> Option<usize> {
    match *s.get(1)? {
        b'"' | b'\\' | b'b' | b'f' | b'n' | b'r' | b't' => Some(2),
        b'u' => {
            let canonical = match *s.get(2..6)? {
                [b'0', b'0', b'3', b'c' | b'e'] | [b'0', b'0', b'2', b'6'] => true,
                [b'2', b'0', b'2', b'8' | b'9'] => escaping.js_separators,
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
    escaping: Escaping,
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
                write_value_with(&mut self.out, &value, self.escaping);
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
            write_escaped(&mut self.out, s, self.escaping);
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
