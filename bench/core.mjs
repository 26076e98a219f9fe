// Measure 5: events per second through our core versus the Python function of
// the seed algorithm, on the same real events, in consumer batches of 10.
//
// Two KV sets: the real `formats:` entries (most locations have none, so they
// get the default format only) and every location with all five formats.
// Usage: node bench/core.mjs [--repeats N]
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { BENCH_DIR, EVENTS_PATH, KV_PATH, REPO_DIR, fixed, median, printTable, ratio, saveResults } from "./lib/common.mjs";

const TARGET_DIR = process.env.CARGO_TARGET_DIR ?? join(REPO_DIR, "target");
const GOAL_RATIO = 20;
const ROUNDS = 3;

const { values: args } = parseArgs({ options: { repeats: { type: "string", default: "5" } } });
const repeats = String(Math.min(Math.max(Number(args.repeats), 1), 20));

function buildRustBench() {
  execFileSync("cargo", ["build", "--release", "--quiet", "--manifest-path", join(BENCH_DIR, "core", "Cargo.toml")], {
    env: { ...process.env, CARGO_TARGET_DIR: TARGET_DIR },
    stdio: ["ignore", "inherit", "inherit"],
  });
  return join(TARGET_DIR, "release", "landscape-bench-core");
}

function runJson(command, args) {
  const output = execFileSync(command, args, { encoding: "utf8", timeout: 300_000 });
  return JSON.parse(output.trim().split("\n").at(-1));
}

// Runs both sides in alternation, so that load from other work on the machine
// hits both alike, and keeps the best pass and the median of the rounds' medians.
function compare(rustBinary, fiveFormats) {
  const extra = fiveFormats ? ["--five-formats"] : [];
  const common = [EVENTS_PATH, KV_PATH, ...extra, "--repeats", repeats];
  const rounds = { ours: [], seed: [] };
  for (let round = 0; round < ROUNDS; round += 1) {
    rounds.ours.push(runJson(rustBinary, common));
    rounds.seed.push(runJson("python3", [join(BENCH_DIR, "core", "seed_dispatch.py"), ...common]));
  }

  const [ours, seed] = [combine(rounds.ours), combine(rounds.seed)];
  if (ours.jobs !== seed.jobs || ours.acked !== seed.acked) {
    console.error(`note: jobs differ: ours ${ours.jobs} jobs, ${ours.acked} acked; seed ${seed.jobs} jobs, ${seed.acked} acked`);
  }
  return {
    kv: fiveFormats ? "five formats everywhere" : "real KV",
    ours,
    seed,
    ratio_median: ratio(ours.events_per_sec_median, seed.events_per_sec_median),
    ratio_best: ratio(ours.events_per_sec_best, seed.events_per_sec_best),
  };
}

function combine(results) {
  return {
    ...results[0],
    rounds: results.length,
    events_per_sec_best: Math.max(...results.map((result) => result.events_per_sec_best)),
    events_per_sec_median: median(results.map((result) => result.events_per_sec_median)),
    per_round: results,
  };
}

function main() {
  const rustBinary = buildRustBench();
  const runs = [compare(rustBinary, false), compare(rustBinary, true)];

  const rows = runs.map((run) => [
    run.kv,
    run.ours.jobs,
    fixed(run.ours.events_per_sec_median, 0),
    fixed(run.seed.events_per_sec_median, 0),
    fixed(run.ratio_median, 1),
    fixed(run.ratio_best, 1),
    run.ratio_median >= GOAL_RATIO ? "met" : "NOT met",
  ]);
  printTable(
    `Measure 5: core events/s over ${runs[0].ours.events} events, batches of 10, ${ROUNDS} alternating rounds of ${repeats} passes (goal >= ${GOAL_RATIO}x)`,
    ["KV", "jobs", "ours ev/s", "seed Python ev/s", "x (median)", "x (best)", "goal"],
    rows,
  );
  saveResults("core", { command: `node bench/core.mjs --repeats ${repeats}`, goal_ratio: GOAL_RATIO, runs });
}

main();
