//! Location ids: the `zip_code` field of events and jobs.

use std::fmt;

/// A location id that is neither a US ZIP code nor an international id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocationError {
    id: String,
}

impl fmt::Display for LocationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid location id {:?}: expected 5 digits (US ZIP code) or 2 uppercase letters and 4 to 10 digits (such as MX77400)",
            crate::event::excerpt(&self.id)
        )
    }
}

impl std::error::Error for LocationError {}

/// Checks that `id` is a location id: exactly 5 ASCII digits, or 2 uppercase ASCII letters
/// followed by 4 to 10 ASCII digits.
///
/// No trimming, case folding or zero padding is applied, because the id is
/// also the KV key suffix and must match the fetcher's byte for byte.
///
/// # Errors
///
/// Returns a [`LocationError`] that shows the id if it has any other form.
pub fn validate_location(id: &str) -> Result<(), LocationError> {
    if is_location(id) {
        Ok(())
    } else {
        Err(LocationError { id: id.to_owned() })
    }
}

pub(crate) fn is_location(id: &str) -> bool {
    let bytes = id.as_bytes();
    let all_digits = |part: &[u8]| part.iter().all(u8::is_ascii_digit);

    match bytes {
        [_, _, _, _, _] => all_digits(bytes),
        [first, second, digits @ ..] => {
            first.is_ascii_uppercase()
                && second.is_ascii_uppercase()
                && (4..=10).contains(&digits.len())
                && all_digits(digits)
        }
        _ => false,
    }
}

/// Returns the KV key that stores the formats of a location, `formats:{location}`.
pub fn kv_key(location: &str) -> String {
    const PREFIX: &str = "formats:";

    let mut key = String::with_capacity(PREFIX.len() + location.len());
    key.push_str(PREFIX);
    key.push_str(location);
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_forms() {
        let cases = [
            ("78729", true),
            ("02134", true),
            ("00601", true),
            ("MX77400", true),
            ("GB1234", true),
            ("CA1234567890", true),
            ("2134", false),
            ("021345", false),
            (" 78729", false),
            ("78729 ", false),
            ("mx77400", false),
            ("MX123", false),
            ("CA12345678901", false),
            ("M177400", false),
            ("７８７２９", false),
            ("", false),
            ("formats", false),
        ];

        for (id, valid) in cases {
            assert_eq!(validate_location(id).is_ok(), valid, "{id:?}");
        }
    }

    #[test]
    fn error_shows_id_and_expected_form() {
        let error = validate_location("2134").unwrap_err().to_string();

        assert!(error.contains("\"2134\""), "{error}");
        assert!(error.contains("5 digits"), "{error}");
    }

    #[test]
    fn kv_key_prefixes_location() {
        assert_eq!(kv_key("02134"), "formats:02134");
    }
}
