//! The `plan` command: the jobs that events would produce, without writing anything.

use std::collections::HashMap;
use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use landscape_core::{Batch, KvRead, Message, Outcome, SendResult, Timestamp};

use crate::clock::now_micros;
use crate::commands::{input_name, load_settings, open_input};
use crate::settings::Settings;
use crate::store::Store;

/// Events planned per core batch, as many as one consumer batch can hold.
const PLAN_CHUNK_LINES: usize = 100;

/// Prints the jobs for each event line of `file` as JSONL, and a count of rejected lines on standard error.
///
/// Lines are planned in chunks of 100, so copies of one event in the same chunk yield its
/// jobs once. A missing store counts as an empty KV namespace.
pub fn plan(db: &Path, config: &Path, file: Option<&PathBuf>) -> Result<()> {
    let settings = load_settings(config)?;
    let store = open_read_only(db)?;
    let name = input_name(file.map(PathBuf::as_path));
    let input = open_input(file.map(PathBuf::as_path))?;
    let now = Timestamp::from_unix_micros(now_micros());
    let mut stdout = io::BufWriter::new(io::stdout().lock());

    let mut chunk = Vec::with_capacity(PLAN_CHUNK_LINES);
    let mut rejected = 0;
    for (index, line) in input.lines().enumerate() {
        let line = line.with_context(|| format!("{name}: failed to read line {}", index + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        chunk.push((format!("line-{}", index + 1), line));
        if chunk.len() == PLAN_CHUNK_LINES {
            rejected += plan_chunk(&settings, store.as_ref(), &chunk, now, &mut stdout)?;
            chunk.clear();
        }
    }
    rejected += plan_chunk(&settings, store.as_ref(), &chunk, now, &mut stdout)?;
    stdout.flush()?;

    if rejected > 0 {
        eprintln!("{rejected} lines of {name} would be dead-lettered or retried; run them through `send` and `run` to see why");
    }
    Ok(())
}

fn open_read_only(db: &Path) -> Result<Option<Store>> {
    if !db.exists() {
        tracing::info!(db = %db.display(), "no store yet; planning with an empty KV namespace");
        return Ok(None);
    }
    let store = Store::open_read_only(db).with_context(|| db.display().to_string())?;
    Ok(Some(store))
}

/// Plans one chunk, writes its jobs, and returns how many lines were not acked.
fn plan_chunk(
    settings: &Settings,
    store: Option<&Store>,
    chunk: &[(String, String)],
    now: Timestamp,
    out: &mut impl Write,
) -> Result<usize> {
    if chunk.is_empty() {
        return Ok(0);
    }
    let messages: Vec<Message<'_>> = chunk
        .iter()
        .map(|(id, body)| Message {
            id,
            attempts: 1,
            body,
            timestamp: now,
        })
        .collect();
    let batch = Batch::decode(&settings.core, &messages);

    let mut values = HashMap::new();
    if let Some(store) = store {
        for keys in batch.kv_key_chunks() {
            values.extend(store.kv_get_many(keys).context("failed to read KV")?);
        }
    }
    let plan = batch.fan_out(
        |key| {
            values
                .get(key)
                .map_or(KvRead::Missing, |value| KvRead::Value(value))
        },
        now,
    );

    for job in plan.jobs() {
        writeln!(out, "{}", job.body)?;
    }
    let sent = vec![SendResult::Sent; plan.send_batches().len()];
    let settlement = plan.settle(&sent, 0);
    Ok(settlement
        .outcomes
        .iter()
        .filter(|outcome| **outcome != Outcome::Ack)
        .count())
}
