//! Regression cases for one consumer batch, run through the public API end to end.

// A failed unwrap in a test is a failed test, which is what it should be.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;

use landscape_core::{
    Batch, Config, DeadLetterCode, KvRead, Message, Outcome, SendResult, Settlement, Timestamp,
    MAX_SEND_BATCH_BYTES, MAX_SEND_BATCH_MESSAGES, SEND_METADATA_BYTES,
};
use serde_json::Value;

const NOW: Timestamp = Timestamp::from_unix_micros(1_763_640_300_000_000);
const ALL_FORMATS: &str = r#"["rgb_light", "rgb_dark", "bw", "eink", "bwi"]"#;

/// A KV namespace for tests: `None` values stand for a failed read.
#[derive(Default)]
struct Kv(HashMap<String, Option<String>>);

impl Kv {
    fn with(entries: &[(&str, &str)]) -> Self {
        Self(
            entries
                .iter()
                .map(|(key, value)| (key.to_string(), Some(value.to_string())))
                .collect(),
        )
    }

    fn failing(key: &str) -> Self {
        Self([(key.to_owned(), None)].into_iter().collect())
    }

    fn read(&self, key: &str) -> KvRead<'_> {
        match self.0.get(key) {
            Some(Some(value)) => KvRead::Value(value),
            Some(None) => KvRead::Failed("KV GET failed: 503"),
            None => KvRead::Missing,
        }
    }
}

/// Bodies of a batch, with ids m0, m1, ... and attempts 1.
struct Bodies(Vec<(String, String)>);

impl Bodies {
    fn new(bodies: &[&str]) -> Self {
        Self(
            bodies
                .iter()
                .enumerate()
                .map(|(i, body)| (format!("m{i}"), body.to_string()))
                .collect(),
        )
    }

    fn messages(&self) -> Vec<Message<'_>> {
        self.0
            .iter()
            .map(|(id, body)| Message {
                id,
                attempts: 1,
                body,
                timestamp: NOW,
            })
            .collect()
    }
}

struct Run {
    jobs: Vec<Value>,
    kv_keys: Vec<String>,
    send_batch_sizes: Vec<(usize, usize)>,
    settlement: Settlement,
}

fn run(bodies: &[&str], kv: &Kv, send: impl Fn(usize) -> SendResult) -> Run {
    let config = Config::default();
    let bodies = Bodies::new(bodies);
    let messages = bodies.messages();

    let batch = Batch::decode(&config, &messages);
    let kv_keys = batch.kv_keys().to_vec();
    let plan = batch.fan_out(|key| kv.read(key), NOW);
    let results: Vec<SendResult> = (0..plan.send_batches().len()).map(send).collect();
    let settlement = plan.settle(&results, 1);

    Run {
        jobs: plan
            .jobs()
            .map(|job| serde_json::from_str(&job.body).unwrap())
            .collect(),
        kv_keys,
        send_batch_sizes: plan
            .send_batches()
            .iter()
            .map(|batch| (batch.jobs.len(), batch.size_bytes()))
            .collect(),
        settlement,
    }
}

fn event(zip_code: &str, minute: u32) -> String {
    format!(
        r#"{{"zip_code": "{zip_code}", "lat": 30.4515, "lon": -97.7676, "fetched_at": "2025-11-20T12:{minute:02}:00.123456Z"}}"#
    )
}

fn format_names(run: &Run) -> Vec<&str> {
    run.jobs
        .iter()
        .map(|job| job["format_name"].as_str().unwrap())
        .collect()
}

fn warning_codes(run: &Run) -> Vec<&str> {
    run.settlement
        .warnings
        .iter()
        .map(|warning| warning.code)
        .collect()
}

