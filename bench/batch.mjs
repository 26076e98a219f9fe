// Measures 1 and 2: binding calls per consumer batch, time to the first
// handled batch after start, and warm batch time, for each Worker in Miniflare.
//
// Each Worker runs in its own Miniflare instance behind the counting wrapper
// of lib/harness-worker.mjs, so every Worker starts cold and receives the same
// events in the same order. Every batch uses locations not seen before in that
// instance, so no KV value is served from a per-isolate cache, and every KV
// value lists five formats. The warm batch time is the `queue` handler's time
// by workerd's clock, which ticks in whole milliseconds. The round trip adds
// the fetch from Node into the wrapper and back.
// Results go to bench/results/NAME.json, by default batch.json.
// Usage: node bench/batch.mjs [--rounds N] [--warm N] [--results NAME]
import { Miniflare } from "miniflare";
import { parseArgs } from "node:util";
import {
  FIVE_FORMATS,
  fixed,
  loadEvents,
  median,
  prepareWorkers,
  printTable,
  sharedMiniflareOptions,
  ratio,
  saveResults,
  workerOptions,
  writeHarness,
} from "./lib/common.mjs";

const COUNT_BATCH_EVENTS = 10;
const TIMED_BATCH_EVENTS = 100;
const WARMUP_BATCHES = 3;
const FORMATS_PER_EVENT = 5;
// Bound on the warm batches of one Worker in one round, in milliseconds.
const WARM_TIME_LIMIT_MS = 60_000;

const { values: args } = parseArgs({
  options: {
    rounds: { type: "string", default: "3" },
    warm: { type: "string", default: "20" },
    results: { type: "string", default: "batch" },
  },
});
const rounds = Math.min(Math.max(Number(args.rounds), 1), 10);
const warmBatches = Math.min(Math.max(Number(args.warm), 1), 100);

// Splits the events into disjoint batches: first, count, count again, warm-up, warm.
function planBatches(events) {
  let next = 0;
  const take = (count) => {
    const slice = events.slice(next, next + count);
    next += count;
    return slice;
  };
  const first = take(TIMED_BATCH_EVENTS);
  const count = take(COUNT_BATCH_EVENTS);
  const warm = Array.from({ length: WARMUP_BATCHES + warmBatches }, () => take(TIMED_BATCH_EVENTS));
  if (warm.at(-1).length < TIMED_BATCH_EVENTS) {
    throw new Error(`not enough events for ${warmBatches} warm batches`);
  }
  return { first, count, warm, all: events.slice(0, next) };
}

async function runBatch(mf, events) {
  const started = performance.now();
  const response = await mf.dispatchFetch("http://127.0.0.1/batch", {
    method: "POST",
    body: JSON.stringify({ events, attempts: 1 }),
  });
  const result = await response.json();
  const roundTripMs = performance.now() - started;
  const expectedJobs = events.length * FORMATS_PER_EVENT;
  const acked = result.outcomes.filter((outcome) => outcome === "ack").length;
  const jobs = result.messagesSent.LANDSCAPE_JOBS ?? 0;
  if (result.error !== null || acked !== events.length || jobs !== expectedJobs) {
    throw new Error(
      `batch of ${events.length} events: ${acked} acked, ${jobs} jobs sent (expected ${expectedJobs}), error: ${result.error}`,
    );
  }
  const calls = Object.values(result.calls).reduce((sum, count) => sum + count, 0);
  return { ...result, roundTripMs, totalCalls: calls, jobs };
}

// Stores five formats for every location, 100 puts at a time: a few thousand
// puts in flight at once reset Miniflare's proxy connection (ECONNRESET).
async function seedKv(mf, events) {
  const kv = await mf.getKVNamespace("CONFIG");
  for (let start = 0; start < events.length; start += 100) {
    const chunk = events.slice(start, start + 100);
    await Promise.all(chunk.map((event) => kv.put(`formats:${event.zip_code}`, FIVE_FORMATS)));
  }
}

