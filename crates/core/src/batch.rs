//! The plan for one consumer batch: decode, KV keys, jobs in send batches, outcomes.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::config::Config;
use crate::event::{self, excerpt, Event, Rejection};
use crate::formats::{self, Resolution};
use crate::job::{self, PlannedJob};
use crate::location::kv_key;
use crate::message::Message;
use crate::outcome::{jitter, DeadLetterCode, Outcome};
use crate::report::{BatchReport, Warning, WarningCode};
use crate::time::Timestamp;
use crate::{
    MAX_BODY_BYTES, MAX_KV_KEYS_PER_READ, MAX_SEND_BATCH_BYTES, MAX_SEND_BATCH_MESSAGES,
    SEND_METADATA_BYTES,
};

/// A hash map keyed by short location ids.
///
/// FNV-1a is several times faster than the default SipHash on such keys. It
/// does not resist hash flooding, which is acceptable because a map contains the
/// keys of one consumer batch, at most a few hundred entries.
type FnvMap<K, V> = HashMap<K, V, BuildHasherDefault<Fnv1a>>;

/// The 64-bit FNV-1a hash.
struct Fnv1a(u64);

impl Default for Fnv1a {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv1a {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0 ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// The result of reading one KV key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KvRead<'v> {
    /// The key exists with this value.
    Value(&'v str),
    /// The key does not exist.
    Missing,
    /// The read failed, with the error text; the events that need the key are retried.
    Failed(&'v str),
}

/// The result of sending one planned send batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SendResult {
    /// The queue accepted every message of the batch.
    Sent,
    /// The queue rejected the batch.
    Failed {
        /// True if sending it again cannot succeed, as when it exceeds a size limit.
        permanent: bool,
        /// Error text from the queue.
        error: String,
    },
}

/// Jobs to send to `landscape-jobs` in one call.
///
/// A send batch contains at most [`MAX_SEND_BATCH_MESSAGES`] jobs and at most
/// [`MAX_SEND_BATCH_BYTES`] bytes, counting each body plus
/// [`SEND_METADATA_BYTES`]. One event's jobs are never split across two.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SendBatch {
    /// Jobs in send order.
    pub jobs: Vec<PlannedJob>,
}

impl SendBatch {
    /// Returns the size the queue counts for this batch, in bytes.
    pub fn size_bytes(&self) -> usize {
        self.jobs.iter().map(job_size).sum()
    }
}

fn job_size(job: &PlannedJob) -> usize {
    job.body.len() + SEND_METADATA_BYTES
}

/// A decoded and validated consumer batch, waiting for its KV values.
#[derive(Debug)]
pub struct Batch<'a> {
    config: &'a Config,
    messages: &'a [Message<'a>],
    slots: Vec<Slot>,
    events: Vec<Pending<'a>>,
    keys: Vec<String>,
    warnings: Vec<Warning>,
    duplicates: u32,
}

#[derive(Debug)]
enum Slot {
    Event(usize),
    Rejected(Rejection),
}

#[derive(Debug)]
struct Pending<'a> {
    event: Event<'a>,
    key_index: usize,
    first_message: usize,
}

/// The key under which copies of one event coalesce.
#[derive(Debug, PartialEq, Eq, Hash)]
enum Identity<'a> {
    /// The same location and `fetched_at` instant.
    Fetched(Cow<'a, str>, i64),
    /// No valid `fetched_at`: the same location and coordinates.
    Unstamped(Cow<'a, str>, u64, u64),
}

impl<'a> Identity<'a> {
    fn of(event: &Event<'a>) -> Self {
        match &event.fetched_at {
            Some(fetched_at) => Self::Fetched(event.location.clone(), fetched_at.at.unix_micros()),
            None => Self::Unstamped(
                event.location.clone(),
                event.lat.value.to_bits(),
                event.lon.value.to_bits(),
            ),
        }
    }
}

/// Lookups that only decoding needs.
struct Seen<'a> {
    events: FnvMap<Identity<'a>, usize>,
    keys: FnvMap<Cow<'a, str>, usize>,
    message_ids: FnvMap<&'a str, &'a str>,
}

