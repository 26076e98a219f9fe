//! The subcommands that read and write the store: send, kv, formats, queue and dlq.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use base64::Engine;
use landscape_core::{encode_formats, kv_key, resolve_formats, validate_location};
use serde::Deserialize;

use crate::cli::{DlqCommand, FormatsCommand, KvBulkCommand, KvCommand, QueueCommand};
use crate::clock::now_micros;
use crate::output::{self, counted};
use crate::settings::Settings;
use crate::store::Store;

/// Lines enqueued per transaction by `send`.
const SEND_CHUNK_LINES: usize = 10_000;

/// The maximum size of a KV key, in bytes, as in Cloudflare KV.
const MAX_KV_KEY_BYTES: usize = 512;

/// An error in the request itself, such as an unknown queue; the process exits with 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Opens the store at `db`, creating it if needed, with the path as error context.
pub fn open_store(db: &Path) -> Result<Store> {
    Store::open(db).with_context(|| db.display().to_string())
}

/// Opens the store at `db` for a command that only reads or changes existing data.
///
/// A missing file is a usage error that names the path, so a mistyped `--db` fails
/// instead of creating a new, empty store.
pub fn open_existing_store(db: &Path) -> Result<Store> {
    match std::fs::metadata(db) {
        Err(error) if error.kind() == io::ErrorKind::NotFound => Err(UsageError(format!(
            "{}: store not found; pass --db with the path of an existing store, \
             or create one with `kv bulk put` or `send`",
            db.display()
        ))
        .into()),
        _ => open_store(db),
    }
}

/// Loads the settings, with the file named in the error.
pub fn load_settings(config: &Path) -> Result<Settings> {
    Ok(Settings::load(config)?)
}

/// Opens `file` for reading, or standard input for `None` and `-`.
pub fn open_input(file: Option<&Path>) -> Result<Box<dyn BufRead>> {
    match file {
        None => Ok(Box::new(io::stdin().lock())),
        Some(path) if path == Path::new("-") => Ok(Box::new(io::stdin().lock())),
        Some(path) => {
            let file =
                File::open(path).with_context(|| format!("{}: failed to open", path.display()))?;
            Ok(Box::new(BufReader::new(file)))
        }
    }
}

/// Returns the input's name for messages.
pub fn input_name(file: Option<&Path>) -> String {
    match file {
        Some(path) if path != Path::new("-") => path.display().to_string(),
        _ => "standard input".to_owned(),
    }
}

/// Checks that `queue` is one of the queues the settings name.
fn check_queue(settings: &Settings, queue: &str) -> Result<()> {
    let known = settings.queues();
    if known.contains(&queue) {
        return Ok(());
    }
    Err(UsageError(format!(
        "unknown queue \"{queue}\"; expected one of {} (from {})",
        known.join(", "),
        settings.path.display()
    ))
    .into())
}

/// Enqueues one message per non-blank line of `file` on `queue`.
pub fn send(db: &Path, config: &Path, queue: &str, file: Option<&PathBuf>) -> Result<()> {
    let settings = load_settings(config)?;
    check_queue(&settings, queue)?;
    let mut store = open_store(db)?;
    let name = input_name(file.map(PathBuf::as_path));
    let mut input = open_input(file.map(PathBuf::as_path))?;
    let progress = output::counter("sending");

    let mut chunk = Vec::with_capacity(SEND_CHUNK_LINES);
    let mut enqueued = 0;
    let mut line_number = 0;
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = input
            .read_until(b'\n', &mut line)
            .with_context(|| format!("{name}: failed to read line {}", line_number + 1))?;
        if read == 0 {
            break;
        }
        line_number += 1;

        let Ok(text) = String::from_utf8(std::mem::take(&mut line)) else {
            enqueued += flush(&mut store, queue, &mut chunk, db)?;
            progress.finish_and_clear();
            anyhow::bail!(
                "{name}: line {line_number} is not valid UTF-8; {} from the lines before it \
                 stay enqueued, so fix the line and send the lines from it on",
                counted(enqueued, "message", "messages")
            );
        };
        let text = text.trim_end_matches(['\n', '\r']);
        if !text.trim().is_empty() {
            chunk.push(text.to_owned());
        }

        if chunk.len() == SEND_CHUNK_LINES {
            enqueued += flush(&mut store, queue, &mut chunk, db)?;
            progress.set_position(enqueued as u64);
        }
    }
    enqueued += flush(&mut store, queue, &mut chunk, db)?;
    progress.finish_and_clear();

    writeln!(
        io::stdout(),
        "enqueued {} on {queue} from {name}",
        counted(enqueued, "message", "messages")
    )?;
    Ok(())
}

