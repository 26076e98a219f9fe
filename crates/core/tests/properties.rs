//! Invariants of the plan over generated batches, KV values and send results.

// A failed unwrap in a test is a failed test, which is what it should be.
#![allow(clippy::unwrap_used)]

use std::collections::{HashMap, HashSet};

use landscape_core::{
    Batch, Config, KvRead, Message, Outcome, SendResult, Timestamp, MAX_SEND_BATCH_BYTES,
    MAX_SEND_BATCH_MESSAGES,
};
use proptest::prelude::*;

const NOW: Timestamp = Timestamp::from_unix_micros(1_763_640_300_000_000);
const ZIPS: [&str; 6] = ["78729", "02134", "00601", "MX77400", "99950", "10001"];

fn body() -> impl Strategy<Value = String> {
    let valid = (
        0..ZIPS.len(),
        0..3_u32,
        -90.0..90.0_f64,
        -180.0..180.0_f64,
        any::<bool>(),
    )
        .prop_map(|(zip, minute, lat, lon, with_time)| {
            let fetched_at = if with_time {
                format!(r#", "fetched_at": "2025-11-20T12:0{minute}:00Z""#)
            } else {
                String::new()
            };
            format!(
                r#"{{"zip_code": "{}", "lat": {lat}, "lon": {lon}{fetched_at}}}"#,
                ZIPS[zip]
            )
        });
    let invalid = prop_oneof![
        Just("weather ready for 78729".to_owned()),
        Just(r#"{"zip_code": 2134, "lat": 1, "lon": 1}"#.to_owned()),
        Just(r#"{"zip_code": "78729", "lat": null, "lon": 1}"#.to_owned()),
        Just("[]".to_owned()),
        ".{0,40}",
    ];
    prop_oneof![4 => valid.clone(), 1 => valid.prop_map(|body| serde_json::to_string(&body).unwrap()), 2 => invalid]
}

fn kv_value() -> impl Strategy<Value = Option<Option<String>>> {
    let names = prop::collection::vec(
        prop::sample::select(vec![
            "rgb_light",
            "rgb_dark",
            "bw",
            "eink",
            "bwi",
            "sepia",
            "5",
        ]),
        0..8,
    )
    .prop_map(|names| {
        Some(Some(format!(
            "[{}]",
            names
                .iter()
                .map(|n| if *n == "5" {
                    "5".to_owned()
                } else {
                    format!("\"{n}\"")
                })
                .collect::<Vec<_>>()
                .join(",")
        )))
    });
    prop_oneof![
        names,
        Just(None),
        Just(Some(None)),
        Just(Some(Some("rgb_light,bw".to_owned())))
    ]
}

/// Bodies, one KV value per location (`None`: missing, `Some(None)`: failed read),
/// send result codes and a jitter seed.
type Scenario = (Vec<String>, Vec<Option<Option<String>>>, Vec<u8>, u64);

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        prop::collection::vec(body(), 0..60),
        prop::collection::vec(kv_value(), ZIPS.len()),
        prop::collection::vec(0..3_u8, 8),
        any::<u64>(),
    )
}

const IDS: [&str; 60] = [
    "m00", "m01", "m02", "m03", "m04", "m05", "m06", "m07", "m08", "m09", "m10", "m11", "m12",
    "m13", "m14", "m15", "m16", "m17", "m18", "m19", "m20", "m21", "m22", "m23", "m24", "m25",
    "m26", "m27", "m28", "m29", "m30", "m31", "m32", "m33", "m34", "m35", "m36", "m37", "m38",
    "m39", "m40", "m41", "m42", "m43", "m44", "m45", "m46", "m47", "m48", "m49", "m50", "m51",
    "m52", "m53", "m54", "m55", "m56", "m57", "m58", "m59",
];

fn messages(bodies: &[String]) -> Vec<Message<'_>> {
    bodies
        .iter()
        .enumerate()
        .map(|(i, body)| Message {
            id: IDS[i],
            attempts: 1 + i as u32 % 4,
            body,
            timestamp: NOW,
        })
        .collect()
}

fn read<'v>(kv: &'v [Option<Option<String>>], key: &str) -> KvRead<'v> {
    let zip = ZIPS.iter().position(|zip| key == format!("formats:{zip}"));
    match zip.map(|index| &kv[index]) {
        Some(Some(Some(value))) => KvRead::Value(value),
        Some(Some(None)) => KvRead::Failed("injected failure"),
        _ => KvRead::Missing,
    }
}

fn result(code: u8) -> SendResult {
    match code {
        0 => SendResult::Sent,
        1 => SendResult::Failed {
            permanent: false,
            error: "Queue is overloaded".to_owned(),
        },
        _ => SendResult::Failed {
            permanent: true,
            error: "too large".to_owned(),
        },
    }
}

proptest! {
    #[test]
    fn every_message_gets_one_outcome((bodies, kv, sends, seed) in scenario()) {
        let config = Config::default();
        let messages = messages(&bodies);

        let plan = Batch::decode(&config, &messages).fan_out(|key| read(&kv, key), NOW);
        let results: Vec<SendResult> = (0..plan.send_batches().len()).map(|i| result(sends[i % sends.len()])).collect();
        let settlement = plan.settle(&results, seed);

        prop_assert_eq!(settlement.outcomes.len(), messages.len());
        let report = &settlement.report;
        prop_assert_eq!(report.acked + report.retried + report.dead_lettered, messages.len() as u32);
        for outcome in &settlement.outcomes {
            if let Outcome::Retry { delay_secs, .. } = outcome {
                prop_assert!(*delay_secs >= config.retry.base_delay_secs);
                prop_assert!(*delay_secs <= config.retry.max_delay_secs);
            }
        }
    }

    #[test]
    fn jobs_are_unique_bounded_and_unsplit((bodies, kv, _sends, _seed) in scenario()) {
        let config = Config::default();
        let messages = messages(&bodies);

        let plan = Batch::decode(&config, &messages).fan_out(|key| read(&kv, key), NOW);

        let mut ids = HashSet::new();
        let mut batch_of_event: HashMap<String, usize> = HashMap::new();
        for (index, batch) in plan.send_batches().iter().enumerate() {
            prop_assert!(!batch.jobs.is_empty());
            prop_assert!(batch.jobs.len() <= MAX_SEND_BATCH_MESSAGES);
            prop_assert!(batch.size_bytes() <= MAX_SEND_BATCH_BYTES);
            for job in &batch.jobs {
                prop_assert!(ids.insert(job.job_id().to_owned()), "duplicate job {}", job.job_id());
                let mut parts = job.job_id().splitn(3, ':');
                let event = format!("{}:{}", parts.next().unwrap_or(""), parts.nth(1).unwrap_or(""));
                let first = *batch_of_event.entry(event.clone()).or_insert(index);
                prop_assert_eq!(first, index, "event {} split across batches", event);
            }
        }
    }

    #[test]
    fn same_input_gives_same_output((bodies, kv, sends, seed) in scenario()) {
        let config = Config::default();
        let messages = messages(&bodies);
        let settle = || {
            let plan = Batch::decode(&config, &messages).fan_out(|key| read(&kv, key), NOW);
            let results: Vec<SendResult> = (0..plan.send_batches().len()).map(|i| result(sends[i % sends.len()])).collect();
            (plan.send_batches().to_vec(), plan.settle(&results, seed))
        };

        prop_assert_eq!(settle(), settle());
    }
}
