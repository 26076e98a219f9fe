//! The consumer loop: claim a batch, let the core plan and settle it, commit the result.
//!
//! One thread does all the work, polling the store; there is no timer or task per message.
//! A batch's jobs, ledger rows, acks, retries and dead letters commit in one transaction,
//! so a crash at any point loses no event and a redelivered event sends no job twice.
//!
//! While full batches are ready (any ready message when draining), up to
//! [`MAX_GROUP_BATCHES`] batches, or as many as fit in [`MAX_GROUP_TIME`], share one
//! transaction, and the last step of each transaction claims the next batch with a lease.
//! A crash rolls back the open transaction, so its batches are delivered again at once;
//! only the leased batch waits for the visibility timeout.
//!
//! Test hook: if the environment variable `LANDSCAPE_DISPATCHER_FAIL_SENDS` is set and not
//! empty, every send to the jobs queue fails as a transient error that contains its value.
//! Tests use it to drive retries and dead letters through the store.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use landscape_core::{
    dead_letter_record, Batch, DeadLetterCode, KvRead, Message, Outcome, Plan, SendResult,
    Settlement, Timestamp,
};
use tracing::field;

use crate::clock::now_micros;
use crate::settings::Settings;
use crate::store::{BatchCommit, ClaimedMessage, Store, StoreError};

/// The test hook's environment variable; see the module docs.
pub const FAIL_SENDS_VAR: &str = "LANDSCAPE_DISPATCHER_FAIL_SENDS";

/// The maximum single sleep, so that a stop signal or a new message is noticed soon.
const MAX_SLEEP: Duration = Duration::from_millis(100);

/// The maximum number of batches settled in one transaction. Fewer commits write fewer
/// WAL frames: the 29,806-event drain ran about 7% faster with 256 than with 64, and
/// [`MAX_GROUP_TIME`] still bounds how long the write lock is held.
pub const MAX_GROUP_BATCHES: u64 = 256;

/// The maximum time one transaction goes on settling further batches.
pub const MAX_GROUP_TIME: Duration = Duration::from_millis(20);

/// At most this many core warnings are logged per batch; the report counts them all.
const MAX_WARNINGS_LOGGED: usize = 5;

/// Options of one run.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Stop once the consumer queue is empty, and deliver partial batches at once.
    pub drain: bool,
    /// How long a claimed batch stays invisible to other consumers.
    pub visibility_timeout: Duration,
    /// Stop after this many batches; `None` for no limit.
    pub max_batches: Option<u64>,
    /// Error text for every send, from the test hook; `None` in normal runs.
    pub fail_sends: Option<String>,
}

/// Totals of one run, printed when it ends.
#[derive(Clone, Debug, Default)]
pub struct RunSummary {
    /// Batches settled.
    pub batches: u64,
    /// Messages delivered.
    pub messages: u64,
    /// Distinct valid events among them.
    pub events: u64,
    /// Jobs added to the jobs queue.
    pub jobs: u64,
    /// Planned jobs that the ledger already held, so were not sent again.
    pub duplicate_jobs: u64,
    /// Messages acknowledged.
    pub acked: u64,
    /// Messages released for a retry.
    pub retried: u64,
    /// Messages moved to the dead-letter queue.
    pub dead_lettered: u64,
    /// Wall time of the run.
    pub elapsed: Duration,
}

impl RunSummary {
    /// Returns delivered messages per second of wall time.
    pub fn messages_per_sec(&self) -> f64 {
        self.per_sec(self.messages)
    }

    /// Returns distinct valid events per second of wall time.
    pub fn events_per_sec(&self) -> f64 {
        self.per_sec(self.events)
    }

    fn per_sec(&self, count: u64) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            count as f64 / secs
        } else {
            0.0
        }
    }
}

/// The next action of the consumer loop.
enum Step {
    Deliver,
    WaitUntil(i64),
    Done,
}

/// Consumes the consumer queue until `stop` is set, the queue is drained, or the batch limit is hit.
///
/// When `stop` is set, the batch in hand is still settled and committed.
///
/// # Errors
///
/// Fails if the store fails; batches committed before stay committed.
pub fn run(
    store: &mut Store,
    settings: &Settings,
    options: &RunOptions,
    stop: &AtomicBool,
    progress: &ProgressBar,
) -> Result<RunSummary, StoreError> {
    let started = Instant::now();
    let mut summary = RunSummary::default();
    let mut in_hand = Vec::new();

    loop {
        if in_hand.is_empty() {
            let limit_reached = options
                .max_batches
                .is_some_and(|max| summary.batches >= max);
            if stop.load(Ordering::Relaxed) || limit_reached {
                break;
            }
            match next_step(store, settings, options, now_micros())? {
                Step::Deliver => in_hand = claim(store, settings, options)?,
                Step::WaitUntil(deadline) => sleep_until(deadline, stop),
                Step::Done => break,
            }
            continue;
        }

        let group = settle_group(store, settings, options, in_hand, stop, summary.batches)?;
        for counts in &group.batches {
            progress.inc(counts.messages);
            summary.add(counts);
        }
        in_hand = group.next;
    }

    summary.elapsed = started.elapsed();
    Ok(summary)
}

