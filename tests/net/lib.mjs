// tests/net/lib.mjs: what the loom serve tests share: starting a real
// `loom serve` on a free port (it prints "listening on HOST:PORT"),
// collecting its log, stopping it, y-websocket clients in Node, raw
// WebSocket clients for hostile frames, and small waiting helpers.
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import WebSocket from 'ws'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'

export { Y, WebSocket }

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

let failures = 0
export function check (cond, what) {
  if (!cond) {
    failures++
    console.error(`FAIL: ${what}`)
  } else {
    console.log(`ok: ${what}`)
  }
}

export function done () {
  if (failures) {
    console.error(`${failures} check(s) failed`)
    process.exit(1)
  }
  console.log('all checks passed')
  process.exit(0)
}

// Polls cond() every 20 ms until it is true or `ms` pass.
export async function until (cond, ms = 10000) {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (await cond()) return true
    await sleep(20)
  }
  return !!(await cond())
}

// Starts `loom serve --port 0 ARGS...`; resolves with {port, url, proc, log()}.
export function startServer (loom, args = [], env = {}) {
  return new Promise((resolve, reject) => {
    const proc = spawn(loom, ['serve', '--port', '0', '--log', 'debug', ...args], {
      env: { ...process.env, HOST: '', PORT: '', ...env },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    let out = ''
    let log = ''
    proc.stderr.on('data', (d) => { log += d })
    proc.stdout.on('data', (d) => {
      out += d
      const m = /listening on [^\s]+:(\d+)/.exec(out)
      if (m) {
        const port = Number(m[1])
        resolve({
          port,
          proc,
          url: `ws://127.0.0.1:${port}`,
          http: `http://127.0.0.1:${port}`,
          log: () => log,
          exited: new Promise((resolve) => proc.on('exit', (code, sig) => resolve({ code, sig })))
        })
      }
    })
    proc.on('exit', (code) => reject(new Error(`loom serve exited (${code}) before listening:\n${log}`)))
  })
}

// Stops a server with SIGTERM and waits; returns the exit status.
export async function stopServer (srv, sig = 'SIGTERM') {
  srv.proc.kill(sig)
  return await srv.exited
}

export function rssKiB (pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m ? Number(m[1]) : -1
}

// A y-websocket client: {doc, provider, synced}.
export function client (url, room, opts = {}) {
  const doc = new Y.Doc()
  const provider = new WebsocketProvider(url, room, doc, {
    WebSocketPolyfill: WebSocket,
    disableBc: true,
    ...opts
  })
  const synced = new Promise((resolve) => {
    if (provider.synced) resolve()
    provider.on('sync', (s) => { if (s) resolve() })
  })
  return { doc, provider, synced, awareness: provider.awareness }
}

// The document as JSON with object keys sorted (a Y.Map lists its keys in
// the order this replica learnt them, which differs between replicas).
export function json (doc) {
  const sort = (v) => Array.isArray(v)
    ? v.map(sort)
    : v && typeof v === 'object'
      ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, sort(v[k])]))
      : v
  return JSON.stringify(sort({ text: doc.getText('text').toString(), map: doc.getMap('map').toJSON() }))
}

// A raw WebSocket to a room; collects binary messages; resolves once open.
export function raw (url, room) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${url}/${room}`)
    ws.binaryType = 'nodebuffer'
    const r = { ws, messages: [], closed: null }
    r.closedP = new Promise((resolve) => ws.on('close', (code, reason) => {
      r.closed = { code, reason: reason.toString() }
      resolve(r.closed)
    }))
    ws.on('message', (m) => r.messages.push(Buffer.from(m)))
    ws.on('open', () => resolve(r))
    ws.on('error', reject)
  })
}

// The HTTP status of a WebSocket upgrade to url (101 when it opens).
export function upgradeStatus (url) {
  return new Promise((resolve) => {
    const ws = new WebSocket(url)
    ws.on('open', () => { ws.close(); resolve(101) })
    ws.on('unexpected-response', (req, res) => { resolve(res.statusCode); req.destroy() })
    ws.on('error', () => resolve(-1))
  })
}

// lib0 framing helpers for hand-made messages.
export function varuint (n) {
  const out = []
  while (n > 0x7f) { out.push((n & 0x7f) | 0x80); n = Math.floor(n / 128) }
  out.push(n)
  return Buffer.from(out)
}
export const syncUpdateMsg = (u) => Buffer.concat([Buffer.from([0, 2]), varuint(u.length), Buffer.from(u)])
