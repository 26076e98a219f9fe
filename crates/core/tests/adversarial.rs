//! Hostile and unusual input for the core: odd JSON, odd timestamps, extreme numbers,
//! duplicate ids, and a model of the outcome each message must get.
//!
//! KV values stay out of warnings beyond their key, kind and size, because the
//! Worker must log no whole KV value.

// A failed unwrap in a test is a failed test, which is what it should be.
#![allow(clippy::unwrap_used)]

use std::collections::{HashMap, HashSet};

use landscape_core::{
    job_id, Batch, Config, DeadLetterCode, KvRead, Message, Outcome, Registry, RetryPolicy,
    SendResult, Settlement, Timestamp, MAX_SEND_BATCH_BYTES, MAX_SEND_BATCH_MESSAGES,
};
use proptest::prelude::*;
use serde_json::Value;

const NOW: Timestamp = Timestamp::from_unix_micros(1_763_640_300_000_000);

/// The planned job bodies and the settlement of one batch, all sends succeeding.
struct Run {
    job_ids: Vec<String>,
    jobs: Vec<Value>,
    settlement: Settlement,
}

fn run_with_ids(messages: &[(&str, &str)], kv: KvRead<'_>) -> Run {
    let config = Config::default();
    let messages: Vec<Message<'_>> = messages
        .iter()
        .map(|(id, body)| Message {
            id,
            attempts: 1,
            body,
            timestamp: NOW,
        })
        .collect();

    let plan = Batch::decode(&config, &messages).fan_out(|_| kv, NOW);
    let results = vec![SendResult::Sent; plan.send_batches().len()];

    Run {
        job_ids: plan.jobs().map(|job| job.job_id().to_owned()).collect(),
        jobs: plan
            .jobs()
            .map(|job| serde_json::from_str(&job.body).unwrap())
            .collect(),
        settlement: plan.settle(&results, 3),
    }
}

fn run(bodies: &[&str]) -> Run {
    let ids: Vec<String> = (0..bodies.len()).map(|i| format!("m{i}")).collect();
    let messages: Vec<(&str, &str)> = ids
        .iter()
        .map(String::as_str)
        .zip(bodies.to_vec())
        .collect();
    run_with_ids(&messages, KvRead::Missing)
}

fn dead_letter(outcome: &Outcome) -> (DeadLetterCode, &str) {
    match outcome {
        Outcome::DeadLetter { code, reason } => (*code, reason),
        other => panic!("expected a dead letter, got {other:?}"),
    }
}

