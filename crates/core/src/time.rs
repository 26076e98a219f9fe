//! UTC instants: RFC 3339 parsing for `fetched_at` and formatting for `enqueued_at`.
//!
//! The core reads no clock. Callers pass `now` in, so every plan is reproducible.

use std::fmt;

const MICROS_PER_SEC: i64 = 1_000_000;
const SECS_PER_DAY: i64 = 86_400;

/// 0001-01-01T00:00:00Z, the first instant [`Timestamp::parse_rfc3339`] accepts.
const MIN_UNIX_MICROS: i64 = -62_135_596_800_000_000;

/// 9999-12-31T23:59:59.999999Z, the last instant [`Timestamp::parse_rfc3339`] accepts.
const MAX_UNIX_MICROS: i64 = 253_402_300_799_999_999;

/// A UTC instant with microsecond precision.
///
/// Its `Display` form is RFC 3339 with six fraction digits and a `Z`, for
/// example `2025-11-20T12:00:00.123456Z`, which is the form Python's
/// `datetime.isoformat() + "Z"` produces when the fraction is not zero. That
/// form is RFC 3339 only for years 1 to 9999, the range of Python's `datetime`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    unix_micros: i64,
}

impl Timestamp {
    /// Creates a timestamp from microseconds since the Unix epoch.
    pub const fn from_unix_micros(unix_micros: i64) -> Self {
        Self { unix_micros }
    }

    /// Creates a timestamp from milliseconds since the Unix epoch, as JavaScript's `Date.now()` returns.
    pub const fn from_unix_millis(unix_millis: i64) -> Self {
        Self::from_unix_micros(unix_millis.saturating_mul(1_000))
    }

    /// Returns the microseconds since the Unix epoch.
    pub const fn unix_micros(self) -> i64 {
        self.unix_micros
    }

    /// Parses an RFC 3339 timestamp such as `2025-11-20T12:00:00.123456Z` or `2025-11-20T07:00:00-05:00`.
    ///
    /// The date and time are separated by `T` or `t`; the zone is `Z`, `z` or
    /// `±HH:MM`. The fraction has 1 to 9 digits, and digits past the sixth are
    /// truncated. Leap seconds (`:60`) and instants outside the years 1 to 9999
    /// in UTC are rejected.
    ///
    /// # Errors
    ///
    /// Returns `None` if the text is not an RFC 3339 timestamp.
    pub fn parse_rfc3339(text: &str) -> Option<Self> {
        let bytes = text.as_bytes();
        if bytes.len() < 20 || !matches!(bytes[10], b'T' | b't') {
            return None;
        }

        let year = digits(bytes, 0, 4)?;
        let month = digits(bytes, 5, 2)?;
        let day = digits(bytes, 8, 2)?;
        let hour = digits(bytes, 11, 2)?;
        let minute = digits(bytes, 14, 2)?;
        let second = digits(bytes, 17, 2)?;
        let separators_ok =
            bytes[4] == b'-' && bytes[7] == b'-' && bytes[13] == b':' && bytes[16] == b':';
        let in_range = (1..=12).contains(&month)
            && (1..=days_in_month(year, month)).contains(&day)
            && hour < 24
            && minute < 60
            && second < 60;
        if !separators_ok || !in_range {
            return None;
        }

        let (fraction_micros, zone_start) = parse_fraction(bytes, 19)?;
        let offset_secs = parse_zone(&bytes[zone_start..])?;

        let days = days_from_civil(year, month, day);
        let secs = days * SECS_PER_DAY + hour * 3_600 + minute * 60 + second - offset_secs;
        let unix_micros = secs * MICROS_PER_SEC + fraction_micros;
        (MIN_UNIX_MICROS..=MAX_UNIX_MICROS)
            .contains(&unix_micros)
            .then_some(Self::from_unix_micros(unix_micros))
    }

    /// Returns the compact form used inside job ids, for example `20251120T120000.123456Z`.
    pub(crate) fn compact(self) -> [u8; 23] {
        let civil = self.to_civil();
        let mut out = *b"00000000T000000.000000Z";
        write_digits(&mut out[0..4], civil.year);
        write_digits(&mut out[4..6], civil.month);
        write_digits(&mut out[6..8], civil.day);
        write_digits(&mut out[9..11], civil.hour);
        write_digits(&mut out[11..13], civil.minute);
        write_digits(&mut out[13..15], civil.second);
        write_digits(&mut out[16..22], civil.micros);
        out
    }

    fn to_civil(self) -> Civil {
        let secs = self.unix_micros.div_euclid(MICROS_PER_SEC);
        let days = secs.div_euclid(SECS_PER_DAY);
        let secs_of_day = secs.rem_euclid(SECS_PER_DAY);
        let (year, month, day) = civil_from_days(days);
        Civil {
            year,
            month,
            day,
            hour: secs_of_day / 3_600,
            minute: secs_of_day % 3_600 / 60,
            second: secs_of_day % 60,
            micros: self.unix_micros.rem_euclid(MICROS_PER_SEC),
        }
    }
}

/// A UTC instant split into calendar fields.
struct Civil {
    year: i64,
    month: i64,
    day: i64,
    hour: i64,
    minute: i64,
    second: i64,
    micros: i64,
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let civil = self.to_civil();
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
            civil.year,
            civil.month,
            civil.day,
            civil.hour,
            civil.minute,
            civil.second,
            civil.micros
        )
    }
}

