#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# tests/cli/run.sh: checks the `loom update` contract (`loom help update`)
# against the Yjs test vectors. Registered in ctest as `cli`.
#
# Usage: tests/cli/run.sh LOOM VECTORS_DIR
#   LOOM_CLI_WRAPPER  prefix for every loom run, e.g. "valgrind -q
#                     --error-exitcode=99" (make valgrind sets it)
#   LOOM_CLI_KEEP=1   keep the scratch directory
#
# How: tests/cli/vec.mjs (node, run once) reads the vectors and writes the
# inputs as hex, the expected outputs and a list of jobs (loom command
# lines). This script turns the hex into files with `xxd -r -p`, runs every
# job, compares output bytes with cmp, checks the exit status and stderr of
# malformed inputs, and hands the JSON outputs back to vec.mjs (run once
# more) for comparison. Exits 77 (ctest: skipped) when node or xxd is
# missing, 1 when a check failed.
set -uo pipefail

if [ "$#" -ne 2 ]; then
    echo "usage: $0 LOOM VECTORS_DIR" >&2
    exit 2
fi
loom=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
vectors=$(cd "$2" && pwd)
vec="$(cd "$(dirname "$0")" && pwd)/vec.mjs"

for tool in node xxd; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "cli: SKIP: $tool is missing (scripts/deps.sh installs it)"
        exit 77
    fi
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/loom-cli.XXXXXX")
if [ "${LOOM_CLI_KEEP:-0}" = 1 ]; then
    echo "cli: scratch directory $tmp"
else
    trap 'rm -rf "$tmp"' EXIT
fi
cd "$tmp" || exit 1

read -r -a wrapper <<<"${LOOM_CLI_WRAPPER:-}"
passed=0
failed=0

L() {
    "${wrapper[@]}" "$loom" "$@"
}

ok() {
    passed=$((passed + 1))
}

bad() {
    failed=$((failed + 1))
    echo "FAIL: $*"
}

# expect_exit CODE NAME ARGS...: loom ARGS exits CODE.
expect_exit() {
    local want=$1 name=$2 rc
    shift 2
    L "$@" >out.txt 2>err.txt
    rc=$?
    if [ "$rc" -eq "$want" ]; then
        ok
    else
        bad "$name: loom $* exited $rc, expected $want"
        sed 's/^/    /' err.txt
    fi
}

# ---- the program ---------------------------------------------------------

expect_exit 0 "--version" --version
grep -q '^loom [0-9]' out.txt || bad "--version prints 'loom VERSION'"
expect_exit 0 "help" help
grep -q 'update' out.txt || bad "help lists update"
expect_exit 0 "help update" help update
grep -q 'diff FILE SVFILE' out.txt || bad "help update shows the contract"
expect_exit 0 "update --help" update --help
expect_exit 2 "no command" 
expect_exit 2 "unknown command" no-such-command
expect_exit 2 "unknown update command" update no-such-command
expect_exit 2 "dump without files" update dump
expect_exit 2 "dump --root without a value" update dump --root
expect_exit 2 "dump with a bad kind" update dump --root m=bogus x.bin
expect_exit 2 "dump with an unknown option" update dump --frobnicate x.bin
expect_exit 2 "diff with one file" update diff x.bin
expect_exit 2 "merge without files" update merge
expect_exit 1 "missing file" update encode does-not-exist.bin
grep -q 'does-not-exist.bin' err.txt || bad "missing file: stderr names it"

# ---- the vector jobs -----------------------------------------------------

if ! node "$vec" prepare "$vectors" >jobs.tsv; then
    echo "cli: reading the vectors failed"
    exit 1
fi
for h in in/*.hex want/*.hex; do
    xxd -r -p "$h" >"${h%.hex}.bin"
done
mkdir -p out err status
njson=0

while IFS=$'\t' read -r -a job; do
    id=${job[0]}
    expect=${job[1]}
    argv=()
    stdin=/dev/null
    for a in "${job[@]:2}"; do
        if [ "${a:0:1}" = "<" ]; then
            stdin=${a:1}
        else
            argv+=("$a")
        fi
    done
    L "${argv[@]}" <"$stdin" >"out/$id" 2>"err/$id"
    rc=$?
    echo "$rc" >"status/$id"
    if [ "$rc" -eq 0 ] && { [ "$expect" = json ] || [ "$expect" = sv ]; }; then
        njson=$((njson + 1)) # compared by vec.mjs verify below
    fi
    case "$expect" in
    malformed:*)
        culprit=${expect#malformed:}
        culprit=${culprit##*/}
        if [ "$rc" -eq 1 ] && grep -qF "$culprit" "err/$id" &&
            grep -q 'byte [0-9]' "err/$id" &&
            ! grep -q 'Sanitizer\|runtime error' "err/$id"; then
            ok
        else
            bad "$id: loom ${argv[*]} exited $rc; expected 1 and a message naming $culprit and the byte"
            sed 's/^/    /' "err/$id"
        fi
        ;;
    *)
        if [ "$rc" -ne 0 ]; then
            bad "$id: loom ${argv[*]} exited $rc"
            sed 's/^/    /' "err/$id"
        elif [ "$expect" = bytes ]; then
            if cmp -s "out/$id" "want/$id.bin"; then
                ok
            else
                bad "$id: bytes differ"
                echo "    loom:     $(xxd -p "out/$id" | tr -d '\n')"
                echo "    expected: $(cat "want/$id.hex")"
            fi
        fi
        ;;
    esac
done <jobs.tsv

# JSON and state vector outputs, compared by node in one run.
if node "$vec" verify <jobs.tsv >verify.txt; then
    passed=$((passed + njson))
else
    cat verify.txt
    nbad=$(grep -c '^FAIL' verify.txt)
    failed=$((failed + nbad))
    passed=$((passed + njson - nbad))
fi

echo "cli: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
