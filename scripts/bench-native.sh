#!/usr/bin/env bash
# Measures the native runner: wall time and peak RSS of `run --drain` on the real input.
#
# Usage: scripts/bench-native.sh [EVENTS_FILE] [KV_FILE] [-- RUN_FLAGS...]
#   EVENTS_FILE  JSONL events to drain (by default, ../shared/data/weather-ready-us.jsonl,
#                falling back to the shipped sample in data/)
#   KV_FILE      `formats:` entries in the `wrangler kv bulk put` layout (default beside it)
#   RUN_FLAGS    extra flags for `run --drain`, such as `--max-batch-size 100`
# Environment: BENCH_REPEAT (default 1) repeats `send` before draining, so one file can
# make a larger queue; BENCH_BIN skips the build and uses that binary.
#
# It builds the release binary, loads the KV entries and the events into a fresh store in
# a temporary directory, and drains it under /usr/bin/time -v. Only the drain is timed.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
events="${1:-}"
kv="${2:-}"
shift $(( $# > 2 ? 2 : $# ))
[[ "${1:-}" == "--" ]] && shift
run_flags=("$@")

if [[ -z "$events" ]]; then
    if [[ -f "$root/../shared/data/weather-ready-us.jsonl" ]]; then
        events="$root/../shared/data/weather-ready-us.jsonl"
        kv="${kv:-$root/../shared/data/formats-kv.json}"
    else
        events="$root/data/weather-ready-sample.jsonl"
        kv="${kv:-$root/data/formats-kv.json}"
    fi
fi
kv="${kv:-$(dirname "$events")/formats-kv.json}"

if [[ -n "${BENCH_BIN:-}" ]]; then
    bin="$BENCH_BIN"
else
    cargo build --release --quiet -p landscape-dispatcher --manifest-path "$root/Cargo.toml"
    bin="${CARGO_TARGET_DIR:-$root/target}/release/landscape-dispatcher"
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
db="$work/bench.db"
cd "$root"

"$bin" --db "$db" kv bulk put "$kv" >/dev/null
for _ in $(seq "${BENCH_REPEAT:-1}"); do
    "$bin" --db "$db" send weather-ready "$events" >/dev/null
done

echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'), $(free -g | awk '/^Mem:/ {print $2}') GiB"
echo "binary:  $bin"
echo "events:  $events x ${BENCH_REPEAT:-1}"
echo "command: landscape-dispatcher run --drain ${run_flags[*]}"
/usr/bin/time -v "$bin" --db "$db" run --drain "${run_flags[@]}" 2>"$work/time.txt"
grep -E "Elapsed \(wall clock\)|Maximum resident set size|Percent of CPU" "$work/time.txt"
"$bin" --db "$db" queue stats
