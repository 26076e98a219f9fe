#!/usr/bin/env bash
# Runs the main job on the shipped sample: builds the release binary, then, with a
# fresh store, imports the `formats:` KV entries, sends the events, drains the
# weather-ready queue and prints the summary and the queue counts.
#
# Usage: scripts/main-job.sh [DB]
#   DB  the store file to create (by default, target/main-job.db); an existing file
#       at that path is deleted first, with its -wal and -shm files.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
db="${1:-$target_dir/main-job.db}"
bin="$target_dir/release/landscape-dispatcher"

echo "== building landscape-dispatcher (release)"
cargo build --release --quiet -p landscape-dispatcher

echo "== fresh store: $db"
mkdir -p "$(dirname "$db")"
rm -f "$db" "$db-wal" "$db-shm"

echo "== importing KV entries"
"$bin" --db "$db" kv bulk put data/formats-kv.json

echo "== sending events"
"$bin" --db "$db" send weather-ready data/weather-ready-sample.jsonl

echo "== draining weather-ready"
# The runner logs one INFO line per batch. Unless RUST_LOG is set, only its start and
# stop lines are shown here, and batches with retries or dead letters, which log at WARN.
RUST_LOG="${RUST_LOG:-info,landscape_dispatcher::runner=warn}" "$bin" --db "$db" run --drain

echo "== queues"
"$bin" --db "$db" queue stats

cat <<HINT

The jobs wait on the landscape-jobs queue in $db. To look at them:
  $bin --db $db queue peek landscape-jobs --limit 5
To see what events would produce without writing anything, and the dead letters if any:
  $bin --db $db plan data/weather-ready-sample.jsonl | head -5
  $bin --db $db dlq list
HINT
