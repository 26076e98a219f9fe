//! Warnings and the per-batch report that runtimes log once per batch.

use std::collections::BTreeMap;

use serde::Serialize;

/// A stable, low-cardinality code for something unexpected that lost nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum WarningCode {
    /// The body was a JSON string holding a JSON object; it was unwrapped once.
    StringBodyUnwrapped,
    /// `fetched_at` was present but not an RFC 3339 timestamp; the event was still dispatched.
    InvalidFetchedAt,
    /// `traceparent` was present but not a W3C traceparent; it was dropped.
    InvalidTraceparent,
    /// A `formats:` value was empty or `[]`; the default format was used.
    EmptyFormats,
    /// A `formats:` value was not a JSON array; the default format was used.
    InvalidFormats,
    /// A `formats:` array named unknown formats or held non-strings; they were skipped.
    UnknownFormats,
}

impl WarningCode {
    /// Returns the code as it appears in logs and reports, such as `invalid_fetched_at`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::StringBodyUnwrapped => "string_body_unwrapped",
            Self::InvalidFetchedAt => "invalid_fetched_at",
            Self::InvalidTraceparent => "invalid_traceparent",
            Self::EmptyFormats => "empty_formats",
            Self::InvalidFormats => "invalid_formats",
            Self::UnknownFormats => "unknown_formats",
        }
    }
}

/// A warning raised while planning a batch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Warning {
    /// Stable code, such as `unknown_formats`.
    pub code: &'static str,
    /// Id of the message that raised it; for a KV value, the first message that read it.
    pub message_id: String,
    /// Human-readable detail naming the field or key and the value.
    pub detail: String,
}

/// Counts for one consumer batch, meant for one structured log line.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct BatchReport {
    /// Messages in the batch.
    pub messages: u32,
    /// Distinct valid events after coalescing copies.
    pub events: u32,
    /// Messages that were copies of an event earlier in the batch.
    pub duplicates: u32,
    /// Jobs planned.
    pub jobs: u32,
    /// Jobs in send batches that succeeded.
    pub jobs_sent: u32,
    /// Messages acknowledged.
    pub acked: u32,
    /// Messages retried after a delay.
    pub retried: u32,
    /// Messages dead-lettered.
    pub dead_lettered: u32,
    /// Distinct KV keys read.
    pub kv_keys: u32,
    /// Bulk KV reads (at most 100 keys each).
    pub kv_reads: u32,
    /// Send batches planned.
    pub send_batches: u32,
    /// Warnings by code.
    pub warnings: BTreeMap<&'static str, u32>,
    /// Dead letters by code.
    pub dead_letters: BTreeMap<&'static str, u32>,
}
