// The Worker and the native binary must produce the same jobs for the same
// events and KV values, in every field but `enqueued_at` (the clock).
//
// The native binary is LANDSCAPE_DISPATCHER_BIN if set. Otherwise it is the
// newer of the release and debug builds in CARGO_TARGET_DIR (by default
// target/). The test is skipped if there is none; scripts/test.sh builds the
// debug one first.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";

import { JOBS_QUEUE, REPO_ROOT, WRANGLER_TOML, pollUntil, startWorkers } from "./harness.mjs";

// The full real input beside the repository when present, otherwise the shipped sample.
const FULL_DATA_DIR = path.resolve(REPO_ROOT, "../shared/data");
const HAS_FULL_DATA = existsSync(path.join(FULL_DATA_DIR, "weather-ready-us.jsonl"));
const DATA_DIR = HAS_FULL_DATA ? FULL_DATA_DIR : path.join(REPO_ROOT, "data");
const EVENTS_FILE = path.join(DATA_DIR, HAS_FULL_DATA ? "weather-ready-us.jsonl" : "weather-ready-sample.jsonl");
const KV_FILE = path.join(DATA_DIR, "formats-kv.json");
const EVENT_COUNT = 300;

function findNativeBinary() {
  if (process.env.LANDSCAPE_DISPATCHER_BIN) {
    return process.env.LANDSCAPE_DISPATCHER_BIN;
  }

  const targetDir = process.env.CARGO_TARGET_DIR ?? path.join(REPO_ROOT, "target");
  const builds = ["release", "debug"]
    .map((profile) => path.join(targetDir, profile, "landscape-dispatcher"))
    .filter((candidate) => existsSync(candidate));
  builds.sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  return builds[0];
}

const nativeBinary = findNativeBinary();
const skipReason = !nativeBinary
  ? "native binary landscape-dispatcher not found: build it with `cargo build -p landscape-dispatcher` or set LANDSCAPE_DISPATCHER_BIN"
  : !existsSync(EVENTS_FILE) || !existsSync(KV_FILE)
    ? `input data not found in ${DATA_DIR}`
    : false;

let workers;
let workDir;

before(async () => {
  if (skipReason) {
    return;
  }
  workers = await startWorkers();
  workDir = mkdtempSync(path.join(os.tmpdir(), "landscape-parity-"));
});

after(async () => {
  await workers?.dispose();
  if (workDir) {
    rmSync(workDir, { recursive: true, force: true });
  }
});

/** Returns the first events of the data set, with a few edge cases added. */
function parityEvents() {
  const lines = readFileSync(EVENTS_FILE, "utf8").split("\n").filter((line) => line.trim() !== "");
  const events = lines.slice(0, EVENT_COUNT).map((line) => JSON.parse(line));
  const [first] = events;

  return [
    ...events,
    // A later copy of the same event, and one with a fetched_at in another offset.
    { ...first },
    { ...events[1], fetched_at: "2025-11-20T07:07:13.104729-05:00" },
    { ...events[2], traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" },
  ];
}

/** Returns the KV entries of the data set for the given locations, plus edge cases. */
function parityKvEntries(events) {
  const keys = new Set(events.map((event) => `formats:${event.zip_code}`));
  const entries = JSON.parse(readFileSync(KV_FILE, "utf8")).filter((entry) => keys.has(entry.key));
  const [a, b, c] = events.slice(3, 6).map((event) => `formats:${event.zip_code}`);

  return [
    ...entries.filter((entry) => ![a, b, c].includes(entry.key)),
    { key: a, value: JSON.stringify(["bw", "rgb_light", "bw"]) },
    { key: b, value: JSON.stringify(["rgb_light", "sepia", "eink"]) },
    { key: c, value: "[]" },
  ];
}

function withoutClock(job) {
  const { enqueued_at: _ignored, ...rest } = job;
  return rest;
}

function nativeJobs(events, entries) {
  const db = path.join(workDir, "parity.db");
  const kvFile = path.join(workDir, "kv.json");
  const eventsFile = path.join(workDir, "events.jsonl");
  writeFileSync(kvFile, JSON.stringify(entries));
  writeFileSync(eventsFile, events.map((event) => JSON.stringify(event)).join("\n") + "\n");

  const common = ["--db", db, "--config", WRANGLER_TOML];
  execFileSync(nativeBinary, [...common, "kv", "bulk", "put", kvFile], { stdio: ["ignore", "ignore", "inherit"] });
  const output = execFileSync(nativeBinary, [...common, "plan", eventsFile], { encoding: "utf8" });
  return output
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => JSON.parse(line));
}

async function workerJobs(events, entries, expectedCount) {
  for (const entry of entries) {
    await workers.config.put(entry.key, entry.value);
  }
  await workers.sendEvents(events);

  const records = await pollUntil(
    () => workers.records(),
    (records) => records[JOBS_QUEUE].length >= expectedCount,
    { timeoutMs: 60_000, describe: (records) => `${records[JOBS_QUEUE].length} of ${expectedCount} jobs` },
  );
  return records[JOBS_QUEUE].map((record) => record.body);
}

test("worker and native jobs match", { skip: skipReason }, async () => {
  const events = parityEvents();
  const entries = parityKvEntries(events);

  const native = nativeJobs(events, entries);
  const worker = await workerJobs(events, entries, native.length);

  assert.ok(native.length > events.length, `native planned ${native.length} jobs`);
  // Copies of one event in different batches are sent again by both, so
  // the jobs are compared as sorted lists, copies included.
  const comparable = (jobs) => jobs.map((job) => JSON.stringify(withoutClock(job))).sort();
  assert.deepEqual(comparable(worker), comparable(native));
});
