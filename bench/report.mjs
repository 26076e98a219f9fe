// Prints the stored results of bench/results as Markdown tables, the form
// docs/BENCHMARKS.md records them in. Usage: node bench/report.mjs
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { RESULTS_DIR, fixed, ratio } from "./lib/common.mjs";

function load(name) {
  const path = join(RESULTS_DIR, `${name}.json`);
  return existsSync(path) ? JSON.parse(readFileSync(path, "utf8")) : null;
}

function table(header, rows) {
  const line = (cells) => `| ${cells.join(" | ")} |`;
  return [line(header), line(header.map(() => "---")), ...rows.map(line)].join("\n");
}

function recorded(result) {
  const { machine } = result;
  return `\`${result.command}\`, ${result.recorded_at.slice(0, 16).replace("T", " ")} UTC, load average ${machine.load_average?.join(" ") ?? "n/a"}`;
}

function callsText(calls) {
  return Object.entries(calls)
    .map(([name, count]) => `${count} ${name}`)
    .join(" + ");
}

function batchTables(batch) {
  const ours = batch.workers.find((worker) => worker.worker === "ours");
  const callRows = batch.workers.map((worker) => [
    worker.worker,
    worker.count_total,
    callsText(worker.count_calls),
    worker.repeat_total,
  ]);
  const timeRows = batch.workers.map((worker) => [
    worker.worker,
    fixed(worker.warm_batch_ms, 1),
    fixed(worker.warm_round_trip_ms, 1),
    ours ? `${fixed(ratio(worker.warm_batch_ms, ours.warm_batch_ms))}x` : "n/a",
    fixed(worker.ready_ms, 0),
    fixed(worker.first_batch_ms, 0),
    fixed(worker.first_handled_ms, 0),
    ours ? `${fixed(ratio(worker.first_handled_ms, ours.first_handled_ms))}x` : "n/a",
  ]);
  return [
    `Measure 1 (${recorded(batch)}):\n`,
    table(["Worker", "Calls", "Breakdown", "Same 10 events again"], callRows),
    `\nMeasure 2:\n`,
    table(
      ["Worker", "Warm batch ms", "Round trip ms", "x ours", "Start ms", "First batch ms", "First handled ms", "x ours"],
      timeRows,
    ),
  ].join("\n");
}

function sizeTable(size) {
  const rows = size.workers.map((worker) => [worker.worker, worker.build, worker.files, worker.raw, worker.gzip]);
  return `Measure 3 (${recorded(size)}):\n\n${table(["Worker", "Build", "Files", "Raw bytes", "Gzip bytes"], rows)}`;
}

function miniflareRow(miniflare, native, note = "") {
  return [
    `${miniflare.runner}${note}`,
    fixed(miniflare.wall_secs),
    `${fixed(miniflare.peak_rss_mib, 1)} (workerd ${fixed(miniflare.workerd_peak_rss_mib, 0)} + Node ${fixed(miniflare.node_peak_rss_mib, 0)} − ${fixed(miniflare.node_rss_before_start_mib, 0)} before start)`,
    native ? `${fixed(ratio(miniflare.wall_secs, native.wall_secs), 1)}x` : "n/a",
    native ? `${fixed(ratio(miniflare.peak_rss_mib, native.peak_rss_mib), 1)}x` : "n/a",
  ];
}

// The drain of our Worker, plus the JavaScript peers' drains when they were run.
function drainTable(drain) {
  const { native, miniflare } = drain;
  const rows = [];
  if (native) {
    rows.push([native.runner, fixed(native.wall_secs), fixed(native.peak_rss_mib, 1), "1x", "1x"]);
  }
  if (miniflare) {
    rows.push(miniflareRow(miniflare, native));
  }
  for (const peer of ["same", "seed"]) {
    const other = load(`drain-${peer}`);
    if (other?.miniflare) {
      rows.push(miniflareRow(other.miniflare, native, ` (\`${other.command}\`)`));
    }
  }

  const steps = native
    ? `\n\nNative steps: \`send\` ${fixed(native.send.wall_secs)} s, \`run --drain\` ${fixed(native.run.wall_secs)} s.`
    : "";
  return `Measure 4 (${recorded(drain)}):\n\n${table(["Runner", "Wall s", "Peak RSS MiB", "x wall", "x memory"], rows)}${steps}`;
}

function coreTable(core) {
  const rows = core.runs.map((run) => [
    run.kv,
    run.ours.jobs,
    fixed(run.ours.events_per_sec_median, 0),
    fixed(run.seed.events_per_sec_median, 0),
    `${fixed(run.ratio_median, 1)}x`,
    `${fixed(run.ratio_best, 1)}x`,
  ]);
  return `Measure 5 (${recorded(core)}):\n\n${table(
    ["KV", "Jobs", "Core events/s", "Seed (Python) events/s", "x (medians)", "x (best passes)"],
    rows,
  )}`;
}

function goalRow(measure, goal, value, met) {
  return [measure, goal, value, met ? "met" : "**not met**"];
}

// Compares every result that has a goal with it.
function goalsTable() {
  const rows = [];
  const batch = load("batch");
  if (batch !== null) {
    const byName = Object.fromEntries(batch.workers.map((worker) => [worker.worker, worker]));
    const { ours, same, seed } = byName;
    if (ours) {
      rows.push(goalRow("1. Binding calls per batch of 10 x 5, ours", "<= 2", String(ours.count_total), ours.count_total <= 2));
      const sameRatio = ratio(ours.warm_batch_ms, same.warm_batch_ms);
      rows.push(goalRow("2. Warm batch, ours / same-algorithm JS", "<= 1.2x", `${fixed(sameRatio)}x`, sameRatio <= 1.2));
      const seedRatio = ratio(seed.warm_batch_ms, ours.warm_batch_ms);
      rows.push(goalRow("2. Warm batch, seed JS / ours", ">= 5x", `${fixed(seedRatio)}x`, seedRatio >= 5));
    }
  }
  const drain = load("drain-ours");
  if (drain?.native && drain?.miniflare) {
    const wallRatio = ratio(drain.miniflare.wall_secs, drain.native.wall_secs);
    rows.push(goalRow("4. Drain wall time, Miniflare / native", `>= ${drain.goal_ratio}x`, `${fixed(wallRatio, 1)}x`, wallRatio >= drain.goal_ratio));
    const memoryRatio = ratio(drain.miniflare.peak_rss_mib, drain.native.peak_rss_mib);
    rows.push(goalRow("4. Drain peak memory, Miniflare / native", `>= ${drain.goal_ratio}x`, `${fixed(memoryRatio, 1)}x`, memoryRatio >= drain.goal_ratio));
  }
  const core = load("core");
  for (const run of core?.runs ?? []) {
    rows.push(goalRow(`5. Core / seed Python events/s, ${run.kv}`, `>= ${core.goal_ratio}x`, `${fixed(run.ratio_median, 1)}x`, run.ratio_median >= core.goal_ratio));
  }
  return table(["Measure", "Goal", "Measured", "Result"], rows);
}

const sections = [
  ["batch", batchTables],
  ["size", sizeTable],
  ["drain-ours", drainTable],
  ["core", coreTable],
];
const machine = load("batch")?.machine ?? load("core")?.machine;
if (machine) {
  console.log(`Machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memory_gib} GiB, Node ${machine.node}.\n`);
}
console.log(`${goalsTable()}\n`);
for (const [name, render] of sections) {
  const result = load(name);
  if (result !== null) {
    console.log(`${render(result)}\n`);
  }
}
