//! One `weather-ready` batch, from delivery to settlement.

use landscape_core::{Batch, Config, Message, SendResult};
use worker::worker_sys::MessageBatch as JsMessageBatch;
use worker::Env;

use crate::jobs;
use crate::kv;
use crate::logging::{self, RuntimeCounts};
use crate::messages::{self, Delivered};
use crate::settings;
use crate::settle;

/// The KV namespace with the `formats:` keys.
const CONFIG_BINDING: &str = "CONFIG";
/// The producer for `landscape-jobs`.
const JOBS_BINDING: &str = "LANDSCAPE_JOBS";
/// The producer for the dead-letter queue.
const DEAD_LETTERS_BINDING: &str = "DEAD_LETTERS";

/// Dispatches a batch and settles each of its messages.
///
/// If the settings are invalid, every message is retried after the default
/// base delay and one error line names the setting.
pub async fn handle_batch(batch: &JsMessageBatch, env: &Env) {
    let delivered = messages::read_batch(batch);

    match settings::load(env) {
        Ok(config) => dispatch(&delivered, &config, env).await,
        Err(error) => {
            let delay_secs = landscape_core::RetryPolicy::default().base_delay_secs;
            logging::batch_failed(delivered.len(), &error, delay_secs);
            settle::retry_all_messages(&delivered, delay_secs);
        }
    }
}

async fn dispatch(delivered: &[Delivered], config: &Config, env: &Env) {
    let core_messages: Vec<Message<'_>> = delivered.iter().map(Delivered::as_core).collect();
    let batch = Batch::decode(config, &core_messages);

    let store = kv::Namespace::from_env(env, CONFIG_BINDING);
    let values = kv::read_chunks(&store, batch.kv_key_chunks(), js_sys::Date::now()).await;

    let plan = batch.fan_out(|key| values.get(key), messages::now());

    let jobs_queue = jobs::producer(env, JOBS_BINDING);
    let mut results: Vec<SendResult> = Vec::with_capacity(plan.send_batches().len());
    for send_batch in plan.send_batches() {
        results.push(jobs::send_jobs(&jobs_queue, send_batch).await);
    }

    let settlement = plan.settle(&results, jitter_seed());

    let dead_letters = jobs::producer(env, DEAD_LETTERS_BINDING);
    let send_failures = settle::apply_outcomes(
        delivered,
        &settlement.outcomes,
        &dead_letters,
        &config.retry,
        messages::now(),
    )
    .await;

    let counts = RuntimeCounts {
        kv_bulk_reads: values.bulk_reads,
        kv_cache_hits: values.cache_hits,
        dead_letter_send_failures: send_failures,
    };
    logging::batch_settled(&settlement.report, &settlement.warnings, &counts);
}

/// Returns a seed for the retry jitter, from `Math.random()`.
fn jitter_seed() -> u64 {
    (js_sys::Math::random() * u64::MAX as f64) as u64
}
