// End-to-end dispatch in workerd: events go through the real `weather-ready`
// queue, and the jobs and dead letters are captured by a recording consumer.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { DEAD_LETTER_QUEUE, JOBS_QUEUE, event, pollUntil, seedFormats, startWorkers } from "./harness.mjs";

let workers;

before(async () => {
  workers = await startWorkers();
});

after(async () => {
  await workers?.dispose();
});

/** Waits until the jobs for `zipCodes` number `count`, and returns them. */
async function jobsFor(zipCodes, count) {
  const wanted = new Set(zipCodes);
  const records = await pollUntil(
    () => workers.records(),
    (records) => records[JOBS_QUEUE].filter((job) => wanted.has(job.body.zip_code)).length >= count,
    { describe: (records) => `${records[JOBS_QUEUE].length} jobs recorded in total` },
  );
  return records[JOBS_QUEUE].filter((job) => wanted.has(job.body.zip_code));
}

function formatNames(jobs, zipCode) {
  return jobs
    .filter((job) => job.body.zip_code === zipCode)
    .map((job) => job.body.format_name)
    .sort();
}

describe("dispatch through queues", () => {
  test("missing key gives default only", async () => {
    await workers.sendEvents([event("10001")]);

    const jobs = await jobsFor(["10001"], 1);

    assert.equal(jobs.length, 1);
    const job = jobs[0].body;
    assert.equal(job.format_name, "rgb_light");
    assert.equal(job.zip_code, "10001");
    assert.equal(job.lat, 30.4515);
    assert.equal(job.lon, -97.7676);
    assert.equal(job.fetched_at, "2025-11-20T12:00:00.123456Z");
    assert.equal(job.job_id, "10001:rgb_light:20251120T120000.123456Z");
    assert.match(job.enqueued_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
  });

  test("job body keeps its field order", async () => {
    await workers.sendEvents([event("10002", { traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" })]);

    const jobs = await jobsFor(["10002"], 1);

    assert.deepEqual(Object.keys(jobs[0].body), [
      "zip_code",
      "format_name",
      "lat",
      "lon",
      "enqueued_at",
      "job_id",
      "fetched_at",
      "traceparent",
    ]);
  });

  test("multi-format key fans out", async () => {
    await seedFormats(workers.config, { 10003: ["rgb_light", "bw", "eink"] });

    await workers.sendEvents([event("10003")]);
    const jobs = await jobsFor(["10003"], 3);

    assert.deepEqual(formatNames(jobs, "10003"), ["bw", "eink", "rgb_light"]);
    const ids = jobs.map((job) => job.body.job_id).sort();
    assert.deepEqual(ids, [
      "10003:bw:20251120T120000.123456Z",
      "10003:eink:20251120T120000.123456Z",
      "10003:rgb_light:20251120T120000.123456Z",
    ]);
  });

  test("duplicate names in KV give one job each", async () => {
    await seedFormats(workers.config, { 10004: ["bw", "rgb_light", "bw", "rgb_light"] });

    await workers.sendEvents([event("10004")]);
    const jobs = await jobsFor(["10004"], 2);

    assert.deepEqual(formatNames(jobs, "10004"), ["bw", "rgb_light"]);
    assert.equal(jobs[0].body.format_name, "rgb_light", "the default comes first");
  });

  test("unknown format is skipped", async () => {
    await seedFormats(workers.config, { 10005: ["rgb_light", "sepia", "bw"] });

    await workers.sendEvents([event("10005")]);
    const jobs = await jobsFor(["10005"], 2);

    assert.deepEqual(formatNames(jobs, "10005"), ["bw", "rgb_light"]);
  });

  test("poison messages go to the dead-letter queue", async () => {
    await seedFormats(workers.config, { 10006: ["rgb_light", "bw"], 10007: ["rgb_dark"] });
    const poison = [
      { body: "not json at all", code: "invalid_body" },
      { body: { zip_code: "1234", lat: 1, lon: 2 }, code: "invalid_location" },
      { body: event("10008", { lat: 123.5 }), code: "invalid_coordinates" },
      { body: { lat: 1, lon: 2 }, code: "invalid_location" },
    ];

    await workers.sendEvents([event("10006"), ...poison.map((entry) => entry.body), event("10007")]);
    const records = await pollUntil(
      () => workers.records(),
      (records) => records[DEAD_LETTER_QUEUE].length >= poison.length,
    );
    const jobs = await jobsFor(["10006", "10007"], 4);

    assert.deepEqual(formatNames(jobs, "10006"), ["bw", "rgb_light"]);
    assert.deepEqual(formatNames(jobs, "10007"), ["rgb_dark", "rgb_light"]);
    const deadLetters = records[DEAD_LETTER_QUEUE].map((record) => record.body);
    assert.equal(deadLetters.length, poison.length);
    for (const entry of poison) {
      const sent = JSON.stringify(entry.body);
      const record = deadLetters.find((letter) => letter.body === sent);
      assert.ok(record, `no dead letter for ${sent}`);
      assert.equal(record.code, entry.code, `code for ${sent}`);
      assert.ok(record.reason.length > 0, `reason for ${sent}`);
      assert.equal(record.attempts, 1, `${sent} was dead-lettered on its first delivery, not retried`);
      assert.match(record.message_id, /\S/);
      assert.match(record.dead_lettered_at, /Z$/);
    }
    assert.equal(jobs.filter((job) => job.body.zip_code === "10008").length, 0);
  });

  test("each dead letter is logged once", async () => {
    const records = await pollUntil(
      () => workers.records(),
      (records) => records[DEAD_LETTER_QUEUE].length > 0,
    );

    const logged = workers.logs().filter((line) => line.event === "dead_lettered");
    for (const { body: record } of records[DEAD_LETTER_QUEUE]) {
      const lines = logged.filter((line) => line.message_id === record.message_id);
      assert.equal(lines.length, 1, `log lines for ${record.message_id}`);
      assert.equal(lines[0].code, record.code);
      assert.equal(lines[0].reason, record.reason);
      assert.equal(lines[0].body, undefined, "the body is not logged");
    }
  });

  test("batch log carries the report", async () => {
    const secret = "value-that-must-not-be-logged";
    await seedFormats(workers.config, { 10009: ["rgb_light", "bw", secret] });

    await workers.sendEvents([event("10009")]);
    await jobsFor(["10009"], 2);
    const line = await pollUntil(
      () => workers.logs().find((line) => line.event === "batch_settled" && line.warnings.some((warning) => warning.detail.includes("formats:10009"))),
      (line) => line !== undefined,
    );

    assert.equal(line.report.messages, 1);
    assert.equal(line.report.jobs, 2);
    assert.equal(line.report.acked, 1);
    assert.equal(line.report.warnings.unknown_formats, 1);
    assert.equal(line.worker.kv_bulk_reads, 1);
    const text = JSON.stringify(workers.logs());
    assert.ok(!text.includes(`["rgb_light","bw","${secret}"]`), "no whole KV value is logged");
  });

  test("repeated key is served from the cache", async () => {
    const settledLines = () => workers.logs().filter((line) => line.event === "batch_settled");
    await seedFormats(workers.config, { 10010: ["eink"] });
    await workers.sendEvents([event("10010")]);
    await jobsFor(["10010"], 2);
    const before = settledLines().length;

    await workers.sendEvents([event("10010", { fetched_at: "2025-11-20T13:00:00Z" })]);
    const lines = await pollUntil(settledLines, (lines) => lines.length > before);

    const line = lines[before];
    assert.equal(line.report.jobs, 2);
    assert.equal(line.worker.kv_cache_hits, 1);
    assert.equal(line.worker.kv_bulk_reads, 0);
  });
});
