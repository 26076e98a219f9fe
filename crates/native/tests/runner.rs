//! End-to-end tests of the built binary on temporary directories with real SQLite files.

mod support;

use std::collections::HashSet;
use std::io::BufRead;
use std::process::{Command, Stdio};
use std::time::Duration;

use support::{
    expected_jobs, job_ids, now_micros, path_str, read_events, read_kv, real_input, sample_input,
    wait_for, Harness, ALL_FORMATS,
};

const FAIL_SENDS_VAR: &str = "LANDSCAPE_DISPATCHER_FAIL_SENDS";

/// Reads a `key value` line of the run summary as a number.
fn summary_value(summary: &str, key: &str) -> u64 {
    summary
        .lines()
        .find_map(|line| line.strip_prefix(key).filter(|rest| rest.starts_with(' ')))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no {key:?} in summary:\n{summary}"))
}

/// Returns a store loaded with the real input, its events, and the jobs they should produce.
fn loaded_real_input() -> (Harness, Vec<serde_json::Value>, u64) {
    let harness = Harness::new();
    let (events_path, kv_path) = real_input();
    let events = read_events(&events_path);
    let expected = expected_jobs(&events, &read_kv(&kv_path));
    harness.load(&events_path, &kv_path);
    (harness, events, expected)
}

fn assert_unique(job_ids: &[String]) {
    let distinct: HashSet<&String> = job_ids.iter().collect();
    assert_eq!(distinct.len(), job_ids.len(), "a job_id appears twice");
}

#[test]
fn real_input_drains_to_expected_jobs() {
    let (harness, events, expected) = loaded_real_input();

    let summary = harness.ok(&["run", "--drain"]);

    assert_eq!(summary_value(&summary, "messages"), events.len() as u64);
    assert_eq!(summary_value(&summary, "jobs"), expected);
    assert_eq!(summary_value(&summary, "dead-lettered"), 0);
    assert_eq!(harness.count("weather-ready"), 0);
    assert_eq!(harness.count("weather-ready-dlq"), 0);
    assert_eq!(harness.count("landscape-jobs"), expected);
    let ids = job_ids(&harness);
    assert_unique(&ids);
}

#[test]
fn crash_and_restart_sends_each_job_once() {
    let (harness, events, expected) = loaded_real_input();
    let run = ["run", "--drain", "--visibility-timeout", "1"];

    // Kill the runner with SIGKILL once each fifth of the jobs has been committed.
    let mut kills = 0;
    for fifth in 1..5 {
        let threshold = expected * fifth / 5;
        let mut child = harness.spawn(&run);
        let reached = wait_for(Duration::from_secs(120), || {
            harness.count("landscape-jobs") >= threshold
        });
        child.kill().expect("SIGKILL the runner");
        let status = child.wait().expect("wait for the runner");
        assert!(reached, "the runner did not reach {threshold} jobs");
        if !status.success() {
            kills += 1;
        }
    }
    harness.ok(&run);

    assert!(
        kills >= 3,
        "only {kills} runs were killed before they finished"
    );
    assert_eq!(harness.count("weather-ready"), 0);
    assert_eq!(harness.count("weather-ready-dlq"), 0);
    let ids = job_ids(&harness);
    assert_eq!(ids.len() as u64, expected);
    assert_unique(&ids);
    let zips_with_jobs: HashSet<&str> = ids.iter().filter_map(|id| id.split(':').next()).collect();
    let lost = events
        .iter()
        .filter(|event| !zips_with_jobs.contains(event["zip_code"].as_str().unwrap_or_default()))
        .count();
    assert_eq!(lost, 0, "events without a job");
}

