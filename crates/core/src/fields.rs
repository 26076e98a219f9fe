//! Reading the raw text of the fields the dispatcher uses from a JSON object.
//!
//! Most bodies are flat objects without escapes, which [`scan_flat`] reads in
//! one pass. Anything else (nesting, escapes, a repeated known field, or
//! invalid JSON) goes to serde_json, so both paths accept the same objects
//! and return the same texts, and serde_json words every error.

use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

/// The raw JSON text of each field the dispatcher reads, or `None` if the field is absent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct RawFields<'a> {
    pub zip_code: Option<&'a str>,
    pub lat: Option<&'a str>,
    pub lon: Option<&'a str>,
    pub fetched_at: Option<&'a str>,
    pub traceparent: Option<&'a str>,
}

/// Reads the fields of the JSON object `text`; other fields are ignored.
///
/// # Errors
///
/// Returns serde_json's error if `text` is not one valid JSON object, or if it
/// repeats a field the dispatcher reads.
pub(crate) fn read_fields(text: &str) -> Result<RawFields<'_>, serde_json::Error> {
    match scan_flat(text) {
        Some(fields) => Ok(fields),
        None => read_with_serde(text),
    }
}

#[derive(Deserialize)]
struct SerdeFields<'a> {
    #[serde(borrow, default, deserialize_with = "raw_field")]
    zip_code: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "raw_field")]
    lat: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "raw_field")]
    lon: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "raw_field")]
    fetched_at: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "raw_field")]
    traceparent: Option<&'a RawValue>,
}

/// Keeps a field's raw text even when it is `null`, so that `null` and a missing field differ.
fn raw_field<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(deserializer).map(Some)
}

fn read_with_serde(text: &str) -> Result<RawFields<'_>, serde_json::Error> {
    let fields: SerdeFields<'_> = serde_json::from_str(text)?;
    Ok(RawFields {
        zip_code: fields.zip_code.map(RawValue::get),
        lat: fields.lat.map(RawValue::get),
        lon: fields.lon.map(RawValue::get),
        fetched_at: fields.fetched_at.map(RawValue::get),
        traceparent: fields.traceparent.map(RawValue::get),
    })
}

/// Reads a flat JSON object whose keys and strings have no escapes, or returns `None`.
///
/// Values may be strings, numbers, `true`, `false` and `null`. An object or an
/// array as a value, an escape, a repeated known field or any syntax error
/// returns `None`.
fn scan_flat(text: &str) -> Option<RawFields<'_>> {
    let mut scanner = Scanner {
        bytes: text.as_bytes(),
        at: 0,
    };
    let mut fields = RawFields::default();

    scanner.skip_whitespace();
    scanner.expect(b'{')?;
    scanner.skip_whitespace();
    if scanner.peek() == Some(b'}') {
        scanner.at += 1;
        return scanner.at_end().then_some(fields);
    }

    loop {
        let key = scanner.string()?;
        scanner.skip_whitespace();
        scanner.expect(b':')?;
        scanner.skip_whitespace();
        let start = scanner.at;
        scanner.value()?;
        let value = text.get(start..scanner.at)?;
        fields.set(&text[key.start + 1..key.end - 1], value)?;

        scanner.skip_whitespace();
        match scanner.next()? {
            b',' => scanner.skip_whitespace(),
            b'}' => return scanner.at_end().then_some(fields),
            _ => return None,
        }
    }
}

impl<'a> RawFields<'a> {
    /// Stores a known field, or returns `None` if it was already set.
    fn set(&mut self, key: &str, value: &'a str) -> Option<()> {
        let slot = match key {
            "zip_code" => &mut self.zip_code,
            "lat" => &mut self.lat,
            "lon" => &mut self.lon,
            "fetched_at" => &mut self.fetched_at,
            "traceparent" => &mut self.traceparent,
            _ => return Some(()),
        };
        match slot.replace(value) {
            Some(_) => None,
            None => Some(()),
        }
    }
}