impl<'a> Batch<'a> {
    /// Decodes and validates every message, and coalesces copies of the same event.
    ///
    /// Two messages are copies if they have the same location and a valid
    /// `fetched_at` naming the same microsecond, or, without a valid
    /// `fetched_at`, the same location and coordinates. The first is
    /// dispatched, and every copy shares its outcome. Messages that can never
    /// succeed are marked for the dead-letter queue here, before any KV read.
    /// So is a message that reuses an earlier message's id with another body,
    /// because job ids may derive from message ids.
    pub fn decode(config: &'a Config, messages: &'a [Message<'a>]) -> Self {
        let mut batch = Self {
            config,
            messages,
            slots: Vec::with_capacity(messages.len()),
            events: Vec::with_capacity(messages.len()),
            keys: Vec::with_capacity(messages.len()),
            warnings: Vec::new(),
            duplicates: 0,
        };
        let mut seen = Seen {
            events: FnvMap::with_capacity_and_hasher(messages.len(), Default::default()),
            keys: FnvMap::with_capacity_and_hasher(messages.len(), Default::default()),
            message_ids: FnvMap::with_capacity_and_hasher(messages.len(), Default::default()),
        };

        for (index, message) in messages.iter().enumerate() {
            let slot = match seen.message_ids.insert(message.id, message.body) {
                Some(earlier) if earlier != message.body => Slot::Rejected(reused_id(message.id)),
                _ => match event::decode(message.body) {
                    Ok(decoded) => {
                        batch.warn_all(message.id, decoded.warnings);
                        batch.admit(decoded.event, index, &mut seen)
                    }
                    Err(rejection) => Slot::Rejected(rejection),
                },
            };
            batch.slots.push(slot);
        }
        batch
    }

    fn admit(&mut self, event: Event<'a>, index: usize, seen: &mut Seen<'a>) -> Slot {
        let next_event = self.events.len();
        let event_index = *seen
            .events
            .entry(Identity::of(&event))
            .or_insert(next_event);
        if event_index != next_event {
            self.duplicates += 1;
            return Slot::Event(event_index);
        }

        let next_key = self.keys.len();
        let key_index = *seen.keys.entry(event.location.clone()).or_insert(next_key);
        if key_index == next_key {
            self.keys.push(kv_key(&event.location));
        }

        self.events.push(Pending {
            event,
            key_index,
            first_message: index,
        });
        Slot::Event(next_event)
    }

    fn warn_all(&mut self, message_id: &str, warnings: Vec<(WarningCode, String)>) {
        for (code, detail) in warnings {
            self.warnings.push(Warning {
                code: code.as_str(),
                message_id: message_id.to_owned(),
                detail,
            });
        }
    }

    /// Returns the distinct KV keys to read, in first-use order.
    pub fn kv_keys(&self) -> &[String] {
        &self.keys
    }

    /// Returns the KV keys in bulk reads of at most [`MAX_KV_KEYS_PER_READ`] keys.
    pub fn kv_key_chunks(&self) -> impl Iterator<Item = &[String]> {
        self.keys.chunks(MAX_KV_KEYS_PER_READ)
    }

    /// Builds the jobs from the KV values and packs them into send batches.
    ///
    /// `read` returns the result for each key of [`Batch::kv_keys`]; it is
    /// called once per key. `now` becomes every job's `enqueued_at`. An event
    /// whose key failed to read gets no jobs and is retried.
    pub fn fan_out<'v, F>(mut self, read: F, now: Timestamp) -> Plan<'a>
    where
        F: FnMut(&str) -> KvRead<'v>,
    {
        let resolutions = self.resolve_keys(read);
        self.warn_kv(&resolutions);

        let enqueued_at = now.to_string();
        // Most events have one or two formats, so twice the events is a fair first capacity.
        let mut packer = Packer {
            capacity_hint: (2 * self.events.len()).min(MAX_SEND_BATCH_MESSAGES),
            ..Packer::default()
        };
        let mut jobs = Vec::new();
        let states = self
            .events
            .iter()
            .map(|pending| match &resolutions[pending.key_index] {
                Err(reason) => EventState::Retry(reason.clone()),
                Ok(resolution) => {
                    self.build_jobs(pending, resolution, &enqueued_at, &mut jobs);
                    packer.place(&mut jobs)
                }
            })
            .collect();

        Plan {
            kv_reads: resolutions.len().div_ceil(MAX_KV_KEYS_PER_READ),
            batch: self,
            send_batches: packer.batches,
            states,
        }
    }

    fn resolve_keys<'v>(
        &self,
        mut read: impl FnMut(&str) -> KvRead<'v>,
    ) -> Vec<Result<Resolution, String>> {
        self.keys
            .iter()
            .map(|key| match read(key) {
                KvRead::Value(value) => {
                    Ok(formats::resolve(&self.config.registry, key, Some(value)))
                }
                KvRead::Missing => Ok(formats::resolve(&self.config.registry, key, None)),
                KvRead::Failed(error) => Err(format!("KV read of {key} failed: {error}")),
            })
            .collect()
    }

