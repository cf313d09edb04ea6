//! Ruby's `Float#to_s`, which json ≤ 2.9 writes floats with: shortest round-trip digits, laid
//! out Ruby's way, with Ruby's (dtoa mode 0) tie-breaking where Rust's formatting differs.

use std::fmt::{self, Write as _};

/// Ruby's `Float#to_s`, non-finite values included (`"Infinity"`, `"NaN"`).
pub(super) fn ruby_float_to_s(f: f64) -> String {
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
pub(super) struct FloatText {
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
    pub(super) fn new() -> Self {
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
    pub(super) fn ruby(&mut self, f: f64) -> &[u8] {
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
    pub(super) fn ruby_general(&mut self, f: f64) -> &[u8] {
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
    pub(super) fn layout(&mut self, negative: bool, digits: &[u8], decpt: i32) -> &[u8] {
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
pub(super) fn short_decimal(v: f64) -> Option<(u64, i32)> {
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
