//! The Worker's settings, read from the `[vars]` of `wrangler.toml`.

use landscape_core::{Config, Registry, RetryPolicy};
use worker::Env;

/// Variable with the base of the retry backoff, in seconds.
const RETRY_BASE_DELAY_VAR: &str = "RETRY_BASE_DELAY_SECS";
/// Variable with the cap of the retry backoff, in seconds.
const RETRY_MAX_DELAY_VAR: &str = "RETRY_MAX_DELAY_SECS";
/// Variable with an optional JSON document that replaces the built-in registry.
const FORMAT_REGISTRY_VAR: &str = "FORMAT_REGISTRY";

/// Builds the dispatch configuration from the environment.
///
/// A variable that is not set keeps the core's default: the built-in
/// registry and [`RetryPolicy::default`].
///
/// # Errors
///
/// Returns a message naming the variable if one is set but invalid.
pub fn load(env: &Env) -> Result<Config, String> {
    let defaults = RetryPolicy::default();
    let retry = RetryPolicy {
        base_delay_secs: read_secs(env, RETRY_BASE_DELAY_VAR)?.unwrap_or(defaults.base_delay_secs),
        max_delay_secs: read_secs(env, RETRY_MAX_DELAY_VAR)?.unwrap_or(defaults.max_delay_secs),
    };

    let registry = match read_var(env, FORMAT_REGISTRY_VAR) {
        Some(document) => Registry::from_json(&document)
            .map_err(|error| format!("invalid {FORMAT_REGISTRY_VAR}: {error}"))?,
        None => Registry::builtin(),
    };

    Ok(Config { registry, retry })
}

/// Returns a string variable, or `None` if it is not set.
fn read_var(env: &Env, name: &str) -> Option<String> {
    js_sys::Reflect::get(env, &wasm_bindgen::JsValue::from_str(name))
        .ok()
        .and_then(|value| value.as_string())
}

fn read_secs(env: &Env, name: &str) -> Result<Option<u32>, String> {
    let Some(text) = read_var(env, name) else {
        return Ok(None);
    };

    text.trim()
        .parse::<u32>()
        .map(Some)
        .map_err(|_| format!("invalid {name}: expected whole seconds, found {text:?}"))
}
