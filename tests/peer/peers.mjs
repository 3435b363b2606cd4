// tests/peer/peers.mjs: the native peers `loom watch` and `loom sync`
// against a real `loom serve` on a free loopback port and real y-websocket
// clients (node_modules: yjs, y-websocket, ws). Usage:
//   node tests/peer/peers.mjs build/loom
// Prints ok:/FAIL: lines; exits 1 on any failure.
//
//  (a) a y-websocket client edits; `loom watch --once` prints the same
//      JSON; a running `loom watch` prints a new line after a later edit
//      and exits 0 on SIGTERM;
//  (b) `loom sync` with a store: the client's edits arrive in the store
//      (`loom store dump`), and an update appended with `loom store
//      append` while sync runs reaches the client;
//  (c) offline: the server stops; the store gets an append and the client
//      an edit; the server restarts on the same port and both sides
//      converge;
//  (d) SIGTERM ends `loom sync` with 0 and the store is intact; an append
//      made while sync is stopped goes out when it starts again, with its
//      --awareness presence;
//  (e) `loom sync` to a server that wants a token exits 1 (denied).
import { execFile, spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { check, client, done, startServer, stopServer, until, Y } from '../net/lib.mjs'

const loom = process.argv[2]
if (!loom) {
  console.error('usage: node tests/peer/peers.mjs LOOM')
  process.exit(2)
}
const tmp = mkdtempSync(join(tmpdir(), 'loom-peer-'))
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }))
const t0 = Date.now()

// Runs loom with args; resolves with {code, out, err}.
function run (args, timeout = 10000) {
  return new Promise((resolve) => {
    execFile(loom, args, { timeout, encoding: 'utf8' }, (e, out, err) => {
      resolve({ code: e ? (e.code ?? -1) : 0, out, err })
    })
  })
}

// A long-running loom (sync, watch): collects stdout lines and stderr.
function start (args) {
  const proc = spawn(loom, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  const r = { proc, lines: [], err: '' }
  let buf = ''
  proc.stdout.on('data', (d) => {
    buf += d
    let i
    while ((i = buf.indexOf('\n')) >= 0) {
      r.lines.push(buf.slice(0, i))
      buf = buf.slice(i + 1)
    }
  })
  proc.stderr.on('data', (d) => { r.err += d })
  r.exited = new Promise((resolve) => proc.on('exit', (code, sig) => resolve({ code, sig })))
  return r
}

// JSON with object keys sorted at every level, for comparing documents.
const sorted = (v) => Array.isArray(v)
  ? v.map(sorted)
  : v && typeof v === 'object'
    ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, sorted(v[k])]))
    : v
const canon = (v) => JSON.stringify(sorted(v))
const docJson = (doc) => canon({ text: doc.getText('text').toString(), map: doc.getMap('map').toJSON() })

async function storeDump (data, name) {
  const r = await run(['store', '--data', data, 'dump', name])
  if (r.code !== 0) return null
  try { return canon(JSON.parse(r.out)) } catch { return null }
}

// A v1 update made by a separate yjs document: map[key] = value.
function mapUpdate (clientID, key, value) {
  const d = new Y.Doc()
  d.clientID = clientID
  d.getMap('map').set(key, value)
  const file = join(tmp, `${key}.bin`)
  writeFileSync(file, Y.encodeStateAsUpdate(d))
  return file
}

let srv = await startServer(loom, ['--data', join(tmp, 'srv')])

