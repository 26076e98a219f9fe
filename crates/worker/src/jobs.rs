//! Sending jobs and dead letters to Cloudflare Queues.

use js_sys::{Array, Object, Reflect, JSON};
use landscape_core::{SendBatch, SendResult};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use worker::worker_sys::Queue as JsQueue;
use worker::Env;

/// Looks up a queue producer binding by name.
///
/// # Errors
///
/// Returns a message naming the binding if it is missing.
pub fn producer(env: &Env, binding: &str) -> Result<JsQueue, String> {
    let value = Reflect::get(env, &JsValue::from_str(binding)).unwrap_or(JsValue::UNDEFINED);
    if value.is_undefined() || value.is_null() {
        return Err(format!("missing queue binding {binding}"));
    }

    Ok(value.unchecked_into())
}

/// Sends one planned batch of jobs with a single `sendBatch` call.
///
/// Each job is sent as a JSON object (content type `json`), the shape the
/// `landscape-jobs` consumers read. A refusal for size is permanent, so the
/// core dead-letters those messages instead of retrying them; any other
/// failure is transient.
pub async fn send_jobs(queue: &Result<JsQueue, String>, batch: &SendBatch) -> SendResult {
    let queue = match queue {
        Ok(queue) => queue,
        Err(error) => return transient(error.clone()),
    };

    let requests = Array::new();
    for job in &batch.jobs {
        match json_send_request(&job.body) {
            Ok(request) => {
                requests.push(&request);
            }
            Err(error) => return permanent(format!("job {} is not JSON: {error}", job.job_id())),
        }
    }

    match await_promise(queue.send_batch(requests, JsValue::UNDEFINED)).await {
        Ok(()) => SendResult::Sent,
        Err(error) if is_size_error(&error) => permanent(error),
        Err(error) => transient(error),
    }
}

/// Sends one dead-letter record as a JSON object.
///
/// # Errors
///
/// Returns the error text if the binding is missing or the send failed.
pub async fn send_dead_letter(queue: &Result<JsQueue, String>, record: &str) -> Result<(), String> {
    let queue = queue.as_ref().map_err(Clone::clone)?;
    let body = JSON::parse(record).map_err(|error| error_text(&error))?;

    let options = Object::new();
    set(&options, "contentType", &JsValue::from_str("json"));
    await_promise(queue.send(body, options.into())).await
}

/// Builds `{ body, contentType: "json" }` from the JSON text of a job.
fn json_send_request(body: &str) -> Result<JsValue, String> {
    let body = JSON::parse(body).map_err(|error| error_text(&error))?;

    let request = Object::new();
    set(&request, "body", &body);
    set(&request, "contentType", &JsValue::from_str("json"));
    Ok(request.into())
}

async fn await_promise(call: Result<js_sys::Promise, JsValue>) -> Result<(), String> {
    let promise = call.map_err(|error| error_text(&error))?;
    JsFuture::from(promise)
        .await
        .map(|_| ())
        .map_err(|error| error_text(&error))
}

/// Reports whether a send error reports the batch or a message as too large.
///
/// NOTE: the phrases come from Miniflare 4's queue broker ("exceeds limit",
/// HTTP 413). The production service's wording is not documented, so an
/// unrecognised size error there is treated as transient and retried.
fn is_size_error(error: &str) -> bool {
    let error = error.to_ascii_lowercase();
    ["too large", "exceeds", "413"]
        .iter()
        .any(|phrase| error.contains(phrase))
}

/// Returns the message of a JS error, or its string form.
pub fn error_text(error: &JsValue) -> String {
    if let Some(error) = error.dyn_ref::<js_sys::Error>() {
        return String::from(error.message());
    }

    error
        .as_string()
        .unwrap_or_else(|| String::from(js_sys::Object::from(error.clone()).to_string()))
}

fn set(target: &Object, key: &str, value: &JsValue) {
    // Setting a plain data property on a fresh object cannot fail.
    let _ = Reflect::set(target, &JsValue::from_str(key), value);
}

fn transient(error: String) -> SendResult {
    SendResult::Failed {
        permanent: false,
        error,
    }
}

fn permanent(error: String) -> SendResult {
    SendResult::Failed {
        permanent: true,
        error,
    }
}
