// SPDX-License-Identifier: MIT
//
// bench/yjs-bench.mjs: the workloads of `loom bench` run in the real Yjs
// (the repo's node_modules, yjs 13.6.33), printing the same JSON line, so
// bench/compare.sh can put the two side by side.
//
//   node --expose-gc bench/yjs-bench.mjs trace FILE [--updates] [--repeat K]
//   node --expose-gc bench/yjs-bench.mjs map N [--keys K]
//   node --expose-gc bench/yjs-bench.mjs b1 N
//
// The work inside each timing is the same as in tools/loom/cmd_bench.c:
// one transaction per patch (delete, then insert), fixed client ids 1 and 2,
// positions converted from code points to UTF-16 units before the clock
// starts, results checked (exit 1 when wrong).
//
// doc_mem_bytes is approximate: the V8 heap grown by the doc, heapUsed after
// a full GC minus heapUsed after a full GC before the doc was made (needs
// --expose-gc; null without it). peak_rss_bytes is maxRSS of the process
// (the whole node runtime), with the high-water mark reset after the input
// is prepared where Linux allows, as the C side does. The trace is parsed in
// a worker thread, whose heap goes back to the system when it ends (V8 keeps
// the main heap's pages after a GC, so parsing here would stay in the RSS).

import fs from 'node:fs'
import zlib from 'node:zlib'
import { performance } from 'node:perf_hooks'
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads'
import * as Y from 'yjs'

function die (msg, code = 1) {
  process.stderr.write(`yjs-bench: ${msg}\n`)
  process.exit(code)
}

function usage () {
  die('usage: yjs-bench.mjs trace FILE [--updates] [--repeat K] | map N [--keys K] | b1 N', 2)
}

function count (s) {
  if (!/^[0-9]+$/.test(s || '') || Number(s) <= 0) usage()
  return Number(s)
}

const gc = typeof global.gc === 'function' ? global.gc : null

function heapUsed () {
  if (!gc) return null
  gc()
  gc()
  return process.memoryUsage().heapUsed
}

function resetPeakRss () {
  if (gc) gc()
  try {
    fs.writeFileSync('/proc/self/clear_refs', '5')
  } catch {
    // not Linux, or not allowed: the figure then includes the preparation
  }
}

function peakRss () {
  return process.resourceUsage().maxRSS * 1024
}

function cpuMs (since) {
  const u = process.cpuUsage(since)
  return (u.user + u.system) / 1000
}

function newDoc (client) {
  const doc = new Y.Doc({ gc: true })
  doc.clientID = client
  return doc
}

// Loads after the first: the same update applied to WARM_LOADS more new
// docs, as a server loads documents again and again (the JIT warm); the
// median is load_warm_ms (tools/loom/cmd_bench.c does the same).
const WARM_LOADS = 5

function encodeAndLoad (doc) {
  let t0 = performance.now()
  const v1 = Y.encodeStateAsUpdate(doc)
  const encodeMs = performance.now() - t0
  const loaded = newDoc(2)
  t0 = performance.now()
  Y.applyUpdate(loaded, v1)
  const loadMs = performance.now() - t0
  const warm = []
  for (let i = 0; i < WARM_LOADS; i++) {
    const d = newDoc(3)
    t0 = performance.now()
    Y.applyUpdate(d, v1)
    warm.push(performance.now() - t0)
    d.destroy()
  }
  warm.sort((a, b) => a - b)
  const loadWarmMs = warm[WARM_LOADS >> 1]
  return { v1, encodeMs, loaded, loadMs, loadWarmMs }
}

function fixed (x) {
  return Math.round(x * 1000) / 1000
}

function print (o) {
  process.stdout.write(JSON.stringify(o) + '\n')
}

// ---- trace -----------------------------------------------------------------

