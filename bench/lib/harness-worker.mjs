// A wrapper Worker that runs another Worker's `queue` handler on demand and
// counts every call it makes on its bindings.
//
// `POST /batch` with `{"events": [...], "attempts": 1}` builds a message batch
// from the events. It calls the wrapped Worker's `queue` handler with counting
// proxies around CONFIG, LANDSCAPE_JOBS and DEAD_LETTERS, which forward to the
// real Miniflare bindings. The response lists the calls, the messages sent,
// each message's outcome and the handler's time in milliseconds. The bench
// copies this file next to the Worker under test and replaces the import below.
import target from "./TARGET_MODULE";

const COUNTED_BINDINGS = ["CONFIG", "LANDSCAPE_JOBS", "DEAD_LETTERS"];

function countingBinding(name, binding, tally) {
  return new Proxy(binding, {
    get(inner, property) {
      const value = Reflect.get(inner, property);
      if (typeof value !== "function" || property === "constructor") {
        return value;
      }
      return (...args) => {
        const call = `${name}.${String(property)}`;
        tally.calls[call] = (tally.calls[call] ?? 0) + 1;
        if (property === "sendBatch") {
          tally.messagesSent[name] = (tally.messagesSent[name] ?? 0) + args[0].length;
        } else if (property === "send") {
          tally.messagesSent[name] = (tally.messagesSent[name] ?? 0) + 1;
        }
        return value.apply(inner, args);
      };
    },
  });
}

function countingEnv(env, tally) {
  const wrapped = new Map(
    COUNTED_BINDINGS.filter((name) => env[name] !== undefined).map((name) => [
      name,
      countingBinding(name, env[name], tally),
    ]),
  );
  return new Proxy(env, {
    get(inner, property) {
      return wrapped.get(property) ?? Reflect.get(inner, property);
    },
  });
}

function messageBatch(events, attempts, runId, outcomes) {
  const timestamp = new Date();
  const messages = events.map((event, index) => ({
    id: `${runId}-${index}`,
    timestamp,
    body: event,
    attempts,
    ack() {
      outcomes[index] = "ack";
    },
    retry(options) {
      outcomes[index] = `retry ${options?.delaySeconds ?? ""}`.trim();
    },
  }));
  return {
    queue: "weather-ready",
    messages,
    ackAll() {
      messages.forEach((message) => message.ack());
    },
    retryAll(options) {
      messages.forEach((message) => message.retry(options));
    },
  };
}

async function runQueueHandler(batch, env, ctx) {
  if (typeof target === "function") {
    // A class entrypoint (workers-rs): its handlers read `this.env` and `this.ctx`.
    return target.prototype.queue.call({ env, ctx }, batch);
  }
  return target.queue(batch, env, ctx);
}

let runCount = 0;

export default {
  async fetch(request, env, ctx) {
    const { events, attempts = 1 } = await request.json();
    const tally = { calls: {}, messagesSent: {} };
    const outcomes = new Array(events.length).fill("none");
    runCount += 1;
    const batch = messageBatch(events, attempts, `run${runCount}`, outcomes);

    const started = performance.now();
    let error = null;
    try {
      await runQueueHandler(batch, countingEnv(env, tally), ctx);
    } catch (thrown) {
      error = String(thrown?.stack ?? thrown);
    }
    const elapsedMs = performance.now() - started;

    return Response.json({ ...tally, outcomes, elapsedMs, error });
  },
};
