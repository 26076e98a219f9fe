// Checks the deployment contract in wrangler.toml, read by wrangler itself,
// and that `wrangler deploy --dry-run` accepts the repository as it is.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { describe, test } from "node:test";

import { unstable_readConfig } from "wrangler";

import { REPO_ROOT, WRANGLER_TOML } from "./harness.mjs";

const config = unstable_readConfig({ config: WRANGLER_TOML });

describe("wrangler.toml", () => {
  test("keeps the upstream worker name", () => {
    assert.equal(config.name, "job-dispatcher");
    assert.equal(path.relative(REPO_ROOT, config.main), "build/worker/shim.mjs");
  });

  test("consumes weather-ready as upstream", () => {
    assert.equal(config.queues.consumers.length, 1);
    const [consumer] = config.queues.consumers;
    assert.equal(consumer.queue, "weather-ready");
    assert.equal(consumer.max_batch_size, 10);
    assert.equal(consumer.max_batch_timeout, 30);
    assert.equal(consumer.max_retries, 3);
    assert.equal(consumer.dead_letter_queue, "weather-ready-dlq");
  });

  test("retry delay matches the Worker's base", () => {
    const [consumer] = config.queues.consumers;

    assert.equal(String(consumer.retry_delay), config.vars.RETRY_BASE_DELAY_SECS);
  });

  test("produces jobs and dead letters", () => {
    const producers = Object.fromEntries(config.queues.producers.map((producer) => [producer.binding, producer.queue]));

    assert.deepEqual(producers, { LANDSCAPE_JOBS: "landscape-jobs", DEAD_LETTERS: "weather-ready-dlq" });
  });

  test("binds the CONFIG namespace", () => {
    assert.deepEqual(
      config.kv_namespaces.map((namespace) => namespace.binding),
      ["CONFIG"],
    );
  });

  test("turns observability logs on", () => {
    assert.equal(config.observability.enabled, true);
  });

  test("builds with the build script", () => {
    assert.equal(config.build.command, "bash scripts/build-worker.sh");
  });
});

test("wrangler deploy dry run succeeds", { timeout: 300_000 }, async () => {
  const outDir = mkdtempSync(path.join(os.tmpdir(), "landscape-dry-run-"));
  try {
    const wrangler = path.join(REPO_ROOT, "node_modules/.bin/wrangler");
    const env = { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "true" };

    const { stdout } = await promisify(execFile)(wrangler, ["deploy", "--dry-run", "--outdir", outDir], {
      cwd: REPO_ROOT,
      env,
      maxBuffer: 16 * 1024 * 1024,
    });

    assert.match(stdout, /--dry-run: exiting now\./);
    assert.match(stdout, /env\.CONFIG/);
    assert.match(stdout, /env\.LANDSCAPE_JOBS/);
    assert.match(stdout, /env\.DEAD_LETTERS/);
  } finally {
    rmSync(outDir, { recursive: true, force: true });
  }
});
