// SPDX-License-Identifier: MIT
//
// bench/net/table.mjs: the markdown table of bench/net/compare.sh: the
// median of every figure over the runs in DIR/net.<server>.jsonl, for the
// reference server and loom, and the ratio loom/reference with the issue's
// targets (throughput at least 5 times, memory per connection at most a
// fifth, 10,000 idle connections held).
//
// Usage: node bench/net/table.mjs DIR reference [loom [loom-mem]]
// (loom-mem: loom without a store, shown beside the others, no ratio)
import fs from 'node:fs';
import path from 'node:path';

const [dir, ...servers] = process.argv.slice(2);
const runs = {};
for (const s of servers) {
  runs[s] = fs.readFileSync(path.join(dir, `net.${s}.jsonl`), 'utf8')
    .split('\n').filter(Boolean).map((l) => JSON.parse(l));
}
const median = (xs) => {
  const v = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
};
const MiB = 2 ** 20;
const rows = [
  // [label, key, format, better ('up' or 'down'), target note]
  ['edits delivered to other clients, per s', 'delivered_per_s', (v) => v.toFixed(0), 'up', '≥ 5×'],
  ['edits delivered per server CPU second', 'delivered_per_server_cpu_s', (v) => v.toFixed(0), 'up', '(≥ 5×)'],
  ['edits sent, per s', 'edits_per_s', (v) => v.toFixed(0), 'up', ''],
  ['delivery latency p50, ms', 'p50_ms', (v) => v.toFixed(2), 'down', ''],
  ['delivery latency p99, ms', 'p99_ms', (v) => v.toFixed(2), 'down', ''],
  ['deliveries arrived (must be 1)', 'delivery_ratio', (v) => v.toFixed(4), '', ''],
  ['fixed rate: edits delivered, per s', 'fixed_delivered_per_s', (v) => v.toFixed(0), '', ''],
  ['fixed rate: delivery latency p50, ms', 'fixed_p50_ms', (v) => v.toFixed(2), 'down', ''],
  ['fixed rate: delivery latency p99, ms', 'fixed_p99_ms', (v) => v.toFixed(2), 'down', ''],
  ['fixed rate: deliveries arrived (must be 1)', 'fixed_delivery_ratio', (v) => v.toFixed(4), '', ''],
  ['fixed rate: server CPU, %', 'fixed_server_cpu_pct', (v) => v.toFixed(1), 'down', ''],
  ['server CPU during load, %', 'server_cpu_pct', (v) => v.toFixed(0), '', ''],
  ['generator CPU during load, %', 'loadgen_cpu_pct', (v) => v.toFixed(0), '', ''],
  ['server RSS at start, MiB', 'rss_base_bytes', (v) => (v / MiB).toFixed(1), 'down', ''],
  ['server RSS per idle connection, KiB', 'rss_per_conn_bytes', (v) => (v / 1024).toFixed(2), 'down', '≤ 1/5'],
  ['server RSS peak under load, MiB', 'rss_load_peak_bytes', (v) => (v / MiB).toFixed(1), 'down', ''],
  ['idle connections opened', 'idle_conns', (v) => v.toFixed(0), '', ''],
  ['idle connections held', 'idle_held', (v) => v.toFixed(0), 'up', '10,000'],
  ['time to open them, s', 'idle_connect_s', (v) => v.toFixed(1), 'down', ''],
];
const gens = [...new Set(servers.flatMap((s) => runs[s].map((r) => r.generator || 'node')))];
console.log(`load generator: ${gens.join(', ')}\n`);
const names = { reference: 'reference', loom: 'loom', 'loom-mem': 'loom, no store' };
const head = ['figure', ...servers.map((s) => names[s] || s)];
if (runs.loom) head.push('loom / reference', 'target');
console.log(`| ${head.join(' | ')} |`);
console.log(`|${head.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`);
for (const [label, key, fmt, , target] of rows) {
  const m = servers.map((s) => median(runs[s].map((r) => r[key])));
  const cells = [label, ...m.map((v) => (v === null ? '–' : fmt(v)))];
  if (runs.loom) {
    const [ref, loom] = [m[servers.indexOf('reference')], m[servers.indexOf('loom')]];
    cells.push(ref && loom !== null ? `${(loom / ref).toFixed(2)}×` : '–', target);
  }
  console.log(`| ${cells.join(' | ')} |`);
}
if (!runs.loom) console.log('\nloom: not measured (no `loom serve` in this build).');
const bad = servers.filter((s) => runs[s].some((r) => r.delivery_ratio !== 1 ||
  (r.fixed_delivery_ratio !== undefined && r.fixed_delivery_ratio !== 1)));
if (bad.length) console.log(`\nWARNING: some deliveries never arrived (${bad.join(', ')}): see the JSON lines.`);
