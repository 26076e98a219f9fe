//! The registry of image formats the generator can render.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// The maximum number of formats in a registry, so that one event's jobs fit into one
/// send batch of at most 100 messages.
pub const MAX_FORMATS: usize = 100;

/// The maximum length of a format name, in bytes.
pub const MAX_FORMAT_NAME_BYTES: usize = 64;

/// An image format with the attributes the upstream generator uses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Format {
    /// Name used in `formats:` KV values and in jobs, such as `rgb_light`.
    pub name: String,
    /// Generator configuration class, such as `WLConfig_RGB_White`.
    pub config_class: String,
    /// File extension of the rendered image, with its dot, such as `.png`.
    pub extension: String,
    /// MIME type of the rendered image, such as `image/png`.
    pub mime_type: String,
    /// Title shown to people choosing a format.
    pub title: String,
}

/// An ordered set of formats whose first entry is the default.
///
/// By default ([`Registry::builtin`]) it contains `rgb_light` (the default),
/// `rgb_dark`, `bw`, `eink` and `bwi`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registry {
    formats: Vec<Format>,
}

/// An invalid registry document.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RegistryError {
    /// The document is not a JSON array of format objects.
    Syntax(String),
    /// The array is empty, so there is no default format.
    Empty,
    /// The array has more than [`MAX_FORMATS`] entries.
    TooMany(usize),
    /// One entry is invalid.
    Entry {
        /// Zero-based position of the entry in the array.
        index: usize,
        /// Name of the entry, as far as it could be read.
        name: String,
        /// Problem found in the entry.
        problem: String,
    },
}

impl fmt::Display for RegistryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Syntax(error) => write!(
                f,
                "invalid format registry: expected a JSON array of format objects: {error}"
            ),
            Self::Empty => write!(
                f,
                "invalid format registry: the array is empty, so there is no default format"
            ),
            Self::TooMany(count) => write!(
                f,
                "invalid format registry: {count} formats, at most {MAX_FORMATS} are allowed"
            ),
            Self::Entry {
                index,
                name,
                problem,
            } => write!(
                f,
                "invalid format registry entry {index} ({name:?}): {problem}"
            ),
        }
    }
}

impl std::error::Error for RegistryError {}

impl Registry {
    /// Returns the built-in registry, with `rgb_light` as the default.
    pub fn builtin() -> Self {
        let entry =
            |name: &str, config_class: &str, extension: &str, mime_type: &str, title: &str| {
                Format {
                    name: name.to_owned(),
                    config_class: config_class.to_owned(),
                    extension: extension.to_owned(),
                    mime_type: mime_type.to_owned(),
                    title: title.to_owned(),
                }
            };

        Self {
            formats: vec![
                entry(
                    "rgb_light",
                    "WLConfig_RGB_White",
                    ".png",
                    "image/png",
                    "Color, light background",
                ),
                entry(
                    "rgb_dark",
                    "WLConfig_RGB_Black",
                    ".png",
                    "image/png",
                    "Color, dark background",
                ),
                entry("bw", "WLConfig_BW", ".bmp", "image/bmp", "Black and white"),
                entry(
                    "eink",
                    "WLConfig_EINK",
                    ".bmp",
                    "image/bmp",
                    "E-ink display",
                ),
                entry(
                    "bwi",
                    "WLConfig_BWI",
                    ".bmp",
                    "image/bmp",
                    "Black and white, inverted",
                ),
            ],
        }
    }

    /// Parses and validates a registry document: a JSON array of [`Format`] objects, default first.
    ///
    /// Each entry needs all five fields as non-empty strings and no others. A
    /// name is 1 to 64 bytes of lowercase ASCII letters, digits and `_`, and
    /// appears once.
    ///
    /// # Errors
    ///
    /// Returns a [`RegistryError`] that names the offending entry by position and name.
    pub fn from_json(document: &str) -> Result<Self, RegistryError> {
        let entries: Vec<&RawValue> = serde_json::from_str(document)
            .map_err(|error| RegistryError::Syntax(error.to_string()))?;
        if entries.is_empty() {
            return Err(RegistryError::Empty);
        }
        if entries.len() > MAX_FORMATS {
            return Err(RegistryError::TooMany(entries.len()));
        }

        let mut formats: Vec<Format> = Vec::with_capacity(entries.len());
        for (index, entry) in entries.into_iter().enumerate() {
            let name = serde_json::from_str::<NameOnly>(entry.get())
                .ok()
                .and_then(|entry| entry.name)
                .unwrap_or_default();
            let invalid = |problem: String| RegistryError::Entry {
                index,
                name: name.clone(),
                problem,
            };

            let format: Format =
                serde_json::from_str(entry.get()).map_err(|error| invalid(error.to_string()))?;
            check_format(&format).map_err(invalid)?;
            if formats.iter().any(|known| known.name == format.name) {
                return Err(invalid("duplicate name".to_owned()));
            }
            formats.push(format);
        }

        Ok(Self { formats })
    }

