//! Reading `formats:` keys from Workers KV, behind a per-isolate cache.

use std::cell::RefCell;

use js_sys::{Array, Function, Map, Object, Promise, Reflect};
use landscape_core::KvRead;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use worker::Env;

use crate::jobs::error_text;

/// How long Cloudflare's edge caches a KV read, in seconds (the minimum KV
/// accepts is 60).
const EDGE_CACHE_TTL_SECS: u64 = 60;
/// How long this isolate reuses a value it read, in milliseconds.
const ISOLATE_CACHE_TTL_MS: f64 = 30_000.0;
/// The per-isolate cache is emptied when it would exceed this many keys.
const ISOLATE_CACHE_MAX_KEYS: usize = 10_000;

thread_local! {
    // Sorted by key. A sorted Vec costs less wasm than a map type.
    static CACHE: RefCell<Vec<(String, CachedValue)>> = const { RefCell::new(Vec::new()) };
}

struct CachedValue {
    value: Option<String>,
    expires_at_ms: f64,
}

enum Lookup {
    Value(String),
    Missing,
    Failed(String),
}

/// The values read for one batch, in the order of the keys.
#[derive(Default)]
pub struct KvValues {
    // Cloudflare Queues deliver at most 100 messages per batch, so there are
    // at most 100 keys. A linear search over them is cheap and saves a map type's code.
    lookups: Vec<(String, Lookup)>,
    /// Keys served from the per-isolate cache.
    pub cache_hits: usize,
    /// Bulk reads sent to KV.
    pub bulk_reads: usize,
}

impl KvValues {
    /// Returns what the read of `key` found, in the core's terms.
    ///
    /// A key that was never requested counts as a failed read.
    pub fn get(&self, key: &str) -> KvRead<'_> {
        let found = self
            .lookups
            .iter()
            .find(|(name, _)| name == key)
            .map(|(_, lookup)| lookup);

        match found {
            Some(Lookup::Value(value)) => KvRead::Value(value),
            Some(Lookup::Missing) => KvRead::Missing,
            Some(Lookup::Failed(error)) => KvRead::Failed(error),
            None => KvRead::Failed("key was not read"),
        }
    }
}

/// A KV namespace binding, called through JS.
///
/// The bulk form of `get` is called directly: workers-rs 0.8 wraps it too, but
/// encodes the options with serde-wasm-bindgen, which costs wasm size.
pub struct Namespace {
    binding: Object,
    get: Function,
}

impl Namespace {
    /// Looks up a KV namespace binding by name.
    ///
    /// # Errors
    ///
    /// Returns a message naming the binding if it is missing or not a namespace.
    pub fn from_env(env: &Env, binding: &str) -> Result<Self, String> {
        let missing = || format!("missing KV namespace binding {binding}");
        let namespace = Reflect::get(env, &JsValue::from_str(binding)).map_err(|_| missing())?;
        let get = Reflect::get(&namespace, &JsValue::from_str("get"))
            .ok()
            .and_then(|get| get.dyn_into::<Function>().ok())
            .ok_or_else(missing)?;

        Ok(Self {
            binding: namespace.unchecked_into(),
            get,
        })
    }

    /// Reads up to 100 keys as text with one call, returning `None` for a
    /// missing key.
    async fn get_bulk(&self, keys: &[String]) -> Result<Vec<Option<String>>, String> {
        let names: Array = keys.iter().map(|key| JsValue::from_str(key)).collect();
        let options = Object::new();
        set(&options, "type", &JsValue::from_str("text"));
        set(
            &options,
            "cacheTtl",
            &JsValue::from(EDGE_CACHE_TTL_SECS as f64),
        );

        let promise = self
            .get
            .call2(&self.binding, &names, &options)
            .map_err(|error| error_text(&error))?;
        let result = JsFuture::from(Promise::from(promise))
            .await
            .map_err(|error| error_text(&error))?;
        let values = result
            .dyn_into::<Map>()
            .map_err(|_| String::from("bulk KV read returned no Map"))?;

        Ok(names
            .iter()
            .map(|name| values.get(&name).as_string())
            .collect())
    }
}

/// Reads every key of `chunks`, one bulk read per chunk for the keys that
/// the per-isolate cache does not hold.
///
/// A failed bulk read marks each of its keys as failed and caches nothing.
/// `store` is `Err` with a message if the KV binding is missing.
pub async fn read_chunks<'k>(
    store: &Result<Namespace, String>,
    chunks: impl Iterator<Item = &'k [String]>,
    now_ms: f64,
) -> KvValues {
    let mut values = KvValues::default();

    for chunk in chunks {
        let misses = take_cached(chunk, now_ms, &mut values);
        if misses.is_empty() {
            continue;
        }

        values.bulk_reads += 1;
        match store {
            Ok(store) => read_bulk(store, &misses, now_ms, &mut values).await,
            Err(error) => mark_failed(&misses, error, &mut values),
        }
    }

    values
}

/// Moves the cached, unexpired keys of `chunk` into `values` and returns the
/// others.
fn take_cached(chunk: &[String], now_ms: f64, values: &mut KvValues) -> Vec<String> {
    CACHE.with_borrow(|cache| {
        let mut misses = Vec::new();
        for key in chunk {
            let cached = cache
                .binary_search_by(|(name, _)| name.as_str().cmp(key))
                .ok()
                .map(|index| &cache[index].1);
            match cached {
                Some(cached) if cached.expires_at_ms > now_ms => {
                    values.cache_hits += 1;
                    values
                        .lookups
                        .push((key.clone(), to_lookup(cached.value.clone())));
                }
                _ => misses.push(key.clone()),
            }
        }
        misses
    })
}

async fn read_bulk(store: &Namespace, keys: &[String], now_ms: f64, values: &mut KvValues) {
    let found = match store.get_bulk(keys).await {
        Ok(found) => found,
        Err(error) => return mark_failed(keys, &error, values),
    };

    CACHE.with_borrow_mut(|cache| {
        if cache.len() + keys.len() > ISOLATE_CACHE_MAX_KEYS {
            cache.clear();
        }
        for (key, value) in keys.iter().zip(found) {
            let expires_at_ms = now_ms + ISOLATE_CACHE_TTL_MS;
            let entry = CachedValue {
                value: value.clone(),
                expires_at_ms,
            };
            match cache.binary_search_by(|(name, _)| name.cmp(key)) {
                Ok(index) => cache[index].1 = entry,
                Err(index) => cache.insert(index, (key.clone(), entry)),
            }
            values.lookups.push((key.clone(), to_lookup(value)));
        }
    });
}

fn mark_failed(keys: &[String], error: &str, values: &mut KvValues) {
    for key in keys {
        values
            .lookups
            .push((key.clone(), Lookup::Failed(error.to_owned())));
    }
}

fn to_lookup(value: Option<String>) -> Lookup {
    match value {
        Some(value) => Lookup::Value(value),
        None => Lookup::Missing,
    }
}

fn set(target: &Object, key: &str, value: &JsValue) {
    // Setting a data property on a fresh plain object cannot fail.
    let _ = Reflect::set(target, &JsValue::from_str(key), value);
}
