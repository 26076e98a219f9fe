"""Time the seed algorithm, the Python dispatcher's logic, over a file of events.

The function below is the per-message loop of the Python `job-dispatcher`
Worker with its bindings replaced by an in-memory dict (KV) and list (the
`landscape-jobs` queue), so that the time is its CPU cost per event. Each job
is serialized with `json.dumps`, the work `send` does for a dict. The events go
through in consumer batches, and reading the files happens before the clock
starts. Prints one JSON object.

Usage: python3 seed_dispatch.py EVENTS.jsonl FORMATS-KV.json [--five-formats]
[--batch-size N] [--repeats N] [--max-secs S]. By default, batches of 10,
5 repeats, at most 120 seconds in all.
"""

import argparse
import json
import statistics
import sys
import time
from datetime import datetime, timezone

DEFAULT_FORMAT = "rgb_light"
FIVE_FORMATS = json.dumps(["rgb_light", "bw", "bwi", "rgb_dark", "eink"])


def dispatch_batch(messages, kv, sent):
    """Dispatch one consumer batch and return one outcome per message.

    For each message: convert the body, read `formats:{zip_code}`, put the
    default format first when it is missing, send one job per format, then
    ack. Any exception retries the message.
    """
    outcomes = []
    for message in messages:
        try:
            event = json.loads(message["body"])
            value = kv.get(f"formats:{event['zip_code']}")
            formats = json.loads(value) if value is not None else []
            if DEFAULT_FORMAT not in formats:
                formats.insert(0, DEFAULT_FORMAT)

            # NOTE: one clock read per message, not per send, which favours the seed slightly.
            enqueued_at = datetime.now(timezone.utc).isoformat()
            compact = str(event.get("fetched_at")).replace("-", "").replace(":", "")
            for format_name in formats:
                job = {
                    "zip_code": event["zip_code"],
                    "format_name": format_name,
                    "lat": event["lat"],
                    "lon": event["lon"],
                    "enqueued_at": enqueued_at,
                    "job_id": f"{event['zip_code']}:{format_name}:{compact}",
                    "fetched_at": event.get("fetched_at"),
                }
                sent.append(json.dumps(job))
            outcomes.append("ack")
        except Exception:  # noqa: BLE001 - the seed retries on any exception
            outcomes.append("retry")
    return outcomes


def run_pass(messages, kv, batch_size):
    """Run every message through the seed algorithm; return (jobs, acked)."""
    sent = []
    acked = 0
    for start in range(0, len(messages), batch_size):
        outcomes = dispatch_batch(messages[start : start + batch_size], kv, sent)
        acked += outcomes.count("ack")
    return len(sent), acked


def load(args):
    """Read the events as messages and the KV entries as a dict."""
    with open(args.events, encoding="utf-8") as file:
        lines = [line.rstrip("\n") for line in file if line.strip()]
    messages = [{"id": f"msg-{index}", "attempts": 1, "body": line} for index, line in enumerate(lines)]

    with open(args.kv, encoding="utf-8") as file:
        kv = {entry["key"]: entry["value"] for entry in json.load(file)}
    if args.five_formats:
        for line in lines:
            kv[f"formats:{json.loads(line)['zip_code']}"] = FIVE_FORMATS
    return messages, kv


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("events", help="weather-ready events, one JSON object per line")
    parser.add_argument("kv", help="formats KV entries, a JSON array of {key, value}")
    parser.add_argument("--five-formats", action="store_true", help="give every event all five formats")
    parser.add_argument("--batch-size", type=int, default=10, help="messages per consumer batch (default: 10)")
    parser.add_argument("--repeats", type=int, default=5, help="passes over all events (default: 5)")
    parser.add_argument("--max-secs", type=float, default=120.0, help="time bound for all passes (default: 120)")
    args = parser.parse_args()
    if args.batch_size < 1:
        parser.error("--batch-size must be at least 1")

    messages, kv = load(args)
    deadline = time.perf_counter() + args.max_secs
    times = []
    jobs = acked = 0
    while len(times) < args.repeats and time.perf_counter() < deadline:
        started = time.perf_counter()
        jobs, acked = run_pass(messages, kv, args.batch_size)
        times.append(time.perf_counter() - started)

    best = min(times)
    median = statistics.median_low(times)
    result = {
        "implementation": f"seed algorithm (Python {sys.version.split()[0]})",
        "events": len(messages),
        "jobs": jobs,
        "acked": acked,
        "batch_size": args.batch_size,
        "five_formats": args.five_formats,
        "repeats": len(times),
        "best_secs": best,
        "median_secs": median,
        "events_per_sec_best": len(messages) / best,
        "events_per_sec_median": len(messages) / median,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