// One cold start of one Worker: start, first batch, counted batches, warm batches.
async function runWorker(worker, batches) {
  const sink = { bytes: 0, tail: "" };
  const started = performance.now();
  const mf = new Miniflare({
    ...workerOptions(worker, { scriptName: writeHarness(worker) }),
    ...sharedMiniflareOptions(sink),
  });
  try {
    await mf.ready;
    const readyMs = performance.now() - started;
    await seedKv(mf, batches.all);

    const first = await runBatch(mf, batches.first);
    const counted = await runBatch(mf, batches.count);
    const repeated = await runBatch(mf, batches.count);

    const warm = [];
    const warmRoundTrips = [];
    const warmStarted = performance.now();
    for (const [index, events] of batches.warm.entries()) {
      const result = await runBatch(mf, events);
      if (index >= WARMUP_BATCHES) {
        warm.push(result.elapsedMs);
        warmRoundTrips.push(result.roundTripMs);
      }
      if (performance.now() - warmStarted > WARM_TIME_LIMIT_MS) {
        console.error(`note: ${worker.name} stopped after ${warm.length} warm batches (time limit)`);
        break;
      }
    }

    return {
      readyMs,
      firstBatchMs: first.roundTripMs,
      firstHandledMs: readyMs + first.roundTripMs,
      firstCalls: first.calls,
      countCalls: counted.calls,
      countTotal: counted.totalCalls,
      repeatCalls: repeated.calls,
      repeatTotal: repeated.totalCalls,
      warmMs: median(warm),
      warmRoundTripMs: median(warmRoundTrips),
      warmSamples: warm.length,
    };
  } catch (error) {
    const cause = error.cause ? ` (${error.cause.message ?? error.cause})` : "";
    throw new Error(`${worker.name}: ${error.message}${cause}\nworkerd output:\n${sink.tail}`);
  } finally {
    await mf.dispose();
  }
}

function summarize(worker, runs) {
  return {
    worker: worker.name,
    rounds: runs.length,
    count_calls: runs[0].countCalls,
    count_total: runs[0].countTotal,
    repeat_total: runs[0].repeatTotal,
    first_batch_calls: runs[0].firstCalls,
    ready_ms: median(runs.map((run) => run.readyMs)),
    first_batch_ms: median(runs.map((run) => run.firstBatchMs)),
    first_handled_ms: median(runs.map((run) => run.firstHandledMs)),
    warm_batch_ms: median(runs.map((run) => run.warmMs)),
    warm_round_trip_ms: median(runs.map((run) => run.warmRoundTripMs)),
    warm_samples_per_round: runs.map((run) => run.warmSamples),
  };
}

function callText(calls) {
  return Object.entries(calls)
    .map(([name, count]) => `${name} x${count}`)
    .join(", ");
}

function printCalls(summaries) {
  const rows = summaries.map((s) => [s.worker, s.count_total, callText(s.count_calls), s.repeat_total]);
  printTable(
    `Measure 1: binding calls per consumer batch of ${COUNT_BATCH_EVENTS} events x ${FORMATS_PER_EVENT} formats (goal for ours: <= 2)`,
    ["worker", "calls", "breakdown", "same 10 events again"],
    rows,
  );
}

function printTimes(summaries) {
  const byName = Object.fromEntries(summaries.map((s) => [s.worker, s]));
  const ours = byName.ours;
  const rows = summaries.map((s) => [
    s.worker,
    fixed(s.warm_batch_ms),
    ours ? fixed(ratio(s.warm_batch_ms, ours.warm_batch_ms)) : "n/a",
    fixed(s.warm_round_trip_ms),
    fixed(s.ready_ms, 0),
    fixed(s.first_batch_ms),
    fixed(s.first_handled_ms, 0),
    ours ? fixed(ratio(s.first_handled_ms, ours.first_handled_ms)) : "n/a",
  ]);
  printTable(
    `Measure 2: ${TIMED_BATCH_EVENTS} events x ${FORMATS_PER_EVENT} formats per batch, median of ${summaries[0]?.rounds} cold starts`,
    ["worker", "warm batch ms", "x ours", "round trip ms", "start ms", "first batch ms", "first handled ms", "x ours"],
    rows,
  );
  if (ours) {
    const sameRatio = ratio(ours.warm_batch_ms, byName.same.warm_batch_ms);
    const seedRatio = ratio(byName.seed.warm_batch_ms, ours.warm_batch_ms);
    console.log(`ours / same-algorithm JS, warm batch: ${fixed(sameRatio)}x (goal <= 1.2): ${sameRatio <= 1.2 ? "met" : "NOT met"}`);
    console.log(`seed JS / ours, warm batch: ${fixed(seedRatio)}x (goal >= 5): ${seedRatio >= 5 ? "met" : "NOT met"}`);
  }
}

async function main() {
  const workers = prepareWorkers();
  const batches = planBatches(loadEvents());
  const runs = new Map(workers.map((worker) => [worker.name, []]));

  for (let round = 0; round < rounds; round += 1) {
    for (const worker of workers) {
      runs.get(worker.name).push(await runWorker(worker, batches));
    }
  }

  const summaries = workers.map((worker) => summarize(worker, runs.get(worker.name)));
  printCalls(summaries);
  printTimes(summaries);
  saveResults(args.results, {
    command: `node bench/batch.mjs --rounds ${rounds} --warm ${warmBatches}`,
    events_per_count_batch: COUNT_BATCH_EVENTS,
    events_per_timed_batch: TIMED_BATCH_EVENTS,
    formats_per_event: FORMATS_PER_EVENT,
    workers: summaries,
  });
}

await main();
