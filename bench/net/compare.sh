#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# bench/net/compare.sh: the same network load (bench/net/load.mjs) against
# the reference y-websocket server (npm @y/websocket-server) and against
# `loom serve`, in one run, RUNS times each (alternating), and a markdown
# table of the medians with the ratio loom/reference. Until the loom binary
# has a `serve` command, only the reference runs and the table says so.
#
#   bench/net/compare.sh [LOOM]      LOOM: the loom binary (build/loom)
#
# Environment: RUNS (default 3), ROOMS (10), CLIENTS (10 per room), SECS
# (10), WINDOW (4), RATE (0: as fast as delivered), THREADS (1: generator
# threads for the load), FIXED_RATE (5 edits/s per client) and FIXED_SECS
# (6) for the fixed-rate latency phase, MEMORY (1: also loom without a
# store, column loom-mem; 0: not), IDLE (10000 idle connections), HOLD
# (5 s), GEN (c: build/loom_loadgen when built; node: the Node clients);
# BENCH_OUT (build/bench) keeps the JSON lines of every run in
# net.<server>.jsonl. The open-files limit is raised to the hard limit
# first: the idle phase needs one descriptor per connection in both the
# generator and the server.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
loom=${1:-$root/build/loom}
runs=${RUNS:-3}
out=${BENCH_OUT:-$root/build/bench}
node=${NODE:-node}
load=(
    --rooms "${ROOMS:-10}" --clients "${CLIENTS:-10}" --secs "${SECS:-10}"
    --window "${WINDOW:-4}" --rate "${RATE:-0}" --idle "${IDLE:-10000}" --hold "${HOLD:-5}"
    --threads "${THREADS:-1}" --fixed-rate "${FIXED_RATE:-5}" --fixed-secs "${FIXED_SECS:-6}"
)

if [ ! -d "$root/node_modules/@y/websocket-server" ]; then
    echo "net-compare: node_modules/@y/websocket-server is missing (run make deps)" >&2
    exit 1
fi
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# The C generator when it is built (make bench-net builds it), unless
# GEN=node asks for the Node clients.
gen=$(dirname "$loom")/loom_loadgen
if [ "${GEN:-c}" != node ] && [ -x "$gen" ]; then
    load+=(--gen "$gen")
else
    echo "net-compare: load from Node clients (no $gen, or GEN=node)" >&2
fi

# loom-mem: loom serve without a store, as the reference runs (MEMORY=0
# leaves it out).
servers=(reference)
if [ -x "$loom" ] && "$loom" help serve >/dev/null 2>&1; then
    servers+=(loom)
    [ "${MEMORY:-1}" = 0 ] || servers+=(loom-mem)
else
    echo "net-compare: $loom has no 'serve' command: measuring the reference server only" >&2
fi

mkdir -p "$out"
for s in "${servers[@]}"; do
    rm -f "$out/net.$s.jsonl"
done
for ((i = 1; i <= runs; i++)); do
    for s in "${servers[@]}"; do
        echo "net-compare: run $i/$runs: $s" >&2
        args=(--server "$s")
        [ "$s" != loom-mem ] || args=(--server loom --memory)
        "$node" "$root/bench/net/load.mjs" "${args[@]}" --loom "$loom" "${load[@]}" >>"$out/net.$s.jsonl"
    done
done

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n 1)
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'); machine: $(nproc) cores, ${cpu:-unknown CPU}; loom $commit"
echo "load: ${load[*]}; open files limit $(ulimit -n); medians of $runs runs"
echo
"$node" "$root/bench/net/table.mjs" "$out" "${servers[@]}"
