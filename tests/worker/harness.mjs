// Runs the built Worker in workerd through Miniflare, beside a recording
// Worker that produces `weather-ready` events and consumes what the
// dispatcher sends to `landscape-jobs` and to the dead-letter queue.
//
// The dispatcher's bindings come from the repository's wrangler.toml, read by
// wrangler itself, so these tests also check that file. Only the consumer's
// `max_batch_timeout` is shortened, so that a partial batch is delivered
// after one second instead of thirty.

import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { Miniflare } from "miniflare";
import { unstable_getMiniflareWorkerOptions } from "wrangler";

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const WRANGLER_TOML = path.join(REPO_ROOT, "wrangler.toml");
export const BUILD_DIR = path.join(REPO_ROOT, "build");
export const SHIM_PATH = path.join(BUILD_DIR, "worker/shim.mjs");

export const DISPATCHER = "job-dispatcher";
export const RECORDER = "recorder";
export const EVENTS_QUEUE = "weather-ready";
export const JOBS_QUEUE = "landscape-jobs";
export const DEAD_LETTER_QUEUE = "weather-ready-dlq";

// The recording Worker. `POST /send` sends a JSON array of
// `{ body, contentType }` to `weather-ready` in batches of at most 100;
// `GET /records` returns every message received so far, per queue, with the
// number of the delivery batch it came in.
const RECORDER_SCRIPT = `
const records = { "${JOBS_QUEUE}": [], "${DEAD_LETTER_QUEUE}": [] };
let deliveries = 0;

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === "/send") {
      const messages = await request.json();
      for (let start = 0; start < messages.length; start += 100) {
        await env.WEATHER_READY.sendBatch(messages.slice(start, start + 100));
      }
      return new Response("sent");
    }
    if (url.pathname === "/records") {
      return Response.json(records);
    }
    return new Response("not found", { status: 404 });
  },

  async queue(batch) {
    deliveries += 1;
    for (const message of batch.messages) {
      records[batch.queue].push({
        id: message.id,
        attempts: message.attempts,
        delivery: deliveries,
        body: message.body,
      });
      message.ack();
    }
  },
};
`;

/** Fails with a clear message if the Worker has not been built. */
export function requireBuild() {
  if (!existsSync(SHIM_PATH)) {
    throw new Error(`${SHIM_PATH} is missing: run \`bash scripts/build-worker.sh\` first`);
  }
}

/**
 * Returns the dispatcher's Miniflare options, built from wrangler.toml.
 *
 * `withoutBindings` names KV or queue producer bindings to leave out, to
 * cause the failures of a misconfigured deployment for real.
 */
export function dispatcherOptions({ withoutBindings = [] } = {}) {
  const { workerOptions } = unstable_getMiniflareWorkerOptions(WRANGLER_TOML);
  const consumer = workerOptions.queueConsumers[EVENTS_QUEUE];
  const kvNamespaces = { ...workerOptions.kvNamespaces };
  const queueProducers = { ...workerOptions.queueProducers };
  for (const binding of withoutBindings) {
    delete kvNamespaces[binding];
    delete queueProducers[binding];
  }

  return {
    ...workerOptions,
    kvNamespaces,
    queueProducers,
    name: DISPATCHER,
    modules: true,
    scriptPath: SHIM_PATH,
    modulesRoot: BUILD_DIR,
    // worker-build writes ES modules with a `.js` extension beside the shim.
    modulesRules: [{ type: "ESModule", include: ["**/*.js"] }, ...workerOptions.modulesRules],
    queueConsumers: {
      [EVENTS_QUEUE]: { ...consumer, maxBatchTimeout: 1 },
    },
  };
}

/**
 * Starts workerd with the dispatcher and the recorder.
 *
 * The returned object has the Miniflare instance, the `CONFIG` namespace, and
 * helpers to send events and read what was recorded. Call `dispose()` at the
 * end of the test file.
 */