    /// Returns the default format, the first entry.
    pub fn default_format(&self) -> &Format {
        &self.formats[0]
    }

    /// Returns the format with this name, if the registry has one.
    pub fn get(&self, name: &str) -> Option<&Format> {
        self.formats.iter().find(|format| format.name == name)
    }

    /// Returns the position of the format with this name, if the registry has one.
    pub(crate) fn position(&self, name: &str) -> Option<usize> {
        self.formats.iter().position(|format| format.name == name)
    }

    /// Returns all formats, default first.
    pub fn formats(&self) -> &[Format] {
        &self.formats
    }
}

impl Default for Registry {
    fn default() -> Self {
        Self::builtin()
    }
}

/// The name of a registry entry, read apart so that errors can name an invalid entry.
#[derive(Deserialize)]
struct NameOnly {
    name: Option<String>,
}

fn check_format(format: &Format) -> Result<(), String> {
    let name_ok = !format.name.is_empty()
        && format.name.len() <= MAX_FORMAT_NAME_BYTES
        && format
            .name
            .bytes()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'_');
    if !name_ok {
        return Err(format!(
            "invalid name: expected 1 to {MAX_FORMAT_NAME_BYTES} lowercase ASCII letters, digits or '_'"
        ));
    }

    let fields = [
        ("config_class", &format.config_class),
        ("extension", &format.extension),
        ("mime_type", &format.mime_type),
        ("title", &format.title),
    ];
    match fields.iter().find(|(_, value)| value.trim().is_empty()) {
        Some((field, _)) => Err(format!("empty field `{field}`")),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_default_is_rgb_light() {
        let registry = Registry::builtin();

        assert_eq!(registry.default_format().name, "rgb_light");
        assert_eq!(registry.formats().len(), 5);
    }

    #[test]
    fn builtin_round_trips_through_json() {
        let document = serde_json::to_string(Registry::builtin().formats()).unwrap_or_default();

        let parsed = Registry::from_json(&document);

        assert_eq!(parsed, Ok(Registry::builtin()));
    }

    #[test]
    fn from_json_names_offending_entry() {
        let good = r#"{"name":"rgb_light","config_class":"C","extension":".png","mime_type":"image/png","title":"T"}"#;
        let cases = [
            ("{}", "expected a JSON array"),
            ("[]", "array is empty"),
            (
                &format!("[{good},{{\"name\":\"sepia\"}}]") as &str,
                "entry 1 (\"sepia\"): missing field",
            ),
            (
                &format!("[{good},{good}]"),
                "entry 1 (\"rgb_light\"): duplicate name",
            ),
            (
                r#"[{"name":"Sepia","config_class":"C","extension":".png","mime_type":"image/png","title":"T"}]"#,
                "entry 0 (\"Sepia\"): invalid name",
            ),
            (
                r#"[{"name":"x","config_class":"","extension":".png","mime_type":"image/png","title":"T"}]"#,
                "entry 0 (\"x\"): empty field `config_class`",
            ),
            (
                r#"[{"name":"x","config_class":"C","extension":".png","mime_type":"image/png","title":"T","dpi":3}]"#,
                "unknown field `dpi`",
            ),
        ];

        for (document, expected) in cases {
            let error = Registry::from_json(document)
                .map(|_| ())
                .unwrap_err()
                .to_string();

            assert!(error.contains(expected), "{document}: {error}");
        }
    }

    #[test]
    fn from_json_rejects_too_many_formats() {
        let entries: Vec<String> = (0..=MAX_FORMATS)
            .map(|i| format!(r#"{{"name":"f{i}","config_class":"C","extension":".png","mime_type":"image/png","title":"T"}}"#))
            .collect();

        let result = Registry::from_json(&format!("[{}]", entries.join(",")));

        assert_eq!(result, Err(RegistryError::TooMany(MAX_FORMATS + 1)));
    }
}