// ---- (a) loom watch -------------------------------------------------------
{
  const c = client(srv.url, 'watch-room')
  await c.synced
  c.doc.getText('text').insert(0, 'hello from node')
  c.doc.getMap('map').set('n', 1)
  c.doc.getMap('map').set('nested', { a: [1, 'two'], z: null })
  await until(() => c.provider.ws && c.provider.ws.bufferedAmount === 0, 2000)
  // the server relays at its next loop turn; give the edit a moment
  await new Promise((resolve) => setTimeout(resolve, 100))
  const w = await run(['watch', `${srv.url}/watch-room`, '--once', '--timeout', '5'])
  check(w.code === 0, `watch --once exits 0 (${w.code} ${w.err.trim()})`)
  let got = null
  try { got = canon(JSON.parse(w.out)) } catch {}
  check(got === docJson(c.doc), `watch --once prints the client's document: ${w.out.trim()}`)
  check(w.out.trim().split('\n').length === 1, 'watch --once prints one line')

  const live = start(['watch', `${srv.url}/watch-room`])
  check(await until(() => live.lines.length >= 1, 5000), 'watch prints after its first sync')
  c.doc.getText('text').insert(0, '>> ')
  const want = docJson(c.doc)
  check(await until(() => live.lines.some((l) => { try { return canon(JSON.parse(l)) === want } catch { return false } }), 5000),
    'watch prints a new line after a later edit')
  live.proc.kill('SIGTERM')
  const ex = await live.exited
  check(ex.code === 0, `watch exits 0 on SIGTERM (${ex.code} ${ex.sig})`)

  // an empty room syncs too and prints {}
  const e = await run(['watch', `${srv.url}/empty-room`, '--once', '--timeout', '5'])
  check(e.code === 0 && e.out.trim() === '{}', `watch --once of an empty room prints {} (${e.out.trim()})`)
  c.provider.destroy()
}

// ---- (b) loom sync with a store ------------------------------------------
const data = join(tmp, 'local')
const room = 'sync-room'
const c = client(srv.url, room)
await c.synced
const sync = start(['sync', `${srv.url}/${room}`, '--data', data])
sync.exited.then((e) => { if (e.code) console.error('sync exited early:', e, sync.err) })
// The store file is new: let sync create it before `loom store` opens it
// (two processes creating one store at the same moment can collide; see
// docs/peers.md).
check(await until(() => /synced/.test(sync.err), 5000), 'sync connects and syncs')
c.doc.getText('text').insert(0, 'typed in node')
c.doc.getMap('map').set('who', 'node')
check(await until(async () => (await storeDump(data, room)) === docJson(c.doc), 8000),
  'the client\'s edits arrive in the store (loom store dump)')

const app = await run(['store', '--data', data, 'append', room, mapUpdate(900001, 'fromStore', 'yes')])
check(app.code === 0, `loom store append while sync runs (${app.err.trim()})`)
check(await until(() => c.doc.getMap('map').get('fromStore') === 'yes', 5000),
  'an update appended to the store while sync runs reaches the client')
check(/synced/.test(sync.err) && /connected/.test(sync.err), 'sync logs connected and synced')

// ---- (c) offline on both sides, then converge ----------------------------
const port = srv.port
check((await stopServer(srv)).code === 0, 'the server stops (exit 0)')
check(await until(() => /disconnected.*retry in \d+ ms/.test(sync.err), 5000),
  'sync logs the disconnect and its retry delay')
const off = await run(['store', '--data', data, 'append', room, mapUpdate(900002, 'offlineStore', 'from the store')])
check(off.code === 0, 'append to the local store while the server is down')
c.doc.getMap('map').set('offlineNode', 'from node')
c.doc.getText('text').insert(0, '[offline] ')
// neither side can see the other's offline edit yet
await new Promise((resolve) => setTimeout(resolve, 500))
check(c.doc.getMap('map').get('offlineStore') === undefined, 'the client does not have the store\'s offline edit yet')
const mid = await storeDump(data, room)
check(mid !== null && !mid.includes('offlineNode'), 'the store does not have the client\'s offline edit yet')

srv = await startServer(loom, ['--data', join(tmp, 'srv'), '--port', String(port)])
check(srv.port === port, `the server is back on port ${port}`)
check(await until(async () => c.doc.getMap('map').get('offlineStore') === 'from the store' &&
  (await storeDump(data, room)) === docJson(c.doc), 15000),
'after the restart the client and the store converge (both offline edits on both sides)')
const fin = await storeDump(data, room)
check(fin && fin.includes('[offline] typed in node') && fin.includes('offlineNode') && fin.includes('fromStore'),
  `the converged store holds every edit: ${fin}`)
const w2 = await run(['watch', `${srv.url}/${room}`, '--once', '--timeout', '5'])
check(w2.code === 0 && canon(JSON.parse(w2.out || 'null')) === docJson(c.doc), 'the server has the converged document too')

