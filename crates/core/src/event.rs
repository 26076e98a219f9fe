//! Decoding and validation of one `weather-ready` message body.

use std::borrow::Cow;

use crate::fields::read_fields;
use crate::location::is_location;
use crate::outcome::DeadLetterCode;
use crate::report::WarningCode;
use crate::time::Timestamp;
use crate::MAX_BODY_BYTES;

/// A valid `weather-ready` event.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Event<'a> {
    pub location: Cow<'a, str>,
    pub lat: Coordinate<'a>,
    pub lon: Coordinate<'a>,
    pub fetched_at: Option<FetchedAt<'a>>,
    pub traceparent: Option<Cow<'a, str>>,
}

/// A valid `lat` or `lon`: its value, and the JSON number text that jobs repeat.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Coordinate<'a> {
    pub value: f64,
    pub text: Cow<'a, str>,
}

/// A valid `fetched_at`: the text as the fetcher sent it, and the instant it names.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct FetchedAt<'a> {
    pub text: Cow<'a, str>,
    pub at: Timestamp,
}

/// A body that can never become an event, with the dead-letter code and a reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Rejection {
    pub code: DeadLetterCode,
    pub reason: String,
}

/// A decoded event together with the warnings its body raised.
#[derive(Debug)]
pub(crate) struct Decoded<'a> {
    pub event: Event<'a>,
    pub warnings: Vec<(WarningCode, String)>,
}

/// Decodes and validates one message body.
///
/// The body must be a JSON object of at most [`MAX_BODY_BYTES`] bytes. A JSON
/// string whose content is an object is unwrapped once, with a warning.
pub(crate) fn decode(body: &str) -> Result<Decoded<'_>, Rejection> {
    if body.len() > MAX_BODY_BYTES {
        return Err(Rejection {
            code: DeadLetterCode::BodyTooLarge,
            reason: format!(
                "body is {} bytes, the limit is {MAX_BODY_BYTES}",
                body.len()
            ),
        });
    }

    match body
        .trim_start_matches(is_json_whitespace)
        .as_bytes()
        .first()
    {
        Some(b'{') => decode_object(body),
        Some(b'"') => decode_string_body(body),
        _ => Err(not_an_object(body)),
    }
}

fn decode_string_body(body: &str) -> Result<Decoded<'static>, Rejection> {
    let inner: String = serde_json::from_str(body).map_err(|error| invalid_json(body, &error))?;
    if !inner
        .trim_start_matches(is_json_whitespace)
        .starts_with('{')
    {
        return Err(invalid_body(format!(
            "body is a JSON string that does not contain a JSON object (strings are unwrapped once): {}",
            excerpt(body)
        )));
    }

    let mut decoded = decode_object(&inner)?;
    decoded.warnings.insert(
        0,
        (
            WarningCode::StringBodyUnwrapped,
            "body is a JSON object inside a JSON string; unwrapped it once".to_owned(),
        ),
    );
    Ok(Decoded {
        event: decoded.event.into_owned(),
        warnings: decoded.warnings,
    })
}

fn decode_object(text: &str) -> Result<Decoded<'_>, Rejection> {
    let raw = read_fields(text).map_err(|error| invalid_json(text, &error))?;
    let mut warnings = Vec::new();

    let location = location(raw.zip_code)?;
    let lat = coordinate("lat", raw.lat, 90)?;
    let lon = coordinate("lon", raw.lon, 180)?;
    let fetched_at = fetched_at(raw.fetched_at, &mut warnings);
    let traceparent = traceparent(raw.traceparent, &mut warnings);

    Ok(Decoded {
        event: Event {
            location,
            lat,
            lon,
            fetched_at,
            traceparent,
        },
        warnings,
    })
}

fn location(raw: Option<&str>) -> Result<Cow<'_, str>, Rejection> {
    let invalid = |reason: String| Rejection {
        code: DeadLetterCode::InvalidLocation,
        reason,
    };
    let raw = raw.ok_or_else(|| invalid("missing field zip_code".to_owned()))?;

    if !raw.starts_with('"') {
        return Err(invalid(format!(
            "zip_code must be a JSON string such as \"02134\", found {} (a number cannot keep leading zeros)",
            excerpt(raw)
        )));
    }
    match json_string(raw) {
        Some(id) if is_location(&id) => Ok(id),
        _ => Err(invalid(format!(
            "zip_code {} is not a location id: expected 5 digits or 2 uppercase letters and 4 to 10 digits",
            excerpt(raw)
        ))),
    }
}

