#!/usr/bin/env bash
# Builds the Worker into build/worker with worker-build, then checks its size.
#
# worker-build runs the local wasm-bindgen, and the wasm-opt and esbuild of
# node_modules, because its own download of them needs GitHub. Run
# scripts/install-worker-tools.sh once first.
#
# The Worker is built for size: opt-level "z" here, with the LTO and single
# codegen unit of the workspace's release profile, then `wasm-opt -Oz`. This
# script runs wasm-opt itself, without the function names section that
# worker-build 0.8.7 always keeps. The build fails if the gzipped wasm plus
# the gzipped JS (the bundle and shim.mjs) exceed MAX_GZIP_BYTES (by default
# 96 KB, 98,304 bytes).
#
# Honours CARGO_TARGET_DIR; by default the workspace's target/ is used.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out_dir="$repo_root/build"
max_gzip_bytes="${MAX_GZIP_BYTES:-98304}"

log() {
    printf 'build-worker: %s\n' "$*"
}

# Prints the path of a required tool, or fails with what to install.
require_tool() {
    local path="$1" name="$2"
    if [[ ! -x "$path" ]]; then
        log "error: $name not found at $path; run scripts/install-worker-tools.sh"
        exit 1
    fi
    printf '%s\n' "$path"
}

# Fails unless the wasm-bindgen CLI has the exact version of the library in
# Cargo.lock, which wasm-bindgen requires.
require_bindgen_version() {
    local locked installed
    locked="$(awk '$0 == "name = \"wasm-bindgen\"" { found = 1; next }
        found && /^version = / { gsub(/"/, "", $3); print $3; exit }' "$repo_root/Cargo.lock")"
    installed="$("$WASM_BINDGEN_BIN" --version | awk '{ print $NF }')"
    if [[ "$installed" != "$locked" ]]; then
        log "error: wasm-bindgen $installed is installed but Cargo.lock has $locked; run scripts/install-worker-tools.sh"
        exit 1
    fi
}

gzip_size() {
    gzip -9 --stdout "$1" | wc -c
}

build() {
    export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo_root/target}"
    export CARGO_PROFILE_RELEASE_OPT_LEVEL=z
    export CARGO_PROFILE_RELEASE_LTO=true
    export CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1

    WASM_BINDGEN_BIN="$(require_tool "$(command -v wasm-bindgen || echo wasm-bindgen)" wasm-bindgen)"
    WASM_OPT_BIN="$(require_tool "$repo_root/node_modules/.bin/wasm-opt" wasm-opt)"
    ESBUILD_BIN="$(require_tool "$repo_root/node_modules/.bin/esbuild" esbuild)"
    export WASM_BINDGEN_BIN WASM_OPT_BIN ESBUILD_BIN
    require_bindgen_version
    require_tool "$(command -v worker-build || echo worker-build)" worker-build >/dev/null

    log "building into $out_dir (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
    (cd "$repo_root/crates/worker" && worker-build --release --out-dir "$out_dir")
}

# Optimizes the wasm for size and drops its names section. The features are
# those worker-build 0.8.7 enables, so that wasm-opt emits nothing newer than
# what workerd reads.
optimize_wasm() {
    local wasm="$out_dir/index_bg.wasm"
    log "running wasm-opt -Oz on $wasm"
    "$WASM_OPT_BIN" "$wasm" -Oz --strip-debug \
        --enable-mutable-globals --enable-sign-ext --enable-nontrapping-float-to-int \
        --enable-bulk-memory --enable-multivalue --enable-reference-types \
        --enable-exception-handling \
        -o "$wasm.opt"
    mv "$wasm.opt" "$wasm"
}

check_size() {
    local wasm="$out_dir/index_bg.wasm"
    local bundle="$out_dir/index.js"
    local shim="$out_dir/worker/shim.mjs"
    local file
    for file in "$wasm" "$bundle" "$shim"; do
        if [[ ! -f "$file" ]]; then
            log "error: expected build output $file is missing"
            exit 1
        fi
    done

    local wasm_gzip js_gzip total
    wasm_gzip="$(gzip_size "$wasm")"
    js_gzip=$(($(gzip_size "$bundle") + $(gzip_size "$shim")))
    total=$((wasm_gzip + js_gzip))
    log "gzipped sizes: wasm $wasm_gzip bytes, JS shim $js_gzip bytes, total $total bytes (limit $max_gzip_bytes)"

    if ((total > max_gzip_bytes)); then
        log "error: the Worker is $total bytes gzipped, over the limit of $max_gzip_bytes"
        exit 1
    fi
}

build
optimize_wasm
check_size