/// Decides whether to deliver now, wait, or stop.
///
/// A full batch is delivered at once; a partial one once its oldest message has been
/// ready for `max_batch_timeout`, or at once when draining.
fn next_step(
    store: &Store,
    settings: &Settings,
    options: &RunOptions,
    now: i64,
) -> Result<Step, StoreError> {
    let consumer = &settings.consumer;
    let full = consumer.max_batch_size as usize;
    let ready = store.ready_count(&consumer.queue, now, full)?;
    if ready == full || (ready > 0 && options.drain) {
        return Ok(Step::Deliver);
    }

    let step = match store.earliest_visible_at(&consumer.queue, now)? {
        Some(since) if ready > 0 => {
            let deadline = since + i64::from(consumer.max_batch_timeout_secs) * 1_000_000;
            if deadline <= now {
                Step::Deliver
            } else {
                Step::WaitUntil(deadline)
            }
        }
        Some(visible_at) => Step::WaitUntil(visible_at),
        // Only leased messages are left, or none: wait for a lease to run out or a send.
        None if options.drain && store.is_empty(&consumer.queue)? => Step::Done,
        None => Step::WaitUntil(now + micros(MAX_SLEEP)),
    };
    Ok(step)
}

/// Sleeps until `deadline` (Unix microseconds) or until `stop` is set, in short slices.
fn sleep_until(deadline: i64, stop: &AtomicBool) {
    let remaining = deadline.saturating_sub(now_micros()).max(0);
    let slice = Duration::from_micros(remaining.unsigned_abs()).min(MAX_SLEEP);
    if !stop.load(Ordering::Relaxed) && !slice.is_zero() {
        std::thread::sleep(slice);
    }
}

fn claim(
    store: &mut Store,
    settings: &Settings,
    options: &RunOptions,
) -> Result<Vec<ClaimedMessage>, StoreError> {
    let consumer = &settings.consumer;
    let now = now_micros();
    let lease_until = now + micros(options.visibility_timeout);
    store.claim(
        &consumer.queue,
        consumer.max_batch_size as usize,
        now,
        lease_until,
    )
}

/// Counts of one settled batch beyond the core's report.
#[derive(Debug, Default)]
struct BatchCounts {
    messages: u64,
    events: u64,
    jobs: u64,
    duplicate_jobs: u64,
    acked: u64,
    retried: u64,
    dead_lettered: u64,
}

impl RunSummary {
    fn add(&mut self, counts: &BatchCounts) {
        self.batches += 1;
        self.messages += counts.messages;
        self.events += counts.events;
        self.jobs += counts.jobs;
        self.duplicate_jobs += counts.duplicate_jobs;
        self.acked += counts.acked;
        self.retried += counts.retried;
        self.dead_lettered += counts.dead_lettered;
    }
}

/// The batches settled by one transaction, and the batch it claimed next.
struct Group {
    batches: Vec<BatchCounts>,
    next: Vec<ClaimedMessage>,
}

/// Settles `first` and, while more batches are due, further ones in one transaction.
///
/// The last step claims the next batch with a lease, unless `stop` is set or the batch
/// limit is reached. Log lines are written after the commit.
fn settle_group(
    store: &mut Store,
    settings: &Settings,
    options: &RunOptions,
    first: Vec<ClaimedMessage>,
    stop: &AtomicBool,
    batches_before: u64,
) -> Result<Group, StoreError> {
    let started = Instant::now();
    let mut commit = store.begin_batch()?;
    let mut settled = Vec::new();
    let mut batch = first;

    loop {
        settled.push(settle(&mut commit, settings, options, &batch)?);

        let batches = batches_before + settled.len() as u64;
        let may_claim =
            !stop.load(Ordering::Relaxed) && options.max_batches.is_none_or(|max| batches < max);
        if !may_claim {
            batch = Vec::new();
            break;
        }
        let group_full =
            settled.len() as u64 >= MAX_GROUP_BATCHES || started.elapsed() >= MAX_GROUP_TIME;
        batch = next_in(&mut commit, settings, options, group_full)?;
        if batch.is_empty() || group_full {
            break;
        }
    }
    commit.commit()?;

    for (settlement, counts) in &settled {
        log_batch(settlement, counts);
    }
    Ok(Group {
        batches: settled.into_iter().map(|(_, counts)| counts).collect(),
        next: batch,
    })
}