fn flush(store: &mut Store, queue: &str, chunk: &mut Vec<String>, db: &Path) -> Result<usize> {
    if chunk.is_empty() {
        return Ok(0);
    }
    let count = store
        .enqueue(queue, chunk, now_micros())
        .with_context(|| format!("{}: failed to enqueue on {queue}", db.display()))?;
    chunk.clear();
    Ok(count)
}

/// Runs a `kv` subcommand.
pub fn kv(db: &Path, command: KvCommand) -> Result<()> {
    let creates_store = matches!(command, KvCommand::Put { .. } | KvCommand::Bulk(_));
    let mut store = if creates_store {
        open_store(db)?
    } else {
        open_existing_store(db)?
    };
    let context = || format!("{}: KV operation failed", db.display());
    match command {
        KvCommand::Get { key } => {
            let value = store.kv_get(&key).with_context(context)?;
            let value = value
                .ok_or_else(|| anyhow::anyhow!("{}: key \"{key}\" not found", db.display()))?;
            writeln!(io::stdout(), "{value}")?;
        }
        KvCommand::Put { key, value } => {
            check_kv_key(&key)?;
            store.kv_put(&key, &value).with_context(context)?;
        }
        KvCommand::Delete { key } => {
            if !store.kv_delete(&key).with_context(context)? {
                anyhow::bail!("{}: key \"{key}\" not found", db.display());
            }
        }
        KvCommand::List { prefix } => {
            let mut stdout = io::stdout().lock();
            for key in store.kv_list(&prefix).with_context(context)? {
                writeln!(stdout, "{key}")?;
            }
        }
        KvCommand::Bulk(KvBulkCommand::Put { file }) => bulk_put(&mut store, db, &file)?,
    }
    Ok(())
}

fn check_kv_key(key: &str) -> Result<()> {
    if key.is_empty() || key.len() > MAX_KV_KEY_BYTES {
        return Err(UsageError(format!(
            "invalid KV key \"{key}\"; expected 1 to {MAX_KV_KEY_BYTES} bytes"
        ))
        .into());
    }
    Ok(())
}

/// One entry of a `wrangler kv bulk put` file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BulkEntry {
    key: String,
    value: String,
    #[serde(default)]
    base64: bool,
    // Accepted for compatibility with wrangler's layout; the store keeps no expiry or metadata.
    #[serde(default, rename = "expiration")]
    _expiration: Option<serde_json::Value>,
    #[serde(default, rename = "expiration_ttl")]
    _expiration_ttl: Option<serde_json::Value>,
    #[serde(default, rename = "metadata")]
    _metadata: Option<serde_json::Value>,
}

fn bulk_put(store: &mut Store, db: &Path, file: &Path) -> Result<()> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("{}: failed to read", file.display()))?;
    let entries: Vec<BulkEntry> = serde_json::from_str(&text).map_err(|error| {
        UsageError(format!(
            "{}: invalid bulk file: {error}; expected a JSON array of {{\"key\": ..., \"value\": ...}} objects",
            file.display()
        ))
    })?;

    let mut pairs = Vec::with_capacity(entries.len());
    for (index, entry) in entries.into_iter().enumerate() {
        let value = bulk_value(&entry).map_err(|problem| {
            UsageError(format!(
                "{}: entry {index} (key \"{}\"): {problem}",
                file.display(),
                entry.key
            ))
        })?;
        check_kv_key(&entry.key).with_context(|| format!("{}: entry {index}", file.display()))?;
        pairs.push((entry.key, value));
    }

    store
        .kv_put_many(&pairs)
        .with_context(|| format!("{}: failed to write the KV entries", db.display()))?;
    writeln!(
        io::stdout(),
        "wrote {} from {}",
        counted(pairs.len(), "KV entry", "KV entries"),
        file.display()
    )?;
    Ok(())
}