#[test]
fn send_failures_retry_then_dead_letter() {
    let harness = Harness::new();
    let (events_path, kv_path) = sample_input();
    harness.ok(&["kv", "bulk", "put", path_str(&kv_path)]);
    let event = std::fs::read_to_string(&events_path)
        .expect("events")
        .lines()
        .next()
        .expect("one event")
        .to_owned();
    send_lines(&harness, &[event.as_str()]);
    let step = [
        "run",
        "--max-batches",
        "1",
        "--max-retries",
        "2",
        "--retry-delay",
        "1",
        "--max-batch-timeout",
        "0",
    ];
    let fault = "queue unavailable";

    // Delivery 1 fails: retried no sooner than the 1 s base delay.
    let before_first = now_micros();
    run_with_fault(&harness, &step, fault);
    let first = peek_one(&harness, "weather-ready");
    // Delivery 2 fails: not delivered before the first delay passed, retried after 2 s or more.
    run_with_fault(&harness, &step, fault);
    let after_second = now_micros();
    let second = peek_one(&harness, "weather-ready");
    // Delivery 3 fails: past max_retries, so dead-lettered with the last error.
    run_with_fault(&harness, &step, fault);
    let after_third = now_micros();
    let records = dlq_records(&harness);

    assert_eq!(first["attempts"], 1);
    assert!(first["visible_at_micros"].as_i64().expect("visible_at") >= before_first + 1_000_000);
    assert!(first["last_error"]
        .as_str()
        .expect("last_error")
        .contains(fault));
    assert_eq!(second["attempts"], 2);
    assert!(after_second >= first["visible_at_micros"].as_i64().expect("visible_at"));
    assert!(
        second["visible_at_micros"].as_i64().expect("visible_at")
            >= first["visible_at_micros"].as_i64().expect("visible_at") + 2_000_000
    );
    assert!(after_third >= second["visible_at_micros"].as_i64().expect("visible_at"));
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["code"], "retries_exhausted");
    assert_eq!(records[0]["attempts"], 3);
    assert!(records[0]["reason"]
        .as_str()
        .expect("reason")
        .contains(fault));
    assert_eq!(records[0]["body"], event.as_str());
    assert_eq!(harness.count("weather-ready"), 0);
    assert_eq!(harness.count("landscape-jobs"), 0);

    // Once the fault is gone, a replay brings the event back and it is dispatched.
    harness.ok(&["dlq", "replay", "--code", "retries_exhausted"]);
    let summary = harness.ok(&["run", "--drain"]);

    assert_eq!(summary_value(&summary, "acked"), 1);
    assert_eq!(harness.count("weather-ready-dlq"), 0);
    assert!(harness.count("landscape-jobs") >= 1);
}

fn send_lines(harness: &Harness, lines: &[&str]) {
    let path = harness
        .dir
        .path()
        .join(format!("lines-{}.jsonl", now_micros()));
    std::fs::write(&path, lines.join("\n") + "\n").expect("write lines");
    harness.ok(&["send", "weather-ready", path_str(&path)]);
}

