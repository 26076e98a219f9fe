//! Settings read from the `wrangler.toml` that the Worker deploys with.
//!
//! The runner reads the KV binding `CONFIG`, the one `[[queues.consumers]]` entry, the
//! producer bindings `LANDSCAPE_JOBS` and `DEAD_LETTERS`, and `[vars]`. Other wrangler
//! keys are tolerated and ignored. Within a consumer, producer or KV entry, a key that
//! wrangler does not define is rejected, because it is most likely a typo.

use std::fmt;
use std::path::{Path, PathBuf};

use landscape_core::{Config, Registry, RetryPolicy};
use toml::{Table, Value};

/// The KV binding that contains the `formats:` entries.
pub const KV_BINDING: &str = "CONFIG";
/// The producer binding of the jobs queue.
pub const JOBS_BINDING: &str = "LANDSCAPE_JOBS";
/// The producer binding of the dead-letter queue.
pub const DEAD_LETTERS_BINDING: &str = "DEAD_LETTERS";

const CONSUMER_KEYS: &[&str] = &[
    "queue",
    "type",
    "max_batch_size",
    "max_batch_timeout",
    "max_retries",
    "retry_delay",
    "dead_letter_queue",
    "max_concurrency",
    "visibility_timeout_ms",
];
const PRODUCER_KEYS: &[&str] = &["binding", "queue", "delivery_delay"];
const KV_KEYS: &[&str] = &["binding", "id", "preview_id"];

/// The consumer settings of the `weather-ready` queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsumerSettings {
    /// The queue consumed.
    pub queue: String,
    /// Messages per batch, 1 to 100.
    pub max_batch_size: u32,
    /// Seconds to wait for a full batch before delivering a partial one, 0 to 60.
    pub max_batch_timeout_secs: u32,
    /// Retries before a message moves to the dead-letter queue, 0 to 100.
    pub max_retries: u32,
    /// Default retry delay of the queue, in seconds, 0 to 43,200.
    pub retry_delay_secs: u32,
    /// The dead-letter queue.
    pub dead_letter_queue: String,
}

/// Everything the runner reads from `wrangler.toml`.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The file the settings came from.
    pub path: PathBuf,
    /// The consumer of `weather-ready`.
    pub consumer: ConsumerSettings,
    /// The queue bound to `LANDSCAPE_JOBS`.
    pub jobs_queue: String,
    /// The registry and retry policy for the core.
    pub core: Config,
}

/// Flags that replace single consumer settings; `None` keeps the file's value.
#[derive(Clone, Copy, Debug, Default)]
pub struct ConsumerOverrides {
    /// Replaces `max_batch_size`.
    pub max_batch_size: Option<u32>,
    /// Replaces `max_batch_timeout`.
    pub max_batch_timeout_secs: Option<u32>,
    /// Replaces `max_retries`.
    pub max_retries: Option<u32>,
    /// Replaces `retry_delay`.
    pub retry_delay_secs: Option<u32>,
}

/// A settings file that cannot be read, or a missing or invalid setting.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The file cannot be read.
    #[error("{}: failed to read: {error}; pass --config with the path of wrangler.toml", path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    /// A setting is missing or invalid; `key` names it, or the line of a TOML syntax error.
    #[error("{}: {key}: {problem}", path.display())]
    Invalid {
        path: PathBuf,
        key: String,
        problem: String,
    },
}

impl Settings {
    /// Reads and checks the settings in `path`.
    ///
    /// # Errors
    ///
    /// Fails if the file cannot be read or parsed, or a setting is missing or invalid.
    pub fn load(path: &Path) -> Result<Self, SettingsError> {
        let text = std::fs::read_to_string(path).map_err(|error| SettingsError::Read {
            path: path.to_owned(),
            error,
        })?;
        Self::parse(path, &text)
    }

