//! Structured JSON log lines, one per batch and one per dead letter.
//!
//! Workers Logs indexes the fields of a JSON object written with
//! `console.log`, so each line is a single object with an `event` name.
//! No line carries a KV value or a whole message body.

use landscape_core::{BatchReport, DeadLetterCode, Warning};
use serde::Serialize;

/// Counts measured by the Worker itself, logged beside the core's report.
#[derive(Serialize)]
pub struct RuntimeCounts {
    /// Bulk reads sent to KV.
    pub kv_bulk_reads: usize,
    /// Keys served from the per-isolate cache.
    pub kv_cache_hits: usize,
    /// Dead letters retried because the dead-letter queue rejected them.
    pub dead_letter_send_failures: usize,
}

#[derive(Serialize)]
struct BatchSettled<'a> {
    event: &'static str,
    report: &'a BatchReport,
    worker: &'a RuntimeCounts,
    warnings: &'a [Warning],
}

#[derive(Serialize)]
struct DeadLetterLine<'a> {
    event: &'static str,
    message_id: &'a str,
    code: DeadLetterCode,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

#[derive(Serialize)]
struct BatchFailed<'a> {
    event: &'static str,
    messages: usize,
    error: &'a str,
    retry_delay_secs: u32,
}

/// Writes the line for a settled batch.
///
/// It is written at error level if a dead letter could not be sent, because
/// those messages were retried instead of set aside.
pub fn batch_settled(report: &BatchReport, warnings: &[Warning], counts: &RuntimeCounts) {
    let line = BatchSettled {
        event: "batch_settled",
        report,
        worker: counts,
        warnings,
    };

    if counts.dead_letter_send_failures > 0 {
        worker::console_error!("{}", to_json(&line));
    } else {
        worker::console_log!("{}", to_json(&line));
    }
}

/// Writes the line for a message put on the dead-letter queue.
pub fn dead_lettered(message_id: &str, code: DeadLetterCode, reason: &str) {
    let line = DeadLetterLine {
        event: "dead_lettered",
        message_id,
        code,
        reason: Some(reason),
        error: None,
    };
    worker::console_warn!("{}", to_json(&line));
}

/// Writes the line for a dead letter that the dead-letter queue rejected.
pub fn dead_letter_send_failed(message_id: &str, code: DeadLetterCode, error: &str) {
    let line = DeadLetterLine {
        event: "dead_letter_send_failed",
        message_id,
        code,
        reason: None,
        error: Some(error),
    };
    worker::console_error!("{}", to_json(&line));
}

/// Writes the line for a batch that could not be dispatched at all, such as
/// one under an invalid setting. Every message of such a batch is retried.
pub fn batch_failed(messages: usize, error: &str, retry_delay_secs: u32) {
    let line = BatchFailed {
        event: "batch_failed",
        messages,
        error,
        retry_delay_secs,
    };
    worker::console_error!("{}", to_json(&line));
}

/// Encodes a log line as JSON.
///
/// The lines contain only strings, numbers and maps with string keys, which
/// serde_json always encodes, so the `{}` fallback is not expected.
fn to_json(line: &impl Serialize) -> String {
    serde_json::to_string(line).unwrap_or_else(|_| String::from("{}"))
}