fn run_with_fault(harness: &Harness, args: &[&str], fault: &str) {
    let output = harness
        .command(args)
        .env(FAIL_SENDS_VAR, fault)
        .output()
        .expect("run");
    assert!(
        output.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn peek_one(harness: &Harness, queue: &str) -> serde_json::Value {
    peek_one_of(harness, queue, 1)
}

fn dlq_records(harness: &Harness) -> Vec<serde_json::Value> {
    harness
        .ok(&["dlq", "list"])
        .lines()
        .map(|line| serde_json::from_str(line).expect("record JSON"))
        .collect()
}

#[test]
fn five_formats_make_12500_jobs() {
    let harness = Harness::new();
    let (events_path, _) = sample_input();
    let events: Vec<String> = std::fs::read_to_string(&events_path)
        .expect("events")
        .lines()
        .take(2_500)
        .map(str::to_owned)
        .collect();
    let kv: Vec<serde_json::Value> = events
        .iter()
        .map(|line| {
            let event: serde_json::Value = serde_json::from_str(line).expect("event");
            let key = format!("formats:{}", event["zip_code"].as_str().expect("zip_code"));
            serde_json::json!({ "key": key, "value": serde_json::to_string(&ALL_FORMATS).expect("names") })
        })
        .collect();
    let kv_path = harness.dir.path().join("kv.json");
    std::fs::write(&kv_path, serde_json::to_string(&kv).expect("KV JSON")).expect("write KV");
    harness.ok(&["kv", "bulk", "put", path_str(&kv_path)]);
    send_lines(
        &harness,
        &events.iter().map(String::as_str).collect::<Vec<_>>(),
    );

    let summary = harness.ok(&["run", "--drain"]);

    assert_eq!(summary_value(&summary, "messages"), 2_500);
    assert_eq!(summary_value(&summary, "jobs"), 12_500);
    assert_eq!(harness.count("landscape-jobs"), 12_500);
    assert_eq!(harness.count("weather-ready"), 0);
}

#[test]
fn invalid_bodies_are_dead_lettered() {
    let harness = Harness::new();
    let lines = [
        "not json",
        r#"{"zip_code": "ABC", "lat": 1.0, "lon": 2.0}"#,
        r#"{"zip_code": "78729", "lat": 95.0, "lon": 2.0}"#,
        r#"{"zip_code": "78729", "lat": 30.4515, "lon": -97.7676, "fetched_at": "2025-11-20T12:00:00Z"}"#,
    ];
    send_lines(&harness, &lines);

    let summary = harness.ok(&["run", "--drain"]);
    let codes: Vec<String> = dlq_records(&harness)
        .iter()
        .map(|record| record["code"].as_str().expect("code").to_owned())
        .collect();

    assert_eq!(summary_value(&summary, "acked"), 1);
    assert_eq!(summary_value(&summary, "dead-lettered"), 3);
    assert_eq!(
        codes,
        ["invalid_body", "invalid_location", "invalid_coordinates"]
    );
    assert_eq!(harness.count("landscape-jobs"), 1);
}

#[test]
fn sigterm_finishes_the_batch_in_hand() {
    let harness = Harness::new();
    let (events_path, kv_path) = real_input();
    harness.load(&events_path, &kv_path);
    let mut child = harness.spawn(&["run", "--visibility-timeout", "600"]);

    let started = wait_for(Duration::from_secs(60), || {
        harness.count("landscape-jobs") > 0
    });
    let signal = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("send SIGTERM");
    let status = child.wait().expect("wait for the runner");
    let in_flight: u64 = harness
        .open()
        .query_row(
            "SELECT count(*) FROM messages WHERE queue = 'weather-ready' AND lease_expires_at > ?1",
            [now_micros()],
            |row| row.get(0),
        )
        .expect("count leases");

    assert!(started, "the runner sent no job");
    assert!(signal.success());
    assert_eq!(status.code(), Some(0));
    assert_eq!(in_flight, 0, "a batch was left leased");
}

#[test]
fn plan_prints_jobs_and_writes_nothing() {
    let harness = Harness::new();
    let (events_path, kv_path) = sample_input();
    harness.ok(&["kv", "bulk", "put", path_str(&kv_path)]);
    let events = read_events(&events_path);
    let expected = expected_jobs(&events, &read_kv(&kv_path));
    let modified = std::fs::metadata(&harness.db)
        .and_then(|meta| meta.modified())
        .expect("store metadata");

    let output = harness.ok(&["plan", path_str(&events_path)]);

    assert_eq!(output.lines().count() as u64, expected);
    assert_eq!(harness.count("weather-ready"), 0);
    assert_eq!(harness.count("landscape-jobs"), 0);
    assert_eq!(
        std::fs::metadata(&harness.db)
            .and_then(|meta| meta.modified())
            .expect("store metadata"),
        modified
    );
}

#[test]
fn formats_commands_check_the_registry() {
    let harness = Harness::new();

    let set = harness.ok(&["formats", "set", "78729", "bw", "eink"]);
    let added = harness.ok(&["formats", "add", "78729", "bwi"]);
    let removed = harness.ok(&["formats", "remove", "78729", "bw"]);
    let unknown = harness.run(&["formats", "add", "78729", "sepia"]);
    let default = harness.run(&["formats", "remove", "78729", "rgb_light"]);
    let invalid_location = harness.run(&["formats", "set", "7872", "bw"]);
    let stored = harness.ok(&["kv", "get", "formats:78729"]);

    assert_eq!(set, "rgb_light\nbw\neink\n");
    assert_eq!(added, "rgb_light\nbw\neink\nbwi\n");
    assert_eq!(removed, "rgb_light\neink\nbwi\n");
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("sepia"));
    assert_eq!(default.status.code(), Some(2));
    assert_eq!(invalid_location.status.code(), Some(2));
    let message = String::from_utf8_lossy(&invalid_location.stderr);
    assert!(
        message.starts_with("error: invalid location id \"7872\": expected "),
        "{message}"
    );
    assert_eq!(
        message.matches("invalid location id").count(),
        1,
        "{message}"
    );
    assert_eq!(stored.trim(), r#"["rgb_light", "eink", "bwi"]"#);
}

#[test]
fn usage_and_runtime_errors_exit_codes() {
    let harness = Harness::new();
    let mut misconfigured = Harness::new();
    let text = std::fs::read_to_string(&harness.config)
        .expect("wrangler.toml")
        .replacen("max_batch_size = 10", "max_batch_size = 500", 1);
    misconfigured.config = misconfigured.dir.path().join("wrangler.toml");
    std::fs::write(&misconfigured.config, text).expect("write config");

    harness.ok(&["kv", "put", "other", "x"]);
    let unknown_queue = harness.run(&["send", "no-such-queue", "-"]);
    let missing_key = harness.run(&["kv", "get", "formats:00000"]);
    let bad_flag = harness.run(&["run", "--no-such-flag"]);
    let invalid_setting = misconfigured.run(&["queue", "stats"]);

    assert_eq!(unknown_queue.status.code(), Some(2));
    assert_eq!(missing_key.status.code(), Some(1));
    assert_eq!(bad_flag.status.code(), Some(2));
    assert_eq!(invalid_setting.status.code(), Some(2));
    let message = String::from_utf8_lossy(&invalid_setting.stderr);
    assert!(
        message.contains("wrangler.toml: queues.consumers[0].max_batch_size"),
        "{message}"
    );
    assert!(
        message.contains("expected an integer from 1 to 100"),
        "{message}"
    );
}

#[test]
fn kv_commands_round_trip() {
    let harness = Harness::new();
    let bulk = harness.dir.path().join("bulk.json");
    std::fs::write(
        &bulk,
        r#"[{"key": "formats:10001", "value": "[\"rgb_light\", \"bw\"]"},
            {"key": "formats:10002", "value": "WyJyZ2JfbGlnaHQiXQ==", "base64": true, "expiration_ttl": 60},
            {"key": "other", "value": "x"}]"#,
    )
    .expect("write bulk file");

    harness.ok(&["kv", "bulk", "put", path_str(&bulk)]);
    harness.ok(&["kv", "put", "formats:10003", "[]"]);
    harness.ok(&["kv", "delete", "other"]);
    let listed = harness.ok(&["kv", "list", "--prefix", "formats:"]);
    let decoded = harness.ok(&["kv", "get", "formats:10002"]);
    let bad_bulk = harness.run(&["kv", "bulk", "put", path_str(&harness.config)]);

    assert_eq!(listed, "formats:10001\nformats:10002\nformats:10003\n");
    assert_eq!(decoded, "[\"rgb_light\"]\n");
    assert_eq!(bad_bulk.status.code(), Some(2));
}

#[test]
fn two_runners_share_one_store() {
    let (harness, _, expected) = loaded_real_input();

    let runners: Vec<_> = (0..2).map(|_| harness.spawn(&["run", "--drain"])).collect();
    let statuses: Vec<_> = runners
        .into_iter()
        .map(|mut runner| runner.wait().expect("wait for a runner"))
        .collect();

    assert!(
        statuses.iter().all(|status| status.success()),
        "{statuses:?}"
    );
    assert_eq!(harness.count("weather-ready"), 0);
    let ids = job_ids(&harness);
    assert_eq!(ids.len() as u64, expected);
    assert_unique(&ids);
}

#[test]
fn partial_batch_waits_for_batch_timeout() {
    let harness = Harness::new();
    let (events_path, _) = sample_input();
    let text = std::fs::read_to_string(&events_path).expect("events");
    let lines: Vec<&str> = text.lines().take(3).collect();
    send_lines(&harness, &lines);
    let enqueued_at = peek_one_of(&harness, "weather-ready", 3)["enqueued_at_micros"]
        .as_i64()
        .expect("enqueued_at");

    let summary = harness.ok(&["run", "--max-batches", "1", "--max-batch-timeout", "1"]);
    let first_job_at: i64 = harness
        .open()
        .query_row(
            "SELECT min(enqueued_at) FROM messages WHERE queue = 'landscape-jobs'",
            [],
            |row| row.get(0),
        )
        .expect("first job time");

    assert_eq!(summary_value(&summary, "messages"), 3);
    assert!(
        first_job_at >= enqueued_at + 1_000_000,
        "the partial batch came before max_batch_timeout"
    );
}

/// Returns the first of `expected` messages on `queue`, checking the count.
fn peek_one_of(harness: &Harness, queue: &str, expected: usize) -> serde_json::Value {
    let output = harness.ok(&["queue", "peek", queue]);
    let lines: Vec<&str> = output.lines().collect();
    assert_eq!(lines.len(), expected, "messages on {queue}: {output}");
    serde_json::from_str(lines[0]).expect("peek JSON")
}

#[test]
fn send_stops_at_invalid_utf8() {
    let harness = Harness::new();
    let path = harness.dir.path().join("mixed.jsonl");
    std::fs::write(&path, b"{\"a\": 1}\n\n\xff\xfe\n{\"b\": 2}\n").expect("write lines");

    let output = harness.run(&["send", "weather-ready", path_str(&path)]);

    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("line 3 is not valid UTF-8"));
    assert_eq!(harness.count("weather-ready"), 1);
}