// Patches with positions and lengths in UTF-16 units, replayed once on a
// gap buffer of code-point widths (as tools/loom/trace.c does). Runs in the
// worker; the inserted strings travel as one string and offsets.
function prepareTrace (path) {
  let raw = fs.readFileSync(path)
  if (raw[0] === 0x1f && raw[1] === 0x8b) raw = zlib.gunzipSync(raw)
  const data = JSON.parse(raw.toString('utf8'))
  if (data.kind !== undefined && data.kind !== 'sequential') die(`${path}: not a sequential trace`)
  if (data.startContent) die(`${path}: startContent must be empty`)
  let n = 0
  for (const txn of data.txns) n += txn.patches.length
  const pos = new Uint32Array(n)
  const del = new Uint32Array(n)
  const insOff = new Uint32Array(n)
  const insLen = new Uint32Array(n)
  const ins = []
  let off = 0
  let w = new Uint8Array(1 << 16)
  let gs = 0
  let ge = w.length
  let units = 0
  const len = () => gs + (w.length - ge)
  let k = 0
  for (const txn of data.txns) {
    for (const [p, d, s] of txn.patches) {
      if (p > len() || d > len() - p) die(`${path}: patch ${k} out of range`)
      while (gs > p) { w[--ge] = w[--gs]; units -= w[ge] }
      while (gs < p) { units += (w[gs++] = w[ge++]) }
      let d16 = 0
      for (let i = 0; i < d; i++) d16 += w[ge + i]
      ge += d
      const widths = []
      for (const ch of s) widths.push(ch.length)
      if (ge - gs < widths.length) {
        const tail = w.length - ge
        const nw = new Uint8Array(Math.max(w.length * 2, len() + widths.length + 4096))
        nw.set(w.subarray(0, gs), 0)
        nw.set(w.subarray(ge), nw.length - tail)
        w = nw
        ge = nw.length - tail
      }
      pos[k] = units
      del[k] = d16
      insOff[k] = off
      insLen[k] = s.length
      ins.push(s)
      off += s.length
      for (const x of widths) { w[gs++] = x; units += x }
      k++
    }
  }
  if (len() !== [...data.endContent].length) die(`${path}: the patches do not make endContent's length`)
  return { pos, del, insOff, insLen, text: ins.join(''), n, end: data.endContent }
}

async function loadTrace (path) {
  const worker = new Worker(new URL(import.meta.url), { workerData: { path } })
  let done = false
  const t = await new Promise((resolve, reject) => {
    worker.once('message', (m) => { done = true; resolve(m) })
    worker.once('error', reject)
    // the worker has printed why (die) when it ends without an answer
    worker.once('exit', (code) => { if (!done) process.exit(code || 1) })
  })
  await worker.terminate()
  const ins = new Array(t.n)
  for (let i = 0; i < t.n; i++) ins[i] = t.text.slice(t.insOff[i], t.insOff[i] + t.insLen[i])
  return { pos: t.pos, del: t.del, ins, n: t.n, end: t.end }
}

async function benchTrace (args) {
  let path = null
  let updates = false
  let repeat = 1
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--updates') updates = true
    else if (args[i] === '--repeat') repeat = count(args[++i])
    else if (!args[i].startsWith('-') && path === null) path = args[i]
    else usage()
  }
  if (path === null) usage()
  const t = await loadTrace(path)
  const endUnits = t.end.length
  const expected = t.end.repeat(repeat)
  resetPeakRss()

  const before = heapUsed()
  const doc = newDoc(1)
  const text = doc.getText('text')
  let updateBytes = 0
  let copy = new Uint8Array(4096)
  if (updates) {
    doc.on('update', (u) => {
      updateBytes += u.length
      if (u.length > copy.length) copy = new Uint8Array(u.length)
      copy.set(u)
    })
  }
  const { pos, del, ins, n } = t
  const c0 = process.cpuUsage()
  const t0 = performance.now()
  for (let r = 0; r < repeat; r++) {
    const base = r * endUnits
    for (let i = 0; i < n; i++) {
      doc.transact(() => {
        if (del[i] > 0) text.delete(base + pos[i], del[i])
        if (ins[i].length > 0) text.insert(base + pos[i], ins[i])
      })
    }
  }
  const applyMs = performance.now() - t0
  const applyCpuMs = cpuMs(c0)
  const after = heapUsed()
  if (text.toString() !== expected) die('replayed text differs from endContent')
  const { v1, encodeMs, loaded, loadMs, loadWarmMs } = encodeAndLoad(doc)
  if (loaded.getText('text').toString() !== expected) die('reloaded text differs from endContent')
  print({
    ops: n * repeat,
    apply_ms: fixed(applyMs),
    update_bytes: updates ? updateBytes : null,
    encode_ms: fixed(encodeMs),
    v1_bytes: v1.length,
    load_ms: fixed(loadMs),
    load_warm_ms: fixed(loadWarmMs),
    doc_mem_bytes: before === null ? null : after - before,
    peak_rss_bytes: peakRss(),
    apply_cpu_ms: fixed(applyCpuMs)
  })
}

