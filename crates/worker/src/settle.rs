//! Carrying out the core's outcome for each message.

use js_sys::{Object, Reflect};
use landscape_core::{dead_letter_record, DeadLetterCode, Outcome, RetryPolicy, Timestamp};
use wasm_bindgen::JsValue;
use worker::worker_sys::Queue as JsQueue;

use crate::jobs;
use crate::logging;
use crate::messages::Delivered;

/// Settles every message with its outcome, in order.
///
/// A dead letter is sent to the dead-letter queue and acked only after that
/// send succeeds. If the send fails, the message is retried instead, after
/// the backoff of `retry` for its attempt, so it is never lost. Returns how
/// many dead letters were retried that way.
pub async fn apply_outcomes(
    delivered: &[Delivered],
    outcomes: &[Outcome],
    dead_letters: &Result<JsQueue, String>,
    retry_policy: &RetryPolicy,
    now: Timestamp,
) -> usize {
    let mut send_failures = 0;

    for (message, outcome) in delivered.iter().zip(outcomes) {
        match outcome {
            Outcome::Ack => ack(message),
            Outcome::Retry { delay_secs, .. } => retry(message, *delay_secs),
            Outcome::DeadLetter { code, reason } => {
                let sent = dead_letter(message, *code, reason, dead_letters, now).await;
                if sent {
                    ack(message);
                } else {
                    send_failures += 1;
                    let jitter = js_sys::Math::random();
                    retry(message, retry_policy.delay_secs(message.attempts, jitter));
                }
            }
        }
    }

    send_failures
}

/// Retries every message after `delay_secs`, for a batch that could not be
/// planned.
pub fn retry_all_messages(delivered: &[Delivered], delay_secs: u32) {
    for message in delivered {
        retry(message, delay_secs);
    }
}

async fn dead_letter(
    message: &Delivered,
    code: DeadLetterCode,
    reason: &str,
    queue: &Result<JsQueue, String>,
    now: Timestamp,
) -> bool {
    let record = dead_letter_record(&message.as_core(), code, reason, now);

    match jobs::send_dead_letter(queue, &record).await {
        Ok(()) => {
            logging::dead_lettered(&message.id, code, reason);
            true
        }
        Err(error) => {
            logging::dead_letter_send_failed(&message.id, code, &error);
            false
        }
    }
}

fn ack(message: &Delivered) {
    // NOTE: `ack()` only throws after the batch has been settled already, in
    // which case there is nothing left to do for this message.
    let _ = message.handle.ack();
}

fn retry(message: &Delivered, delay_secs: u32) {
    let options = Object::new();
    let _ = Reflect::set(
        &options,
        &JsValue::from_str("delaySeconds"),
        &JsValue::from(delay_secs),
    );
    let _ = message.handle.retry(options.into());
}
