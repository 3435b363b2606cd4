// tests/peer/tls.mjs: wss:// end to end. `loom serve --tls-cert --tls-key`
// with a certificate made here (openssl), a real y-websocket client over
// wss:// (ws with the certificate as its CA), and the native peers
// `loom watch` / `loom sync` dialling wss:// with --ca. Usage:
//   node tests/peer/tls.mjs build/loom
// Prints ok:/FAIL: lines; exits 1 on any failure.
//
//  (a) https:// /healthz answers; a plain ws:// client gets nowhere;
//  (b) a y-websocket client edits over wss://; `loom watch --once --ca`
//      prints the same document; `loom sync --ca` brings it into a store;
//      an edit appended to that store reaches the client;
//  (c) without --ca (the system's CAs do not know this certificate) and
//      against a certificate naming another host, the peers never sync; a
//      certificate naming only `localhost` is accepted for
//      wss://localhost (which the provider resolves and dials by address)
//      and refused for wss://127.0.0.1.
import { execFile, execFileSync, spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import https from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { check, client, done, startServer, stopServer, until, WebSocket, Y } from '../net/lib.mjs'

const loom = process.argv[2]
if (!loom) {
  console.error('usage: node tests/peer/tls.mjs LOOM')
  process.exit(2)
}
const tmp = mkdtempSync(join(tmpdir(), 'loom-tls-'))
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }))

// A self-signed certificate for `names` (subjectAltName entries).
function makeCert (base, cn, names) {
  const cert = join(tmp, `${base}.crt`)
  const key = join(tmp, `${base}.key`)
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert,
    '-days', '2', '-subj', `/CN=${cn}`, '-addext', `subjectAltName=${names}`], { stdio: 'ignore' })
  return { cert, key }
}

function run (args, timeout = 15000) {
  return new Promise((resolve) => {
    execFile(loom, args, { timeout, encoding: 'utf8' }, (e, out, err) => {
      resolve({ code: e ? (e.code ?? -1) : 0, out, err })
    })
  })
}

const sorted = (v) => Array.isArray(v)
  ? v.map(sorted)
  : v && typeof v === 'object'
    ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, sorted(v[k])]))
    : v
const canon = (v) => JSON.stringify(sorted(v))
const docJson = (doc) => canon({ text: doc.getText('text').toString(), map: doc.getMap('map').toJSON() })

const good = makeCert('good', 'localhost', 'DNS:localhost,IP:127.0.0.1')
const ca = readFileSync(good.cert)
const srv = await startServer(loom, ['--data', join(tmp, 'srv'), '--tls-cert', good.cert, '--tls-key', good.key])
const wss = `wss://127.0.0.1:${srv.port}`

// ---- (a) https and plain ws -------------------------------------------------
{
  const body = await new Promise((resolve) => {
    https.get(`https://127.0.0.1:${srv.port}/healthz`, { ca }, (res) => {
      let b = ''
      res.on('data', (d) => { b += d })
      res.on('end', () => resolve(`${res.statusCode} ${b.trim()}`))
    }).on('error', (e) => resolve(`error ${e.message}`))
  })
  check(body === '200 ok', `GET https://…/healthz answers 200 ok (${body})`)
  const plain = await new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${srv.port}/plain`)
    ws.on('open', () => { ws.terminate(); resolve('open') })
    ws.on('error', () => resolve('error'))
    ws.on('close', () => resolve('closed'))
  })
  check(plain !== 'open', `a plain ws:// client does not get a WebSocket (${plain})`)
}

// ---- (b) y-websocket over wss, loom watch and loom sync with --ca -------------
class TrustingWebSocket extends WebSocket {
  constructor (url, protocols) {
    super(url, protocols, { ca })
  }
}
const room = 'tls-room'
const c = client(wss, room, { WebSocketPolyfill: TrustingWebSocket })
check(await until(() => c.provider.synced, 8000), 'a y-websocket client syncs over wss://')
c.doc.getText('text').insert(0, 'sent over TLS')
c.doc.getMap('map').set('secure', true)
await until(() => c.provider.ws && c.provider.ws.bufferedAmount === 0, 2000)
await new Promise((resolve) => setTimeout(resolve, 150))

