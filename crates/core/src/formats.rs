//! Resolution of a `formats:{location}` KV value into the formats to render.

use std::borrow::Cow;

use serde::de::IgnoredAny;
use serde_json::value::RawValue;

use crate::event::excerpt;
use crate::registry::{Format, Registry};
use crate::report::WarningCode;

/// The formats a KV value resolves to, as registry positions with the default first,
/// and the warning the value raised, if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Resolution {
    pub positions: Cow<'static, [usize]>,
    pub warning: Option<(WarningCode, String)>,
}

/// Resolves the value of `key` into registry positions.
///
/// - `None` (no such key): the default only, with no warning.
/// - An empty value or `[]`: the default only, with a warning.
/// - A JSON array: the known names in their order, the default first, each once. Unknown
///   names and values that are not strings are skipped with one warning that lists them.
/// - Anything else: the default only, with a warning. A JSON string is never split.
pub(crate) fn resolve(registry: &Registry, key: &str, value: Option<&str>) -> Resolution {
    let default_only = |warning: Option<(WarningCode, String)>| Resolution {
        positions: Cow::Borrowed(&[0]),
        warning,
    };
    let default_name = &registry.default_format().name;

    let Some(value) = value else {
        return default_only(None);
    };
    if value.trim().is_empty() {
        return default_only(Some((
            WarningCode::EmptyFormats,
            format!("{key} is empty; using the default format {default_name}"),
        )));
    }

    match serde_json::from_str::<Vec<&RawValue>>(value) {
        Ok(items) if items.is_empty() => default_only(Some((
            WarningCode::EmptyFormats,
            format!("{key} is an empty array; using the default format {default_name}"),
        ))),
        Ok(items) => resolve_array(registry, key, &items),
        Err(_) => default_only(Some((
            WarningCode::InvalidFormats,
            format!(
                "{key} is {}, not an array of format names; using the default format {default_name}",
                describe(value)
            ),
        ))),
    }
}

fn resolve_array(registry: &Registry, key: &str, items: &[&RawValue]) -> Resolution {
    let mut positions = vec![0];
    let mut skipped = Vec::new();

    for item in items {
        let name = serde_json::from_str::<Cow<'_, str>>(item.get()).ok();
        match name.and_then(|name| registry.position(&name)) {
            Some(position) if !positions.contains(&position) => positions.push(position),
            Some(_) => {}
            None => skipped.push(excerpt(item.get())),
        }
    }

    let warning = (!skipped.is_empty()).then(|| {
        (
            WarningCode::UnknownFormats,
            format!(
                "{key} lists {} unknown formats or values that are not strings, skipped: {}",
                skipped.len(),
                list_excerpt(&skipped)
            ),
        )
    });
    Resolution {
        positions: Cow::Owned(positions),
        warning,
    }
}

fn list_excerpt(values: &[String]) -> String {
    const MAX_LISTED: usize = 5;

    let listed = values[..values.len().min(MAX_LISTED)].join(", ");
    match values.len().checked_sub(MAX_LISTED) {
        Some(rest) if rest > 0 => format!("{listed} and {rest} more"),
        _ => listed,
    }
}

/// Describes a value that is not a JSON array by its JSON type, without showing it,
/// because KV values stay out of logs.
fn describe(value: &str) -> String {
    if serde_json::from_str::<IgnoredAny>(value).is_err() {
        return format!("not valid JSON ({} bytes)", value.len());
    }
    let kind = match value.trim_start().as_bytes().first() {
        Some(b'"') => "a JSON string",
        Some(b'{') => "a JSON object",
        Some(b't' | b'f') => "a JSON boolean",
        Some(b'n') => "JSON null",
        _ => "a JSON number",
    };
    kind.to_owned()
}

/// Resolves a `formats:` KV value into formats, default first, and the warning it raises.
///
/// `value` is `None` when the key is missing. The dispatcher applies the same rules:
/// a missing key, an empty value or `[]` give the default only. An array gives its known
/// names in order after the default, each once. Any other value gives the default only.
pub fn resolve_formats<'r>(
    registry: &'r Registry,
    key: &str,
    value: Option<&str>,
) -> (Vec<&'r Format>, Option<String>) {
    let resolution = resolve(registry, key, value);
    let formats = resolution
        .positions
        .iter()
        .map(|&position| &registry.formats()[position])
        .collect();
    (formats, resolution.warning.map(|(_, text)| text))
}

/// Encodes format names as the KV value the upstream admin writes, such as `["rgb_light", "bw"]`.
pub fn encode_formats(names: &[&str]) -> String {
    let quoted: Vec<String> = names
        .iter()
        .map(|name| serde_json::to_string(name).unwrap_or_default())
        .collect();
    format!("[{}]", quoted.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(value: Option<&str>) -> (Vec<String>, Option<String>) {
        let registry = Registry::builtin();
        let (formats, warning) = resolve_formats(&registry, "formats:78729", value);
        let names = formats.iter().map(|format| format.name.clone()).collect();
        (names, warning)
    }

    #[test]
    fn arrays_keep_order_default_first_without_duplicates() {
        let cases: [(&str, &[&str]); 5] = [
            (
                r#"["bw","rgb_light","bw","eink","eink"]"#,
                &["rgb_light", "bw", "eink"],
            ),
            (r#"["bw","bw"]"#, &["rgb_light", "bw"]),
            (r#"["rgb_light"]"#, &["rgb_light"]),
            (r#"["bwi", "rgb_dark"]"#, &["rgb_light", "bwi", "rgb_dark"]),
            (
                r#"["rgb_light","rgb_dark","bw","eink","bwi"]"#,
                &["rgb_light", "rgb_dark", "bw", "eink", "bwi"],
            ),
        ];

        for (value, expected) in cases {
            let (formats, warning) = names(Some(value));

            assert_eq!(formats, expected, "{value}");
            assert_eq!(warning, None, "{value}");
        }
    }

    #[test]
    fn other_values_give_default_with_warning_naming_key() {
        let cases = [
            r#""rgb_light,bw""#,
            "rgb_light,bw",
            r#"{"formats":["bw"]}"#,
            "[]",
            "",
            "  ",
            "null",
            "5",
        ];

        for value in cases {
            let (formats, warning) = names(Some(value));

            assert_eq!(formats, ["rgb_light"], "{value:?}");
            let warning = warning.unwrap_or_default();
            assert!(warning.contains("formats:78729"), "{value:?}: {warning}");
        }
    }

    #[test]
    fn missing_key_gives_default_without_warning() {
        assert_eq!(names(None), (vec!["rgb_light".to_owned()], None));
    }

    #[test]
    fn unknown_items_skipped_with_one_warning() {
        let (formats, warning) = names(Some(r#"["bw",5,null,"sepia"]"#));

        assert_eq!(formats, ["rgb_light", "bw"]);
        assert_eq!(
            warning.as_deref(),
            Some(
                r#"formats:78729 lists 3 unknown formats or values that are not strings, skipped: 5, null, "sepia""#
            )
        );
    }

    #[test]
    fn long_skip_lists_are_shortened() {
        let (_, warning) = names(Some(r#"["a","b","c","d","e","f","g"]"#));

        assert!(warning.unwrap_or_default().ends_with("\"e\" and 2 more"));
    }

    #[test]
    fn encode_writes_python_json_dumps_form() {
        assert_eq!(
            encode_formats(&["rgb_light", "bw"]),
            r#"["rgb_light", "bw"]"#
        );
    }
}
