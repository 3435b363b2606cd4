#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# tests/cli/store.sh: checks the `loom store` contract (`loom help store`):
# every verb, input from a file, "-" and stdin, the JSON and binary outputs,
# encryption with --passphrase-file and LOOM_PASSPHRASE, and the error
# exits (1 with one line on stderr; 2 for usage). Registered in ctest as
# `cli-store`.
#
# Usage: tests/cli/store.sh LOOM
#   LOOM_CLI_WRAPPER  prefix for every loom run (as tests/cli/run.sh)
#   LOOM_CLI_KEEP=1   keep the scratch directory
#
# The updates are recorded yjs 13.6.33 updates (tests/vectors/cases/
# map-concurrent-set-2.json), written as hex here and turned into bytes
# with xxd. Exits 77 (ctest: skipped) when xxd is missing.
set -uo pipefail

if [ "$#" -ne 1 ]; then
    echo "usage: $0 LOOM" >&2
    exit 2
fi
loom=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")

if ! command -v xxd >/dev/null 2>&1; then
    echo "cli-store: SKIP: xxd is missing (scripts/deps.sh installs it)"
    exit 77
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/loom-cli-store.XXXXXX")
if [ "${LOOM_CLI_KEEP:-0}" = 1 ]; then
    echo "cli-store: scratch directory $tmp"
else
    trap 'rm -rf "$tmp"' EXIT
fi
cd "$tmp" || exit 1

read -r -a wrapper <<<"${LOOM_CLI_WRAPPER:-}"
passed=0
failed=0
unset LOOM_PASSPHRASE

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

# expect_exit CODE NAME ARGS...: loom ARGS (stdin from $stdin) exits CODE;
# a failure (1) must say why in exactly one line.
stdin=/dev/null
expect_exit() {
    local want=$1 name=$2 rc
    shift 2
    L "$@" <"$stdin" >out.bin 2>err.txt
    rc=$?
    if [ "$rc" -ne "$want" ]; then
        bad "$name: loom $* exited $rc, expected $want"
        sed 's/^/    /' err.txt
        return
    fi
    if [ "$want" -eq 1 ] && [ "$(wc -l <err.txt)" -ne 1 ]; then
        bad "$name: expected one line on stderr, got:"
        sed 's/^/    /' err.txt
        return
    fi
    if grep -q 'Sanitizer\|runtime error' err.txt; then
        bad "$name: sanitizer report"
        return
    fi
    ok
}

# check NAME COMMAND...: COMMAND succeeds.
check() {
    local name=$1
    shift
    if "$@"; then
        ok
    else
        bad "$name"
    fi
}

# expect_out NAME TEXT: the last output is exactly TEXT and a newline.
expect_out() {
    local name=$1 want=$2
    if [ "$(cat out.bin)" = "$want" ] && [ "$(tail -c 1 out.bin | xxd -p)" = 0a ]; then
        ok
    else
        bad "$name: output $(head -c 300 out.bin), expected $want"
    fi
}

# expect_hex NAME HEX: the last output's bytes.
expect_hex() {
    local name=$1 want=$2 got
    got=$(xxd -p out.bin | tr -d '\n')
    if [ "$got" = "$want" ]; then
        ok
    else
        bad "$name: bytes $got, expected $want"
    fi
}

# expect_err NAME PATTERN: stderr of the last run matches PATTERN.
expect_err() {
    if grep -q -- "$2" err.txt; then
        ok
    else
        bad "$1: stderr lacks '$2':"
        sed 's/^/    /' err.txt
    fi
}

# Client 10 sets m.k = "from-10", then "from-10-again"; client 20 sets it
# concurrently to "from-20" (the higher client wins).
echo 01010a002801016d016b01770766726f6d2d313000 | xxd -r -p >u1.bin
echo 01010a01a80a0001770d66726f6d2d31302d616761696e010a010001 | xxd -r -p >u2.bin
echo 01011400280101 6d016b01770766726f6d2d323000 | tr -d ' ' | xxd -r -p >u3.bin
printf '\001\001\012' >bad.bin
: >empty.bin

