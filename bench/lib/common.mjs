// Shared pieces of the side-by-side benchmarks: paths, input data, the
// Workers under test, Miniflare options, statistics and result files.
import { Log, LogLevel } from "miniflare";
import { execFileSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const BENCH_DIR = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const REPO_DIR = resolve(BENCH_DIR, "..");
export const OUT_DIR = join(BENCH_DIR, ".out");
export const RESULTS_DIR = join(BENCH_DIR, "results");
export const DATA_DIR = resolve(process.env.LANDSCAPE_DATA_DIR ?? join(REPO_DIR, "..", "shared", "data"));
export const EVENTS_PATH = join(DATA_DIR, "weather-ready-us.jsonl");
export const KV_PATH = join(DATA_DIR, "formats-kv.json");
// The Rust Worker's build output: worker/shim.mjs, index.js and index_bg.wasm.
export const OUR_WORKER_DIR = resolve(process.env.LANDSCAPE_WORKER_BUILD ?? join(REPO_DIR, "build"));
export const OUR_WORKER_ENTRY = "worker/shim.mjs";

export const FIVE_FORMATS = JSON.stringify(["rgb_light", "bw", "bwi", "rgb_dark", "eink"]);

/** Reads the real `weather-ready` events, one parsed object per line. */
export function loadEvents() {
  const lines = readFileSync(EVENTS_PATH, "utf8").split("\n").filter((line) => line.trim() !== "");
  return lines.map((line) => JSON.parse(line));
}

/** Reads the real `formats:` KV entries as `{key, value}` objects. */
export function loadKvEntries() {
  return JSON.parse(readFileSync(KV_PATH, "utf8"));
}

/** Reads `compatibility_date` and the `[vars]` of the root wrangler.toml. */
export function readWranglerConfig() {
  const text = readFileSync(join(REPO_DIR, "wrangler.toml"), "utf8");
  const date = /^compatibility_date\s*=\s*"([^"]+)"/m.exec(text);
  const vars = {};
  const varsSection = /^\[vars\]\n([\s\S]*?)(?=^\[|(?![\s\S]))/m.exec(text);
  for (const match of (varsSection?.[1] ?? "").matchAll(/^([A-Z_]+)\s*=\s*"([^"]*)"/gm)) {
    vars[match[1]] = match[2];
  }
  return { compatibilityDate: date?.[1] ?? "2025-11-01", vars };
}

/** Returns true if the Rust Worker has been built into build/. */
export function ourWorkerBuilt() {
  return existsSync(join(OUR_WORKER_DIR, OUR_WORKER_ENTRY));
}

/** Lists the files of the Rust Worker that wrangler uploads: its JS and wasm modules. */
export function ourWorkerFiles() {
  return listFiles(OUR_WORKER_DIR).filter((file) => !file.startsWith(".") && /\.(m?js|wasm)$/.test(file));
}

function bundleJsWorker(name) {
  const dir = join(OUT_DIR, "workers", name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const esbuild = join(REPO_DIR, "node_modules", ".bin", "esbuild");
  execFileSync(esbuild, [
    join(BENCH_DIR, "workers", `${name}.mjs`),
    "--bundle",
    "--minify",
    "--format=esm",
    "--platform=neutral",
    "--log-level=warning",
    `--outfile=${join(dir, "worker.mjs")}`,
  ]);
  return { name, dir, entry: "worker.mjs", files: ["worker.mjs"] };
}

function copyOurWorker() {
  const dir = join(OUT_DIR, "workers", "ours");
  rmSync(dir, { recursive: true, force: true });
  const files = ourWorkerFiles();
  for (const file of files) {
    mkdirSync(dirname(join(dir, file)), { recursive: true });
    cpSync(join(OUR_WORKER_DIR, file), join(dir, file));
  }
  return { name: "ours", dir, entry: OUR_WORKER_ENTRY, files };
}

function listFiles(dir) {
  return execFileSync("find", [".", "-type", "f"], { cwd: dir, encoding: "utf8" })
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => line.slice(2))
    .sort();
}

/**
 * Prepares the Workers under test in bench/.out/workers: the two JavaScript
 * peers bundled with esbuild, and a copy of the Rust Worker when it is built.
 */