#[test]
fn read_commands_need_an_existing_store() {
    let harness = Harness::new();
    let commands: [&[&str]; 9] = [
        &["queue", "stats"],
        &["queue", "peek", "weather-ready"],
        &["queue", "purge", "weather-ready"],
        &["dlq", "list"],
        &["dlq", "replay"],
        &["formats", "get", "78729"],
        &["kv", "get", "formats:78729"],
        &["kv", "list"],
        &["kv", "delete", "formats:78729"],
    ];

    for args in commands {
        let output = harness.run(args);

        let message = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {message}");
        assert!(
            message.contains(path_str(&harness.db)),
            "{args:?}: {message}"
        );
        assert!(message.contains("--db"), "{args:?}: {message}");
        assert!(!harness.db.exists(), "{args:?} created the store");
    }
}

#[test]
fn write_commands_create_the_store() {
    let harness = Harness::new();

    harness.ok(&["formats", "add", "78729", "bw"]);

    assert!(harness.db.exists());
    assert_eq!(harness.ok(&["formats", "get", "78729"]), "rgb_light\nbw\n");
}

#[test]
fn closed_stdout_ends_quietly() {
    let harness = Harness::new();
    let (events_path, kv_path) = sample_input();
    harness.load(&events_path, &kv_path);
    let commands: [&[&str]; 2] = [
        &["plan", path_str(&events_path)],
        &["queue", "peek", "weather-ready", "--limit", "100000"],
    ];

    for args in commands {
        let mut child = harness
            .command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the binary");
        let stdout = child.stdout.take().expect("stdout");
        let mut first = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut first)
            .expect("read a line");
        // The reader is dropped here, so the rest of the output meets a closed pipe.
        let output = child.wait_with_output().expect("wait for the binary");

        assert!(first.starts_with('{'), "{args:?}: {first}");
        assert_eq!(output.status.code(), Some(0), "{args:?}");
        assert_eq!(String::from_utf8_lossy(&output.stderr), "", "{args:?}");
    }
}