/// Settles one claimed batch inside `commit`: plan, send, and carry out the outcomes.
fn settle(
    commit: &mut BatchCommit<'_>,
    settings: &Settings,
    options: &RunOptions,
    claimed: &[ClaimedMessage],
) -> Result<(Settlement, BatchCounts), StoreError> {
    let messages: Vec<Message<'_>> = claimed.iter().map(core_message).collect();
    let batch = Batch::decode(&settings.core, &messages);
    let kv_values = read_kv(commit, &batch);
    let now = Timestamp::from_unix_micros(now_micros());
    let plan = batch.fan_out(
        |key| kv_values.get(key).map_or(KvRead::Missing, KvValue::as_read),
        now,
    );

    let sent = send_all(commit, &plan, &settings.jobs_queue, options, now)?;
    let settlement = plan.settle(&sent.results, jitter_seed(claimed, now));
    let mut counts = BatchCounts {
        messages: claimed.len() as u64,
        events: u64::from(settlement.report.events),
        jobs: sent.new_jobs,
        duplicate_jobs: sent.duplicate_jobs,
        ..BatchCounts::default()
    };
    carry_out(
        commit,
        settings,
        claimed,
        &messages,
        &settlement,
        now,
        &mut counts,
    )?;
    Ok((settlement, counts))
}

/// Fetches the next batch inside `commit` if one is due now (see [`next_step`]): with a
/// lease if it is left for after the commit, otherwise taken to settle in the same
/// transaction.
fn next_in(
    commit: &mut BatchCommit<'_>,
    settings: &Settings,
    options: &RunOptions,
    lease: bool,
) -> Result<Vec<ClaimedMessage>, StoreError> {
    let consumer = &settings.consumer;
    let full = consumer.max_batch_size as usize;
    let now = now_micros();
    if !options.drain && commit.ready_count(&consumer.queue, now, full)? < full {
        return Ok(Vec::new());
    }

    if lease {
        let lease_until = now + micros(options.visibility_timeout);
        commit.claim(&consumer.queue, full, now, lease_until)
    } else {
        commit.take(&consumer.queue, full, now)
    }
}

fn core_message(message: &ClaimedMessage) -> Message<'_> {
    Message {
        id: &message.id,
        attempts: message.attempts,
        body: &message.body,
        timestamp: Timestamp::from_unix_micros(message.enqueued_at),
    }
}

/// A KV key's value, or the error that kept it from being read.
enum KvValue {
    Found(String),
    Failed(String),
}

impl KvValue {
    fn as_read(&self) -> KvRead<'_> {
        match self {
            Self::Found(value) => KvRead::Value(value),
            Self::Failed(error) => KvRead::Failed(error),
        }
    }
}

/// Reads the batch's KV keys in chunks; a failed chunk marks its keys failed, so the core
/// retries the events that need them.
fn read_kv(commit: &BatchCommit<'_>, batch: &Batch<'_>) -> HashMap<String, KvValue> {
    let mut values = HashMap::new();
    for chunk in batch.kv_key_chunks() {
        match commit.kv_get_many(chunk) {
            Ok(found) => values.extend(
                found
                    .into_iter()
                    .map(|(key, value)| (key, KvValue::Found(value))),
            ),
            Err(error) => {
                tracing::warn!(error = %error, keys = chunk.len(), "KV read failed");
                let text = error.to_string();
                values.extend(
                    chunk
                        .iter()
                        .map(|key| (key.clone(), KvValue::Failed(text.clone()))),
                );
            }
        }
    }
    values
}

/// The results of sending every send batch of a plan.
struct SendOutcome {
    results: Vec<SendResult>,
    new_jobs: u64,
    duplicate_jobs: u64,
}

/// Sends every send batch of `plan` inside `commit`.
///
/// A store error aborts the whole transaction instead of failing one send batch, because
/// it can leave a ledger row without its job. The claimed messages are then delivered
/// again. Only the test hook produces failed sends.
fn send_all(
    commit: &mut BatchCommit<'_>,
    plan: &Plan<'_>,
    jobs_queue: &str,
    options: &RunOptions,
    now: Timestamp,
) -> Result<SendOutcome, StoreError> {
    let mut outcome = SendOutcome {
        results: Vec::with_capacity(plan.send_batches().len()),
        new_jobs: 0,
        duplicate_jobs: 0,
    };

    for send_batch in plan.send_batches() {
        if let Some(text) = &options.fail_sends {
            let error = format!("injected send failure ({FAIL_SENDS_VAR}): {text}");
            outcome.results.push(SendResult::Failed {
                permanent: false,
                error,
            });
            continue;
        }

        let jobs = send_batch
            .jobs
            .iter()
            .map(|job| (job.job_id(), job.body.as_str()));
        let new_jobs = commit.send_jobs(jobs_queue, jobs, now.unix_micros())?;
        outcome.new_jobs += new_jobs as u64;
        outcome.duplicate_jobs += (send_batch.jobs.len() - new_jobs) as u64;
        outcome.results.push(SendResult::Sent);
    }
    Ok(outcome)
}

