#!/usr/bin/env bash
# Runs the side-by-side benchmarks and prints one table per measure.
#
# Usage: bash bench/run.sh [all|calls|batch|size|drain|core|chart|report|lead] [options]
#   calls, batch  measures 1 and 2: binding calls per batch, warm and first batch
#                 time in Miniflare (one run gives both; `calls` is a short run
#                 that stores bench/results/calls.json, which the report skips)
#   size          measure 3: Worker bundle sizes, raw and gzip
#   drain         measure 4: drain of the real events, native runner vs Miniflare
#   core          measure 5: core events/s vs the Python seed function
#   chart         redraws docs/benchmarks-side-by-side.svg from bench/results
#   report        prints bench/results as the Markdown tables of docs/BENCHMARKS.md
#   lead          the core library's own benchmark, `cargo bench -p landscape-core`
#   all           batch, size, drain, core, then chart (by default)
#
# Needs the root node_modules (`npm ci` at the root) and, for the Rust Worker,
# build/ (`bash scripts/build-worker.sh`). Results go to bench/results.
# Rust builds use CARGO_TARGET_DIR, by default the repository's target/.
set -euo pipefail

bench_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$bench_dir/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo_root/target}"

require_node_modules() {
    if [[ ! -x "$repo_root/node_modules/.bin/esbuild" || ! -d "$repo_root/node_modules/miniflare" ]]; then
        echo "bench: miniflare or esbuild is missing; run \`npm ci\` at the repository root" >&2
        exit 2
    fi
}

print_machine() {
    local model
    model="$(lscpu | sed -n 's/^Model name:[[:space:]]*//p')"
    echo "machine: $model, $(nproc) cores, $(free -g | awk '/^Mem:/ {print $2}') GiB, $(uname -m); node $(node --version), $(python3 --version)"
    echo "load average: $(cut -d " " -f 1-3 /proc/loadavg)"
}

chart() {
    python3 "$bench_dir/chart.py" "$bench_dir/results" "$repo_root/docs/benchmarks-side-by-side.svg"
}

main() {
    local measure="${1:-all}"
    shift || true
    cd "$repo_root"
    print_machine

    case "$measure" in
        calls) require_node_modules; node "$bench_dir/batch.mjs" --rounds 1 --warm 3 --results calls "$@" ;;
        batch) require_node_modules; node "$bench_dir/batch.mjs" "$@" ;;
        size) require_node_modules; node "$bench_dir/size.mjs" "$@" ;;
        drain) require_node_modules; node "$bench_dir/drain.mjs" "$@" ;;
        core) node "$bench_dir/core.mjs" "$@" ;;
        chart) chart ;;
        report) node "$bench_dir/report.mjs" ;;
        lead) cargo bench -p landscape-core "$@" ;;
        all)
            require_node_modules
            node "$bench_dir/batch.mjs"
            node "$bench_dir/size.mjs"
            node "$bench_dir/drain.mjs"
            node "$bench_dir/core.mjs"
            chart
            ;;
        *)
            echo "bench: unknown measure '$measure'; expected all, calls, batch, size, drain, core, chart, report or lead" >&2
            exit 2
            ;;
    esac
}

main "$@"