struct Scanner<'t> {
    bytes: &'t [u8],
    at: usize,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let byte = self.peek()?;
        self.at += 1;
        Some(byte)
    }

    fn expect(&mut self, expected: u8) -> Option<()> {
        (self.next()? == expected).then_some(())
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn at_end(&mut self) -> bool {
        self.skip_whitespace();
        self.at == self.bytes.len()
    }

    /// Reads a string with no escapes and no control characters, and returns its span with quotes.
    fn string(&mut self) -> Option<std::ops::Range<usize>> {
        let start = self.at;
        self.expect(b'"')?;
        let rest = self.bytes.get(self.at..)?;
        let end = rest
            .iter()
            .position(|&byte| byte == b'"' || byte == b'\\' || byte < 0x20)?;
        if rest[end] != b'"' {
            return None;
        }
        self.at += end + 1;
        Some(start..self.at)
    }

    fn value(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => self.string().map(|_| ()),
            b'-' | b'0'..=b'9' => self.number(),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            _ => None,
        }
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.at + word.len();
        (self.bytes.get(self.at..end)? == word).then(|| self.at = end)
    }

    /// Reads a number in the JSON grammar: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    fn number(&mut self) -> Option<()> {
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        match self.next()? {
            b'0' => {}
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            self.one_or_more_digits()?;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            self.one_or_more_digits()?;
        }
        Some(())
    }

    fn digits(&mut self) {
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.at += 1;
        }
    }

    fn one_or_more_digits(&mut self) -> Option<()> {
        let start = self.at;
        self.digits();
        (self.at > start).then_some(())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn scan_reads_flat_objects() {
        let text = r#" { "zip_code" : "78729", "lat": -30.5e+2, "lon": 0, "ok": true, "x": null, "fetched_at": "2025-11-20T12:00:00Z" } "#;

        let fields = scan_flat(text);

        assert_eq!(
            fields,
            Some(RawFields {
                zip_code: Some("\"78729\""),
                lat: Some("-30.5e+2"),
                lon: Some("0"),
                fetched_at: Some("\"2025-11-20T12:00:00Z\""),
                traceparent: None,
            })
        );
    }

    #[test]
    fn scan_leaves_other_shapes_to_serde() {
        let cases = [
            r#"{"zip_code": "7\u0038729"}"#,
            r#"{"a": {"b": 1}}"#,
            r#"{"a": [1]}"#,
            r#"{"lat": 1, "lat": 2}"#,
            r#"{"lat": 01}"#,
            r#"{"lat": 1.}"#,
            r#"{"lat": NaN}"#,
            r#"{"lat": 1} x"#,
            r#"{"lat": 1,}"#,
            "{\"a\": \"tab\there\"}",
            "[1]",
            "",
        ];

        for text in cases {
            assert_eq!(scan_flat(text), None, "{text}");
        }
    }

    #[test]
    fn read_fields_accepts_what_serde_accepts() {
        let cases = [
            r#"{}"#,
            r#"{"zip_code": "7\u0038729", "lat": 1}"#,
            r#"{"a": {"lat": 2}, "lat": 1}"#,
        ];

        for text in cases {
            assert_eq!(read_fields(text).ok(), read_with_serde(text).ok(), "{text}");
        }
        assert!(read_fields(r#"{"lat": 1, "lat": 2}"#).is_err());
    }

    fn value() -> impl Strategy<Value = String> {
        prop_oneof![
            "-?(0|[1-9][0-9]{0,3})(\\.[0-9]{1,3})?([eE][+-]?[0-9]{1,2})?",
            "\"[ -~]{0,6}\"",
            Just("true".to_owned()),
            Just("null".to_owned()),
            Just("{}".to_owned()),
            Just("[1, 2]".to_owned()),
        ]
    }

    fn object() -> impl Strategy<Value = String> {
        let key = prop::sample::select(vec![
            "zip_code",
            "lat",
            "lon",
            "fetched_at",
            "traceparent",
            "other",
        ]);
        prop::collection::vec(
            (key, value(), prop::sample::select(vec!["", " ", "\n"])),
            0..7,
        )
        .prop_map(|members| {
            let members: Vec<String> = members
                .iter()
                .map(|(key, value, space)| format!("{space}\"{key}\"{space}:{space}{value}"))
                .collect();
            format!("{{{}}}", members.join(","))
        })
    }

    proptest! {
        #[test]
        fn scan_agrees_with_serde(text in object(), cut in 0..200_usize, byte in 0x20..0x7f_u8) {
            let mut mutated = text.clone().into_bytes();
            if cut < mutated.len() {
                mutated[cut] = byte;
            }
            let mutated = String::from_utf8(mutated).unwrap_or_default();

            for text in [&text, &mutated] {
                if let Some(fields) = scan_flat(text) {
                    prop_assert_eq!(Some(fields), read_with_serde(text).ok(), "{}", text);
                }
            }
        }
    }
}