fn coordinate<'a>(
    field: &str,
    raw: Option<&'a str>,
    limit: u32,
) -> Result<Coordinate<'a>, Rejection> {
    let invalid = |reason: String| Rejection {
        code: DeadLetterCode::InvalidCoordinates,
        reason,
    };
    let text = raw.ok_or_else(|| invalid(format!("missing field {field}")))?;

    if !text.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
        return Err(invalid(format!(
            "{field} must be a JSON number, found {}",
            excerpt(text)
        )));
    }

    // serde_json's float parser rather than `str::parse` for the slow path, because
    // the Worker already links it and the standard one adds about 14 KB of gzipped
    // wasm. Values past f64's range are an error there, like non-finite ones.
    let parsed = parse_short_decimal(text)
        .ok_or(())
        .or_else(|()| serde_json::from_str::<f64>(text).map_err(|_| ()));
    let value = match parsed {
        Ok(value) if value.is_finite() && value.abs() <= f64::from(limit) => value,
        _ => {
            return Err(invalid(format!(
                "{field} {} is out of range: expected a finite number from -{limit} to {limit}",
                excerpt(text)
            )))
        }
    };
    Ok(Coordinate {
        value,
        text: Cow::Borrowed(text),
    })
}

/// Parses a JSON number of at most 15 significant digits and at most 22 fraction digits,
/// with no exponent, such as `-97.7676`, or returns `None`.
///
/// Such a number is an integer below 2^53 divided by a power of ten up to 10^22, both
/// exact in f64, so one division gives the correctly rounded value (Clinger's fast path).
fn parse_short_decimal(text: &str) -> Option<f64> {
    const POWERS_OF_TEN: [f64; 23] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
        1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
    ];

    let bytes = text.as_bytes();
    let (negative, digits) = match bytes.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, bytes),
    };
    if digits.len() > 1 && digits[0] == b'0' && digits[1] != b'.' {
        return None;
    }

    let mut mantissa = 0_u64;
    let mut significant = 0_usize;
    let mut fraction_digits = None;
    for &byte in digits {
        match byte {
            b'0'..=b'9' => {
                mantissa = mantissa * 10 + u64::from(byte - b'0');
                significant += 1;
                fraction_digits = fraction_digits.map(|count: usize| count + 1);
            }
            b'.' if fraction_digits.is_none() && significant > 0 => fraction_digits = Some(0),
            _ => return None,
        }
        if significant > 15 {
            return None;
        }
    }
    if significant == 0 || fraction_digits == Some(0) {
        return None;
    }

    let value = mantissa as f64 / POWERS_OF_TEN[fraction_digits.unwrap_or(0)];
    Some(if negative { -value } else { value })
}

fn fetched_at<'a>(
    raw: Option<&'a str>,
    warnings: &mut Vec<(WarningCode, String)>,
) -> Option<FetchedAt<'a>> {
    let raw = raw.filter(|raw| *raw != "null")?;
    let parsed = json_string(raw)
        .and_then(|text| Timestamp::parse_rfc3339(&text).map(|at| FetchedAt { text, at }));

    if parsed.is_none() {
        warnings.push((
            WarningCode::InvalidFetchedAt,
            format!(
                "fetched_at {} is not an RFC 3339 timestamp; job ids use the message id instead",
                excerpt(raw)
            ),
        ));
    }
    parsed
}

fn traceparent<'a>(
    raw: Option<&'a str>,
    warnings: &mut Vec<(WarningCode, String)>,
) -> Option<Cow<'a, str>> {
    let raw = raw.filter(|raw| *raw != "null")?;
    let parsed = json_string(raw).filter(|text| is_traceparent(text));

    if parsed.is_none() {
        warnings.push((
            WarningCode::InvalidTraceparent,
            format!(
                "traceparent {} is not a W3C traceparent; dropped it",
                excerpt(raw)
            ),
        ));
    }
    parsed
}