#[test]
fn plan_describes_rejected_lines() {
    let harness = Harness::new();
    let mut lines = vec![
        r#"{"zip_code": "78729", "lat": 30.4515, "lon": -97.7676, "fetched_at": "2025-11-20T12:00:00Z"}"#.to_owned(),
        "not json".to_owned(),
        String::new(),
        r#"{"zip_code": "78729", "lat": 95.0, "lon": 2.0}"#.to_owned(),
    ];
    lines.extend((0..30).map(|index| format!("bad {index}")));
    let path = harness.dir.path().join("mixed.jsonl");
    std::fs::write(&path, lines.join("\n") + "\n").expect("write lines");

    let output = harness.run(&["plan", path_str(&path)]);
    let stdout = String::from_utf8(output.stdout).expect("UTF-8 output");
    let stderr = String::from_utf8(output.stderr).expect("UTF-8 errors");
    let described: Vec<&str> = stderr
        .lines()
        .filter(|line| line.contains(": line "))
        .collect();

    assert_eq!(output.status.code(), Some(0));
    assert_eq!(stdout.lines().count(), 1);
    let job: serde_json::Value = serde_json::from_str(stdout.trim()).expect("job JSON");
    assert_eq!(job["zip_code"], "78729");
    assert_eq!(described.len(), 20, "{stderr}");
    assert!(
        described[0].contains("line 2: would be dead-lettered with code invalid_body: "),
        "{stderr}"
    );
    assert!(
        described[1].contains("line 4: would be dead-lettered with code invalid_coordinates: "),
        "{stderr}"
    );
    assert!(described[2].contains("line 5: "), "{stderr}");
    assert!(stderr.contains("32 lines of "), "{stderr}");
}

