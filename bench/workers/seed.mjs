// The seed algorithm: the logic of the Python `job-dispatcher` Worker that
// the Rust dispatcher replaces, written as a plain JavaScript Worker so that
// both run on the same runtime.
//
// For each message, one after another: convert the body, read
// `formats:{zip_code}` from KV, put the default format first when it is
// missing, send one job per format with one awaited `send` each, then ack.
// Any exception retries the message. There is no validation, no dedupe and
// no dead-letter queue, as in the Python Worker.

const DEFAULT_FORMAT = "rgb_light";

function convertBody(body) {
  return typeof body === "string" ? JSON.parse(body) : body;
}

function jobId(zipCode, formatName, fetchedAt) {
  const compact = String(fetchedAt).replace(/[-:]/g, "");
  return `${zipCode}:${formatName}:${compact}`;
}

async function dispatchOne(message, env) {
  const event = convertBody(message.body);
  const value = await env.CONFIG.get(`formats:${event.zip_code}`);
  const formats = value === null ? [] : JSON.parse(value);
  if (!formats.includes(DEFAULT_FORMAT)) {
    formats.unshift(DEFAULT_FORMAT);
  }

  for (const formatName of formats) {
    await env.LANDSCAPE_JOBS.send({
      zip_code: event.zip_code,
      format_name: formatName,
      lat: event.lat,
      lon: event.lon,
      enqueued_at: new Date().toISOString(),
      job_id: jobId(event.zip_code, formatName, event.fetched_at),
      fetched_at: event.fetched_at,
    });
  }
}

export default {
  async queue(batch, env) {
    for (const message of batch.messages) {
      try {
        await dispatchOne(message, env);
        message.ack();
      } catch (error) {
        console.error(`dispatch failed, retrying message ${message.id}: ${error}`);
        message.retry();
      }
    }
  },
};