fn bulk_value(entry: &BulkEntry) -> Result<String, String> {
    if !entry.base64 {
        return Ok(entry.value.clone());
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(&entry.value)
        .map_err(|error| format!("invalid base64 value: {error}"))?;
    String::from_utf8(bytes)
        .map_err(|_| "the base64 value is not UTF-8 text; the store keeps text values".to_owned())
}

/// Runs a `formats` subcommand.
pub fn formats(db: &Path, config: &Path, command: FormatsCommand) -> Result<()> {
    let settings = load_settings(config)?;
    let registry = &settings.core.registry;
    let mut store = if matches!(command, FormatsCommand::Get { .. }) {
        open_existing_store(db)?
    } else {
        open_store(db)?
    };

    let (location, changes) = match &command {
        FormatsCommand::Get { location } => (location, None),
        FormatsCommand::Set { location, formats }
        | FormatsCommand::Add { location, formats }
        | FormatsCommand::Remove { location, formats } => (location, Some(formats)),
    };
    validate_location(location).map_err(|error| UsageError(error.to_string()))?;
    if let Some(names) = changes {
        check_format_names(&settings, names)?;
    }

    let key = kv_key(location);
    let current = store
        .kv_get(&key)
        .with_context(|| format!("{}: failed to read {key}", db.display()))?;
    let (resolved, warning) = resolve_formats(registry, &key, current.as_deref());
    if let Some(warning) = warning {
        tracing::warn!(key = %key, "{warning}");
    }
    let mut names: Vec<&str> = resolved.iter().map(|format| format.name.as_str()).collect();

    let default = registry.default_format().name.as_str();
    match &command {
        FormatsCommand::Get { .. } => {
            print_lines(&names)?;
            return Ok(());
        }
        FormatsCommand::Set { formats, .. } => {
            names = vec![default];
            add_names(&mut names, formats);
        }
        FormatsCommand::Add { formats, .. } => add_names(&mut names, formats),
        FormatsCommand::Remove { formats, .. } => {
            if formats.iter().any(|name| name == default) {
                return Err(UsageError(format!(
                    "cannot remove \"{default}\": it is the default format"
                ))
                .into());
            }
            if current.is_none() {
                writeln!(
                    io::stderr(),
                    "note: location {location} has no formats entry ({key}), so it has only \
                     the default format; nothing written"
                )?;
                return print_lines(&names);
            }
            if !remove_names(&mut names, formats, location)? {
                return print_lines(&names);
            }
        }
    }

    store
        .kv_put(&key, &encode_formats(&names))
        .with_context(|| format!("{}: failed to write {key}", db.display()))?;
    print_lines(&names)
}

fn check_format_names(settings: &Settings, names: &[String]) -> Result<()> {
    let registry = &settings.core.registry;
    let unknown: Vec<&str> = names
        .iter()
        .map(String::as_str)
        .filter(|name| registry.get(name).is_none())
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    let known: Vec<&str> = registry
        .formats()
        .iter()
        .map(|format| format.name.as_str())
        .collect();
    Err(UsageError(format!(
        "unknown format {}; expected one of {}",
        unknown.join(", "),
        known.join(", ")
    ))
    .into())
}

fn add_names<'n>(names: &mut Vec<&'n str>, added: &'n [String]) {
    for name in added {
        if !names.contains(&name.as_str()) {
            names.push(name);
        }
    }
}

/// Removes the `removed` names from `names` and returns whether any was there.
///
/// Each name that is not there is named in a note on standard error, which ends with
/// "nothing written" if no name was removed.
fn remove_names(names: &mut Vec<&str>, removed: &[String], location: &str) -> io::Result<bool> {
    let absent: Vec<&str> = removed
        .iter()
        .map(String::as_str)
        .filter(|name| !names.contains(name))
        .collect();
    names.retain(|name| !removed.iter().any(|removed| removed == name));

    let any_removed = absent.len() < removed.len();
    if !absent.is_empty() {
        let verb = if absent.len() == 1 { "is" } else { "are" };
        let outcome = if any_removed { "" } else { "; nothing written" };
        writeln!(
            io::stderr(),
            "note: {} {verb} not among the formats of location {location}{outcome}",
            absent.join(", ")
        )?;
    }
    Ok(any_removed)
}

fn print_lines(lines: &[&str]) -> Result<()> {
    let mut stdout = io::stdout().lock();
    for line in lines {
        writeln!(stdout, "{line}")?;
    }
    Ok(())
}