# ---- help and usage ------------------------------------------------------

expect_exit 0 "help" help
grep -q '^  store ' out.bin || bad "help lists store"
expect_exit 0 "help store" help store
grep -q 'meta DOC KEY VALUE' out.bin || bad "help store shows the contract"
expect_exit 0 "store --help" store --help
expect_exit 2 "no verb" store --data d
expect_exit 2 "no --data" store list
expect_exit 2 "--data without a value" store --data
expect_exit 2 "unknown verb" store --data d frobnicate
expect_exit 2 "unknown option" store --data d --frob list
expect_exit 2 "list with an argument" store --data d list x
expect_exit 2 "append without DOC" store --data d append
expect_exit 2 "dump without DOC" store --data d dump
expect_exit 2 "meta with too many arguments" store --data d meta a b c d
check "a usage error must not create the store" test ! -e d

# ---- a plain store -------------------------------------------------------

expect_exit 0 "list of a new store" store --data new/nested list
check "DIR/loom.db is created with DIR" test -f new/nested/loom.db
check "a new store lists nothing" test ! -s out.bin

expect_exit 0 "append FILE" store --data s append doc u1.bin
stdin=u2.bin
expect_exit 0 "append from stdin" store --data s append doc
stdin=u3.bin
expect_exit 0 "append -" store --data s append other -
stdin=/dev/null
expect_exit 0 "dump" store --data s dump doc
expect_out "dump" '{"m":{"k":"from-10-again"}}'
expect_exit 0 "sv" store --data s sv doc
expect_hex "sv" 010a02
expect_exit 0 "encode" store --data s encode doc
cp out.bin doc.bin
expect_exit 0 "encode decodes" update dump doc.bin
expect_out "encode decodes" '{"m":{"k":"from-10-again"}}'
expect_exit 0 "append the other client" store --data s append doc u3.bin
expect_exit 0 "dump after a concurrent set" store --data s dump doc
expect_out "dump after a concurrent set" '{"m":{"k":"from-20"}}'
expect_exit 0 "encode before compaction" store --data s encode doc
cp out.bin before.bin
expect_exit 0 "compact" store --data s compact doc
expect_exit 0 "encode after compaction" store --data s encode doc
cp out.bin after.bin
# Compaction rewrites the log as a document encodes it (runs joined, deleted
# content kept), so the bytes may shrink; the state and content may not.
check "compaction does not grow the log" \
    test "$(wc -c <after.bin)" -le "$(wc -c <before.bin)"
expect_exit 0 "sv before compaction" update sv before.bin
cp out.bin sv-before.json
expect_exit 0 "sv after compaction" update sv after.bin
check "compaction keeps the state vector" cmp -s out.bin sv-before.json
expect_exit 0 "merge of before and after" update merge before.bin after.bin
cp out.bin both.bin
expect_exit 0 "sv of before and after merged" update sv both.bin
check "compaction adds nothing" cmp -s out.bin sv-before.json
expect_exit 0 "dump after compaction" store --data s dump doc
expect_out "dump after compaction" '{"m":{"k":"from-20"}}'
expect_exit 0 "list" store --data s list
expect_out "list" "$(printf 'doc\nother')"

# Metadata.
expect_exit 0 "meta of a document without any" store --data s meta doc
expect_out "meta empty" '{}'
expect_exit 0 "meta set" store --data s meta doc title 'Hello, world'
expect_exit 0 "meta set binary" store --data s meta doc raw "$(printf 'a\377b')"
expect_exit 0 "meta get" store --data s meta doc title
check "meta get prints the raw value" \
    test "$(cat out.bin)|$(wc -c <out.bin)" = 'Hello, world|12'
expect_exit 0 "meta all" store --data s meta doc
expect_out "meta all" '{"raw":{"hex":"61ff62"},"title":"Hello, world"}'
expect_exit 1 "meta missing key" store --data s meta doc nope
expect_err "meta missing key" "nope"
expect_exit 1 "meta on a missing document" store --data s meta ghost title x

