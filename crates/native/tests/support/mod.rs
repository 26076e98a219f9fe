//! Shared helpers: a temporary store, the built binary, the inputs and store queries.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OpenFlags};

pub const BIN: &str = env!("CARGO_BIN_EXE_landscape-dispatcher");
pub const DEFAULT_FORMAT: &str = "rgb_light";
pub const ALL_FORMATS: [&str; 5] = ["rgb_light", "bw", "bwi", "rgb_dark", "eink"];

/// Returns the repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Returns the full real input (events, KV file) beside the repository, or the shipped
/// sample if it is missing.
pub fn real_input() -> (PathBuf, PathBuf) {
    let shared = repo_root().join("../shared/data");
    let events = shared.join("weather-ready-us.jsonl");
    if events.is_file() {
        return (events, shared.join("formats-kv.json"));
    }
    eprintln!(
        "{} is missing; using the shipped sample instead",
        events.display()
    );
    sample_input()
}

/// Returns the shipped sample (events, KV file).
pub fn sample_input() -> (PathBuf, PathBuf) {
    let data = repo_root().join("data");
    (
        data.join("weather-ready-sample.jsonl"),
        data.join("formats-kv.json"),
    )
}

/// A temporary directory with a store file, and the repository's wrangler.toml.
pub struct Harness {
    pub dir: tempfile::TempDir,
    pub db: PathBuf,
    pub config: PathBuf,
}

impl Harness {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = dir.path().join("store.db");
        Self {
            dir,
            db,
            config: repo_root().join("wrangler.toml"),
        }
    }

    /// Returns a command for the binary with this store and settings.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(BIN);
        command
            .arg("--db")
            .arg(&self.db)
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .current_dir(self.dir.path())
            .env_remove("LANDSCAPE_DISPATCHER_FAIL_SENDS")
            .env("RUST_LOG", "warn");
        command
    }

    /// Runs the binary to the end and returns its output.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run the binary")
    }

    /// Runs the binary and asserts it succeeded; returns standard output.
    pub fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "{args:?} failed with {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("UTF-8 output")
    }

    /// Starts the binary in the background with output discarded.
    pub fn spawn(&self, args: &[&str]) -> Child {
        self.command(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the binary")
    }

    /// Loads the KV file and sends the events.
    pub fn load(&self, events: &Path, kv: &Path) {
        self.ok(&["kv", "bulk", "put", path_str(kv)]);
        self.ok(&["send", "weather-ready", path_str(events)]);
    }

    /// Opens the store read-only, for checks beside a running binary.
    pub fn open(&self) -> Connection {
        let connection = Connection::open_with_flags(&self.db, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open the store");
        connection
            .busy_timeout(Duration::from_secs(10))
            .expect("busy timeout");
        connection
    }

    /// Counts the messages of `queue`.
    pub fn count(&self, queue: &str) -> u64 {
        self.open()
            .query_row(
                "SELECT count(*) FROM messages WHERE queue = ?1",
                [queue],
                |row| row.get(0),
            )
            .expect("count messages")
    }

    /// Returns the bodies of `queue` in enqueue order.
    pub fn bodies(&self, queue: &str) -> Vec<String> {
        let connection = self.open();
        let mut statement = connection
            .prepare("SELECT body FROM messages WHERE queue = ?1 ORDER BY seq")
            .expect("prepare");
        statement
            .query_map([queue], |row| row.get(0))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("bodies")
    }
}

pub fn path_str(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

/// Reads the events of a JSONL file as JSON values.
pub fn read_events(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .expect("read events")
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).expect("event JSON"))
        .collect()
}

/// Reads a bulk KV file into key and value.
pub fn read_kv(path: &Path) -> HashMap<String, String> {
    let entries: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(path).expect("read KV")).expect("KV JSON");
    entries
        .into_iter()
        .map(|entry| {
            let key = entry["key"].as_str().expect("key").to_owned();
            let value = entry["value"].as_str().expect("value").to_owned();
            (key, value)
        })
        .collect()
}

/// Computes the jobs the events should produce: one for the default format, plus one per
/// other distinct known format in the location's KV entry.
pub fn expected_jobs(events: &[serde_json::Value], kv: &HashMap<String, String>) -> u64 {
    events
        .iter()
        .map(|event| {
            let zip = event["zip_code"].as_str().expect("zip_code");
            let names: Vec<String> = kv
                .get(&format!("formats:{zip}"))
                .and_then(|value| serde_json::from_str(value).ok())
                .unwrap_or_default();
            let extra: HashSet<&str> = names
                .iter()
                .map(String::as_str)
                .filter(|name| *name != DEFAULT_FORMAT && ALL_FORMATS.contains(name))
                .collect();
            1 + extra.len() as u64
        })
        .sum()
}

/// Returns the job ids of the jobs queue, parsed from the bodies.
pub fn job_ids(harness: &Harness) -> Vec<String> {
    harness
        .bodies("landscape-jobs")
        .iter()
        .map(|body| {
            let job: serde_json::Value = serde_json::from_str(body).expect("job JSON");
            job["job_id"].as_str().expect("job_id").to_owned()
        })
        .collect()
}

/// Returns the current time in Unix microseconds.
pub fn now_micros() -> i64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970");
    i64::try_from(since_epoch.as_micros()).expect("micros fit")
}

/// Polls `condition` until it is true or `timeout` passes, and returns its last value.
pub fn wait_for(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    condition()
}
