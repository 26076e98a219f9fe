#!/usr/bin/env bash
# Runs every test: the Rust workspace (the core, and the native runner against
# real SQLite files), then the Worker, built to wasm, inside workerd through
# Miniflare. Run scripts/install-worker-tools.sh once first.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

echo "test: Rust workspace (the core and the native runner)"
cargo test --locked

echo "test: Worker in workerd"
bash scripts/build-worker.sh
node --test tests/worker/
