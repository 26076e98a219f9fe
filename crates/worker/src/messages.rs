//! Reading queue messages from their raw JS objects.

use js_sys::{Reflect, JSON};
use landscape_core::{Message, Timestamp};
use wasm_bindgen::{JsCast, JsValue};
use worker::worker_sys::{Message as JsMessage, MessageBatch as JsMessageBatch};

/// One delivered message, read out of JS, with the handle that settles it.
pub struct Delivered {
    /// The JS message, for `ack()` and `retry()`.
    pub handle: JsMessage,
    /// The message id assigned by Cloudflare Queues.
    pub id: String,
    /// How many times this message has been delivered, starting at 1.
    pub attempts: u32,
    /// The body as JSON text, or an empty string if it has no JSON form.
    pub body: String,
    /// When the message was sent to the queue.
    pub timestamp: Timestamp,
}

impl Delivered {
    /// Borrows the message in the shape the core reads.
    pub fn as_core(&self) -> Message<'_> {
        Message {
            id: &self.id,
            attempts: self.attempts,
            body: &self.body,
            timestamp: self.timestamp,
        }
    }
}

/// Reads every message of a batch, in delivery order.
///
/// A message whose fields cannot be read still yields an entry, so that it is
/// settled like any other: the core rejects its empty body as invalid.
pub fn read_batch(batch: &JsMessageBatch) -> Vec<Delivered> {
    let messages = match batch.messages() {
        Ok(messages) => messages,
        Err(_) => return Vec::new(),
    };

    messages
        .iter()
        .map(|value| read_message(value.unchecked_into()))
        .collect()
}

fn read_message(handle: JsMessage) -> Delivered {
    let id = handle
        .id()
        .ok()
        .and_then(|id| id.as_string())
        .unwrap_or_default();
    let attempts = read_attempts(&handle);
    let body = handle
        .body()
        .map(|body| body_text(&body))
        .unwrap_or_default();
    let timestamp = handle
        .timestamp()
        .map(|date| Timestamp::from_unix_millis(date.get_time() as i64))
        .unwrap_or_else(|_| now());

    Delivered {
        handle,
        id,
        attempts,
        body,
        timestamp,
    }
}

/// Reads `message.attempts`, which workers-rs 0.8 has no getter for.
///
/// By default, a message without the field counts as a first delivery.
fn read_attempts(handle: &JsMessage) -> u32 {
    Reflect::get(handle, &JsValue::from_str("attempts"))
        .ok()
        .and_then(|value| value.as_f64())
        .filter(|attempts| attempts.is_finite() && *attempts >= 1.0)
        .map_or(1, |attempts| attempts.min(f64::from(u32::MAX)) as u32)
}

/// Returns the JSON text of a message body.
///
/// NOTE: a body that `JSON.stringify` cannot encode (a BigInt, a cycle, or
/// `undefined`) becomes an empty string, which the core dead-letters as an
/// invalid body. Its dead-letter record then has no copy of the raw value.
fn body_text(body: &JsValue) -> String {
    JSON::stringify(body)
        .ok()
        .and_then(|text| text.as_string())
        .unwrap_or_default()
}

/// Returns the current time, from `Date.now()`.
pub fn now() -> Timestamp {
    Timestamp::from_unix_millis(js_sys::Date::now() as i64)
}
