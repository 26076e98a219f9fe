// Measure 3: the size of each Worker as uploaded, raw and gzipped (level 9,
// as scripts/build-worker.sh measures it).
//
// The JavaScript peers are bundled with esbuild twice: plain, as `wrangler
// deploy` bundles by default, and minified. The Rust Worker is the files in
// build/: the JS modules (bundled by worker-build) and the wasm.
// Usage: node bench/size.mjs
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import {
  BENCH_DIR,
  OUR_WORKER_DIR,
  OUT_DIR,
  REPO_DIR,
  ourWorkerBuilt,
  ourWorkerFiles,
  printTable,
  saveResults,
} from "./lib/common.mjs";

function sizes(path) {
  const bytes = readFileSync(path);
  return { raw: bytes.length, gzip: gzipSync(bytes, { level: 9 }).length };
}

function bundle(name, minify) {
  const dir = join(OUT_DIR, "size");
  mkdirSync(dir, { recursive: true });
  const outfile = join(dir, `${name}${minify ? ".min" : ""}.mjs`);
  const esbuild = join(REPO_DIR, "node_modules", ".bin", "esbuild");
  const flags = ["--bundle", "--format=esm", "--platform=neutral", "--log-level=warning", `--outfile=${outfile}`];
  execFileSync(esbuild, [join(BENCH_DIR, "workers", `${name}.mjs`), ...flags, ...(minify ? ["--minify"] : [])]);
  return outfile;
}

function jsWorkerRows(name, label) {
  return [false, true].map((minify) => {
    const size = sizes(bundle(name, minify));
    return { worker: label, build: minify ? "esbuild --minify" : "esbuild bundle", files: "1 JS module", ...size };
  });
}

function ourWorkerRow() {
  const parts = ourWorkerFiles().map((file) => ({ file, ...sizes(join(OUR_WORKER_DIR, file)) }));
  return {
    worker: "ours (Rust, wasm)",
    build: "scripts/build-worker.sh",
    built_at: statSync(join(OUR_WORKER_DIR, "index_bg.wasm"), { throwIfNoEntry: false })?.mtime ?? null,
    // The last commit under crates/ when measured; the build may hold later, uncommitted changes.
    source_commit: execFileSync("git", ["log", "-1", "--format=%h", "--", "crates"], { cwd: REPO_DIR, encoding: "utf8" }).trim(),
    files: parts.map((part) => part.file).join(" + "),
    raw: parts.reduce((sum, part) => sum + part.raw, 0),
    gzip: parts.reduce((sum, part) => sum + part.gzip, 0),
    parts,
  };
}

function main() {
  const rows = [...jsWorkerRows("seed", "seed algorithm (JS)"), ...jsWorkerRows("same", "same algorithm (JS)")];
  if (ourWorkerBuilt()) {
    rows.push(ourWorkerRow());
  } else {
    console.error(`note: ${OUR_WORKER_DIR} is missing, so the Rust Worker is left out (run \`bash scripts/build-worker.sh\`)`);
  }

  printTable(
    "Measure 3: Worker bundle sizes, bytes (gzip level 9)",
    ["worker", "build", "files", "raw", "gzip"],
    rows.map((row) => [row.worker, row.build, row.files, row.raw, row.gzip]),
  );
  for (const part of rows.at(-1).parts ?? []) {
    console.log(`  ${part.file}: ${part.raw} raw, ${part.gzip} gzip`);
  }
  saveResults("size", { command: "node bench/size.mjs", workers: rows });
}

main();