// ---- map -------------------------------------------------------------------

function todo (i) {
  return { id: i, title: `task ${i}`, done: i % 3 === 0 }
}

function checkMap (what, map, n, keys) {
  const want = keys && keys < n ? keys : n
  if (map.size !== want) die(`${what} map has ${map.size} keys, expected ${want}`)
  const key = `key${keys ? (n - 1) % keys : n - 1}`
  if (JSON.stringify(map.get(key)) !== JSON.stringify(todo(n - 1))) die(`${what} map: wrong value at ${key}`)
}

function benchMap (args) {
  let n = 0
  let keys = 0
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--keys') keys = count(args[++i])
    else if (!n && !args[i].startsWith('-')) n = count(args[i])
    else usage()
  }
  if (!n) usage()
  resetPeakRss()
  const before = heapUsed()
  const doc = newDoc(1)
  const map = doc.getMap('map')
  const c0 = process.cpuUsage()
  const t0 = performance.now()
  for (let i = 0; i < n; i++) {
    map.set(`key${keys ? i % keys : i}`, todo(i))
  }
  const applyMs = performance.now() - t0
  const applyCpuMs = cpuMs(c0)
  const after = heapUsed()
  checkMap('first', map, n, keys)
  const { v1, encodeMs, loaded, loadMs, loadWarmMs } = encodeAndLoad(doc)
  checkMap('reloaded', loaded.getMap('map'), n, keys)
  print({
    ops: n,
    apply_ms: fixed(applyMs),
    encode_ms: fixed(encodeMs),
    v1_bytes: v1.length,
    load_ms: fixed(loadMs),
    load_warm_ms: fixed(loadWarmMs),
    doc_mem_bytes: before === null ? null : after - before,
    peak_rss_bytes: peakRss(),
    apply_cpu_ms: fixed(applyCpuMs)
  })
}

// ---- b1 --------------------------------------------------------------------

function benchB1 (args) {
  if (args.length !== 1) usage()
  const n = count(args[0])
  resetPeakRss()
  const before = heapUsed()
  const doc = newDoc(1)
  const peer = newDoc(2)
  const t1 = doc.getText('text')
  const t2 = peer.getText('text')
  let updateBytes = 0
  doc.on('update', (u) => {
    updateBytes += u.length
    Y.applyUpdate(peer, u)
  })
  // xorshift32, the same letters as cmd_bench.c
  let seed = 0x9E3779B9
  const c0 = process.cpuUsage()
  const t0 = performance.now()
  for (let i = 0; i < n; i++) {
    seed ^= seed << 13
    seed ^= seed >>> 17
    seed ^= seed << 5
    seed >>>= 0
    t1.insert(i, String.fromCharCode(97 + seed % 26))
  }
  const applyMs = performance.now() - t0
  const applyCpuMs = cpuMs(c0)
  const after = heapUsed()
  const s = t1.toString()
  if (s.length !== n || s !== t2.toString()) die('b1: the two peers differ')
  const { v1, encodeMs, loaded, loadMs, loadWarmMs } = encodeAndLoad(doc)
  if (loaded.getText('text').toString() !== s) die('b1: the reloaded doc differs')
  print({
    ops: n,
    apply_ms: fixed(applyMs),
    update_bytes: updateBytes,
    encode_ms: fixed(encodeMs),
    v1_bytes: v1.length,
    load_ms: fixed(loadMs),
    load_warm_ms: fixed(loadWarmMs),
    // both docs, as loom counts them: the peer is part of the workload
    doc_mem_bytes: before === null ? null : after - before,
    peak_rss_bytes: peakRss(),
    apply_cpu_ms: fixed(applyCpuMs)
  })
}

// ---- main ------------------------------------------------------------------

if (!isMainThread) {
  const t = prepareTrace(workerData.path)
  parentPort.postMessage(t, [t.pos.buffer, t.del.buffer, t.insOff.buffer, t.insLen.buffer])
} else {
  const [cmd, ...rest] = process.argv.slice(2)
  if (cmd === 'trace') await benchTrace(rest)
  else if (cmd === 'map') benchMap(rest)
  else if (cmd === 'b1') benchB1(rest)
  else usage()
}
