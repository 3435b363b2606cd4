#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# bench/compare.sh: runs the same workloads in loom (`loom bench`) and in the
# real Yjs (bench/yjs-bench.mjs, node_modules' yjs 13.6.33), RUNS times each,
# alternating the two, and prints a markdown table of the medians: figure,
# yjs, loom, ratio yjs/loom (above 1: loom is faster or smaller).
#
#   bench/compare.sh [LOOM]        LOOM: the CLI to measure (build/loom)
#
# Workloads: the automerge-paper and friendsforever_flat editing traces
# (plain, and --updates: every transaction's update taken as a provider
# would), map 100000, map 100000 --keys 1000, b1 6000, and a 10x larger
# synthetic trace (friendsforever_flat replayed 10 times, each copy appended
# after the previous: 260k edits instead of 26k) to show how the time per
# edit grows with the document; and automerge-paper made non-ASCII
# (bench/traces/unicode.mjs), plain and --updates.
#
# Environment: RUNS (default 3) runs per workload, RUNS_LARGE (default 1)
# for the 10x trace, BENCH_OUT (default build/bench) keeps the raw JSON
# lines, NODE (default node). Every run checks its result; a wrong result
# (or any failure) stops the script with status 1.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
loom=${1:-$root/build/loom}
runs=${RUNS:-3}
runs_large=${RUNS_LARGE:-1}
out=${BENCH_OUT:-$root/build/bench}
node=${NODE:-node}
traces=$root/bench/traces

if [ ! -x "$loom" ]; then
    echo "compare: $loom is not built (run make)" >&2
    exit 1
fi
if [ ! -d "$root/node_modules/yjs" ]; then
    echo "compare: node_modules/yjs is missing (run make deps)" >&2
    exit 1
