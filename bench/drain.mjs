// Measure 4: draining the real events end to end, with our native runner and
// with Miniflare's local queues running a Worker, wall time and peak memory.
//
// Both sides start with the real `formats:` KV entries already stored, and
// the clock covers enqueueing every event and consuming it until every job is
// on `landscape-jobs`. Native: `landscape-dispatcher send weather-ready` then
// `run --drain`, each under /usr/bin/time. Miniflare: the events are sent
// through a producer 100 at a time while the Worker consumes `weather-ready`
// in batches of 10 (wrangler.toml's `max_batch_size`), and a sink Worker
// counts what arrives on `landscape-jobs` and the dead-letter queue.
// Each side drains 3 times by default, in alternation; the table shows the run
// with the median wall time.
// Usage: node bench/drain.mjs [--worker ours|same|seed] [--rounds N] [--skip-native] [--skip-miniflare]
import { Miniflare } from "miniflare";
import { execFileSync } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import {
  EVENTS_PATH,
  KV_PATH,
  OUT_DIR,
  REPO_DIR,
  fixed,
  loadEvents,
  loadKvEntries,
  prepareWorkers,
  printTable,
  sharedMiniflareOptions,
  ratio,
  saveResults,
  workerOptions,
} from "./lib/common.mjs";

const TARGET_DIR = process.env.CARGO_TARGET_DIR ?? join(REPO_DIR, "target");
const SEND_BATCH_EVENTS = 100;
// Bound on one Miniflare drain, in milliseconds.
const DRAIN_TIME_LIMIT_MS = 20 * 60_000;
const GOAL_RATIO = 50;
const FORMAT_NAMES = ["rgb_light", "rgb_dark", "bw", "bwi", "eink"];
const WORKER_LABELS = { ours: "our Worker", same: "the same-algorithm JS Worker", seed: "the seed JS Worker" };

const { values: args } = parseArgs({
  options: {
    worker: { type: "string", default: "ours" },
    "skip-native": { type: "boolean", default: false },
    "skip-miniflare": { type: "boolean", default: false },
    rounds: { type: "string", default: "3" },
  },
});
const rounds = Math.min(Math.max(Number(args.rounds), 1), 10);

// Counts the jobs the events should produce: known formats once each, default first.
function expectedJobs(events, kvEntries) {
  const kv = new Map(kvEntries.map((entry) => [entry.key, entry.value]));
  let jobs = 0;
  for (const event of events) {
    const value = kv.get(`formats:${event.zip_code}`);
    const names = new Set(value === undefined ? [] : JSON.parse(value).filter((name) => FORMAT_NAMES.includes(name)));
    names.add(FORMAT_NAMES[0]);
    jobs += names.size;
  }
  return jobs;
}

// Runs a command under GNU time and returns its wall seconds (timed here, since
// GNU time rounds to 10 ms) and its peak RSS. Its log goes to bench/.out/drain/native.log.
function timed(command, commandArgs) {
  const report = join(OUT_DIR, "drain", "time.txt");
  const log = openSync(join(OUT_DIR, "drain", "native.log"), "a");
  const started = performance.now();
  try {
    execFileSync("/usr/bin/time", ["-f", "%e %M", "-o", report, command, ...commandArgs], {
      cwd: REPO_DIR,
      stdio: ["ignore", "ignore", log],
      timeout: DRAIN_TIME_LIMIT_MS,
    });
  } finally {
    closeSync(log);
  }
  const wallSecs = (performance.now() - started) / 1000;
  const maxRssKib = Number(readFileSync(report, "utf8").trim().split(/\s+/)[1]);
  return { wall_secs: wallSecs, peak_rss_mib: maxRssKib / 1024 };
}

function buildNative() {
  execFileSync("cargo", ["build", "--release", "--quiet", "-p", "landscape-dispatcher"], {
    cwd: REPO_DIR,
    env: { ...process.env, CARGO_TARGET_DIR: TARGET_DIR },
    stdio: ["ignore", "inherit", "inherit"],
  });
  return join(TARGET_DIR, "release", "landscape-dispatcher");
}

function queueStats(binary, db) {
  const output = execFileSync(binary, ["--db", db, "queue", "stats"], { cwd: REPO_DIR, encoding: "utf8" });
  return output.trim();
}

function drainNative() {
  const binary = buildNative();
  const dir = join(OUT_DIR, "drain");
  const db = join(dir, "native.db");
  mkdirSync(dir, { recursive: true });
  for (const file of [db, `${db}-wal`, `${db}-shm`, join(dir, "native.log")]) {
    rmSync(file, { force: true });
  }

  const kvPut = timed(binary, ["--db", db, "kv", "bulk", "put", KV_PATH]);
  const send = timed(binary, ["--db", db, "send", "weather-ready", EVENTS_PATH]);
  const run = timed(binary, ["--db", db, "run", "--drain"]);
  let stats = null;
  try {
    stats = queueStats(binary, db);
  } catch (error) {
    stats = `queue stats failed: ${error.message}`;
  }
  return {
    runner: "native landscape-dispatcher",
    kv_put: kvPut,
    send,
    run,
    wall_secs: send.wall_secs + run.wall_secs,
    peak_rss_mib: Math.max(send.peak_rss_mib, run.peak_rss_mib),
    stats,
  };
}

