//! The `plan` command: the jobs that events would produce, without writing anything.

use std::collections::HashMap;
use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use landscape_core::{Batch, KvRead, Message, Outcome, SendResult, Timestamp};

use crate::clock::now_micros;
use crate::commands::{input_name, load_settings, open_input};
use crate::output::counted;
use crate::settings::Settings;
use crate::store::Store;

/// Events planned per core batch, as many as one consumer batch can hold.
const PLAN_CHUNK_LINES: usize = 100;

/// Lines described one by one on standard error; the rest are only counted.
const MAX_REJECTIONS_SHOWN: usize = 20;

/// Prints the jobs for each event line of `file` as JSONL on standard output, and each line
/// that would not be acked on standard error.
///
/// Lines are planned in chunks of 100, so copies of one event in the same chunk yield its
/// jobs once. A missing store counts as an empty KV namespace. The first 20 rejected lines
/// are described with their line number and outcome, the rest only counted.
pub fn plan(db: &Path, config: &Path, file: Option<&PathBuf>) -> Result<()> {
    let settings = load_settings(config)?;
    let store = open_read_only(db)?;
    let name = input_name(file.map(PathBuf::as_path));
    let input = open_input(file.map(PathBuf::as_path))?;
    let now = Timestamp::from_unix_micros(now_micros());
    let mut stdout = io::BufWriter::new(io::stdout().lock());
    let mut rejections = Rejections::new(&name);

    let mut plan_lines = |chunk: &[(usize, String)]| {
        let store = store.as_ref();
        plan_chunk(&settings, store, chunk, now, &mut stdout, &mut rejections)
    };
    let mut chunk = Vec::with_capacity(PLAN_CHUNK_LINES);
    for (index, line) in input.lines().enumerate() {
        let line = line.with_context(|| format!("{name}: failed to read line {}", index + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        chunk.push((index + 1, line));
        if chunk.len() == PLAN_CHUNK_LINES {
            plan_lines(&chunk)?;
            chunk.clear();
        }
    }
    plan_lines(&chunk)?;
    stdout.flush()?;

    rejections.finish()?;
    Ok(())
}

/// The lines of the input that would be dead-lettered or retried, reported on standard
/// error as they are found.
struct Rejections<'n> {
    name: &'n str,
    count: usize,
}

impl<'n> Rejections<'n> {
    fn new(name: &'n str) -> Self {
        Self { name, count: 0 }
    }

    /// Counts a rejected line, and describes it if fewer than the maximum were shown.
    fn add(&mut self, line_number: usize, outcome: &Outcome) -> io::Result<()> {
        self.count += 1;
        if self.count > MAX_REJECTIONS_SHOWN {
            return Ok(());
        }
        let name = self.name;
        let mut stderr = io::stderr().lock();
        match outcome {
            Outcome::DeadLetter { code, reason } => writeln!(
                stderr,
                "{name}: line {line_number}: would be dead-lettered with code {}: {reason}",
                code.as_str()
            ),
            Outcome::Retry { reason, .. } => writeln!(
                stderr,
                "{name}: line {line_number}: would be retried: {reason}"
            ),
            Outcome::Ack => Ok(()),
        }
    }

    /// Writes the number of rejected lines, if there are any.
    fn finish(&self) -> io::Result<()> {
        if self.count == 0 {
            return Ok(());
        }
        let listed = if self.count > MAX_REJECTIONS_SHOWN {
            format!("; the first {MAX_REJECTIONS_SHOWN} are listed above")
        } else {
            String::new()
        };
        writeln!(
            io::stderr(),
            "{} of {} would be dead-lettered or retried{listed}",
            counted(self.count, "line", "lines"),
            self.name
        )
    }
}

fn open_read_only(db: &Path) -> Result<Option<Store>> {
    if !db.exists() {
        tracing::info!(db = %db.display(), "no store yet; planning with an empty KV namespace");
        return Ok(None);
    }
    let store = Store::open_read_only(db).with_context(|| db.display().to_string())?;
    Ok(Some(store))
}

/// Plans one chunk of (line number, line), writes its jobs, and reports the lines that
/// would not be acked.
fn plan_chunk(
    settings: &Settings,
    store: Option<&Store>,
    chunk: &[(usize, String)],
    now: Timestamp,
    out: &mut impl Write,
    rejections: &mut Rejections<'_>,
) -> Result<()> {
    if chunk.is_empty() {
        return Ok(());
    }
    let ids: Vec<String> = chunk
        .iter()
        .map(|(line_number, _)| format!("line-{line_number}"))
        .collect();
    let messages: Vec<Message<'_>> = chunk
        .iter()
        .zip(&ids)
        .map(|((_, body), id)| Message {
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
    for ((line_number, _), outcome) in chunk.iter().zip(&settlement.outcomes) {
        if *outcome != Outcome::Ack {
            rejections.add(*line_number, outcome)?;
        }
    }
    Ok(())
}
