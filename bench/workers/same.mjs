// The dispatcher's algorithm written by hand in JavaScript: what a Cloudflare
// user would deploy instead of the Rust Worker.
//
// Per consumer batch, it validates each body and coalesces messages for the
// same location. It reads the formats of all distinct locations with one bulk
// KV read per 100 keys. It sends the jobs with `sendBatch`, at most 100
// messages and 256,000 bytes per call. Then it acks, retries with backoff or
// dead-letters each message on its own. Limits and job body follow the core.

const MAX_BODY_BYTES = 128_000;
const MAX_KV_KEYS_PER_READ = 100;
const MAX_SEND_BATCH_MESSAGES = 100;
const MAX_SEND_BATCH_BYTES = 256_000;
const SEND_METADATA_BYTES = 100;
const KV_CACHE_TTL_SECS = 60;

const FORMAT_NAMES = ["rgb_light", "rgb_dark", "bw", "bwi", "eink"];
const DEFAULT_FORMAT = FORMAT_NAMES[0];

const LOCATION = /^(?:\d{5}|[A-Z]{2}\d{4,10})$/;
const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})$/;
const TRACEPARENT = /^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;

const encoder = new TextEncoder();

class Rejection extends Error {
  constructor(code, reason) {
    super(reason);
    this.code = code;
  }
}

// Parses an RFC 3339 instant into microseconds since the epoch, or null.
function parseMicros(text) {
  const match = typeof text === "string" ? RFC3339.exec(text) : null;
  if (match === null) {
    return null;
  }

  const [, year, month, day, hour, minute, second, fraction = "", zone] = match;
  let millis = Date.UTC(+year, +month - 1, +day, +hour, +minute, +second);
  if (zone !== "Z" && zone !== "z") {
    const sign = zone[0] === "-" ? -1 : 1;
    millis -= sign * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4, 6))) * 60_000;
  }
  if (Number.isNaN(millis)) {
    return null;
  }
  return millis * 1000 + Number(fraction.padEnd(6, "0").slice(0, 6));
}

// Formats microseconds since the epoch as `2025-11-20T12:00:00.123456Z`.
function formatMicros(micros) {
  const millis = Math.floor(micros / 1000);
  const whole = new Date(millis).toISOString().slice(0, 19);
  const fraction = String(micros - Math.floor(micros / 1_000_000) * 1_000_000).padStart(6, "0");
  return `${whole}.${fraction}Z`;
}

function compactInstant(text) {
  return text.replace(/[-:]/g, "");
}

// Returns the body as a value and its size as JSON text, in bytes. A body the
// queue already decoded is used as it is; a string body is parsed.
function readBody(message) {
  if (typeof message.body !== "string") {
    const text = JSON.stringify(message.body) ?? "";
    return { body: message.body, bytes: encoder.encode(text).length };
  }

  const bytes = encoder.encode(message.body).length;
  if (bytes > MAX_BODY_BYTES) {
    return { body: null, bytes };
  }
  try {
    return { body: JSON.parse(message.body), bytes };
  } catch (error) {
    throw new Rejection("invalid_body", `body is not JSON: ${error.message}`);
  }
}

function decodeEvent(message) {
  const { body, bytes } = readBody(message);
  if (bytes > MAX_BODY_BYTES) {
    throw new Rejection("body_too_large", `body exceeds ${MAX_BODY_BYTES} bytes`);
  }
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    throw new Rejection("invalid_body", "body is not a JSON object");
  }

  const { zip_code: location, lat, lon } = body;
  if (typeof location !== "string" || !LOCATION.test(location)) {
    throw new Rejection("invalid_location", `invalid location ${JSON.stringify(location)}`);
  }
  if (!Number.isFinite(lat) || !Number.isFinite(lon) || Math.abs(lat) > 90 || Math.abs(lon) > 180) {
    throw new Rejection("invalid_coordinates", `invalid coordinates ${lat}, ${lon}`);
  }

  const fetchedMicros = parseMicros(body.fetched_at);
  const traceparent = typeof body.traceparent === "string" && TRACEPARENT.test(body.traceparent)
    ? body.traceparent
    : null;
  return {
    location,
    lat,
    lon,
    fetchedAt: fetchedMicros === null ? null : formatMicros(fetchedMicros),
    traceparent,
  };
}

// Resolves a KV value to format names: known names once each, default first.
function resolveFormats(value) {
  let names = [];
  if (value !== null && value !== undefined) {
    try {
      const parsed = JSON.parse(value);
      names = Array.isArray(parsed) ? parsed : [];
    } catch {
      names = [];
    }
  }

  const known = [];
  for (const name of names) {
    if (FORMAT_NAMES.includes(name) && !known.includes(name)) {
      known.push(name);
    }
  }
  if (!known.includes(DEFAULT_FORMAT)) {
    known.unshift(DEFAULT_FORMAT);
  }
  return known;
}

function jobBody(event, messageId, formatName, enqueuedAt) {
  const stamp = event.fetchedAt === null ? `msg-${messageId}` : compactInstant(event.fetchedAt);
  const job = {
    zip_code: event.location,
    format_name: formatName,
    lat: event.lat,
    lon: event.lon,
    enqueued_at: enqueuedAt,
    job_id: `${event.location}:${formatName}:${stamp}`,
  };
  if (event.fetchedAt !== null) {
    job.fetched_at = event.fetchedAt;
  }
  if (event.traceparent !== null) {
    job.traceparent = event.traceparent;
  }
  return job;
}