    /// Parses the settings from `text`, naming `path` in errors.
    ///
    /// # Errors
    ///
    /// Fails if the text is not TOML, or a setting is missing or invalid.
    pub fn parse(path: &Path, text: &str) -> Result<Self, SettingsError> {
        let reader = Reader { path };
        let root: Table = text.parse().map_err(|error: toml::de::Error| {
            let offset = error.span().map_or(0, |span| span.start);
            let line = text[..offset.min(text.len())].lines().count().max(1);
            reader.error(
                &format!("line {line}"),
                format!("invalid TOML: {}", error.message()),
            )
        })?;

        reader.kv_namespace(&root)?;
        let consumer = reader.consumer(&root)?;
        let jobs_queue = reader.producer_queue(&root, JOBS_BINDING)?.ok_or_else(|| {
            reader.error(
                "queues.producers",
                format!("missing; expected an entry with binding = \"{JOBS_BINDING}\""),
            )
        })?;
        reader.check_dead_letter_producer(&root, &consumer)?;
        let core = reader.core_config(&root, consumer.retry_delay_secs)?;

        Ok(Self {
            path: path.to_owned(),
            consumer,
            jobs_queue,
            core,
        })
    }

    /// Replaces the consumer settings that `overrides` sets, checking the same ranges.
    ///
    /// # Errors
    ///
    /// Fails if an override is out of range; the error names the flag.
    pub fn apply(&mut self, overrides: ConsumerOverrides) -> Result<(), SettingsError> {
        let consumer = &mut self.consumer;
        let flags = [
            (
                overrides.max_batch_size,
                "--max-batch-size",
                BATCH_SIZE,
                &mut consumer.max_batch_size,
            ),
            (
                overrides.max_batch_timeout_secs,
                "--max-batch-timeout",
                BATCH_TIMEOUT,
                &mut consumer.max_batch_timeout_secs,
            ),
            (
                overrides.max_retries,
                "--max-retries",
                RETRIES,
                &mut consumer.max_retries,
            ),
            (
                overrides.retry_delay_secs,
                "--retry-delay",
                RETRY_DELAY,
                &mut consumer.retry_delay_secs,
            ),
        ];

        for (value, flag, range, target) in flags {
            let Some(value) = value else { continue };
            if !range.contains(value) {
                return Err(SettingsError::Invalid {
                    path: PathBuf::from("command line"),
                    key: flag.to_owned(),
                    problem: format!("{value} is out of range; expected {range}"),
                });
            }
            *target = value;
        }
        Ok(())
    }

    /// Returns every queue the settings name: consumer, jobs and dead-letter queue.
    pub fn queues(&self) -> [&str; 3] {
        [
            &self.consumer.queue,
            &self.jobs_queue,
            &self.consumer.dead_letter_queue,
        ]
    }
}

/// An inclusive range of integers with a unit, for checks and messages.
#[derive(Clone, Copy, Debug)]
struct IntRange {
    min: u32,
    max: u32,
    unit: &'static str,
}

impl IntRange {
    fn contains(self, value: u32) -> bool {
        (self.min..=self.max).contains(&value)
    }
}

impl fmt::Display for IntRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "an integer from {} to {}{}",
            self.min, self.max, self.unit
        )
    }
}

// Limits of Cloudflare Queues consumers, as wrangler documents them.
const BATCH_SIZE: IntRange = IntRange {
    min: 1,
    max: 100,
    unit: " (messages)",
};
const BATCH_TIMEOUT: IntRange = IntRange {
    min: 0,
    max: 60,
    unit: " (seconds)",
};
const RETRIES: IntRange = IntRange {
    min: 0,
    max: 100,
    unit: "",
};
const RETRY_DELAY: IntRange = IntRange {
    min: 0,
    max: 43_200,
    unit: " (seconds)",
};
const RETRY_VAR: IntRange = IntRange {
    min: 0,
    max: 43_200,
    unit: " (seconds, as a string)",
};

/// Walks the parsed file and names the file and key in every error.
struct Reader<'p> {
    path: &'p Path,
}

