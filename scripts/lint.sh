#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# scripts/lint.sh: the style gates of CI (STYLE.md 2.7, 2.8).
#
#   scripts/lint.sh               clang-format check, tools/check-src.sh,
#                                 the shell linter, cppcheck (make lint)
#   scripts/lint.sh --fix-format  rewrite the C files with clang-format
#                                 (make format)
#   scripts/lint.sh --tidy        clang-tidy over src/ and tools/ (make tidy)
#
# C files: every *.c/*.h that git tracks or would track (new, not ignored)
# under include/ src/ tools/ tests/ bench/; without git, every such file
# found there. cppcheck and clang-tidy read build/compile_commands.json
# (configured here if missing).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
build=${LOOM_LINT_BUILD:-build}
jobs=${JOBS:-$(nproc 2>/dev/null || echo 2)}
mode=${1:-check}

c_files() {
    local dirs=(include src tools tests bench)
    if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        git ls-files -z --cached --others --exclude-standard -- \
            "${dirs[@]/%//*.c}" "${dirs[@]/%//*.h}" |
            while IFS= read -r -d '' f; do
                # deleted but still in the index
                [ -f "$f" ] && printf '%s\0' "$f"
            done
    else
        find "${dirs[@]}" -type f \( -name '*.c' -o -name '*.h' \) -print0 2>/dev/null
    fi
}

need() {
    if ! command -v "$1" >/dev/null 2>&1; then
        echo "lint: $1 is missing (scripts/deps.sh installs it)" >&2
        exit 1
    fi
}

compile_db() {
    if [ ! -f "$build/compile_commands.json" ]; then
        cmake -S . -B "$build" -DCMAKE_C_COMPILER=gcc >/dev/null
    fi
}

mapfile -d '' files < <(c_files | sort -z)

case "$mode" in
--fix-format)
    need clang-format
    if [ "${#files[@]}" -gt 0 ]; then
        clang-format -i "${files[@]}"
    fi
    echo "format: ${#files[@]} file(s) formatted"
    ;;
check)
    need clang-format
    need cppcheck
    need shellcheck
    status=0

    echo "lint: clang-format (${#files[@]} files)"
    if [ "${#files[@]}" -gt 0 ] &&
        ! clang-format --dry-run --Werror "${files[@]}"; then
        echo "lint: clang-format: run 'make format'" >&2
        status=1
    fi

    echo "lint: tools/check-src.sh"
    tools/check-src.sh src || status=1

    echo "lint: shellcheck"
    if ! shellcheck scripts/*.sh tools/*.sh tests/cli/*.sh bench/*.sh bench/net/*.sh .ci/run; then
        status=1
    fi

    echo "lint: cppcheck"
    compile_db
    # Only our sources: the build tree's own files (CMake checks) are not.
    if ! cppcheck --project="$build/compile_commands.json" \
        --enable=warning,performance,portability --inline-suppr \
        --suppress=missingIncludeSystem --suppress=unmatchedSuppression \
        --error-exitcode=1 -q -j "$jobs" \
        -i "$build" -i node_modules \
        --template='{file}:{line}: {severity}: {message} [{id}]'; then
        status=1
    fi

    if [ "$status" -ne 0 ]; then
        echo "lint: FAILED" >&2
    else
        echo "lint: clean"
    fi
    exit "$status"
    ;;
--tidy)
    need clang-tidy
    compile_db
    mapfile -d '' tus < <(printf '%s\0' "${files[@]}" | grep -zE '^(src|tools)/.*\.c$' || true)
    if [ "${#tus[@]}" -eq 0 ]; then
        echo "tidy: nothing to check"
        exit 0
    fi
    echo "tidy: clang-tidy (${#tus[@]} files)"
    printf '%s\0' "${tus[@]}" |
        xargs -0 -n 4 -P "$jobs" clang-tidy -p "$build" --quiet
    ;;
*)
    echo "usage: scripts/lint.sh [--fix-format|--tidy]" >&2
    exit 2
    ;;
esac
