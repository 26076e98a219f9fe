//! Times the dispatcher core over a file of `weather-ready` events.
//!
//! The events go through the core in consumer batches, as a runtime would
//! hand them over: decode, fan out with KV values from an in-memory map, and
//! settle with every send batch sent. Reading the files and building the
//! message list happen before the clock starts. Prints one JSON object.
//!
//! Usage: `landscape-bench-core EVENTS.jsonl FORMATS-KV.json [--five-formats]
//! [--batch-size N] [--repeats N] [--max-secs S]`. By default, batches of 10
//! (the consumer's `max_batch_size`), 5 repeats, at most 60 seconds in all.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use std::{env, fs, process};

use landscape_core::{Batch, Config, KvRead, Message, Outcome, SendResult, Timestamp};
use serde::Deserialize;

const FIVE_FORMATS: &str = r#"["rgb_light", "bw", "bwi", "rgb_dark", "eink"]"#;

#[derive(Deserialize)]
struct KvEntry {
    key: String,
    value: String,
}

struct Options {
    events_path: String,
    kv_path: String,
    five_formats: bool,
    batch_size: usize,
    repeats: usize,
    max_secs: f64,
}

/// Totals of one pass over all events.
#[derive(Default, PartialEq, Eq)]
struct Pass {
    jobs: usize,
    acked: usize,
}

fn main() {
    let options = parse_options().unwrap_or_else(|error| fail(&error));
    let lines = read_lines(&options.events_path).unwrap_or_else(|error| fail(&error));
    let kv = read_kv(&options).unwrap_or_else(|error| fail(&error));
    let ids: Vec<String> = (0..lines.len())
        .map(|index| format!("msg-{index}"))
        .collect();
    let messages = build_messages(&lines, &ids);

    let config = Config::default();
    let deadline = Instant::now() + Duration::from_secs_f64(options.max_secs);
    let mut times = Vec::new();
    let mut totals = Pass::default();
    while times.len() < options.repeats && Instant::now() < deadline {
        let started = Instant::now();
        totals = run_pass(&config, &messages, &kv, options.batch_size);
        times.push(started.elapsed().as_secs_f64());
    }

    print_result(&options, messages.len(), &totals, &mut times);
}

/// Runs every message through decode, fan-out and settle, batch by batch.
fn run_pass(
    config: &Config,
    messages: &[Message<'_>],
    kv: &HashMap<String, String>,
    batch_size: usize,
) -> Pass {
    let mut pass = Pass::default();
    for chunk in messages.chunks(batch_size) {
        let batch = Batch::decode(config, chunk);
        let read = |key: &str| match kv.get(key) {
            Some(value) => KvRead::Value(value),
            None => KvRead::Missing,
        };
        let plan = batch.fan_out(read, now());

        let results = vec![SendResult::Sent; plan.send_batches().len()];
        let settlement = plan.settle(&results, 7);

        pass.jobs += plan.jobs().count();
        pass.acked += settlement
            .outcomes
            .iter()
            .filter(|outcome| matches!(outcome, Outcome::Ack))
            .count();
    }
    pass
}

fn now() -> Timestamp {
    let micros = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_micros());
    Timestamp::from_unix_micros(i64::try_from(micros).unwrap_or(i64::MAX))
}

fn build_messages<'a>(lines: &'a [String], ids: &'a [String]) -> Vec<Message<'a>> {
    let sent_at = now();
    lines
        .iter()
        .zip(ids)
        .map(|(body, id)| Message {
            id,
            attempts: 1,
            body,
            timestamp: sent_at,
        })
        .collect()
}

fn read_lines(path: &str) -> Result<Vec<String>, String> {
    let text = fs::read_to_string(path).map_err(|error| format!("{path}: {error}"))?;
    Ok(text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(str::to_owned)
        .collect())
}

/// Reads the KV entries; with `--five-formats`, every event's key lists all five formats.
fn read_kv(options: &Options) -> Result<HashMap<String, String>, String> {
    let path = &options.kv_path;
    let text = fs::read_to_string(path).map_err(|error| format!("{path}: {error}"))?;
    let entries: Vec<KvEntry> =
        serde_json::from_str(&text).map_err(|error| format!("{path}: {error}"))?;
    let mut kv: HashMap<String, String> = entries
        .into_iter()
        .map(|entry| (entry.key, entry.value))
        .collect();

    if options.five_formats {
        for line in read_lines(&options.events_path)? {
            if let Some(location) = location_of(&line) {
                kv.insert(format!("formats:{location}"), FIVE_FORMATS.to_owned());
            }
        }
    }
    Ok(kv)
}

fn location_of(line: &str) -> Option<String> {
    let event: serde_json::Value = serde_json::from_str(line).ok()?;
    Some(event.get("zip_code")?.as_str()?.to_owned())
}

fn print_result(options: &Options, events: usize, pass: &Pass, times: &mut [f64]) {
    times.sort_by(f64::total_cmp);
    let best = times.first().copied().unwrap_or(f64::NAN);
    let median = times.get(times.len() / 2).copied().unwrap_or(f64::NAN);
    let result = serde_json::json!({
        "implementation": "landscape-core (Rust)",
        "events": events,
        "jobs": pass.jobs,
        "acked": pass.acked,
        "batch_size": options.batch_size,
        "five_formats": options.five_formats,
        "repeats": times.len(),
        "best_secs": best,
        "median_secs": median,
        "events_per_sec_best": events as f64 / best,
        "events_per_sec_median": events as f64 / median,
    });
    println!("{result}");
}

fn parse_options() -> Result<Options, String> {
    let mut args = env::args().skip(1);
    let mut positional = Vec::new();
    let mut options = Options {
        events_path: String::new(),
        kv_path: String::new(),
        five_formats: false,
        batch_size: 10,
        repeats: 5,
        max_secs: 60.0,
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--five-formats" => options.five_formats = true,
            "--batch-size" => options.batch_size = parse_number(&arg, args.next())?,
            "--repeats" => options.repeats = parse_number(&arg, args.next())?,
            "--max-secs" => options.max_secs = parse_number(&arg, args.next())?,
            _ => positional.push(arg),
        }
    }

    let [events_path, kv_path] = <[String; 2]>::try_from(positional)
        .map_err(|_| "expected two paths: EVENTS.jsonl FORMATS-KV.json".to_owned())?;
    options.events_path = events_path;
    options.kv_path = kv_path;
    if options.batch_size == 0 {
        return Err("--batch-size must be at least 1".to_owned());
    }
    Ok(options)
}

fn parse_number<T: std::str::FromStr>(flag: &str, value: Option<String>) -> Result<T, String> {
    let value = value.ok_or_else(|| format!("{flag} requires a value"))?;
    value
        .parse()
        .map_err(|_| format!("invalid value for {flag}: {value:?}"))
}

fn fail(message: &str) -> ! {
    eprintln!("landscape-bench-core: {message}");
    process::exit(2);
}