fi
mkdir -p "$out"
rm -f "$out"/*.jsonl
# What is measured: the commit now (src/ may change while this runs).
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git -C "$root" status --porcelain -- src include 2>/dev/null)" ]; then
    commit="$commit + uncommitted changes in src/ include/"
fi

# run NAME COUNT ARGS...: COUNT runs of both engines, alternating; each JSON
# line is appended to $out/NAME.{loom,yjs}.jsonl.
run() {
    local name=$1 count=$2
    shift 2
    local i
    for ((i = 1; i <= count; i++)); do
        echo "compare: $name: run $i/$count: loom bench $*" >&2
        "$loom" bench "$@" >>"$out/$name.loom.jsonl"
        echo "compare: $name: run $i/$count: yjs-bench $*" >&2
        "$node" --expose-gc "$root/bench/yjs-bench.mjs" "$@" >>"$out/$name.yjs.jsonl"
    done
}

am=$traces/automerge-paper.json.gz
ff=$traces/friendsforever_flat.json.gz
run automerge-paper "$runs" trace "$am"
run automerge-paper-updates "$runs" trace "$am" --updates
run friendsforever "$runs" trace "$ff"
run friendsforever-updates "$runs" trace "$ff" --updates
run map "$runs" map 100000
run map-keys "$runs" map 100000 --keys 1000
run b1 "$runs" b1 6000
run friendsforever-x10 "$runs_large" trace "$ff" --repeat 10
# automerge-paper with every letter and digit made non-ASCII (2-4 bytes of
# UTF-8, digits as surrogate pairs): bench/traces/unicode.mjs
amu=$out/automerge-paper-unicode.json.gz
"$node" "$root/bench/traces/unicode.mjs" "$am" "$amu"
run automerge-paper-unicode "$runs" trace "$amu"
run automerge-paper-unicode-updates "$runs" trace "$amu" --updates

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n 1)
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'); machine: $(nproc) cores, ${cpu:-unknown CPU}"
echo "loom: $("$loom" --version) ($commit); yjs: $("$node" -p "require('$root/node_modules/yjs/package.json').version") on node $("$node" --version)"
echo "medians of $runs runs ($runs_large for the 10x trace); times are wall-clock ms unless marked cpu"
echo

"$node" - "$out" <<'EOF'
const fs = require('fs')
const dir = process.argv[2]

function lines (name, engine) {
  const text = fs.readFileSync(`${dir}/${name}.${engine}.jsonl`, 'utf8')
  return text.trim().split('\n').map((l) => JSON.parse(l))
}

function median (xs) {
  const s = xs.filter((x) => x !== null && x !== undefined).sort((a, b) => a - b)
  if (s.length === 0) return null
  const m = s.length >> 1
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}

// The median of one key, or of f(line) for a derived figure.
function fig (name, engine, key) {
  const f = typeof key === 'function' ? key : (o) => o[key]
  return median(lines(name, engine).map(f))
}

function fmt (x, unit) {
  if (x === null) return 'n/a'
  if (unit === 'ms') return x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2)
  if (unit === 'B') {
    if (x >= 1 << 20) return `${(x / (1 << 20)).toFixed(1)} MiB`
    if (x >= 1 << 10) return `${(x / (1 << 10)).toFixed(1)} KiB`
    return `${Math.round(x)} B`
  }
  if (unit === 'ns') return x >= 100 ? Math.round(x).toLocaleString('en-US') : x.toFixed(1)
  return Math.round(x).toLocaleString('en-US')
}

const rows = []
function row (label, name, key, unit) {
  const y = fig(name, 'yjs', key)
  const l = fig(name, 'loom', key)
  const ratio = y !== null && l !== null && l > 0 ? (y / l).toFixed(2) : 'n/a'
  rows.push([label, fmt(y, unit), fmt(l, unit), ratio])
  return { y, l }
}
const nsPerOp = (o) => (o.apply_ms * 1e6) / o.ops
const cpuNsPerOp = (o) => (o.apply_cpu_ms * 1e6) / o.ops

for (const [title, name] of [['automerge-paper (259,778 edits)', 'automerge-paper'],
  ['friendsforever_flat (26,078 edits)', 'friendsforever']]) {
  row(`${title}: apply ms`, name, 'apply_ms', 'ms')
  row(`${title}: apply ms, cpu`, name, 'apply_cpu_ms', 'ms')
  row(`${title}: apply ms with --updates`, `${name}-updates`, 'apply_ms', 'ms')
  row(`${title}: update bytes`, `${name}-updates`, 'update_bytes', 'B')
  row(`${title}: encode ms`, name, 'encode_ms', 'ms')
  row(`${title}: v1 bytes`, name, 'v1_bytes', 'B')
  row(`${title}: load ms`, name, 'load_ms', 'ms')
  row(`${title}: load ms, warm`, name, 'load_warm_ms', 'ms')
  row(`${title}: doc memory`, name, 'doc_mem_bytes', 'B')
  row(`${title}: peak RSS`, name, 'peak_rss_bytes', 'B')
}
for (const [title, name] of [['map 100000', 'map'], ['map 100000 --keys 1000', 'map-keys']]) {
  row(`${title}: apply ms`, name, 'apply_ms', 'ms')
  row(`${title}: encode ms`, name, 'encode_ms', 'ms')
  row(`${title}: v1 bytes`, name, 'v1_bytes', 'B')
  row(`${title}: load ms`, name, 'load_ms', 'ms')
  row(`${title}: load ms, warm`, name, 'load_warm_ms', 'ms')
  row(`${title}: doc memory`, name, 'doc_mem_bytes', 'B')
  row(`${title}: peak RSS`, name, 'peak_rss_bytes', 'B')
}
row('b1 6000 (B1.1): apply ms (both peers)', 'b1', 'apply_ms', 'ms')
row('b1 6000 (B1.1): update bytes', 'b1', 'update_bytes', 'B')
row('b1 6000 (B1.1): v1 bytes', 'b1', 'v1_bytes', 'B')
row('b1 6000 (B1.1): doc memory (both docs)', 'b1', 'doc_mem_bytes', 'B')
const x1 = row('friendsforever_flat x1 (26k edits): ns/edit', 'friendsforever', nsPerOp, 'ns')
const x10 = row('friendsforever_flat x10 (261k edits): ns/edit', 'friendsforever-x10', nsPerOp, 'ns')
const c1 = row('friendsforever_flat x1: ns/edit, cpu', 'friendsforever', cpuNsPerOp, 'ns')
const c10 = row('friendsforever_flat x10: ns/edit, cpu', 'friendsforever-x10', cpuNsPerOp, 'ns')
rows.push(['growth of ns/edit, x10 / x1 (flat = 1)', `${(x10.y / x1.y).toFixed(1)}x`,
  `${(x10.l / x1.l).toFixed(1)}x`, ''])
rows.push(['growth of cpu ns/edit, x10 / x1', `${(c10.y / c1.y).toFixed(1)}x`,
  `${(c10.l / c1.l).toFixed(1)}x`, ''])
row('friendsforever_flat x10: doc memory', 'friendsforever-x10', 'doc_mem_bytes', 'B')
row('friendsforever_flat x10: v1 bytes', 'friendsforever-x10', 'v1_bytes', 'B')
{
  const t = 'automerge-paper, non-ASCII (unicode.mjs)'
  row(`${t}: apply ms`, 'automerge-paper-unicode', 'apply_ms', 'ms')
  row(`${t}: apply ms, cpu`, 'automerge-paper-unicode', 'apply_cpu_ms', 'ms')
  row(`${t}: apply ms with --updates`, 'automerge-paper-unicode-updates', 'apply_ms', 'ms')
  row(`${t}: update bytes`, 'automerge-paper-unicode-updates', 'update_bytes', 'B')
  row(`${t}: encode ms`, 'automerge-paper-unicode', 'encode_ms', 'ms')
  row(`${t}: v1 bytes`, 'automerge-paper-unicode', 'v1_bytes', 'B')
  row(`${t}: load ms`, 'automerge-paper-unicode', 'load_ms', 'ms')
  row(`${t}: load ms, warm`, 'automerge-paper-unicode', 'load_warm_ms', 'ms')
  row(`${t}: doc memory`, 'automerge-paper-unicode', 'doc_mem_bytes', 'B')
}

console.log('| figure | yjs | loom | yjs/loom |')
console.log('|---|---:|---:|---:|')
for (const r of rows) console.log(`| ${r.join(' | ')} |`)
EOF