# Missing documents and bad updates.
for verb in dump encode sv compact delete meta; do
    expect_exit 1 "$verb of a missing document" store --data s "$verb" ghost
    expect_err "$verb of a missing document" "ghost: no such document"
done
expect_exit 1 "empty update" store --data s append doc empty.bin
expect_err "empty update" "empty update"
stdin=empty.bin
expect_exit 1 "empty stdin" store --data s append doc
stdin=/dev/null
expect_exit 1 "malformed update" store --data s append doc bad.bin
expect_err "malformed update" "bad.bin: malformed update at byte [0-9]"
expect_exit 1 "missing update file" store --data s append doc nope.bin
expect_exit 0 "nothing was written" store --data s dump doc
expect_out "nothing was written" '{"m":{"k":"from-20"}}'

# delete
expect_exit 0 "delete" store --data s delete other
expect_exit 0 "list after delete" store --data s list
expect_out "list after delete" "doc"
expect_exit 1 "delete again" store --data s delete other

# ---- encryption ----------------------------------------------------------

printf 'open sesame\n' >pass.txt
printf 'open sesamE\n' >wrong.txt
: >emptypass.txt
expect_exit 0 "encrypted append" store --data e --passphrase-file pass.txt append doc u1.bin
expect_exit 0 "encrypted append 2" store --data e --passphrase-file=pass.txt append doc u2.bin
expect_exit 0 "encrypted meta" store --data e --passphrase-file pass.txt meta doc title secret-title
expect_exit 0 "encrypted dump" store --data e --passphrase-file pass.txt dump doc
expect_out "encrypted dump" '{"m":{"k":"from-10-again"}}'
# LOOM_PASSPHRASE has no trailing newline to trim.
LOOM_PASSPHRASE='open sesame' expect_exit 0 "LOOM_PASSPHRASE" store --data e dump doc
expect_out "LOOM_PASSPHRASE" '{"m":{"k":"from-10-again"}}'
LOOM_PASSPHRASE='open sesame' expect_exit 0 "LOOM_PASSPHRASE meta" store --data e meta doc title
check "encrypted meta value" test "$(cat out.bin)" = secret-title
expect_exit 1 "wrong passphrase" store --data e --passphrase-file wrong.txt dump doc
expect_err "wrong passphrase" "wrong passphrase"
LOOM_PASSPHRASE=nope expect_exit 1 "wrong LOOM_PASSPHRASE" store --data e list
expect_err "wrong LOOM_PASSPHRASE" "wrong passphrase"
expect_exit 1 "no passphrase" store --data e list
expect_err "no passphrase" "passphrase required"
expect_exit 1 "empty passphrase file" store --data e --passphrase-file emptypass.txt list
expect_exit 1 "missing passphrase file" store --data e --passphrase-file nope.txt list
LOOM_PASSPHRASE='open sesame' expect_exit 1 "plain store with a passphrase" store --data s list
expect_err "plain store with a passphrase" "not encrypted"
if grep -q 'from-10\|secret-title' e/loom.db e/loom.db-wal 2>/dev/null; then
    bad "plaintext in the encrypted store's files"
else
    ok
fi
# ... while the plain store's file shows it (else that check were void).
check "plaintext in a plain store" grep -qs 'from-10' s/loom.db s/loom.db-wal

# ---- damaged files -------------------------------------------------------

mkdir -p junk
head -c 8192 /dev/zero | tr '\0' 'x' >junk/loom.db
expect_exit 1 "garbage file" store --data junk list
mkdir -p cut
head -c 4096 s/loom.db >cut/loom.db
expect_exit 1 "truncated store" store --data cut dump doc
mkdir -p plainfile
: >plainfile/loom.db.tmp
expect_exit 1 "--data is a file" store --data plainfile/loom.db.tmp list

echo "cli-store: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
