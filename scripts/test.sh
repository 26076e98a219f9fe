#!/usr/bin/env bash
# Runs every test: the Rust workspace (the core, and the native runner against
# real SQLite files), then the Worker, built to wasm, inside workerd through
# Miniflare. It first installs what the Worker build needs, which takes a few
# seconds once the tools are there.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

bash scripts/install-worker-tools.sh

echo "test: Rust workspace (the core and the native runner)"
cargo test --locked

echo "test: Worker in workerd"
bash scripts/build-worker.sh
node --test --test-concurrency=1 tests/worker/