// Splits the valid messages into coalesced locations and dead letters.
function decodeBatch(messages) {
  const locations = new Map();
  const rejected = [];
  for (const message of messages) {
    try {
      const event = decodeEvent(message);
      const entry = locations.get(event.location);
      if (entry === undefined) {
        locations.set(event.location, { event, messages: [message], sendBatches: new Set() });
      } else {
        entry.messages.push(message);
      }
    } catch (error) {
      if (!(error instanceof Rejection)) {
        throw error;
      }
      rejected.push({ message, code: error.code, reason: error.message });
    }
  }
  return { locations, rejected };
}

async function readFormats(env, keys) {
  const values = new Map();
  const failedKeys = new Set();
  for (let start = 0; start < keys.length; start += MAX_KV_KEYS_PER_READ) {
    const chunk = keys.slice(start, start + MAX_KV_KEYS_PER_READ);
    try {
      const found = await env.CONFIG.get(chunk, { type: "text", cacheTtl: KV_CACHE_TTL_SECS });
      for (const [key, value] of found) {
        values.set(key, value);
      }
    } catch (error) {
      console.error(`KV bulk read of ${chunk.length} keys failed: ${error}`);
      chunk.forEach((key) => failedKeys.add(key));
    }
  }
  return { values, failedKeys };
}

// Packs jobs into send batches within the message and byte limits.
function packJobs(locations, values, failedKeys) {
  const enqueuedAt = formatMicros(Date.now() * 1000);
  const sendBatches = [];
  let current = { jobs: [], bytes: 0 };
  for (const [location, entry] of locations) {
    const key = `formats:${location}`;
    if (failedKeys.has(key)) {
      entry.failed = "KV read failed";
      continue;
    }

    for (const formatName of resolveFormats(values.get(key))) {
      const body = jobBody(entry.event, entry.messages[0].id, formatName, enqueuedAt);
      const bytes = encoder.encode(JSON.stringify(body)).length + SEND_METADATA_BYTES;
      if (current.jobs.length === MAX_SEND_BATCH_MESSAGES || current.bytes + bytes > MAX_SEND_BATCH_BYTES) {
        sendBatches.push(current);
        current = { jobs: [], bytes: 0 };
      }
      current.jobs.push({ body });
      current.bytes += bytes;
      entry.sendBatches.add(sendBatches.length);
    }
  }
  if (current.jobs.length > 0) {
    sendBatches.push(current);
  }
  return sendBatches;
}

async function sendJobs(env, sendBatches) {
  const failed = new Set();
  for (const [index, batch] of sendBatches.entries()) {
    try {
      await env.LANDSCAPE_JOBS.sendBatch(batch.jobs.map((job) => ({ body: job.body, contentType: "json" })));
    } catch (error) {
      console.error(`sendBatch of ${batch.jobs.length} jobs failed: ${error}`);
      failed.add(index);
    }
  }
  return failed;
}

function retryDelaySecs(attempts, baseSecs, maxSecs) {
  const exponent = Math.min(Math.max(attempts, 1) - 1, 16);
  return Math.min(baseSecs * 2 ** exponent, maxSecs);
}

async function deadLetter(env, rejected, report) {
  if (rejected.length === 0) {
    return;
  }

  const now = formatMicros(Date.now() * 1000);
  const records = rejected.map(({ message, code, reason }) => ({
    body: {
      message_id: message.id,
      code,
      reason,
      attempts: message.attempts,
      dead_lettered_at: now,
      body: typeof message.body === "string" ? message.body : JSON.stringify(message.body),
    },
    contentType: "json",
  }));
  try {
    await env.DEAD_LETTERS.sendBatch(records);
    for (const { message, code, reason } of rejected) {
      console.log(JSON.stringify({ event: "dead_letter", message_id: message.id, code, reason }));
      message.ack();
    }
    report.dead_lettered += rejected.length;
  } catch (error) {
    console.error(`dead-letter sendBatch failed: ${error}`);
    rejected.forEach(({ message }) => message.retry({ delaySeconds: 10 }));
    report.retried += rejected.length;
  }
}

function settle(env, locations, failedSends, report) {
  const baseSecs = Number(env.RETRY_BASE_DELAY_SECS ?? 10);
  const maxSecs = Number(env.RETRY_MAX_DELAY_SECS ?? 43_200);
  for (const entry of locations.values()) {
    const sendFailed = [...entry.sendBatches].some((index) => failedSends.has(index));
    for (const message of entry.messages) {
      if (entry.failed !== undefined || sendFailed) {
        message.retry({ delaySeconds: retryDelaySecs(message.attempts, baseSecs, maxSecs) });
        report.retried += 1;
      } else {
        message.ack();
        report.acked += 1;
      }
    }
  }
}

export default {
  async queue(batch, env) {
    const report = { messages: batch.messages.length, acked: 0, retried: 0, dead_lettered: 0, jobs: 0 };
    const { locations, rejected } = decodeBatch(batch.messages);
    await deadLetter(env, rejected, report);

    const keys = [...locations.keys()].map((location) => `formats:${location}`);
    const { values, failedKeys } = await readFormats(env, keys);
    const sendBatches = packJobs(locations, values, failedKeys);
    const failedSends = await sendJobs(env, sendBatches);
    settle(env, locations, failedSends, report);

    report.jobs = sendBatches.reduce((sum, sendBatch) => sum + sendBatch.jobs.length, 0);
    console.log(JSON.stringify({ event: "batch", ...report }));
  },
};