/// Checks the W3C Trace Context form `vv-<32 hex>-<16 hex>-<2 hex>`, lowercase, where the
/// version is not `ff` and neither id is all zeros.
fn is_traceparent(text: &str) -> bool {
    let parts: Vec<&str> = text.split('-').collect();
    let [version, trace_id, parent_id, flags] = parts.as_slice() else {
        return false;
    };
    let hex = |part: &str, len: usize| {
        part.len() == len
            && part
                .bytes()
                .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
    };
    let not_zero = |part: &str| part.bytes().any(|byte| byte != b'0');

    hex(version, 2)
        && *version != "ff"
        && hex(trace_id, 32)
        && not_zero(trace_id)
        && hex(parent_id, 16)
        && not_zero(parent_id)
        && hex(flags, 2)
}

/// Returns the content of a raw JSON string, borrowed when it has no escapes.
fn json_string(text: &str) -> Option<Cow<'_, str>> {
    if !text.starts_with('"') {
        return None;
    }
    match text.get(1..text.len() - 1) {
        Some(content) if !content.contains('\\') => Some(Cow::Borrowed(content)),
        _ => serde_json::from_str::<String>(text).ok().map(Cow::Owned),
    }
}

fn not_an_object(body: &str) -> Rejection {
    match serde_json::from_str::<serde::de::IgnoredAny>(body) {
        Ok(_) => invalid_body(format!(
            "body must be a JSON object, found {}",
            excerpt(body)
        )),
        Err(error) => invalid_json(body, &error),
    }
}

fn invalid_json(text: &str, error: &serde_json::Error) -> Rejection {
    invalid_body(format!(
        "body is not valid JSON ({error}): {}",
        excerpt(text)
    ))
}

fn invalid_body(reason: String) -> Rejection {
    Rejection {
        code: DeadLetterCode::InvalidBody,
        reason,
    }
}

fn is_json_whitespace(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

/// Shortens a value for a reason or warning, so that one odd message cannot flood a log.
///
/// JSON text is shown as it is, so `2134` and `"2134"` stay distinct; control characters
/// become spaces.
pub(crate) fn excerpt(text: &str) -> String {
    const MAX_CHARS: usize = 64;

    let mut chars = text.chars().map(|c| if c.is_control() { ' ' } else { c });
    let head: String = chars.by_ref().take(MAX_CHARS).collect();
    if chars.next().is_some() {
        format!("{head}... ({} bytes)", text.len())
    } else {
        head
    }
}

impl Coordinate<'_> {
    fn into_owned(self) -> Coordinate<'static> {
        Coordinate {
            value: self.value,
            text: Cow::Owned(self.text.into_owned()),
        }
    }
}