const w = await run(['watch', `${wss}/${room}`, '--once', '--timeout', '8', '--ca', good.cert])
let got = null
try { got = canon(JSON.parse(w.out)) } catch {}
check(w.code === 0 && got === docJson(c.doc), `loom watch --ca over wss:// prints the client's document (${w.code} ${w.out.trim()} ${w.err.trim()})`)

const data = join(tmp, 'local')
const sync = spawn(loom, ['sync', `${wss}/${room}`, '--data', data, '--ca', good.cert], { stdio: ['ignore', 'ignore', 'pipe'] })
let syncErr = ''
sync.stderr.on('data', (d) => { syncErr += d })
const syncExit = new Promise((resolve) => sync.on('exit', (code) => resolve(code)))
check(await until(() => /synced/.test(syncErr), 8000), `loom sync --ca over wss:// syncs (${syncErr.trim().split('\n').pop()})`)
const dump = async () => {
  const r = await run(['store', '--data', data, 'dump', room])
  try { return r.code === 0 ? canon(JSON.parse(r.out)) : null } catch { return null }
}
check(await until(async () => (await dump()) === docJson(c.doc), 8000), 'the client\'s edits arrive in the sync store')
{
  const d = new Y.Doc()
  d.clientID = 777001
  d.getMap('map').set('fromStore', 'over tls')
  const file = join(tmp, 'up.bin')
  writeFileSync(file, Y.encodeStateAsUpdate(d))
  const a = await run(['store', '--data', data, 'append', room, file])
  check(a.code === 0, `loom store append while sync runs (${a.err.trim()})`)
  check(await until(() => c.doc.getMap('map').get('fromStore') === 'over tls', 8000),
    'an edit appended to the sync store reaches the client over wss://')
}
sync.kill('SIGTERM')
check(await syncExit === 0, 'loom sync exits 0 on SIGTERM')

// ---- (c) untrusted and wrong-name certificates are refused --------------------
{
  const r = await run(['watch', `${wss}/${room}`, '--once', '--timeout', '2'])
  check(r.code === 1 && r.out === '', `without --ca (self-signed, unknown to the system) loom watch never syncs (${r.code})`)
  const other = makeCert('other', 'other.example', 'DNS:other.example')
  const srv2 = await startServer(loom, ['--tls-cert', other.cert, '--tls-key', other.key])
  const r2 = await run(['watch', `wss://127.0.0.1:${srv2.port}/${room}`, '--once', '--timeout', '2', '--ca', other.cert])
  check(r2.code === 1 && r2.out === '', `a certificate naming another host is refused (${r2.code})`)
  await stopServer(srv2)

  // a certificate for the name only: dialled by name (the provider resolves
  // localhost itself and dials the address), it is checked against the name
  const named = makeCert('named', 'localhost', 'DNS:localhost')
  const srv3 = await startServer(loom, ['--tls-cert', named.cert, '--tls-key', named.key])
  const byName = await run(['watch', `wss://localhost:${srv3.port}/${room}`, '--once', '--timeout', '5', '--ca', named.cert])
  check(byName.code === 0 && byName.out.trim() === '{}', `wss://localhost with a certificate for localhost syncs (${byName.code} ${byName.err.trim()})`)
  const byAddr = await run(['watch', `wss://127.0.0.1:${srv3.port}/${room}`, '--once', '--timeout', '2', '--ca', named.cert])
  check(byAddr.code === 1, `wss://127.0.0.1 with a certificate naming only localhost is refused (${byAddr.code})`)
  await stopServer(srv3)

  const bad = await run(['serve', '--port', '0', '--tls-cert', other.cert])
  check(bad.code === 2 && /go together/.test(bad.err), `--tls-cert without --tls-key is a usage error (${bad.code} ${bad.err.trim()})`)
  const missing = await run(['serve', '--port', '0', '--tls-cert', join(tmp, 'nope.crt'), '--tls-key', other.key])
  check(missing.code === 1 && /cannot read the TLS certificate/.test(missing.err), `a missing certificate file fails with a clear message (${missing.code} ${missing.err.trim()})`)
}

c.provider.destroy()
check((await stopServer(srv)).code === 0, 'loom serve with TLS exits 0 on SIGTERM')
done()