    fn build_jobs(
        &self,
        pending: &Pending<'_>,
        resolution: &Resolution,
        enqueued_at: &str,
        jobs: &mut Vec<PlannedJob>,
    ) {
        let formats = self.config.registry.formats();
        let names = resolution
            .positions
            .iter()
            .map(|&position| formats[position].name.as_str());
        let message_id = self.messages[pending.first_message].id;
        job::build_jobs(&pending.event, names, message_id, enqueued_at, jobs);
    }

    fn warn_kv(&mut self, resolutions: &[Result<Resolution, String>]) {
        let mut warned = vec![false; resolutions.len()];
        for pending in &self.events {
            let Ok(Resolution {
                warning: Some((code, detail)),
                ..
            }) = &resolutions[pending.key_index]
            else {
                continue;
            };
            if !std::mem::replace(&mut warned[pending.key_index], true) {
                self.warnings.push(Warning {
                    code: code.as_str(),
                    message_id: self.messages[pending.first_message].id.to_owned(),
                    detail: detail.clone(),
                });
            }
        }
    }
}

fn reused_id(message_id: &str) -> Rejection {
    Rejection {
        code: DeadLetterCode::DuplicateMessageId,
        reason: format!(
            "message id {} is already used by another message of the batch with another body",
            excerpt(message_id)
        ),
    }
}

/// The fate of an event once its KV value is known.
#[derive(Debug)]
enum EventState {
    /// Its jobs are in this send batch.
    Sending(usize),
    /// It must be retried, for this reason.
    Retry(String),
    /// It can never be sent, for this reason.
    TooLarge(String),
}

/// Packs each event's jobs into the current send batch, or a new one when they do not fit.
#[derive(Default)]
struct Packer {
    batches: Vec<SendBatch>,
    current_bytes: usize,
    capacity_hint: usize,
}

impl Packer {
    /// Moves one event's jobs into a send batch and returns where they went.
    fn place(&mut self, jobs: &mut Vec<PlannedJob>) -> EventState {
        let bytes: usize = jobs.iter().map(job_size).sum();
        if let Some(job) = jobs.iter().find(|job| job.body.len() > MAX_BODY_BYTES) {
            let reason = format!(
                "job {} is {} bytes, more than the {MAX_BODY_BYTES} bytes a queue message may have",
                excerpt(job.job_id()),
                job.body.len()
            );
            jobs.clear();
            return EventState::TooLarge(reason);
        }
        if jobs.len() > MAX_SEND_BATCH_MESSAGES || bytes > MAX_SEND_BATCH_BYTES {
            let reason = format!(
                "the event's {} jobs take {bytes} bytes, more than one send batch holds ({MAX_SEND_BATCH_MESSAGES} messages, {MAX_SEND_BATCH_BYTES} bytes)",
                jobs.len()
            );
            jobs.clear();
            return EventState::TooLarge(reason);
        }

        let fits = self.batches.last().is_some_and(|batch| {
            batch.jobs.len() + jobs.len() <= MAX_SEND_BATCH_MESSAGES
                && self.current_bytes + bytes <= MAX_SEND_BATCH_BYTES
        });
        if !fits {
            self.batches.push(SendBatch {
                jobs: Vec::with_capacity(self.capacity_hint),
            });
            self.current_bytes = 0;
        }

        let index = self.batches.len() - 1;
        self.batches[index].jobs.append(jobs);
        self.current_bytes += bytes;
        EventState::Sending(index)
    }
}

/// A batch whose jobs are planned and waiting to be sent.
#[derive(Debug)]
pub struct Plan<'a> {
    batch: Batch<'a>,
    kv_reads: usize,
    send_batches: Vec<SendBatch>,
    states: Vec<EventState>,
}

/// The outcome of every message of a batch, with the report to log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settlement {
    /// One outcome per message, in the order of the batch.
    pub outcomes: Vec<Outcome>,
    /// Counts for one log line.
    pub report: BatchReport,
    /// Warnings raised while planning, in the order they arose.
    pub warnings: Vec<Warning>,
}