impl Reader<'_> {
    fn error(&self, key: &str, problem: impl Into<String>) -> SettingsError {
        SettingsError::Invalid {
            path: self.path.to_owned(),
            key: key.to_owned(),
            problem: problem.into(),
        }
    }

    /// Returns the array of tables at `key` in `table`, or an empty slice if it is missing.
    fn entries<'t>(
        &self,
        table: &'t Table,
        key: &str,
        name: &str,
    ) -> Result<&'t [Value], SettingsError> {
        match table.get(key) {
            None => Ok(&[]),
            Some(Value::Array(entries)) => Ok(entries),
            Some(_) => Err(self.error(name, format!("expected an array of tables ([[{name}]])"))),
        }
    }

    fn entry_table<'t>(
        &self,
        entry: &'t Value,
        name: &str,
        known: &[&str],
    ) -> Result<&'t Table, SettingsError> {
        let Value::Table(table) = entry else {
            return Err(self.error(name, "expected a table"));
        };
        if let Some(unknown) = table.keys().find(|key| !known.contains(&key.as_str())) {
            return Err(self.error(
                &format!("{name}.{unknown}"),
                format!("unknown key; expected one of {}", known.join(", ")),
            ));
        }
        Ok(table)
    }

    fn string<'t>(
        &self,
        table: &'t Table,
        key: &str,
        name: &str,
    ) -> Result<&'t str, SettingsError> {
        match table.get(key) {
            Some(Value::String(text)) if !text.is_empty() => Ok(text),
            Some(other) => Err(self.error(
                &format!("{name}.{key}"),
                format!("expected a non-empty string, found {other}"),
            )),
            None => Err(self.error(
                &format!("{name}.{key}"),
                "missing; expected a non-empty string",
            )),
        }
    }

    fn integer(
        &self,
        table: &Table,
        key: &str,
        name: &str,
        range: IntRange,
    ) -> Result<u32, SettingsError> {
        let key_name = format!("{name}.{key}");
        let value = match table.get(key) {
            Some(Value::Integer(value)) => u32::try_from(*value)
                .ok()
                .filter(|&value| range.contains(value)),
            Some(other) => {
                return Err(self.error(&key_name, format!("expected {range}, found {other}")))
            }
            None => return Err(self.error(&key_name, format!("missing; expected {range}"))),
        };
        value.ok_or_else(|| {
            self.error(
                &key_name,
                format!("out of range; expected {range}, found {}", table[key]),
            )
        })
    }

    fn kv_namespace(&self, root: &Table) -> Result<(), SettingsError> {
        for (index, entry) in self
            .entries(root, "kv_namespaces", "kv_namespaces")?
            .iter()
            .enumerate()
        {
            let name = format!("kv_namespaces[{index}]");
            let table = self.entry_table(entry, &name, KV_KEYS)?;
            if self.string(table, "binding", &name)? == KV_BINDING {
                return Ok(());
            }
        }
        Err(self.error(
            "kv_namespaces",
            format!("missing; expected an entry with binding = \"{KV_BINDING}\""),
        ))
    }

    fn consumer(&self, root: &Table) -> Result<ConsumerSettings, SettingsError> {
        let queues = match root.get("queues") {
            Some(Value::Table(queues)) => queues,
            Some(_) => return Err(self.error("queues", "expected a table")),
            None => {
                return Err(self.error(
                    "queues.consumers",
                    "missing; expected one [[queues.consumers]] entry",
                ))
            }
        };
        let entries = self.entries(queues, "consumers", "queues.consumers")?;
        let [entry] = entries else {
            return Err(self.error(
                "queues.consumers",
                format!(
                    "expected exactly one [[queues.consumers]] entry, found {}",
                    entries.len()
                ),
            ));
        };

        let name = "queues.consumers[0]";
        let table = self.entry_table(entry, name, CONSUMER_KEYS)?;
        Ok(ConsumerSettings {
            queue: self.string(table, "queue", name)?.to_owned(),
            max_batch_size: self.integer(table, "max_batch_size", name, BATCH_SIZE)?,
            max_batch_timeout_secs: self.integer(
                table,
                "max_batch_timeout",
                name,
                BATCH_TIMEOUT,
            )?,
            max_retries: self.integer(table, "max_retries", name, RETRIES)?,
            retry_delay_secs: self.integer(table, "retry_delay", name, RETRY_DELAY)?,
            dead_letter_queue: self.string(table, "dead_letter_queue", name)?.to_owned(),
        })
    }

    /// Returns the queue of the producer entry with `binding`, if there is one.
    fn producer_queue(&self, root: &Table, binding: &str) -> Result<Option<String>, SettingsError> {
        let Some(Value::Table(queues)) = root.get("queues") else {
            return Ok(None);
        };

        for (index, entry) in self
            .entries(queues, "producers", "queues.producers")?
            .iter()
            .enumerate()
        {
            let name = format!("queues.producers[{index}]");
            let table = self.entry_table(entry, &name, PRODUCER_KEYS)?;
            if self.string(table, "binding", &name)? == binding {
                return Ok(Some(self.string(table, "queue", &name)?.to_owned()));
            }
        }
        Ok(None)
    }

    /// Checks that `DEAD_LETTERS`, if bound, sends to the consumer's dead-letter queue.
    fn check_dead_letter_producer(
        &self,
        root: &Table,
        consumer: &ConsumerSettings,
    ) -> Result<(), SettingsError> {
        match self.producer_queue(root, DEAD_LETTERS_BINDING)? {
            Some(queue) if queue != consumer.dead_letter_queue => Err(self.error(
                "queues.producers",
                format!(
                    "the {DEAD_LETTERS_BINDING} producer sends to \"{queue}\"; expected \"{}\", \
                     the consumer's dead_letter_queue",
                    consumer.dead_letter_queue
                ),
            )),
            _ => Ok(()),
        }
    }

    /// Builds the core's settings; without `RETRY_BASE_DELAY_SECS`, the backoff starts at
    /// the consumer's `retry_delay`.
    fn core_config(&self, root: &Table, retry_delay_secs: u32) -> Result<Config, SettingsError> {
        let empty = Table::new();
        let vars = match root.get("vars") {
            Some(Value::Table(vars)) => vars,
            Some(_) => return Err(self.error("vars", "expected a table")),
            None => &empty,
        };

        let defaults = RetryPolicy::default();
        let retry = RetryPolicy {
            base_delay_secs: self
                .number_var(vars, "RETRY_BASE_DELAY_SECS")?
                .unwrap_or(retry_delay_secs),
            max_delay_secs: self
                .number_var(vars, "RETRY_MAX_DELAY_SECS")?
                .unwrap_or(defaults.max_delay_secs),
        };
        let registry = self.registry_var(vars)?;
        Ok(Config { registry, retry })
    }

    /// Reads an optional number var, given as a string like the Worker reads it, or as an integer.
    fn number_var(&self, vars: &Table, key: &str) -> Result<Option<u32>, SettingsError> {
        let name = format!("vars.{key}");
        let value = match vars.get(key) {
            None => return Ok(None),
            Some(Value::String(text)) => text.trim().parse::<u32>().ok(),
            Some(Value::Integer(value)) => u32::try_from(*value).ok(),
            Some(other) => {
                return Err(self.error(&name, format!("expected {RETRY_VAR}, found {other}")))
            }
        };
        match value {
            Some(value) if RETRY_VAR.contains(value) => Ok(Some(value)),
            _ => Err(self.error(&name, format!("expected {RETRY_VAR}, found {}", vars[key]))),
        }
    }

    fn registry_var(&self, vars: &Table) -> Result<Registry, SettingsError> {
        let name = "vars.FORMAT_REGISTRY";
        match vars.get("FORMAT_REGISTRY") {
            None => Ok(Registry::builtin()),
            Some(Value::String(document)) => {
                Registry::from_json(document).map_err(|error| self.error(name, error.to_string()))
            }
            Some(other) => Err(self.error(
                name,
                format!("expected a JSON document as a string, found {other}"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHIPPED: &str = include_str!("../../../wrangler.toml");

    fn parse(text: &str) -> Result<Settings, SettingsError> {
        Settings::parse(Path::new("wrangler.toml"), text)
    }

    #[test]
    fn shipped_file_parses() {
        let settings = parse(SHIPPED).expect("shipped wrangler.toml");

        assert_eq!(settings.consumer.queue, "weather-ready");
        assert_eq!(settings.consumer.max_batch_size, 10);
        assert_eq!(settings.consumer.max_batch_timeout_secs, 30);
        assert_eq!(settings.consumer.max_retries, 3);
        assert_eq!(settings.consumer.retry_delay_secs, 10);
        assert_eq!(settings.consumer.dead_letter_queue, "weather-ready-dlq");
        assert_eq!(settings.jobs_queue, "landscape-jobs");
        assert_eq!(settings.core.retry.base_delay_secs, 10);
        assert_eq!(settings.core.retry.max_delay_secs, 43_200);
    }

    #[test]
    fn errors_name_file_key_and_expectation() {
        let cases = [
            ("max_batch_size = 10", "max_batch_size = 0", "wrangler.toml: queues.consumers[0].max_batch_size: out of range; expected an integer from 1 to 100 (messages), found 0"),
            ("max_retries = 3\n", "", "wrangler.toml: queues.consumers[0].max_retries: missing; expected an integer from 0 to 100"),
            ("retry_delay = 10", "retry_delay = \"10\"", "wrangler.toml: queues.consumers[0].retry_delay: expected an integer from 0 to 43200 (seconds), found \"10\""),
            ("max_retries = 3", "max_retries = 3\nmax_retrys = 4", "wrangler.toml: queues.consumers[0].max_retrys: unknown key; expected one of"),
            ("RETRY_BASE_DELAY_SECS = \"10\"", "RETRY_BASE_DELAY_SECS = \"ten\"", "wrangler.toml: vars.RETRY_BASE_DELAY_SECS: expected an integer from 0 to 43200 (seconds, as a string), found \"ten\""),
            ("binding = \"CONFIG\"", "binding = \"OTHER\"", "wrangler.toml: kv_namespaces: missing; expected an entry with binding = \"CONFIG\""),
            ("binding = \"LANDSCAPE_JOBS\"", "binding = \"JOBS\"", "wrangler.toml: queues.producers: missing; expected an entry with binding = \"LANDSCAPE_JOBS\""),
        ];

        for (from, to, expected) in cases {
            let text = SHIPPED.replacen(from, to, 1);

            let error = parse(&text).expect_err(expected).to_string();

            assert!(
                error.starts_with(expected),
                "{error:?} does not start with {expected:?}"
            );
        }
    }

    #[test]
    fn registry_var_replaces_builtin() {
        let text = format!(
            "{SHIPPED}\nFORMAT_REGISTRY = '[{{\"name\": \"rgb_light\", \"config_class\": \"C\", \"extension\": \".png\", \"mime_type\": \"image/png\", \"title\": \"T\"}}]'\n"
        );

        let settings = parse(&text).expect("settings");

        assert_eq!(settings.core.registry.formats().len(), 1);
    }

    #[test]
    fn invalid_registry_var_is_described_once() {
        let text = format!("{SHIPPED}\nFORMAT_REGISTRY = 'not json'\n");

        let error = parse(&text).expect_err("invalid registry").to_string();

        assert!(
            error.starts_with("wrangler.toml: vars.FORMAT_REGISTRY: invalid format registry: "),
            "{error}"
        );
        assert_eq!(
            error.matches("invalid format registry").count(),
            1,
            "{error}"
        );
        assert_eq!(error.matches("expected a JSON array").count(), 1, "{error}");
    }

    #[test]
    fn overrides_replace_and_check_range() {
        let mut settings = parse(SHIPPED).expect("settings");
        let overrides = ConsumerOverrides {
            max_batch_size: Some(100),
            ..ConsumerOverrides::default()
        };

        settings.apply(overrides).expect("in range");
        let out_of_range = settings.apply(ConsumerOverrides {
            max_batch_size: Some(101),
            ..ConsumerOverrides::default()
        });

        assert_eq!(settings.consumer.max_batch_size, 100);
        assert!(out_of_range.is_err());
    }
}
