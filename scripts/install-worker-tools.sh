#!/usr/bin/env bash
# Installs what building and testing the Worker needs: the wasm32 Rust target,
# wasm-bindgen-cli at the version in Cargo.lock, worker-build, and the npm
# packages (Miniflare, wrangler, esbuild, binaryen) from package-lock.json.
#
# Each step is skipped when the tool is already there at the right version, so
# running the script again costs a few seconds. Only crates.io and the npm
# registry are contacted: worker-build is later pointed at these local binaries
# because its own download of wasm-bindgen, wasm-opt and esbuild needs GitHub.
set -euo pipefail

WORKER_BUILD_VERSION="0.8.7"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

log() {
    printf 'install-worker-tools: %s\n' "$*"
}

# Prints the version of a package in Cargo.lock, or nothing if it is absent.
locked_version() {
    awk -v name="$1" '
        $0 == "name = \"" name "\"" { found = 1; next }
        found && /^version = / { gsub(/"/, "", $3); print $3; exit }
    ' Cargo.lock
}

install_wasm_target() {
    if rustup target list --installed | grep -qx 'wasm32-unknown-unknown'; then
        log "wasm32-unknown-unknown target already installed"
        return
    fi
    log "adding the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown
}

# Installs a cargo binary unless the last word of `BIN --version` is VERSION
# (wasm-bindgen prints "wasm-bindgen 0.2.130", worker-build only "0.8.7").
# NOTE: without `--locked`, cargo resolves the newest compatible dependencies,
# so a later release of one of them could break this build. `--locked` is not
# used because it failed for wasm-bindgen-cli when this script was written.
install_cargo_tool() {
    local crate="$1" bin="$2" version="$3"
    local installed
    installed="$("$bin" --version 2>/dev/null | awk '{ print $NF }' || true)"
    if [[ "$installed" == "$version" ]]; then
        log "$bin $version already installed"
        return
    fi
    log "installing $crate $version (found: ${installed:-none})"
    cargo install "$crate" --version "$version" --force
}

# worker-build links OpenSSL, so its build needs the headers and pkg-config.
install_system_packages() {
    if dpkg -s libssl-dev pkg-config >/dev/null 2>&1; then
        log "libssl-dev and pkg-config already installed"
        return
    fi
    if ! command -v apt-get >/dev/null; then
        log "warning: install the OpenSSL headers and pkg-config, which worker-build needs"
        return
    fi
    log "installing libssl-dev and pkg-config"
    apt-get update
    apt-get install -y libssl-dev pkg-config
}

install_npm_packages() {
    local stamp="node_modules/.package-lock.sha256"
    local wanted
    wanted="$(sha256sum package-lock.json | awk '{ print $1 }')"
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$wanted" ]]; then
        log "npm packages already match package-lock.json"
        return
    fi
    log "installing npm packages with npm ci"
    npm ci --no-audit --no-fund
    printf '%s\n' "$wanted" >"$stamp"
}

main() {
    export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

    local bindgen_version
    bindgen_version="$(locked_version wasm-bindgen)"
    if [[ -z "$bindgen_version" ]]; then
        log "error: wasm-bindgen is missing from Cargo.lock; run \`cargo metadata\` at the root first"
        exit 1
    fi

    install_wasm_target
    install_system_packages
    install_cargo_tool wasm-bindgen-cli wasm-bindgen "$bindgen_version"
    install_cargo_tool worker-build worker-build "$WORKER_BUILD_VERSION"
    install_npm_packages
}

main "$@"