#[test]
fn purge_with_ledger_lets_events_dispatch_again() {
    let harness = Harness::new();
    let (events_path, _) = sample_input();
    let text = std::fs::read_to_string(&events_path).expect("events");
    let lines: Vec<&str> = text.lines().take(3).collect();
    send_lines(&harness, &lines);
    harness.ok(&["run", "--drain"]);

    let purged = harness.run(&["queue", "purge", "landscape-jobs"]);
    send_lines(&harness, &lines);
    let without_ledger = harness.ok(&["run", "--drain"]);
    let purged_ledger = harness.ok(&["queue", "purge", "landscape-jobs", "--ledger"]);
    send_lines(&harness, &lines);
    let with_ledger = harness.ok(&["run", "--drain"]);
    let wrong_queue = harness.run(&["queue", "purge", "weather-ready", "--ledger"]);

    assert!(String::from_utf8_lossy(&purged.stderr).contains("--ledger"));
    assert_eq!(summary_value(&without_ledger, "jobs"), 0);
    assert_eq!(summary_value(&without_ledger, "duplicate jobs"), 3);
    assert_eq!(
        purged_ledger,
        "deleted 0 messages from landscape-jobs and 3 job ids from the job ledger\n"
    );
    assert_eq!(summary_value(&with_ledger, "jobs"), 3);
    assert_eq!(harness.count("landscape-jobs"), 3);
    assert_eq!(wrong_queue.status.code(), Some(2));
}

#[test]
fn replay_lists_valid_codes() {
    let harness = Harness::new();
    harness.ok(&["kv", "put", "other", "x"]);

    let output = harness.run(&["dlq", "replay", "--code", "nonsense"]);

    let message = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2));
    for code in landscape_core::DeadLetterCode::ALL {
        assert!(message.contains(code.as_str()), "{message}");
    }
}