/// Applies each message's outcome: ack deletes it, retry delays it, dead letter moves it.
///
/// A retry past `max_retries` becomes a `retries_exhausted` dead letter with the retry's reason.
fn carry_out(
    commit: &mut BatchCommit<'_>,
    settings: &Settings,
    claimed: &[ClaimedMessage],
    messages: &[Message<'_>],
    settlement: &Settlement,
    now: Timestamp,
    counts: &mut BatchCounts,
) -> Result<(), StoreError> {
    let consumer = &settings.consumer;
    let dead_letter_queue = consumer.dead_letter_queue.as_str();

    for ((stored, message), outcome) in claimed.iter().zip(messages).zip(&settlement.outcomes) {
        match outcome {
            Outcome::Ack => {
                commit.ack(stored.seq)?;
                counts.acked += 1;
            }
            Outcome::Retry { reason, .. } if message.attempts > consumer.max_retries => {
                let record =
                    dead_letter_record(message, DeadLetterCode::RetriesExhausted, reason, now);
                commit.dead_letter(stored.seq, dead_letter_queue, &record, now.unix_micros())?;
                counts.dead_lettered += 1;
            }
            Outcome::Retry { delay_secs, reason } => {
                let visible_at = now.unix_micros() + i64::from(*delay_secs) * 1_000_000;
                commit.retry(stored.seq, message.attempts, visible_at, reason)?;
                counts.retried += 1;
            }
            Outcome::DeadLetter { code, reason } => {
                let record = dead_letter_record(message, *code, reason, now);
                commit.dead_letter(stored.seq, dead_letter_queue, &record, now.unix_micros())?;
                counts.dead_lettered += 1;
            }
        }
    }
    Ok(())
}

/// Logs one line per batch: INFO when all went well, WARN when something was retried,
/// dead-lettered or warned about.
///
/// The counts by code of warnings and dead letters appear only if there are any, as one
/// JSON object each.
// NOTE: with --log-format json these objects are JSON text inside a string field, because
// tracing records no nested values without its unstable `valuable` support.
fn log_batch(settlement: &Settlement, counts: &BatchCounts) {
    let report = &settlement.report;
    let troubled =
        counts.retried > 0 || counts.dead_lettered > 0 || !settlement.warnings.is_empty();
    let warnings = counts_by_code(&report.warnings);
    let dead_letters = counts_by_code(&report.dead_letters);

    macro_rules! batch_line {
        ($level:ident) => {
            tracing::$level!(
                messages = report.messages,
                events = report.events,
                duplicates = report.duplicates,
                jobs = report.jobs,
                jobs_sent = report.jobs_sent,
                new_jobs = counts.jobs,
                duplicate_jobs = counts.duplicate_jobs,
                acked = counts.acked,
                retried = counts.retried,
                dead_lettered = counts.dead_lettered,
                kv_keys = report.kv_keys,
                kv_reads = report.kv_reads,
                send_batches = report.send_batches,
                warnings = warnings.as_deref().map(field::display),
                dead_letters = dead_letters.as_deref().map(field::display),
                "batch settled"
            )
        };
    }
    if troubled {
        batch_line!(warn);
    } else {
        batch_line!(info);
    }

    for warning in settlement.warnings.iter().take(MAX_WARNINGS_LOGGED) {
        tracing::warn!(code = warning.code, message_id = %warning.message_id, detail = %warning.detail, "event warning");
    }
}

/// Returns the counts as a JSON object, or `None` if there are none.
fn counts_by_code(counts: &BTreeMap<&'static str, u32>) -> Option<String> {
    if counts.is_empty() {
        return None;
    }
    serde_json::to_string(counts).ok()
}

/// Seeds the retry jitter from the batch and the clock, so batches spread apart.
fn jitter_seed(claimed: &[ClaimedMessage], now: Timestamp) -> u64 {
    let first = claimed.first().map_or(0, |message| message.seq);
    (now.unix_micros() ^ first.rotate_left(32)).unsigned_abs()
}

fn micros(duration: Duration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}
