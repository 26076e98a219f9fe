//! Throughput of decode, validate, plan and settle over the real `weather-ready` events.
//!
//! Run with `cargo bench -p landscape-core --bench plan`. It reads the full input
//! from `../shared/data` beside the repository when present, and otherwise the
//! sample shipped in `data/`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use divan::counter::ItemsCount;
use divan::Bencher;
use landscape_core::{Batch, Config, KvRead, Message, SendResult, Timestamp};

const NOW: Timestamp = Timestamp::from_unix_micros(1_763_640_300_000_000);

fn main() {
    divan::main();
}

struct Input {
    bodies: Vec<String>,
    ids: Vec<String>,
    kv: HashMap<String, String>,
}

fn data_dir() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let full = root.join("../shared/data");
    if full.join("weather-ready-us.jsonl").exists() {
        full
    } else {
        root.join("data")
    }
}

fn load() -> Input {
    let dir = data_dir();
    let events = std::fs::read_to_string(dir.join("weather-ready-us.jsonl")).expect("read events");
    let entries: Vec<HashMap<String, String>> = serde_json::from_str(
        &std::fs::read_to_string(dir.join("formats-kv.json")).expect("read KV entries"),
    )
    .expect("parse KV entries");

    let bodies: Vec<String> = events.lines().map(str::to_owned).collect();
    Input {
        ids: (0..bodies.len()).map(|i| format!("{i:032x}")).collect(),
        bodies,
        kv: entries
            .into_iter()
            .map(|mut entry| {
                (
                    entry.remove("key").unwrap_or_default(),
                    entry.remove("value").unwrap_or_default(),
                )
            })
            .collect(),
    }
}

/// Plans every event in consumer batches of `batch_size` messages.
///
/// Never inlined, so that a profiler can collect this function alone.
#[inline(never)]
fn plan_all(input: &Input, config: &Config, batch_size: usize) -> usize {
    let mut jobs = 0;
    for (bodies, ids) in input
        .bodies
        .chunks(batch_size)
        .zip(input.ids.chunks(batch_size))
    {
        let messages: Vec<Message<'_>> = bodies
            .iter()
            .zip(ids)
            .map(|(body, id)| Message {
                id,
                attempts: 1,
                body,
                timestamp: NOW,
            })
            .collect();

        let plan = Batch::decode(config, &messages).fan_out(
            |key| {
                input
                    .kv
                    .get(key)
                    .map_or(KvRead::Missing, |value| KvRead::Value(value))
            },
            NOW,
        );
        let results = vec![SendResult::Sent; plan.send_batches().len()];
        jobs += plan.settle(&results, 7).report.jobs as usize;
    }
    jobs
}

#[divan::bench(args = [10, 100])]
fn decode_plan_settle(bencher: Bencher, batch_size: usize) {
    let input = load();
    let config = Config::default();

    bencher
        .counter(ItemsCount::new(input.bodies.len()))
        .bench_local(|| plan_all(divan::black_box(&input), &config, batch_size));
}