#[test]
fn counts_of_one_are_singular() {
    let harness = Harness::new();
    let lines = harness.dir.path().join("one.jsonl");
    std::fs::write(&lines, "not json\n").expect("write lines");
    let bulk = harness.dir.path().join("bulk.json");
    std::fs::write(&bulk, r#"[{"key": "other", "value": "x"}]"#).expect("write bulk file");

    let sent = harness.ok(&["send", "weather-ready", path_str(&lines)]);
    let wrote = harness.ok(&["kv", "bulk", "put", path_str(&bulk)]);
    harness.ok(&["run", "--drain"]);
    let replayed = harness.ok(&["dlq", "replay"]);
    let purged = harness.ok(&["queue", "purge", "weather-ready"]);
    let planned = harness.run(&["plan", path_str(&lines)]);

    assert!(sent.starts_with("enqueued 1 message on "), "{sent}");
    assert!(wrote.starts_with("wrote 1 KV entry from "), "{wrote}");
    assert!(
        replayed.starts_with("replayed 1 message from "),
        "{replayed}"
    );
    assert_eq!(purged, "deleted 1 message from weather-ready\n");
    let message = String::from_utf8_lossy(&planned.stderr);
    assert!(message.contains("1 line of "), "{message}");
}

#[test]
fn run_logs_each_batch_and_both_rates() {
    let harness = Harness::new();
    let valid = r#"{"zip_code": "78729", "lat": 30.4515, "lon": -97.7676, "fetched_at": "2025-11-20T12:00:00Z"}"#;
    send_lines(&harness, &[valid, "not json"]);
    send_lines(&harness, &[valid]);

    let output = harness
        .command(&["run", "--drain", "--max-batch-size", "2"])
        .env("RUST_LOG", "info")
        .output()
        .expect("run");
    let summary = String::from_utf8(output.stdout).expect("UTF-8 output");
    let logs = String::from_utf8(output.stderr).expect("UTF-8 logs");
    let batch_lines: Vec<&str> = logs
        .lines()
        .filter(|line| line.contains("batch settled"))
        .collect();

    assert!(output.status.success(), "{logs}");
    assert_eq!(summary_value(&summary, "messages"), 3);
    assert_eq!(summary_value(&summary, "events"), 2);
    assert!(summary.contains("\nmessages/s "), "{summary}");
    assert!(summary.contains("\nevents/s "), "{summary}");
    assert_eq!(batch_lines.len(), 2, "{logs}");
    assert!(batch_lines[0].contains(" WARN "), "{logs}");
    assert!(
        batch_lines[0].contains(r#"dead_letters={"invalid_body":1}"#),
        "{logs}"
    );
    assert!(batch_lines[1].contains(" INFO "), "{logs}");
    assert!(!batch_lines[1].contains("dead_letters="), "{logs}");
    assert!(!batch_lines[1].contains("warnings="), "{logs}");
}

#[test]
fn formats_remove_writes_only_changes() {
    let harness = Harness::new();
    harness.ok(&["formats", "set", "78729", "bw"]);

    let no_entry = harness.run(&["formats", "remove", "99999", "bw"]);
    let absent = harness.run(&["formats", "remove", "78729", "bwi"]);
    let partly = harness.run(&["formats", "remove", "78729", "bw", "eink"]);
    let keys = harness.ok(&["kv", "list"]);
    let stored = harness.ok(&["kv", "get", "formats:78729"]);

    let message = String::from_utf8_lossy(&no_entry.stderr);
    assert_eq!(no_entry.status.code(), Some(0));
    assert!(message.contains("99999 has no formats entry"), "{message}");
    assert!(message.contains("nothing written"), "{message}");
    let message = String::from_utf8_lossy(&absent.stderr);
    assert_eq!(absent.status.code(), Some(0));
    assert!(
        message.contains("bwi is not among the formats of location 78729; nothing written"),
        "{message}"
    );
    assert_eq!(String::from_utf8_lossy(&absent.stdout), "rgb_light\nbw\n");
    let message = String::from_utf8_lossy(&partly.stderr);
    assert_eq!(partly.status.code(), Some(0));
    assert!(message.contains("eink is not among"), "{message}");
    assert!(!message.contains("nothing written"), "{message}");
    assert_eq!(keys, "formats:78729\n");
    assert_eq!(stored.trim(), r#"["rgb_light"]"#);
}