fn digits(bytes: &[u8], start: usize, len: usize) -> Option<i64> {
    let slice = bytes.get(start..start + len)?;
    slice.iter().try_fold(0_i64, |value, &byte| {
        byte.is_ascii_digit()
            .then(|| value * 10 + i64::from(byte - b'0'))
    })
}

/// Parses an optional `.digits` fraction at `start` and returns its value in microseconds
/// together with the index where the zone begins.
fn parse_fraction(bytes: &[u8], start: usize) -> Option<(i64, usize)> {
    if bytes.get(start) != Some(&b'.') {
        return Some((0, start));
    }

    let mut end = start + 1;
    let mut micros = 0_i64;
    while let Some(byte) = bytes.get(end).filter(|byte| byte.is_ascii_digit()) {
        if end - start <= 6 {
            micros = micros * 10 + i64::from(byte - b'0');
        }
        end += 1;
    }

    let count = end - start - 1;
    if !(1..=9).contains(&count) {
        return None;
    }
    for _ in count..6 {
        micros *= 10;
    }
    Some((micros, end))
}

/// Parses `Z`, `z` or `±HH:MM` and returns the offset from UTC in seconds.
fn parse_zone(zone: &[u8]) -> Option<i64> {
    match zone {
        [b'Z' | b'z'] => Some(0),
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let hours = digits(zone, 1, 2)?;
            let minutes = digits(zone, 4, 2)?;
            if hours > 23 || minutes > 59 {
                return None;
            }
            let offset = hours * 3_600 + minutes * 60;
            Some(if *sign == b'-' { -offset } else { offset })
        }
        _ => None,
    }
}

fn is_leap_year(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Counts days since 1970-01-01 in the proleptic Gregorian calendar (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let shifted_month = (month + 9) % 12;
    let day_of_year = (153 * shifted_month + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Converts days since 1970-01-01 back to a civil date; the inverse of `days_from_civil`.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Writes `value` as decimal digits filling `out`, keeping its lowest digits.
fn write_digits(out: &mut [u8], value: i64) {
    let mut rest = value.rem_euclid(10_i64.pow(out.len() as u32));
    for digit in out.iter_mut().rev() {
        *digit = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_accepts_rfc3339_forms() {
        let cases = [
            ("1970-01-01T00:00:00Z", 0),
            ("2025-11-20T12:00:00Z", 1_763_640_000_000_000),
            ("2025-11-20T12:00:00.123456Z", 1_763_640_000_123_456),
            ("2025-11-20T12:00:00.1Z", 1_763_640_000_100_000),
            ("2025-11-20T12:00:00.123456789Z", 1_763_640_000_123_456),
            ("2025-11-20t12:00:00z", 1_763_640_000_000_000),
            ("2025-11-20T07:00:00-05:00", 1_763_640_000_000_000),
            ("2025-11-20T13:30:00+01:30", 1_763_640_000_000_000),
            ("2024-02-29T00:00:00Z", 1_709_164_800_000_000),
            ("0001-01-01T00:00:00Z", MIN_UNIX_MICROS),
            ("9999-12-31T23:59:59.999999Z", MAX_UNIX_MICROS),
        ];

        for (text, micros) in cases {
            let parsed = Timestamp::parse_rfc3339(text);

            assert_eq!(parsed, Some(Timestamp::from_unix_micros(micros)), "{text}");
        }
    }

    #[test]
    fn parse_rejects_invalid_forms() {
        let cases = [
            "",
            "2025-11-20",
            "2025-11-20T12:00:00",
            "2025-11-20T12:00:00+00:00Z",
            "2025-11-20 12:00:00Z",
            "2025-13-20T12:00:00Z",
            "2025-02-29T12:00:00Z",
            "2025-11-31T12:00:00Z",
            "2025-11-20T24:00:00Z",
            "2025-11-20T12:00:60Z",
            "2025-11-20T12:00:00.Z",
            "2025-11-20T12:00:00.1234567890Z",
            "0000-12-31T23:59:59Z",
            "0001-01-01T00:00:00+00:01",
            "9999-12-31T23:59:59-00:01",
            "2025-11-20T12:00:00+0500",
            "2025-11-20T12:00:00+24:00",
            "yesterday at noon, roughly",
            "２０２５-11-20T12:00:00Z",
        ];

        for text in cases {
            assert_eq!(Timestamp::parse_rfc3339(text), None, "{text}");
        }
    }

    #[test]
    fn display_has_six_fraction_digits_and_z() {
        let cases = [
            (0, "1970-01-01T00:00:00.000000Z"),
            (1_763_640_000_123_456, "2025-11-20T12:00:00.123456Z"),
            (-1, "1969-12-31T23:59:59.999999Z"),
            (951_782_400_000_000, "2000-02-29T00:00:00.000000Z"),
        ];

        for (micros, text) in cases {
            assert_eq!(Timestamp::from_unix_micros(micros).to_string(), text);
        }
    }

    #[test]
    fn compact_form_matches_display() {
        let compact = Timestamp::from_unix_micros(1_763_640_000_123_456).compact();

        assert_eq!(&compact, b"20251120T120000.123456Z");
    }

    #[test]
    fn civil_round_trips_over_four_centuries() {
        for days in (-200_000..200_000).step_by(97) {
            let (year, month, day) = civil_from_days(days);

            assert_eq!(days_from_civil(year, month, day), days);
        }
    }
}
