#!/usr/bin/env bash
# Measures the native runner: wall time and peak RSS of `run --drain` on real events.
#
# Usage: scripts/bench-native.sh [--events N] [-- RUN_FLAGS...]
#   --events N  drain N events instead of the input file as it is: the input is repeated,
#               with `fetched_at` moved one year later in each repetition, so all N events
#               (and their job ids) are distinct
#   RUN_FLAGS   extra flags for `run --drain`, such as `--max-batch-size 100`
# Input: ../shared/data/weather-ready-us.jsonl and formats-kv.json beside the repository
# if present, otherwise the shipped sample in data/.
# Environment: BENCH_BIN skips the build and uses that binary.
#
# It builds the release binary, loads the KV entries and the events into a fresh store in
# a temporary directory, and drains it under /usr/bin/time -v. Only the drain is timed.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
count=""
if [[ "${1:-}" == "--events" ]]; then
    count="$2"
    shift 2
fi
[[ "${1:-}" == "--" ]] && shift
run_flags=("$@")

if [[ -f "$root/../shared/data/weather-ready-us.jsonl" ]]; then
    events="$root/../shared/data/weather-ready-us.jsonl"
    kv="$root/../shared/data/formats-kv.json"
else
    events="$root/data/weather-ready-sample.jsonl"
    kv="$root/data/formats-kv.json"
fi

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

if [[ -n "$count" ]]; then
    lines="$(wc -l < "$events")"
    for (( r = 0, left = count; left > 0; r++, left -= lines )); do
        take=$(( left < lines ? left : lines ))
        sed -n "1,${take}{s/\"fetched_at\": \"2025-/\"fetched_at\": \"$(( 2025 + r ))-/;p}" "$events"
    done > "$work/events.jsonl"
    events="$work/events.jsonl"
fi

"$bin" --db "$db" kv bulk put "$kv" >/dev/null
"$bin" --db "$db" send weather-ready "$events" >/dev/null

echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'), $(free -g | awk '/^Mem:/ {print $2}') GiB"
echo "binary:  $bin"
echo "events:  $(wc -l < "$events") from $events"
echo "command: landscape-dispatcher run --drain ${run_flags[*]}"
/usr/bin/time -v "$bin" --db "$db" run --drain "${run_flags[@]}" 2>"$work/time.txt"
grep -E "User time|System time|Elapsed \(wall clock\)|Maximum resident set size|Percent of CPU" "$work/time.txt"
"$bin" --db "$db" queue stats
ls -l "$db"* | awk '{print "store:   " $5 " bytes " $9}'
