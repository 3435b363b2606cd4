#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# scripts/deps.sh: installs what loom needs to build, test and lint on
# Debian 12, and nothing that is already there.
#
#   1. Debian packages: each is checked with dpkg first; apt-get update and
#      apt-get install run only when something is missing, and only for the
#      missing packages. As root directly, otherwise through sudo when it
#      exists.
#   2. npm packages (the real yjs & co, for tests): `npm ci` from
#      package-lock.json, only when node_modules/ is missing or older than
#      the lock file.
#
# Usage: scripts/deps.sh [--no-npm]
# Environment: LOOM_SKIP_DEPS=1 skips everything (for machines where the
# packages come from elsewhere).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

if [ "${LOOM_SKIP_DEPS:-0}" = 1 ]; then
    echo "deps: skipped (LOOM_SKIP_DEPS=1)"
    exit 0
fi

want_npm=1
for arg in "$@"; do
    case "$arg" in
    --no-npm) want_npm=0 ;;
    *)
        echo "usage: scripts/deps.sh [--no-npm]" >&2
        exit 2
        ;;
    esac
done

# Build and test toolchain, libraries, sanitizer/fuzzer runtime, valgrind,
# node for the interop tests, xxd for the CLI tests, openssl for the
# certificates of the TLS test (tests/peer/tls.mjs), chromium for the
# browser test (tests/browser, driven by the npm playwright-core), and the
# linters.
packages=(
    build-essential cmake pkg-config
    clang libclang-rt-14-dev
    libcmocka-dev libjansson-dev zlib1g-dev libsqlite3-dev libsodium-dev
    libwebsockets-dev
    valgrind xxd openssl
    nodejs npm chromium
    clang-format clang-tidy cppcheck shellcheck
)

# is_present PACKAGE: 0 when the package (or, for node/npm, the command) is
# already there. node and npm also count as present when a command of that
# name exists: NodeSource's nodejs package ships npm and conflicts with
# Debian's npm package, so installing it would fail.
is_present() {
    case "$1" in
    nodejs) command -v node >/dev/null 2>&1 && return 0 ;;
    npm) command -v npm >/dev/null 2>&1 && return 0 ;;
    esac
    [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" = "install ok installed" ]
}

if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "deps: this script installs Debian packages and needs dpkg/apt;" >&2
    echo "deps: install these by other means: ${packages[*]}" >&2
    exit 1
fi

missing=()
for p in "${packages[@]}"; do
    if ! is_present "$p"; then
        missing+=("$p")
    fi
done

if [ "${#missing[@]}" -gt 0 ]; then
    echo "deps: installing ${missing[*]}"
    if [ "$(id -u)" -eq 0 ]; then
        as_root=()
    elif command -v sudo >/dev/null 2>&1; then
        as_root=(sudo)
    else
        echo "deps: not root and no sudo; as root run:" >&2
        echo "  apt-get update && apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    "${as_root[@]}" apt-get update -q
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends "${missing[@]}"
else
    echo "deps: Debian packages present"
fi

if [ "$want_npm" = 1 ]; then
    node_major=$(node -p 'process.versions.node.split(".")[0]')
    if [ "$node_major" -lt 18 ]; then
        echo "deps: node $(node --version) is too old; loom's tests need node >= 18" >&2
        exit 1
    fi
    # npm ci writes node_modules/.package-lock.json last, so its age tells
    # whether the tree matches the lock file.
    stamp=node_modules/.package-lock.json
    if [ ! -d node_modules ] || [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ]; then
        echo "deps: npm ci"
        npm ci --no-audit --no-fund
    else
        echo "deps: node_modules up to date"
    fi
fi