// Source of the sink Worker: reports every batch it receives to Node, then acks it.
const SINK_SOURCE = `
export default {
  async queue(batch, env) {
    await env.REPORT.fetch("http://report/", {
      method: "POST",
      body: JSON.stringify({ queue: batch.queue, count: batch.messages.length }),
    });
    batch.ackAll();
  },
};
`;

function childPids(pid) {
  const tasks = join("/proc", String(pid), "task");
  if (!existsSync(tasks)) {
    return [];
  }
  return readdirSync(tasks)
    .flatMap((task) => readFileSync(join(tasks, task, "children"), "utf8").split(/\s+/))
    .filter((child) => child !== "")
    .map(Number);
}

// Returns the peak RSS in MiB of every workerd process under this one.
function workerdPeakMib() {
  let total = 0;
  const pending = childPids(process.pid);
  while (pending.length > 0) {
    const pid = pending.pop();
    try {
      const status = readFileSync(`/proc/${pid}/status`, "utf8");
      if (/^Name:\s*workerd/m.test(status)) {
        total += Number(/^VmHWM:\s*(\d+) kB/m.exec(status)?.[1] ?? 0) / 1024;
      }
      pending.push(...childPids(pid));
    } catch {
      // The process exited between listing and reading.
    }
  }
  return total;
}

