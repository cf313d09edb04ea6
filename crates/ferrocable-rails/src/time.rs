//! The `exp` timestamps of metadata envelopes.
//!
//! Rails writes `expires_at.utc.iso8601(3)` (`2026-01-15T12:00:00.000Z`) and reads it back with
//! `Time.iso8601` (`use_standard_json_time_format`, on by default). This parses the same
//! grammar, except that a time without a zone is refused: Ruby would read it in the server's
//! local zone, which we cannot know, and Rails never writes one.

#[cfg(test)]
use std::time::Duration;
use std::time::{SystemTime, UNIX_EPOCH};

/// A point in time as nanoseconds since the Unix epoch (negative before 1970).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Instant(i128);

impl Instant {
    pub(crate) fn from_system_time(time: SystemTime) -> Instant {
        match time.duration_since(UNIX_EPOCH) {
            Ok(after) => Instant(after.as_nanos() as i128),
            Err(before) => Instant(-(before.duration().as_nanos() as i128)),
        }
    }

    #[cfg(test)]
    pub(crate) fn to_system_time(self) -> SystemTime {
        if self.0 >= 0 {
            UNIX_EPOCH + Duration::from_nanos(self.0 as u64)
        } else {
            UNIX_EPOCH - Duration::from_nanos((-self.0) as u64)
        }
    }
}

/// Parses an ISO 8601 time as Ruby's `Time.iso8601` does: `YYYY-MM-DDTHH:MM:SS`, optional
/// fraction of any length, then `Z` or `±HH`, `±HHMM`, `±HH:MM`; surrounding whitespace
/// allowed; `T` and `Z` in either case.
pub(crate) fn parse_iso8601(text: &str) -> Option<Instant> {
    let s = text
        .trim_matches(|c: char| c.is_ascii_whitespace())
        .as_bytes();
    let mut at = 0;
    let negative_year = s.first() == Some(&b'-');
    if negative_year {
        at += 1;
    }
    let year_digits = s[at..].iter().take_while(|b| b.is_ascii_digit()).count();
    // Ruby allows any number of year digits; beyond 6 the value is far outside what a cookie
    // can mean and would only risk overflow.
    if year_digits == 0 || year_digits > 6 {
        return None;
    }
    let mut year = digits(&s[at..at + year_digits])? as i64;
    if negative_year {
        year = -year;
    }
    at += year_digits;
    let month = fixed(s, &mut at, b'-')?;
    let day = fixed(s, &mut at, b'-')?;
    if !matches!(s.get(at), Some(b'T' | b't')) {
        return None;
    }
    at += 1;
    let hour = two_digits(s, &mut at)?;
    let minute = fixed(s, &mut at, b':')?;
    let second = fixed(s, &mut at, b':')?;
    let mut nanos: i128 = 0;
    if s.get(at) == Some(&b'.') {
        at += 1;
        let fraction_digits = s[at..].iter().take_while(|b| b.is_ascii_digit()).count();
        if fraction_digits == 0 {
            return None;
        }
        // Nanosecond precision: further digits cannot change a comparison with a SystemTime
        // by more than a nanosecond.
        for (i, b) in s[at..at + fraction_digits].iter().take(9).enumerate() {
            nanos += i128::from(b - b'0') * 10i128.pow(8 - i as u32);
        }
        at += fraction_digits;
    }
    let offset_seconds: i64 = match s.get(at) {
        Some(b'Z' | b'z') => {
            at += 1;
            0
        }
        Some(&sign @ (b'+' | b'-')) => {
            at += 1;
            let hours = two_digits(s, &mut at)?;
            let minutes = if s.get(at) == Some(&b':') {
                at += 1;
                two_digits(s, &mut at)?
            } else if s.get(at).is_some_and(u8::is_ascii_digit) {
                two_digits(s, &mut at)?
            } else {
                0
            };
            if hours > 23 || minutes > 59 {
                return None;
            }
            let offset = (hours * 3600 + minutes * 60) as i64;
            if sign == b'-' { -offset } else { offset }
        }
        _ => return None, // no zone: see the module docs
    };
    if at != s.len() {
        return None;
    }
    if !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + (hour * 3600 + minute * 60 + second) as i64 - offset_seconds;
    Some(Instant(i128::from(seconds) * 1_000_000_000 + nanos))
}

fn digits(bytes: &[u8]) -> Option<u32> {
    bytes.iter().try_fold(0u32, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + u32::from(b - b'0'))
    })
}

fn two_digits(s: &[u8], at: &mut usize) -> Option<u32> {
    let value = digits(s.get(*at..*at + 2)?)?;
    *at += 2;
    Some(value)
}

fn fixed(s: &[u8], at: &mut usize, separator: u8) -> Option<u32> {
    if s.get(*at) != Some(&separator) {
        return None;
    }
    *at += 1;
    two_digits(s, at)
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let month = i64::from(month);
    let day_of_year =
        (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Test shorthand for an instant at whole seconds plus nanoseconds.
#[cfg(test)]
fn unix(seconds: i64, nanos: u32) -> Instant {
    Instant(i128::from(seconds) * 1_000_000_000 + i128::from(nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_rails_writes() {
        // `Time.utc(2026, 1, 15, 12).iso8601(3)`; the epoch value is from `date -d ... +%s`.
        assert_eq!(
            parse_iso8601("2026-01-15T12:00:00.000Z"),
            Some(unix(1_768_478_400, 0))
        );
        assert_eq!(parse_iso8601("1970-01-01T00:00:00Z"), Some(unix(0, 0)));
        assert_eq!(
            parse_iso8601("1969-12-31T23:59:59.5Z"),
            Some(Instant(-500_000_000))
        );
        assert_eq!(
            parse_iso8601("2000-02-29T00:00:00.123456789123Z"),
            Some(unix(951_782_400, 123_456_789))
        );
    }

    #[test]
    fn applies_offsets_like_ruby() {
        let utc = parse_iso8601("2026-01-15T12:00:00Z");
        assert_eq!(parse_iso8601("2026-01-15T13:00:00+01:00"), utc);
        assert_eq!(parse_iso8601("2026-01-15T13:00:00+0100"), utc);
        assert_eq!(parse_iso8601("2026-01-15T13:00:00+01"), utc);
        assert_eq!(parse_iso8601("2026-01-15T06:30:00-05:30"), utc);
        assert_eq!(parse_iso8601(" 2026-01-15t12:00:00z\n"), utc);
    }

    #[test]
    fn refuses_what_is_not_a_zoned_iso8601_time() {
        for bad in [
            "",
            "2026-01-15T12:00:00",  // no zone
            "2026-01-15 12:00:00Z", // space instead of T
            "2026-13-15T12:00:00Z",
            "2026-02-29T12:00:00Z", // not a leap year
            "2026-01-15T24:00:00Z",
            "2026-01-15T12:00:60Z",
            "2026-01-15T12:00:00.Z",
            "2026-1-15T12:00:00Z",
            "2026-01-15T12:00:00Zjunk",
            "2026-01-15T12:00:00+25:00",
            "12345678-01-15T12:00:00Z",
            "1768478400",
        ] {
            assert_eq!(parse_iso8601(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn converts_system_times_both_sides_of_the_epoch() {
        let later = UNIX_EPOCH + Duration::new(5, 7);
        assert_eq!(Instant::from_system_time(later), unix(5, 7));
        let earlier = UNIX_EPOCH - Duration::new(1, 0);
        assert_eq!(Instant::from_system_time(earlier), unix(-1, 0));
        assert_eq!(Instant::from_system_time(earlier).to_system_time(), earlier);
    }
}