fn event_at(fetched_at: &str) -> String {
    format!(r#"{{"zip_code": "78729", "lat": 1, "lon": 2, "fetched_at": "{fetched_at}"}}"#)
}

#[test]
fn empty_batch_plans_nothing() {
    let run = run(&[]);

    assert!(run.jobs.is_empty());
    assert!(run.settlement.outcomes.is_empty());
    assert_eq!(run.settlement.report.kv_reads, 0);
    assert_eq!(run.settlement.report.send_batches, 0);
}

#[test]
fn extreme_attempts_stay_within_bounds() {
    let policy = RetryPolicy::default();
    let cases = [0, 1, 32, 33, 64, u32::MAX];

    for attempts in cases {
        for jitter in [0.0, 0.999_999, 1.0, -1.0, f64::NAN, f64::INFINITY] {
            let delay = policy.delay_secs(attempts, jitter);

            assert!(delay >= 10, "{attempts} {jitter}: {delay}");
            assert!(delay <= 43_200, "{attempts} {jitter}: {delay}");
        }
    }
}

#[test]
fn extreme_policy_does_not_overflow() {
    let policy = RetryPolicy {
        base_delay_secs: u32::MAX,
        max_delay_secs: u32::MAX,
    };

    assert_eq!(policy.delay_secs(u32::MAX, 0.999_999), u32::MAX);
}

#[test]
fn extreme_instants_format_without_panic() {
    for micros in [i64::MIN, -1, 0, i64::MAX] {
        let at = Timestamp::from_unix_micros(micros);

        assert!(at.to_string().ends_with('Z'));
        assert!(!job_id("78729", "bw", Some(at), "m0").is_empty());
    }
}

#[test]
fn rfc3339_edge_forms_parse_to_reference_instants() {
    // Reference values from chrono 0.4.45's `DateTime::parse_from_rfc3339`.
    let cases = [
        ("1969-12-31T23:59:59.5Z", -500_000),
        ("1970-01-01T00:00:00-00:00", 0),
        ("1970-01-01T23:59:00+23:59", 0),
        ("1969-12-31T00:01:00-23:59", 0),
        ("2000-02-29T12:00:00.000000001Z", 951_825_600_000_000),
        ("2025-11-20T12:00:00.9999999Z", 1_763_640_000_999_999),
        ("0001-01-01T00:00:00Z", -62_135_596_800_000_000),
    ];

    for (text, micros) in cases {
        let parsed = Timestamp::parse_rfc3339(text);

        assert_eq!(parsed, Some(Timestamp::from_unix_micros(micros)), "{text}");
    }
}

#[test]
fn rfc3339_rejects_near_misses() {
    let cases = [
        "1900-02-29T00:00:00Z",
        "2025-11-20T12:00:00+23:60",
        "2025-11-20T12:00:00+1:00",
        "2025-11-20T12:00:00.+01:00",
        "2025-11-20T12:00:00Z ",
        " 2025-11-20T12:00:00Z",
        "2025-11-20T12:00:00ZZ",
        "2025-11-20T12:00:00\u{0}Z",
        "2025-11-20T12:00:00.é",
        "2025-1é-20T12:00:00Z",
        "+2025-11-20T12:00:00Z",
        "2025-11-20T12:0:000Z",
    ];

    for text in cases {
        assert_eq!(Timestamp::parse_rfc3339(text), None, "{text}");
    }
}

#[test]
fn equal_instants_coalesce_keeping_first_text() {
    let first = event_at("2025-11-20T07:00:00-05:00");
    let second = event_at("2025-11-20T12:00:00.000000Z");

    let run = run(&[&first, &second]);

    assert_eq!(run.jobs.len(), 1);
    assert_eq!(run.jobs[0]["fetched_at"], "2025-11-20T07:00:00-05:00");
    assert_eq!(run.settlement.outcomes, [Outcome::Ack, Outcome::Ack]);
}

#[test]
fn escaped_keys_and_values_read_like_python() {
    let body = r#"{"zip\u005fcode": "\u0030\u0032134", "lat": 1, "lon": 2, "fetched_at": "2025-11-20T12:00:00\u005a"}"#;

    let run = run(&[body]);

    assert_eq!(run.jobs[0]["zip_code"], "02134");
    assert_eq!(run.jobs[0]["fetched_at"], "2025-11-20T12:00:00Z");
    assert_eq!(run.settlement.outcomes, [Outcome::Ack]);
}

#[test]
fn odd_unknown_fields_are_ignored() {
    let deep = format!(
        r#"{{"zip_code": "78729", "lat": 1, "lon": 2, "x": {}{}}}"#,
        "[".repeat(50_000),
        "]".repeat(50_000)
    );
    let cases = [
        r#"{"zip_code": "78729", "lat": 1, "lon": 2, "x": "\ud800"}"#,
        r#"{"zip_code": "78729", "lat": 1, "lon": 2, "x": 1e999, "x": 1e999}"#,
        r#"{"zip_code": "78729", "lat": 1, "lon": 2, "x": "é\u2028"}"#,
        &deep,
    ];

    for body in cases {
        let run = run(&[body]);

        assert_eq!(run.settlement.outcomes, [Outcome::Ack], "{:.80}", body);
    }
}

#[test]
fn deep_nesting_is_rejected_without_overflow() {
    let body = "[".repeat(127_000);
    let kv_value = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));

    let rejected = run(&[&body]);
    let defaulted = run_with_ids(
        &[("m0", r#"{"zip_code": "78729", "lat": 1, "lon": 2}"#)],
        KvRead::Value(&kv_value),
    );

    let (code, _) = dead_letter(&rejected.settlement.outcomes[0]);
    assert_eq!(code, DeadLetterCode::InvalidBody);
    assert_eq!(defaulted.jobs.len(), 1);
    assert_eq!(defaulted.settlement.warnings.len(), 1);
    assert!(defaulted.settlement.warnings[0].detail.len() < 1_000);
}

#[test]
fn negative_zero_and_integers_keep_their_value() {
    let body = r#"{"zip_code": "78729", "lat": -0.0, "lon": 30}"#;

    let run = run(&[body]);

    assert_eq!(run.jobs[0]["lat"].as_f64(), Some(0.0));
    assert_eq!(run.jobs[0]["lon"].as_f64(), Some(30.0));
}

#[test]
fn message_id_with_any_text_gives_valid_body() {
    let ids = ["\"", "\\", "\u{0}\u{1f}", "é\u{2028}😀", "a:b:c"];

    for id in ids {
        let run = run_with_ids(
            &[(id, r#"{"zip_code": "78729", "lat": 1, "lon": 2}"#)],
            KvRead::Missing,
        );

        assert_eq!(run.jobs[0]["job_id"], run.job_ids[0].as_str(), "{id:?}");
        assert_eq!(run.job_ids[0], format!("78729:rgb_light:msg-{id}"));
    }
}

#[test]
fn huge_message_id_dead_letters_only_its_event() {
    let huge = "x".repeat(MAX_SEND_BATCH_BYTES);
    let first = r#"{"zip_code": "78729", "lat": 1, "lon": 2}"#;
    let second = r#"{"zip_code": "78729", "lat": 3, "lon": 4}"#;

    let run = run_with_ids(&[(&huge, first), ("m1", second)], KvRead::Missing);

    let (code, _) = dead_letter(&run.settlement.outcomes[0]);
    assert_eq!(code, DeadLetterCode::JobsTooLarge);
    assert_eq!(run.settlement.outcomes[1], Outcome::Ack);
}

#[test]
fn year_wrapping_offset_keeps_ids_distinct() {
    let pairs = [
        ("0000-01-01T00:00:00+23:59", "9999-12-31T00:01:00Z"),
        ("9999-12-31T23:59:59-23:59", "0000-01-01T23:58:59Z"),
    ];

    for (wrapping, plain) in pairs {
        let run = run(&[&event_at(wrapping), &event_at(plain)]);

        let distinct: HashSet<&String> = run.job_ids.iter().collect();
        assert_eq!(distinct.len(), run.job_ids.len(), "{:?}", run.job_ids);
    }
}

#[test]
fn same_body_without_time_dispatches_once() {
    let body = r#"{"zip_code": "78729", "lat": 1, "lon": 2}"#;

    let run = run(&[body, body]);

    assert_eq!(run.jobs.len(), 1);
    assert_eq!(run.settlement.outcomes, [Outcome::Ack, Outcome::Ack]);
}

#[test]
fn duplicate_message_ids_distinct_jobs() {
    let run = run_with_ids(
        &[
            ("m0", r#"{"zip_code": "78729", "lat": 1, "lon": 2}"#),
            ("m0", r#"{"zip_code": "78729", "lat": 3, "lon": 4}"#),
        ],
        KvRead::Missing,
    );

    let distinct: HashSet<&String> = run.job_ids.iter().collect();
    assert_eq!(distinct.len(), run.job_ids.len(), "{:?}", run.job_ids);
}

#[test]
fn long_zip_code_reason_is_shortened() {
    let body = format!(
        r#"{{"zip_code": "{}", "lat": 1, "lon": 2}}"#,
        "9".repeat(100_000)
    );

    let run = run(&[&body]);

    let (code, reason) = dead_letter(&run.settlement.outcomes[0]);
    assert_eq!(code, DeadLetterCode::InvalidLocation);
    assert!(reason.len() < 1_000, "reason is {} bytes", reason.len());
}

#[test]
fn lone_surrogate_zip_reason_accurate() {
    let run = run(&[r#"{"zip_code": "\ud800", "lat": 1, "lon": 2}"#]);

    let (code, reason) = dead_letter(&run.settlement.outcomes[0]);
    assert_eq!(code, DeadLetterCode::InvalidLocation);
    assert!(!reason.contains("must be a JSON string"), "{reason}");
}

// Model of the plan: what each message's outcome must be, given which send batch
// carried its event's jobs and how that send ended.

const ZIPS: [&str; 4] = ["78729", "02134", "MX77400", "99950"];

/// One generated message: location, optional fetched_at minute, and whether its body
/// is wrapped in a JSON string.
type Spec = (usize, Option<u8>, bool);

/// The identity of an event: location and fetched_at minute, or, when there is no
/// fetched_at, the index of the first such message for the location (all generated
/// bodies share their coordinates, so those messages are copies).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Identity {
    At(usize, u8),
    Message(usize, usize),
}

fn identity(specs: &[Spec], (zip, minute, _): Spec) -> Identity {
    match minute {
        Some(minute) => Identity::At(zip, minute),
        None => {
            let first = specs
                .iter()
                .position(|spec| spec.0 == zip && spec.1.is_none());
            Identity::Message(zip, first.unwrap_or_default())
        }
    }
}

fn spec_body((zip, minute, wrapped): Spec) -> String {
    let fetched_at = minute
        .map(|minute| format!(r#", "fetched_at": "2025-11-20T12:{minute:02}:00Z""#))
        .unwrap_or_default();
    let body = format!(
        r#"{{"zip_code": "{}", "lat": 1.5, "lon": -2.5{fetched_at}}}"#,
        ZIPS[zip]
    );
    if wrapped {
        serde_json::to_string(&body).unwrap()
    } else {
        body
    }
}

fn job_identity(job: &Value) -> Identity {
    let zip = ZIPS.iter().position(|zip| job["zip_code"] == *zip).unwrap();
    match job["fetched_at"].as_str() {
        Some(text) => Identity::At(zip, text[14..16].parse().unwrap()),
        None => {
            let id = job["job_id"].as_str().unwrap();
            Identity::Message(zip, id.rsplit("msg-m").next().unwrap().parse().unwrap())
        }
    }
}

/// Builds a registry of `count` formats whose names take `name_len` bytes.
fn registry(count: usize, name_len: usize) -> Registry {
    let entries: Vec<String> = (0..count)
        .map(|i| {
            let name = format!("f{i:0>width$}", width = name_len - 1);
            format!(r#"{{"name":"{name}","config_class":"C","extension":".png","mime_type":"image/png","title":"T"}}"#)
        })
        .collect();
    Registry::from_json(&format!("[{}]", entries.join(","))).unwrap()
}

fn send_result(code: u8) -> SendResult {
    match code {
        0 => SendResult::Sent,
        1 => SendResult::Failed {
            permanent: false,
            error: "Queue is overloaded".to_owned(),
        },
        _ => SendResult::Failed {
            permanent: true,
            error: "batch too large".to_owned(),
        },
    }
}

fn check_outcome(outcome: &Outcome, result: Option<&SendResult>) -> Result<(), TestCaseError> {
    match (result, outcome) {
        (None, Outcome::Retry { reason, .. }) => prop_assert!(reason.contains("KV read")),
        (Some(SendResult::Sent), Outcome::Ack) => {}
        (
            Some(SendResult::Failed {
                permanent: false, ..
            }),
            Outcome::Retry { .. },
        ) => {}
        (
            Some(SendResult::Failed {
                permanent: true, ..
            }),
            Outcome::DeadLetter {
                code: DeadLetterCode::SendRejected,
                ..
            },
        ) => {}
        _ => prop_assert!(false, "{outcome:?} after {result:?}"),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn outcome_follows_carrying_send(
        specs in prop::collection::vec((0..ZIPS.len(), prop::option::of(0..4_u8), any::<bool>()), 0..100),
        (format_count, name_len) in (1..=100_usize, 1..=64_usize),
        failing_zip in prop::option::of(0..ZIPS.len()),
        sends in prop::collection::vec(0..3_u8, 1..8),
    ) {
        let config = Config { registry: registry(format_count, name_len), ..Config::default() };
        let names: Vec<String> = config.registry.formats().iter().map(|format| format!("{:?}", format.name)).collect();
        let kv_value = format!("[{}]", names.join(","));
        let ids: Vec<String> = (0..specs.len()).map(|i| format!("m{i}")).collect();
        let bodies: Vec<String> = specs.iter().map(|spec| spec_body(*spec)).collect();
        let messages: Vec<Message<'_>> = ids.iter().zip(&bodies).map(|(id, body)| Message { id, attempts: 1, body, timestamp: NOW }).collect();

        let plan = Batch::decode(&config, &messages).fan_out(
            |key| match failing_zip {
                Some(zip) if key == format!("formats:{}", ZIPS[zip]) => KvRead::Failed("503"),
                _ => KvRead::Value(&kv_value),
            },
            NOW,
        );
        let results: Vec<SendResult> = (0..plan.send_batches().len()).map(|i| send_result(sends[i % sends.len()])).collect();
        let settlement = plan.settle(&results, 9);

        let mut batch_of: HashMap<Identity, usize> = HashMap::new();
        let mut jobs_of: HashMap<Identity, usize> = HashMap::new();
        for (index, batch) in plan.send_batches().iter().enumerate() {
            prop_assert!(batch.jobs.len() <= MAX_SEND_BATCH_MESSAGES);
            prop_assert!(batch.size_bytes() <= MAX_SEND_BATCH_BYTES);
            for job in &batch.jobs {
                let identity = job_identity(&serde_json::from_str(&job.body).unwrap());
                prop_assert_eq!(*batch_of.entry(identity.clone()).or_insert(index), index, "event split");
                *jobs_of.entry(identity).or_insert(0) += 1;
            }
        }
        prop_assert!(jobs_of.values().all(|count| *count == format_count));
        prop_assert_eq!(settlement.outcomes.len(), specs.len());
        for (spec, outcome) in specs.iter().zip(&settlement.outcomes) {
            let identity = identity(&specs, *spec);
            let result = batch_of.get(&identity).map(|batch| &results[*batch]);
            prop_assert_eq!(result.is_none(), failing_zip == Some(spec.0), "{:?}", identity);
            check_outcome(outcome, result)?;
        }
    }
}