async function waitFor(condition, deadline) {
  while (!condition()) {
    if (performance.now() > deadline) {
      return false;
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return true;
}

async function storeKv(mf, entries) {
  const kv = await mf.getKVNamespace("CONFIG");
  for (let start = 0; start < entries.length; start += 100) {
    await Promise.all(entries.slice(start, start + 100).map((entry) => kv.put(entry.key, entry.value)));
  }
}

function miniflareOptions(worker, counts, sink) {
  // wrangler.toml's consumer, but with no batch timeout, so that partial batches go
  // out at once, as they do in the native `run --drain`.
  const consumer = { maxBatchSize: 10, maxBatchTimeout: 0, maxRetries: 3, retryDelay: 10, deadLetterQueue: "weather-ready-dlq" };
  const sinkWorker = {
    name: "sink",
    modules: true,
    script: SINK_SOURCE,
    compatibilityDate: "2025-11-01",
    queueProducers: { WEATHER_READY: "weather-ready" },
    queueConsumers: {
      "landscape-jobs": { maxBatchSize: 100, maxBatchTimeout: 0 },
      "weather-ready-dlq": { maxBatchSize: 100, maxBatchTimeout: 0 },
    },
    serviceBindings: {
      async REPORT(request) {
        const { queue, count } = await request.json();
        counts[queue] = (counts[queue] ?? 0) + count;
        counts.lastAt = performance.now();
        return new Response("ok");
      },
    },
  };
  return {
    workers: [workerOptions(worker, { consumer }), sinkWorker],
    ...sharedMiniflareOptions(sink),
  };
}

async function drainMiniflare(worker, events, kvEntries, jobsExpected) {
  const counts = {};
  const sink = { bytes: 0, tail: "" };
  const nodeBeforeMib = process.memoryUsage().rss / 2 ** 20;
  const mf = new Miniflare(miniflareOptions(worker, counts, sink));
  try {
    await mf.ready;
    await storeKv(mf, kvEntries);
    const producer = await mf.getQueueProducer("WEATHER_READY", "sink");

    const started = performance.now();
    const deadline = started + DRAIN_TIME_LIMIT_MS;
    for (let start = 0; start < events.length && performance.now() < deadline; start += SEND_BATCH_EVENTS) {
      await producer.sendBatch(events.slice(start, start + SEND_BATCH_EVENTS).map((body) => ({ body })));
    }
    const sentSecs = (performance.now() - started) / 1000;
    const finished = await waitFor(() => (counts["landscape-jobs"] ?? 0) >= jobsExpected, deadline);
    const wallSecs = ((finished ? counts.lastAt : performance.now()) - started) / 1000;

    const workerdMib = workerdPeakMib();
    const nodeMib = process.resourceUsage().maxRSS / 1024;
    return {
      runner: `Miniflare with ${WORKER_LABELS[worker.name]}`,
      finished,
      send_secs: sentSecs,
      wall_secs: wallSecs,
      jobs: counts["landscape-jobs"] ?? 0,
      dead_letters: counts["weather-ready-dlq"] ?? 0,
      workerd_peak_rss_mib: workerdMib,
      node_peak_rss_mib: nodeMib,
      // The bench's own share of the Node process: its RSS before Miniflare started.
      node_rss_before_start_mib: nodeBeforeMib,
      // Miniflare's share: workerd plus what Node grew by once Miniflare ran.
      peak_rss_mib: workerdMib + Math.max(nodeMib - nodeBeforeMib, 0),
      peak_rss_with_bench_mib: workerdMib + nodeMib,
      runtime_output_bytes: sink.bytes,
    };
  } finally {
    await mf.dispose();
  }
}

function printResults(native, miniflare, jobsExpected, events) {
  const rows = [];
  if (native !== null) {
    rows.push([native.runner, fixed(native.wall_secs, 2), fixed(native.peak_rss_mib, 1), "1.00", "1.00"]);
  }
  if (miniflare !== null) {
    rows.push([
      `${miniflare.runner}${miniflare.finished ? "" : " (timed out)"}`,
      fixed(miniflare.wall_secs, 2),
      fixed(miniflare.peak_rss_mib, 1),
      native ? fixed(ratio(miniflare.wall_secs, native.wall_secs), 1) : "n/a",
      native ? fixed(ratio(miniflare.peak_rss_mib, native.peak_rss_mib), 1) : "n/a",
    ]);
  }
  printTable(
    `Measure 4: drain of ${events} events into ${jobsExpected} jobs, enqueue to last job, median of ${rounds} runs (goal: Miniflare / native >= ${GOAL_RATIO}x)`,
    ["runner", "wall s", "peak RSS MiB", "x wall", "x memory"],
    rows,
  );
  if (native !== null) {
    console.log(`native steps: send ${fixed(native.send.wall_secs)} s, run --drain ${fixed(native.run.wall_secs)} s; queue stats:\n${native.stats}`);
  }
  if (miniflare !== null) {
    console.log(
      `Miniflare: events sent in ${fixed(miniflare.send_secs)} s, ${miniflare.jobs} jobs and ${miniflare.dead_letters} dead letters seen; ` +
        `peak RSS workerd ${fixed(miniflare.workerd_peak_rss_mib, 1)} MiB + Node ${fixed(miniflare.node_peak_rss_mib, 1)} MiB, ` +
        `of which ${fixed(miniflare.node_rss_before_start_mib, 1)} MiB before Miniflare started (left out of the table)`,
    );
  }
}

// Keeps the run with the median wall time, and every run's wall time.
function medianRun(runs) {
  const sorted = [...runs].sort((a, b) => a.wall_secs - b.wall_secs);
  return { ...sorted[Math.floor(sorted.length / 2)], wall_secs_per_round: runs.map((run) => run.wall_secs) };
}

async function main() {
  const events = loadEvents();
  const kvEntries = loadKvEntries();
  const jobsExpected = expectedJobs(events, kvEntries);
  mkdirSync(join(OUT_DIR, "drain"), { recursive: true });
  const worker = args["skip-miniflare"]
    ? null
    : prepareWorkers({ requireOurs: args.worker === "ours" }).find((candidate) => candidate.name === args.worker);
  if (worker === undefined) {
    throw new Error(`unknown worker ${JSON.stringify(args.worker)}: expected ours, same or seed`);
  }

  const nativeRuns = [];
  const miniflareRuns = [];
  for (let round = 0; round < rounds; round += 1) {
    if (!args["skip-native"]) {
      nativeRuns.push(drainNative());
    }
    if (worker !== null) {
      miniflareRuns.push(await drainMiniflare(worker, events, kvEntries, jobsExpected));
    }
  }
  const native = nativeRuns.length > 0 ? medianRun(nativeRuns) : null;
  let miniflare = null;
  if (miniflareRuns.length > 0) {
    // NOTE: Node's peak RSS only grows over the process's life, so memory comes from the first round.
    const first = miniflareRuns[0];
    miniflare = {
      ...medianRun(miniflareRuns),
      workerd_peak_rss_mib: first.workerd_peak_rss_mib,
      node_peak_rss_mib: first.node_peak_rss_mib,
      node_rss_before_start_mib: first.node_rss_before_start_mib,
      peak_rss_mib: first.peak_rss_mib,
      peak_rss_with_bench_mib: first.peak_rss_with_bench_mib,
    };
  }

  printResults(native, miniflare, jobsExpected, events.length);
  const argv = process.argv.slice(2).join(" ");
  // A run of our Worker that skips a side is stored apart from the full run the record uses.
  const partial = args.worker === "ours" && (args["skip-native"] || args["skip-miniflare"]);
  saveResults(`drain-${args.worker}${partial ? "-partial" : ""}`, {
    command: `node bench/drain.mjs${argv ? ` ${argv}` : ""}`,
    rounds,
    events: events.length,
    jobs_expected: jobsExpected,
    goal_ratio: GOAL_RATIO,
    native,
    miniflare,
  });
}

await main();