/// Runs a `queue` subcommand.
pub fn queue(db: &Path, config: &Path, command: QueueCommand) -> Result<()> {
    let settings = load_settings(config)?;
    let mut store = open_existing_store(db)?;
    let context = || format!("{}: queue operation failed", db.display());

    match command {
        QueueCommand::Stats { queue } => {
            let queues: Vec<&str> = match &queue {
                Some(queue) => {
                    check_queue(&settings, queue)?;
                    vec![queue.as_str()]
                }
                None => settings.queues().to_vec(),
            };
            let now = now_micros();
            let mut stdout = io::stdout().lock();
            writeln!(
                stdout,
                "{:<24} {:>10} {:>10} {:>10} {:>10}",
                "queue", "ready", "delayed", "in_flight", "total"
            )?;
            for queue in queues {
                let stats = store.stats(queue, now).with_context(context)?;
                writeln!(
                    stdout,
                    "{queue:<24} {:>10} {:>10} {:>10} {:>10}",
                    stats.ready, stats.delayed, stats.in_flight, stats.total
                )?;
            }
            let ledger = store.ledger_len().with_context(context)?;
            writeln!(stdout, "jobs in the ledger: {ledger}")?;
        }
        QueueCommand::Peek { queue, limit } => {
            check_queue(&settings, &queue)?;
            let messages = store.peek(&queue, limit).with_context(context)?;
            output::print_jsonl(&messages)?;
        }
        QueueCommand::Purge { queue, ledger } => {
            check_queue(&settings, &queue)?;
            purge(&mut store, &settings, &queue, ledger).with_context(context)?;
        }
    }
    Ok(())
}

/// Deletes the messages of `queue` and, if `ledger` is set, the job ledger.
///
/// Purging the jobs queue alone writes a note that the ledger still contains its job ids.
fn purge(store: &mut Store, settings: &Settings, queue: &str, ledger: bool) -> Result<()> {
    let jobs_queue = settings.jobs_queue.as_str();
    if ledger && queue != jobs_queue {
        return Err(UsageError(format!(
            "--ledger deletes the job ids of the jobs queue, so it goes only with \
             `queue purge {jobs_queue} --ledger`"
        ))
        .into());
    }

    if ledger {
        let (messages, job_ids) = store.purge_with_ledger(queue)?;
        writeln!(
            io::stdout(),
            "deleted {} from {queue} and {} from the job ledger",
            counted(messages, "message", "messages"),
            counted(job_ids, "job id", "job ids")
        )?;
        return Ok(());
    }

    let messages = store.purge(queue)?;
    writeln!(
        io::stdout(),
        "deleted {} from {queue}",
        counted(messages, "message", "messages")
    )?;
    let ledger_len = store.ledger_len()?;
    if queue == jobs_queue && ledger_len > 0 {
        writeln!(
            io::stderr(),
            "note: the job ledger still contains {}, so events sent again produce none of \
             these jobs; `queue purge {jobs_queue} --ledger` deletes them too",
            counted(ledger_len, "job id", "job ids")
        )?;
    }
    Ok(())
}

/// Runs a `dlq` subcommand.
pub fn dlq(db: &Path, config: &Path, command: DlqCommand) -> Result<()> {
    let settings = load_settings(config)?;
    let mut store = open_existing_store(db)?;
    let dead_letter_queue = &settings.consumer.dead_letter_queue;
    let context = || format!("{}: dead-letter operation failed", db.display());

    match command {
        DlqCommand::List { limit } => {
            let records = store.peek(dead_letter_queue, limit).with_context(context)?;
            let bodies: Vec<_> = records.into_iter().map(|record| record.body).collect();
            output::print_jsonl(&bodies)?;
        }
        DlqCommand::Replay { code } => {
            let count = store
                .replay_dead_letters(
                    dead_letter_queue,
                    &settings.consumer.queue,
                    code.as_deref(),
                    now_micros(),
                )
                .with_context(context)?;
            if count.unreadable > 0 {
                tracing::warn!(unreadable = count.unreadable, queue = %dead_letter_queue, "left records that are not dead-letter records");
            }
            writeln!(
                io::stdout(),
                "replayed {} from {dead_letter_queue} to {}",
                counted(count.replayed, "message", "messages"),
                settings.consumer.queue
            )?;
        }
    }
    Ok(())
}