#[test]
fn kv_duplicates_keep_first_order_default_first() {
    let cases: [(&str, &[&str]); 2] = [
        (
            r#"["bw","rgb_light","bw","eink","eink"]"#,
            &["rgb_light", "bw", "eink"],
        ),
        (r#"["bw","bw"]"#, &["rgb_light", "bw"]),
    ];

    for (value, expected) in cases {
        let run = run(
            &[&event("78729", 0)],
            &Kv::with(&[("formats:78729", value)]),
            |_| SendResult::Sent,
        );

        assert_eq!(format_names(&run), expected, "{value}");
        assert_eq!(run.settlement.outcomes, [Outcome::Ack]);
    }
}

#[test]
fn invalid_kv_values_give_default_and_warning() {
    let cases = [
        r#""rgb_light,bw""#,
        "rgb_light,bw",
        r#"{"formats":["bw"]}"#,
        "[]",
        "",
    ];

    for value in cases {
        let run = run(
            &[&event("78729", 0)],
            &Kv::with(&[("formats:78729", value)]),
            |_| SendResult::Sent,
        );

        assert_eq!(format_names(&run), ["rgb_light"], "{value:?}");
        assert_eq!(run.settlement.warnings.len(), 1, "{value:?}");
        assert!(
            run.settlement.warnings[0].detail.contains("formats:78729"),
            "{value:?}"
        );
        assert_eq!(run.settlement.warnings[0].message_id, "m0");
    }
}

#[test]
fn unknown_and_non_string_formats_are_skipped() {
    let kv = Kv::with(&[("formats:78729", r#"["bw",5,null,"sepia"]"#)]);

    let run = run(&[&event("78729", 0)], &kv, |_| SendResult::Sent);

    assert_eq!(format_names(&run), ["rgb_light", "bw"]);
    assert_eq!(warning_codes(&run), ["unknown_formats"]);
    assert_eq!(
        run.settlement.report.warnings.get("unknown_formats"),
        Some(&1)
    );
}

#[test]
fn failed_kv_read_retries_without_jobs() {
    let run = run(&[&event("78729", 0)], &Kv::failing("formats:78729"), |_| {
        SendResult::Sent
    });

    assert!(run.jobs.is_empty());
    assert!(matches!(
        &run.settlement.outcomes[..],
        [Outcome::Retry { delay_secs, reason }] if *delay_secs >= 10 && reason.contains("formats:78729")
    ));
}

#[test]
fn leading_zero_zip_code_stays_a_string() {
    let run = run(&[&event("02134", 0)], &Kv::default(), |_| SendResult::Sent);

    assert_eq!(run.kv_keys, ["formats:02134"]);
    assert_eq!(run.jobs[0]["zip_code"], Value::from("02134"));
}

#[test]
fn malformed_zip_codes_are_dead_lettered_before_kv() {
    let bodies = [
        r#"{"zip_code": 2134, "lat": 1, "lon": 1}"#,
        r#"{"zip_code": "2134", "lat": 1, "lon": 1}"#,
        r#"{"zip_code": 2134.0, "lat": 1, "lon": 1}"#,
    ];

    let run = run(&bodies, &Kv::default(), |_| SendResult::Sent);

    assert!(run.kv_keys.is_empty());
    for outcome in &run.settlement.outcomes {
        assert!(
            matches!(outcome, Outcome::DeadLetter { code: DeadLetterCode::InvalidLocation, reason } if reason.contains("2134")),
            "{outcome:?}"
        );
    }
}

#[test]
fn non_finite_coordinates_are_dead_lettered() {
    let cases = [
        (
            r#"{"zip_code": "78729", "lat": NaN, "lon": 1}"#,
            DeadLetterCode::InvalidBody,
        ),
        (
            r#"{"zip_code": "78729", "lat": null, "lon": 1}"#,
            DeadLetterCode::InvalidCoordinates,
        ),
        (
            r#"{"zip_code": "78729", "lat": 1e999, "lon": 1}"#,
            DeadLetterCode::InvalidCoordinates,
        ),
    ];

    for (body, expected) in cases {
        let run = run(&[body], &Kv::default(), |_| SendResult::Sent);

        assert!(run.jobs.is_empty(), "{body}");
        assert!(
            matches!(run.settlement.outcomes[0], Outcome::DeadLetter { code, .. } if code == expected),
            "{body}"
        );
    }
}

#[test]
fn text_between_valid_events_is_dead_lettered_alone() {
    let bodies = [
        event("78729", 0),
        "weather ready for 78729".to_owned(),
        event("02134", 0),
    ];
    let bodies: Vec<&str> = bodies.iter().map(String::as_str).collect();

    let run = run(&bodies, &Kv::default(), |_| SendResult::Sent);

    assert_eq!(run.jobs.len(), 2);
    assert_eq!(run.settlement.outcomes[0], Outcome::Ack);
    assert!(
        matches!(&run.settlement.outcomes[1], Outcome::DeadLetter { code: DeadLetterCode::InvalidBody, reason } if reason.contains("weather ready for 78729"))
    );
    assert_eq!(run.settlement.outcomes[2], Outcome::Ack);
}

#[test]
fn copies_of_one_event_dispatch_once() {
    let body = event("78729", 0);

    let run = run(
        &[&body, &body],
        &Kv::with(&[("formats:78729", r#"["bw"]"#)]),
        |_| SendResult::Sent,
    );

    assert_eq!(run.jobs.len(), 2);
    assert_eq!(run.settlement.outcomes, [Outcome::Ack, Outcome::Ack]);
    assert_eq!(run.settlement.report.duplicates, 1);
    assert_eq!(run.settlement.report.events, 1);
}

/// Runs `count` distinct events whose locations all have the five formats.
fn run_all_formats(count: u32, send: impl Fn(usize) -> SendResult) -> Run {
    let zips: Vec<String> = (0..count).map(|i| format!("{:05}", 10_000 + i)).collect();
    let bodies: Vec<String> = zips.iter().map(|zip| event(zip, 0)).collect();
    let bodies: Vec<&str> = bodies.iter().map(String::as_str).collect();
    let kv = Kv(zips
        .iter()
        .map(|zip| (format!("formats:{zip}"), Some(ALL_FORMATS.to_owned())))
        .collect());

    run(&bodies, &kv, send)
}

/// Checks that the messages whose jobs went in the first send batch match `first`,
/// and that all others were acked.
fn assert_first_batch_only(run: &Run, first: impl Fn(&Outcome) -> bool) {
    let in_first_batch = run.send_batch_sizes[0].0 / 5;

    for (index, outcome) in run.settlement.outcomes.iter().enumerate() {
        if index < in_first_batch {
            assert!(first(outcome), "{index}: {outcome:?}");
        } else {
            assert_eq!(*outcome, Outcome::Ack, "{index}");
        }
    }
}

#[test]
fn many_events_pack_into_bounded_unsplit_batches() {
    let run = run_all_formats(25, |_| SendResult::Sent);

    assert_eq!(run.jobs.len(), 125);
    assert!(run.send_batch_sizes.len() >= 2);
    for (count, bytes) in &run.send_batch_sizes {
        assert!(*count <= MAX_SEND_BATCH_MESSAGES);
        assert!(*bytes <= MAX_SEND_BATCH_BYTES);
        assert_eq!(count % 5, 0, "an event's five jobs were split");
    }
    assert!(run
        .settlement
        .outcomes
        .iter()
        .all(|outcome| *outcome == Outcome::Ack));
}

#[test]
fn transient_send_failure_retries_its_messages() {
    let run = run_all_formats(25, |index| match index {
        0 => SendResult::Failed {
            permanent: false,
            error: "Queue is overloaded".to_owned(),
        },
        _ => SendResult::Sent,
    });

    assert_first_batch_only(
        &run,
        |outcome| matches!(outcome, Outcome::Retry { delay_secs, reason } if *delay_secs >= 10 && reason.contains("Queue is overloaded")),
    );
}

#[test]
fn permanent_send_failure_dead_letters_its_messages() {
    let run = run_all_formats(25, |index| match index {
        0 => SendResult::Failed {
            permanent: true,
            error: "batch exceeds 256000 bytes".to_owned(),
        },
        _ => SendResult::Sent,
    });

    assert_first_batch_only(
        &run,
        |outcome| matches!(outcome, Outcome::DeadLetter { code: DeadLetterCode::SendRejected, reason } if reason.contains("256000")),
    );
}

#[test]
fn job_body_has_upstream_fields_and_extras() {
    let body = r#"{"zip_code": "78729", "lat": 30.4515, "lon": -97.7676, "fetched_at": "2025-11-20T12:00:00.123456Z", "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "source": "fetcher"}"#;

    let run = run(&[body], &Kv::default(), |_| SendResult::Sent);

    let config = Config::default();
    let bodies = Bodies::new(&[body]);
    let messages = bodies.messages();
    let plan = Batch::decode(&config, &messages).fan_out(|_| KvRead::Missing, NOW);
    assert_eq!(
        plan.jobs().next().unwrap().body,
        r#"{"zip_code":"78729","format_name":"rgb_light","lat":30.4515,"lon":-97.7676,"enqueued_at":"2025-11-20T12:05:00.000000Z","job_id":"78729:rgb_light:20251120T120000.123456Z","fetched_at":"2025-11-20T12:00:00.123456Z","traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}"#
    );
    assert_eq!(run.settlement.outcomes, [Outcome::Ack]);
}

#[test]
fn job_id_falls_back_to_message_id() {
    let run = run(
        &[r#"{"zip_code": "78729", "lat": 1, "lon": 2, "fetched_at": "noon"}"#],
        &Kv::default(),
        |_| SendResult::Sent,
    );

    assert_eq!(run.jobs[0]["job_id"], Value::from("78729:rgb_light:msg-m0"));
    assert_eq!(run.jobs[0].get("fetched_at"), None);
    assert_eq!(warning_codes(&run), ["invalid_fetched_at"]);
}

#[test]
fn enqueued_at_never_has_offset_and_z() {
    let run = run(&[&event("78729", 0)], &Kv::default(), |_| SendResult::Sent);

    let enqueued_at = run.jobs[0]["enqueued_at"].as_str().unwrap();
    assert_eq!(enqueued_at, "2025-11-20T12:05:00.000000Z");
    assert!(!enqueued_at.contains("+00:00"));
}

#[test]
fn report_counts_one_batch() {
    let bodies = [
        event("78729", 0),
        event("78729", 0),
        "oops".to_owned(),
        event("02134", 1),
    ];
    let bodies: Vec<&str> = bodies.iter().map(String::as_str).collect();
    let kv = Kv::with(&[("formats:78729", r#"["bw","sepia"]"#)]);

    let report = run(&bodies, &kv, |_| SendResult::Sent).settlement.report;

    assert_eq!(report.messages, 4);
    assert_eq!(report.events, 2);
    assert_eq!(report.duplicates, 1);
    assert_eq!(report.jobs, 3);
    assert_eq!(report.jobs_sent, 3);
    assert_eq!(report.acked, 3);
    assert_eq!(report.dead_lettered, 1);
    assert_eq!(report.dead_letters.get("invalid_body"), Some(&1));
    assert_eq!(report.kv_keys, 2);
    assert_eq!(report.kv_reads, 1);
    assert_eq!(report.send_batches, 1);
    assert_eq!(report.warnings.get("unknown_formats"), Some(&1));
}

#[test]
fn largest_registry_fits_one_send_batch() {
    let registry: Vec<String> = (0..100)
        .map(|i| format!(r#"{{"name":"f{i:0>60}","config_class":"C","extension":".png","mime_type":"image/png","title":"T"}}"#))
        .collect();
    let config = Config {
        registry: landscape_core::Registry::from_json(&format!("[{}]", registry.join(",")))
            .unwrap(),
        ..Config::default()
    };
    let names: Vec<String> = (0..100).map(|i| format!("\"f{i:0>60}\"")).collect();
    let value = format!("[{}]", names.join(","));
    let traced =
        r#"{"zip_code": "78729", "lat": 1, "lon": 1, "fetched_at": "2025-11-20T12:00:00Z"}"#;
    let messages = [Message {
        id: "m0",
        attempts: 1,
        body: traced,
        timestamp: NOW,
    }];

    let plan = Batch::decode(&config, &messages).fan_out(|_| KvRead::Value(&value), NOW);
    let size: usize = plan
        .send_batches()
        .iter()
        .map(|batch| batch.size_bytes())
        .sum();

    // 100 jobs of about 300 bytes plus metadata stay within one send batch.
    assert!(size <= MAX_SEND_BATCH_BYTES, "{size}");
    assert_eq!(plan.send_batches().len(), 1);
    assert_eq!(plan.send_batches()[0].jobs.len(), 100);
    assert!(plan.send_batches()[0].size_bytes() >= 100 * SEND_METADATA_BYTES);
}
