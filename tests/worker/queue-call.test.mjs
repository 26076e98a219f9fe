// Direct `queue()` calls on the Worker in workerd, asserting how each message
// of a batch is settled: an explicit ack or retry per message, never a whole
// batch at once.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { DEAD_LETTER_QUEUE, EVENTS_QUEUE, JOBS_QUEUE, event, pollUntil, seedFormats, startWorkers } from "./harness.mjs";

const FIVE_FORMATS = ["rgb_light", "rgb_dark", "bw", "eink", "bwi"];

let workers;

before(async () => {
  workers = await startWorkers();
});

after(async () => {
  await workers?.dispose();
});

/** Builds queue messages with ids `{prefix}-{index}` from bodies. */
function messages(prefix, bodies, attempts = 1) {
  return bodies.map((body, index) => ({
    id: `${prefix}-${index}`,
    timestamp: new Date(1_763_640_000_000),
    body,
    attempts,
  }));
}

describe("queue() on the Worker", () => {
  test("acks good and dead-lettered messages explicitly", async () => {
    await seedFormats(workers.config, { 20001: ["bw"] });
    const batch = messages("acks", [event("20001"), "garbage", event("20002")]);

    const result = await workers.dispatcher.queue(EVENTS_QUEUE, batch);

    assert.equal(result.outcome, "ok");
    assert.equal(result.ackAll, false);
    assert.equal(result.retryBatch.retry, false);
    assert.deepEqual([...result.explicitAcks].sort(), ["acks-0", "acks-1", "acks-2"]);
    assert.deepEqual(result.retryMessages, []);
  });

  test("dead letter record carries the raw body", async () => {
    const body = { zip_code: "ABC", lat: 1, lon: 2 };

    const result = await workers.dispatcher.queue(EVENTS_QUEUE, messages("record", [body], 2));
    const records = await pollUntil(
      () => workers.records(),
      (records) => records[DEAD_LETTER_QUEUE].some((record) => record.body.message_id === "record-0"),
    );

    assert.deepEqual(result.explicitAcks, ["record-0"]);
    const record = records[DEAD_LETTER_QUEUE].find((record) => record.body.message_id === "record-0").body;
    assert.equal(record.code, "invalid_location");
    assert.equal(record.attempts, 2);
    assert.equal(record.body, JSON.stringify(body));
    assert.deepEqual(Object.keys(record), ["message_id", "code", "reason", "attempts", "dead_lettered_at", "body"]);
  });

  test("oversized body is dead-lettered", async () => {
    const body = event("20003", { padding: "x".repeat(130_000) });

    const result = await workers.dispatcher.queue(EVENTS_QUEUE, messages("large", [body]));
    const records = await pollUntil(
      () => workers.records(),
      (records) => records[DEAD_LETTER_QUEUE].some((record) => record.body.message_id === "large-0"),
    );

    // The record cuts the body, so it fits on the dead-letter queue, and gives its full size.
    assert.deepEqual(result.explicitAcks, ["large-0"]);
    assert.deepEqual(result.retryMessages, []);
    const record = records[DEAD_LETTER_QUEUE].find((record) => record.body.message_id === "large-0").body;
    assert.equal(record.code, "body_too_large");
    assert.equal(record.body_bytes, JSON.stringify(body).length);
    assert.equal(record.body.length, 100_000);
  });

  test("100 events with five formats arrive whole", async () => {
    const locations = Array.from({ length: 100 }, (_, index) => String(30_000 + index));
    for (const location of locations) {
      await seedFormats(workers.config, { [location]: FIVE_FORMATS });
    }
    const batch = messages("bulk", locations.map((location) => event(location)));

    const result = await workers.dispatcher.queue(EVENTS_QUEUE, batch);
    const records = await pollUntil(
      () => workers.records(),
      (records) => records[JOBS_QUEUE].filter((job) => locations.includes(job.body.zip_code)).length >= 500,
      { timeoutMs: 30_000 },
    );

    assert.equal(result.explicitAcks.length, 100);
    assert.deepEqual(result.retryMessages, []);
    const jobs = records[JOBS_QUEUE].filter((job) => locations.includes(job.body.zip_code));
    assert.equal(jobs.length, 500);
    assert.equal(new Set(jobs.map((job) => job.body.job_id)).size, 500, "no job arrives twice");
    for (const location of locations) {
      const own = jobs.filter((job) => job.body.zip_code === location);
      assert.deepEqual(own.map((job) => job.body.format_name).sort(), [...FIVE_FORMATS].sort(), location);
      assert.equal(new Set(own.map((job) => job.delivery)).size, 1, `the jobs of ${location} arrive in one delivery`);
    }
  });
});

describe("queue() with a binding missing", () => {
  test("missing KV retries events, dead-letters poison", async () => {
    const broken = await startWorkers({ withoutBindings: ["CONFIG"] });
    try {
      const batch = messages("nokv", [event("20010"), "garbage", event("20011")]);

      const result = await broken.dispatcher.queue(EVENTS_QUEUE, batch);

      assert.equal(result.ackAll, false);
      assert.equal(result.retryBatch.retry, false);
      assert.deepEqual(result.explicitAcks, ["nokv-1"]);
      const retried = [...result.retryMessages].sort((a, b) => a.msgId.localeCompare(b.msgId));
      assert.deepEqual(retried.map((retry) => retry.msgId), ["nokv-0", "nokv-2"]);
      for (const retry of retried) {
        // The first retry waits the base delay of wrangler.toml (10 s) plus
        // at most a quarter of it as jitter.
        assert.ok(retry.delaySeconds >= 10, `${retry.msgId} waits ${retry.delaySeconds} s`);
        assert.ok(retry.delaySeconds <= 12, `${retry.msgId} waits ${retry.delaySeconds} s`);
      }
    } finally {
      await broken.dispose();
    }
  });

  test("missing jobs queue retries with backoff", async () => {
    const broken = await startWorkers({ withoutBindings: ["LANDSCAPE_JOBS"] });
    try {
      const batch = messages("nojobs", [event("20012")], 3);

      const result = await broken.dispatcher.queue(EVENTS_QUEUE, batch);

      assert.deepEqual(result.explicitAcks, []);
      assert.equal(result.retryMessages.length, 1);
      // The third attempt waits four times the base delay, plus jitter.
      const delay = result.retryMessages[0].delaySeconds;
      assert.ok(delay >= 40, `waits ${delay} s`);
      assert.ok(delay <= 50, `waits ${delay} s`);
    } finally {
      await broken.dispose();
    }
  });
});