export function prepareWorkers({ requireOurs = false } = {}) {
  const workers = [bundleJsWorker("seed"), bundleJsWorker("same")];
  if (ourWorkerBuilt()) {
    workers.push(copyOurWorker());
  } else if (requireOurs) {
    throw new Error(`the Rust Worker is not built in ${OUR_WORKER_DIR}: run \`bash scripts/build-worker.sh\``);
  } else {
    console.error(`note: ${OUR_WORKER_DIR} is missing, so the Rust Worker is left out (run \`bash scripts/build-worker.sh\`)`);
  }
  return workers;
}

/** Writes the counting wrapper next to a prepared Worker and returns its file name. */
export function writeHarness(worker) {
  const template = readFileSync(join(BENCH_DIR, "lib", "harness-worker.mjs"), "utf8");
  const source = template.replace("./TARGET_MODULE", `./${worker.entry}`);
  writeFileSync(join(worker.dir, "harness.mjs"), source);
  return "harness.mjs";
}

/** Miniflare options for one Worker with the bindings of the root wrangler.toml. */
export function workerOptions(worker, { scriptName = worker.entry, consumer = null } = {}) {
  const { compatibilityDate, vars } = readWranglerConfig();
  const options = {
    name: worker.name,
    modules: true,
    modulesRoot: worker.dir,
    scriptPath: join(worker.dir, scriptName),
    modulesRules: [
      { type: "ESModule", include: ["**/*.mjs", "**/*.js"] },
      { type: "CompiledWasm", include: ["**/*.wasm"] },
    ],
    compatibilityDate,
    bindings: vars,
    kvNamespaces: { CONFIG: "config" },
    queueProducers: { LANDSCAPE_JOBS: "landscape-jobs", DEAD_LETTERS: "weather-ready-dlq" },
  };
  if (consumer !== null) {
    options.queueConsumers = { "weather-ready": consumer };
  }
  return options;
}

/**
 * Options every Miniflare instance of the bench shares. workerd listens on the
 * loopback address only, and `cf: false` keeps Miniflare from downloading a
 * `Request.cf` object from the internet at start. workerd's output is collected
 * in `sink` so that log lines do not flood the tables.
 */
export function sharedMiniflareOptions(sink) {
  return {
    host: "127.0.0.1",
    cf: false,
    log: new Log(LogLevel.WARN),
    handleRuntimeStdio: quietRuntime(sink),
  };
}

function quietRuntime(sink) {
  return (stdout, stderr) => {
    for (const stream of [stdout, stderr]) {
      stream.on("data", (chunk) => {
        sink.bytes += chunk.length;
        sink.tail = (sink.tail + chunk.toString()).slice(-4000);
      });
    }
  };
}

export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** Describes this machine for the records: CPU model, cores and memory. */
export function machine() {
  let model = cpus()[0]?.model ?? "unknown";
  try {
    const lscpu = execFileSync("lscpu", { encoding: "utf8" });
    model = /^Model name:\s*(.+)$/m.exec(lscpu)?.[1]?.trim() ?? model;
  } catch {
    // NOTE: without lscpu the model comes from Node's os.cpus().
  }
  return {
    cpu: model,
    cores: cpus().length,
    memory_gib: Math.round(totalmem() / 2 ** 30),
    // Other work on the machine skews the numbers: the 1, 5 and 15 minute load averages.
    load_average: loadavg().map((load) => Number(load.toFixed(2))),
    node: process.version,
  };
}

/** Stores one measure's results in bench/results/NAME.json. */
export function saveResults(name, results) {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const record = { measure: name, recorded_at: new Date().toISOString(), machine: machine(), ...results };
  writeFileSync(join(RESULTS_DIR, `${name}.json`), `${JSON.stringify(record, null, 2)}\n`);
}

/** Prints rows as an aligned text table with a title line. */
export function printTable(title, header, rows) {
  const table = [header, ...rows].map((row) => row.map((cell) => String(cell)));
  const widths = header.map((_, column) => Math.max(...table.map((row) => row[column].length)));
  const line = (row) => row.map((cell, column) => cell.padEnd(widths[column])).join("  ").trimEnd();
  console.log(`\n${title}`);
  console.log(line(table[0]));
  console.log(widths.map((width) => "-".repeat(width)).join("  "));
  table.slice(1).forEach((row) => console.log(line(row)));
}

export function ratio(numerator, denominator) {
  return denominator > 0 ? numerator / denominator : Number.NaN;
}

export function fixed(value, digits = 2) {
  return Number.isFinite(value) ? value.toFixed(digits) : "n/a";
}