impl Plan<'_> {
    /// Returns the send batches, each to be sent with one call.
    pub fn send_batches(&self) -> &[SendBatch] {
        &self.send_batches
    }

    /// Returns every planned job, in send order.
    pub fn jobs(&self) -> impl Iterator<Item = &PlannedJob> {
        self.send_batches.iter().flat_map(|batch| batch.jobs.iter())
    }

    /// Returns the warnings raised so far.
    pub fn warnings(&self) -> &[Warning] {
        &self.batch.warnings
    }

    /// Decides the outcome of every message from the results of the send batches.
    ///
    /// `results` contains one entry per send batch, in order; a missing entry
    /// counts as a transient failure. A message is acked if its event's send
    /// batch was sent, retried if a KV read or the send failed transiently,
    /// and dead-lettered if it is invalid or the send failed permanently.
    /// `jitter_seed` spreads the retry delays; the same seed gives the same delays.
    pub fn settle(&self, results: &[SendResult], jitter_seed: u64) -> Settlement {
        let mut report = self.base_report();
        let outcomes: Vec<Outcome> = self
            .batch
            .messages
            .iter()
            .zip(&self.batch.slots)
            .enumerate()
            .map(|(index, (message, slot))| {
                let outcome =
                    self.outcome(slot, results, message.attempts, jitter(jitter_seed, index));
                count(&mut report, &outcome);
                outcome
            })
            .collect();

        report.jobs_sent = self
            .send_batches
            .iter()
            .zip(results)
            .filter(|(_, result)| **result == SendResult::Sent)
            .map(|(batch, _)| batch.jobs.len() as u32)
            .sum();
        Settlement {
            outcomes,
            report,
            warnings: self.batch.warnings.clone(),
        }
    }

    fn outcome(&self, slot: &Slot, results: &[SendResult], attempts: u32, spread: f64) -> Outcome {
        let retry = |reason: String| Outcome::Retry {
            delay_secs: self.batch.config.retry.delay_secs(attempts, spread),
            reason,
        };

        let event = match slot {
            Slot::Rejected(rejection) => {
                return Outcome::DeadLetter {
                    code: rejection.code,
                    reason: rejection.reason.clone(),
                }
            }
            Slot::Event(event) => *event,
        };
        match &self.states[event] {
            EventState::Retry(reason) => retry(reason.clone()),
            EventState::TooLarge(reason) => Outcome::DeadLetter {
                code: DeadLetterCode::JobsTooLarge,
                reason: reason.clone(),
            },
            EventState::Sending(index) => match results.get(*index) {
                Some(SendResult::Sent) => Outcome::Ack,
                Some(SendResult::Failed {
                    permanent: true,
                    error,
                }) => Outcome::DeadLetter {
                    code: DeadLetterCode::SendRejected,
                    reason: format!("landscape-jobs rejected the send batch permanently: {error}"),
                },
                Some(SendResult::Failed { error, .. }) => {
                    retry(format!("sending to landscape-jobs failed: {error}"))
                }
                None => retry("no result for the send batch".to_owned()),
            },
        }
    }

    fn base_report(&self) -> BatchReport {
        let mut warnings = std::collections::BTreeMap::new();
        for warning in &self.batch.warnings {
            *warnings.entry(warning.code).or_insert(0) += 1;
        }

        BatchReport {
            messages: self.batch.messages.len() as u32,
            events: self.batch.events.len() as u32,
            duplicates: self.batch.duplicates,
            jobs: self
                .send_batches
                .iter()
                .map(|batch| batch.jobs.len() as u32)
                .sum(),
            kv_keys: self.batch.keys.len() as u32,
            kv_reads: self.kv_reads as u32,
            send_batches: self.send_batches.len() as u32,
            warnings,
            ..BatchReport::default()
        }
    }
}

fn count(report: &mut BatchReport, outcome: &Outcome) {
    match outcome {
        Outcome::Ack => report.acked += 1,
        Outcome::Retry { .. } => report.retried += 1,
        Outcome::DeadLetter { code, .. } => {
            report.dead_lettered += 1;
            *report.dead_letters.entry(code.as_str()).or_insert(0) += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(bytes: usize) -> PlannedJob {
        PlannedJob::with_body("x".repeat(bytes - SEND_METADATA_BYTES))
    }

    #[test]
    fn packer_starts_new_batch_when_full() {
        let mut packer = Packer::default();

        let first = packer.place(&mut vec![job(100_000), job(100_000)]);
        let second = packer.place(&mut vec![job(56_000)]);
        let third = packer.place(&mut vec![job(SEND_METADATA_BYTES + 1)]);

        assert!(matches!(first, EventState::Sending(0)));
        assert!(matches!(second, EventState::Sending(0)));
        assert!(matches!(third, EventState::Sending(1)));
    }

    #[test]
    fn packer_rejects_event_larger_than_batch() {
        let mut packer = Packer::default();

        let too_many = packer.place(&mut (0..=MAX_SEND_BATCH_MESSAGES).map(|_| job(200)).collect());
        let too_big = packer.place(&mut vec![job(100_000), job(100_000), job(56_001)]);

        assert!(matches!(too_many, EventState::TooLarge(_)));
        assert!(matches!(too_big, EventState::TooLarge(reason) if reason.contains("256001 bytes")));
        assert!(packer.batches.is_empty());
    }
}