export async function startWorkers(options = {}) {
  requireBuild();
  const dispatcher = dispatcherOptions(options);
  const logs = [];
  const mf = new Miniflare({
    // Without `cf: false`, Miniflare fetches Cloudflare's request metadata from
    // the internet at every start; the tests stay on this machine.
    cf: false,
    host: "127.0.0.1",
    // workerd's output, where the Workers' console lines go, is kept for the
    // tests to read instead of being printed.
    handleRuntimeStdio(stdout, stderr) {
      collectJsonLines(stdout, logs);
      collectJsonLines(stderr, logs);
    },
    workers: [
      dispatcher,
      {
        name: RECORDER,
        modules: true,
        script: RECORDER_SCRIPT,
        compatibilityDate: dispatcher.compatibilityDate,
        queueProducers: { WEATHER_READY: { queueName: EVENTS_QUEUE } },
        queueConsumers: {
          [JOBS_QUEUE]: { maxBatchSize: 100, maxBatchTimeout: 1 },
          [DEAD_LETTER_QUEUE]: { maxBatchSize: 100, maxBatchTimeout: 1 },
        },
      },
    ],
  });
  await mf.ready;

  const config = "CONFIG" in dispatcher.kvNamespaces ? await mf.getKVNamespace("CONFIG", DISPATCHER) : null;
  const recorder = await mf.getWorker(RECORDER);
  const dispatcherWorker = await mf.getWorker(DISPATCHER);

  return {
    mf,
    config,
    dispatcher: dispatcherWorker,

    /** Sends bodies to `weather-ready`: objects as JSON, strings as text. */
    async sendEvents(bodies) {
      const messages = bodies.map((body) =>
        typeof body === "string" ? { body, contentType: "text" } : { body, contentType: "json" },
      );
      const response = await recorder.fetch("http://recorder/send", {
        method: "POST",
        body: JSON.stringify(messages),
      });
      if (!response.ok) {
        throw new Error(`sending events failed: ${response.status} ${await response.text()}`);
      }
      await response.text();
    },

    /** Returns the JSON log lines the Workers wrote so far, parsed. */
    logs: () => [...logs],

    /** Returns everything recorded so far, per queue. */
    async records() {
      const response = await recorder.fetch("http://recorder/records");
      return response.json();
    },

    dispose: () => mf.dispose(),
  };
}

/** Parses each line of `stream` that is a JSON object into `lines`. */
function collectJsonLines(stream, lines) {
  let pending = "";
  stream.setEncoding("utf8");
  stream.on("data", (chunk) => {
    pending += chunk;
    const complete = pending.split("\n");
    pending = complete.pop();
    for (const line of complete) {
      const start = line.indexOf("{");
      if (start < 0) {
        continue;
      }
      try {
        lines.push(JSON.parse(line.slice(start)));
      } catch {
        // Not a JSON log line, such as workerd's own messages.
      }
    }
  });
}

/**
 * Calls `probe` until `done(result)` holds, and returns that result.
 *
 * Fails after `timeoutMs` with `describe(lastResult)` in the message.
 */
export async function pollUntil(probe, done, { timeoutMs = 20_000, intervalMs = 100, describe = JSON.stringify } = {}) {
  const deadline = Date.now() + timeoutMs;
  let result = await probe();
  while (!done(result)) {
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms; last result: ${describe(result)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
    result = await probe();
  }
  return result;
}

/** Seeds `formats:{location}` keys, given as `{ location: value }`. */
export async function seedFormats(config, entries) {
  for (const [location, value] of Object.entries(entries)) {
    await config.put(`formats:${location}`, typeof value === "string" ? value : JSON.stringify(value));
  }
}

/** Returns a `weather-ready` event for a location. */
export function event(zipCode, overrides = {}) {
  return {
    zip_code: zipCode,
    lat: 30.4515,
    lon: -97.7676,
    fetched_at: "2025-11-20T12:00:00.123456Z",
    ...overrides,
  };
}
