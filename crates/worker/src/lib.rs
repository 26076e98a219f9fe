//! The Weather Landscape job dispatcher as a Cloudflare Worker.
//!
//! The Worker consumes `weather-ready` batches and carries out what
//! [`landscape_core`] decides for each message:
//!
//! 1. Read every message from its raw JS value: the body as the text of
//!    `JSON.stringify`, and `attempts` through `Reflect`.
//! 2. Read the `formats:{zip_code}` keys from the `CONFIG` namespace, one bulk
//!    read per chunk of at most 100 keys, behind a short per-isolate cache.
//! 3. Send each planned batch of jobs to `LANDSCAPE_JOBS` with one `sendBatch`.
//! 4. Ack, retry with a delay, or dead-letter each message on its own. A dead
//!    letter goes to `DEAD_LETTERS` first and is acked only once that send
//!    succeeds, so nothing is lost.
//!
//! Each batch writes one JSON log line with the core's report, and each dead
//! letter one more with its code, reason and message id.

mod dispatch;
mod jobs;
mod kv;
mod logging;
mod messages;
mod settings;
mod settle;

use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::JsValue;

/// Handles one batch from the `weather-ready` queue.
///
/// The export is written by hand instead of with `#[event(queue)]` because
/// the macro hides the JS message objects, and `attempts` has no getter in
/// workers-rs 0.8. Every message is settled explicitly before this returns,
/// so the returned promise only rejects on a bug in the Worker itself.
#[wasm_bindgen]
pub async fn queue(
    batch: worker::worker_sys::MessageBatch,
    env: worker::Env,
    _ctx: worker::worker_sys::Context,
) -> Result<JsValue, JsValue> {
    dispatch::handle_batch(&batch, &env).await;
    Ok(JsValue::UNDEFINED)
}