// ---- (d) SIGTERM ---------------------------------------------------------
sync.proc.kill('SIGTERM')
const sx = await sync.exited
check(sx.code === 0, `sync exits 0 on SIGTERM (${sx.code} ${sx.sig})`)
check(/stopped/.test(sync.err), 'sync logs that it stopped')
check((await storeDump(data, room)) === docJson(c.doc), 'the store is intact after SIGTERM')
const list = await run(['store', '--data', data, 'list'])
check(list.code === 0 && list.out.trim() === room, `the store lists one document named after the room (${list.out.trim()})`)

// an edit appended while no sync runs goes out when sync starts again;
// its presence state reaches the client
const stopped = await run(['store', '--data', data, 'append', room, mapUpdate(900003, 'whileStopped', 1)])
check(stopped.code === 0, 'append while sync is not running')
const again = start(['sync', `${srv.url}/${room}`, '--data', data, '--awareness', '{"user":"sync"}'])
check(await until(() => /synced/.test(again.err), 5000), 'a restarted sync syncs again')
check(await until(() => c.doc.getMap('map').get('whileStopped') === 1, 5000),
  'the edit appended while sync was not running reaches the client')
check(await until(() => [...c.awareness.getStates().values()].some((st) => st.user === 'sync'), 5000),
  'the client sees sync\'s presence (--awareness)')
c.doc.getMap('map').set('after', 'restart')
check(await until(async () => (await storeDump(data, room)) === docJson(c.doc), 5000), 'and keeps receiving')
again.proc.kill('SIGINT')
check((await again.exited).code === 0, 'sync exits 0 on SIGINT')
c.provider.destroy()
check((await stopServer(srv)).code === 0, 'the server stops (exit 0)')

// ---- (e) denied ----------------------------------------------------------
writeFileSync(join(tmp, 'key'), 'secret\n')
const auth = await startServer(loom, ['--auth-secret', join(tmp, 'key')])
const den = await run(['sync', `${auth.url}/r`, '--data', join(tmp, 'denied')], 10000)
check(den.code === 1 && /401/.test(den.err) && /denied/.test(den.err), `sync without a token exits 1 (denied): ${den.err.trim().split('\n').pop()}`)
const wden = await run(['watch', `${auth.url}/r`, '--once', '--timeout', '5'])
check(wden.code === 1, 'watch without a token exits 1')
await stopServer(auth)

// ---- (f) an encrypted replica (--passphrase-file) ----------------------------
{
  const srv2 = await startServer(loom, [])
  const sealed = join(tmp, 'sealed')
  const pf = join(tmp, 'pass')
  writeFileSync(pf, 'correct horse\n')
  const c2 = client(srv2.url, 'sealed-room')
  await c2.synced
  c2.doc.getText('text').insert(0, 'secret text')
  const s2 = start(['sync', `${srv2.url}/sealed-room`, '--data', sealed, '--passphrase-file', pf])
  check(await until(() => /synced/.test(s2.err), 5000), 'sync --passphrase-file syncs')
  const dumpWith = () => run(['store', '--data', sealed, '--passphrase-file', pf, 'dump', 'sealed-room'])
  check(await until(async () => { const r = await dumpWith(); return r.code === 0 && /secret text/.test(r.out) }, 5000),
    'the replica opens with the passphrase and holds the text')
  s2.proc.kill('SIGTERM')
  await s2.exited
  const without = await run(['store', '--data', sealed, 'dump', 'sealed-room'])
  check(without.code !== 0, `without the passphrase the replica does not open (${without.code}: ${without.err.trim()})`)
  const files = ['loom.db', 'loom.db-wal'].filter((f) => existsSync(join(sealed, f)))
  check(files.length >= 1 && files.every((f) => !readFileSync(join(sealed, f)).includes('secret text')),
    `the text is not in the store's files in the clear (${files.join(', ')})`)
  c2.provider.destroy()
  await stopServer(srv2)
}

console.log(`took ${((Date.now() - t0) / 1000).toFixed(1)} s`)
done()