impl Event<'_> {
    fn into_owned(self) -> Event<'static> {
        Event {
            location: Cow::Owned(self.location.into_owned()),
            lat: self.lat.into_owned(),
            lon: self.lon.into_owned(),
            fetched_at: self.fetched_at.map(|fetched_at| FetchedAt {
                text: Cow::Owned(fetched_at.text.into_owned()),
                at: fetched_at.at,
            }),
            traceparent: self.traceparent.map(|text| Cow::Owned(text.into_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"zip_code": "78729", "lat": 30.4515, "lon": -97.7676, "fetched_at": "2025-11-20T12:00:00.123456Z"}"#;

    fn rejection(body: &str) -> (DeadLetterCode, String) {
        match decode(body) {
            Ok(decoded) => panic!("expected a rejection for {body}, got {:?}", decoded.event),
            Err(rejection) => (rejection.code, rejection.reason),
        }
    }

    #[test]
    fn decode_reads_all_fields() {
        let decoded = decode(GOOD).unwrap();

        assert_eq!(decoded.event.location, "78729");
        assert_eq!(decoded.event.lat.value, 30.4515);
        assert_eq!(decoded.event.lat.text, "30.4515");
        assert_eq!(decoded.event.lon.value, -97.7676);
        assert_eq!(
            decoded.event.fetched_at.as_ref().map(|f| f.text.as_ref()),
            Some("2025-11-20T12:00:00.123456Z")
        );
        assert!(decoded.warnings.is_empty());
    }

    #[test]
    fn decode_accepts_valid_variants() {
        let cases = [
            r#"{"zip_code": "02134", "lat": 0, "lon": 0}"#,
            r#"{"zip_code": "MX77400", "lat": -90, "lon": 180, "extra": {"nested": [1, 2]}}"#,
            r#"  {"lon": -180, "lat": 90.0, "zip_code": "00601", "fetched_at": null}"#,
            r#"{"zip_code": "\u0030\u0032134", "lat": 1e1, "lon": -1.5E-3}"#,
        ];

        for body in cases {
            let decoded = decode(body);

            assert!(decoded.is_ok(), "{body}: {:?}", decoded.err());
            assert!(decoded.unwrap().warnings.is_empty(), "{body}");
        }
    }

    #[test]
    fn decode_rejects_invalid_bodies() {
        let cases = [
            (
                "weather ready for 78729",
                DeadLetterCode::InvalidBody,
                "not valid JSON",
            ),
            (
                "[1, 2, 3]",
                DeadLetterCode::InvalidBody,
                "must be a JSON object, found [1, 2, 3]",
            ),
            ("42", DeadLetterCode::InvalidBody, "must be a JSON object"),
            ("null", DeadLetterCode::InvalidBody, "must be a JSON object"),
            ("", DeadLetterCode::InvalidBody, "not valid JSON"),
            (
                r#"{"zip_code": "78729", "lat": NaN, "lon": 1}"#,
                DeadLetterCode::InvalidBody,
                "not valid JSON",
            ),
            (
                r#"{"zip_code": "78729", "lat": 1, "lat": 2, "lon": 1}"#,
                DeadLetterCode::InvalidBody,
                "duplicate field `lat`",
            ),
            (
                r#""\"{\\\"zip_code\\\": \\\"78729\\\"}\"""#,
                DeadLetterCode::InvalidBody,
                "does not contain a JSON object",
            ),
            (
                r#""hello""#,
                DeadLetterCode::InvalidBody,
                "does not contain a JSON object",
            ),
            (
                r#"{"lat": 1, "lon": 1}"#,
                DeadLetterCode::InvalidLocation,
                "missing field zip_code",
            ),
            (
                r#"{"zip_code": 2134, "lat": 1, "lon": 1}"#,
                DeadLetterCode::InvalidLocation,
                "must be a JSON string such as \"02134\", found 2134",
            ),
            (
                r#"{"zip_code": 2134.0, "lat": 1, "lon": 1}"#,
                DeadLetterCode::InvalidLocation,
                "found 2134.0",
            ),
            (
                r#"{"zip_code": "2134", "lat": 1, "lon": 1}"#,
                DeadLetterCode::InvalidLocation,
                "zip_code \"2134\" is not a location id",
            ),
            (
                r#"{"zip_code": null, "lat": 1, "lon": 1}"#,
                DeadLetterCode::InvalidLocation,
                "found null",
            ),
            (
                r#"{"zip_code": "78729", "lon": 1}"#,
                DeadLetterCode::InvalidCoordinates,
                "missing field lat",
            ),
            (
                r#"{"zip_code": "78729", "lat": null, "lon": 1}"#,
                DeadLetterCode::InvalidCoordinates,
                "lat must be a JSON number, found null",
            ),
            (
                r#"{"zip_code": "78729", "lat": "30.1", "lon": 1}"#,
                DeadLetterCode::InvalidCoordinates,
                "found \"30.1\"",
            ),
            (
                r#"{"zip_code": "78729", "lat": 1e999, "lon": 1}"#,
                DeadLetterCode::InvalidCoordinates,
                "lat 1e999 is out of range",
            ),
            (
                r#"{"zip_code": "78729", "lat": 90.5, "lon": 1}"#,
                DeadLetterCode::InvalidCoordinates,
                "lat 90.5 is out of range",
            ),
            (
                r#"{"zip_code": "78729", "lat": 1, "lon": -180.01}"#,
                DeadLetterCode::InvalidCoordinates,
                "lon -180.01 is out of range",
            ),
        ];

        for (body, code, reason) in cases {
            let (actual_code, actual_reason) = rejection(body);

            assert_eq!(actual_code, code, "{body}");
            assert!(actual_reason.contains(reason), "{body}: {actual_reason}");
        }
    }

    #[test]
    fn decode_rejects_oversized_body() {
        let body = format!(
            r#"{{"zip_code": "78729", "lat": 1, "lon": 1, "pad": "{}"}}"#,
            "x".repeat(MAX_BODY_BYTES)
        );

        let (code, reason) = rejection(&body);

        assert_eq!(code, DeadLetterCode::BodyTooLarge);
        assert!(reason.contains("the limit is 128000"), "{reason}");
    }

    #[test]
    fn decode_unwraps_string_body_once_with_warning() {
        let body = serde_json::to_string(GOOD).unwrap();

        let decoded = decode(&body).unwrap();

        assert_eq!(decoded.event.location, "78729");
        assert_eq!(decoded.warnings.len(), 1);
        assert_eq!(decoded.warnings[0].0, WarningCode::StringBodyUnwrapped);
    }

    #[test]
    fn decode_warns_on_invalid_fetched_at() {
        let cases = [
            r#""2025-11-20T12:00:00+00:00Z""#,
            r#""yesterday""#,
            "1763640000",
        ];

        for fetched_at in cases {
            let body = format!(
                r#"{{"zip_code": "78729", "lat": 1, "lon": 1, "fetched_at": {fetched_at}}}"#
            );

            let decoded = decode(&body).unwrap();

            assert_eq!(decoded.event.fetched_at, None, "{fetched_at}");
            assert_eq!(decoded.warnings.len(), 1, "{fetched_at}");
            assert_eq!(decoded.warnings[0].0, WarningCode::InvalidFetchedAt);
            assert!(
                decoded.warnings[0].1.contains(fetched_at),
                "{}",
                decoded.warnings[0].1
            );
        }
    }

    #[test]
    fn decode_keeps_valid_traceparent_only() {
        let valid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let invalid = [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "not a trace",
        ];

        let body =
            format!(r#"{{"zip_code": "78729", "lat": 1, "lon": 1, "traceparent": "{valid}"}}"#);
        assert_eq!(
            decode(&body).unwrap().event.traceparent.as_deref(),
            Some(valid)
        );

        for traceparent in invalid {
            let body = format!(
                r#"{{"zip_code": "78729", "lat": 1, "lon": 1, "traceparent": "{traceparent}"}}"#
            );

            let decoded = decode(&body).unwrap();

            assert_eq!(decoded.event.traceparent, None, "{traceparent}");
            assert_eq!(decoded.warnings[0].0, WarningCode::InvalidTraceparent);
        }
    }

    #[test]
    fn short_decimals_parse_like_serde_json() {
        let cases = [
            "0",
            "-0",
            "30.4515",
            "-97.7676",
            "90",
            "-180.0",
            "0.1",
            "0.3",
            "123456789012345",
            "1.23456789012345",
            "-0.00000000000001",
            "18.1967",
            "-66.7367",
            "64.8378",
        ];

        for text in cases {
            let fast = parse_short_decimal(text);

            assert_eq!(
                fast.map(f64::to_bits),
                text.parse::<f64>().ok().map(f64::to_bits),
                "{text}"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn short_decimal_is_correctly_rounded(text in "-?(0|[1-9][0-9]{0,8})(\\.[0-9]{1,12})?") {
            let fast = parse_short_decimal(&text);
            let exact = text.parse::<f64>().ok();

            if let Some(fast) = fast {
                proptest::prop_assert_eq!(Some(fast.to_bits()), exact.map(f64::to_bits), "{}", text);
            }
        }
    }

    #[test]
    fn other_numbers_take_the_slow_path() {
        let cases = [
            "1e5",
            "1.5E-3",
            "1234567890123456",
            "01",
            "1.",
            ".5",
            "-",
            "",
            "1.2.3",
            "+1",
        ];

        for text in cases {
            assert_eq!(parse_short_decimal(text), None, "{text}");
        }
    }

    #[test]
    fn excerpt_shortens_long_values() {
        let long = "y".repeat(100);

        assert_eq!(excerpt("short"), "short");
        assert_eq!(excerpt(&long), format!("{}... (100 bytes)", "y".repeat(64)));
        assert_eq!(excerpt("a\nb"), "a b");
    }
}
