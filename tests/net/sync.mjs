// tests/net/sync.mjs: real y-websocket clients against `loom serve`
// (in memory): clients in two rooms make random edits and converge, rooms
// stay apart, a late joiner gets everything, awareness reaches the others
// and is removed when its connection closes, query-awareness is answered,
// /healthz and /metrics answer. Usage: node sync.mjs path/to/loom
import { mkdtempSync, mkdirSync, writeFileSync, symlinkSync, rmSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startServer, stopServer, client, json, check, done, until, sleep, raw } from './lib.mjs'

process.setMaxListeners(100)
const loom = process.argv[2]
// a web directory: a page, a module, a stylesheet, and a symbolic link to
// a folder outside it (as a page links node_modules)
const web = mkdtempSync(join(tmpdir(), 'loom-web-'))
const outside = mkdtempSync(join(tmpdir(), 'loom-outside-'))
mkdirSync(join(web, 'sub'))
writeFileSync(join(web, 'index.html'), '<!doctype html><title>loom</title>')
writeFileSync(join(web, 'sub', 'index.html'), 'sub page')
writeFileSync(join(web, 'app.mjs'), 'export const x = 1')
writeFileSync(join(web, 'style.css'), 'body{}')
writeFileSync(join(outside, 'lib.js'), 'export default 2')
writeFileSync(join(tmpdir(), 'loom-secret.txt'), 'secret')
symlinkSync(outside, join(web, 'node_modules'))
const srv = await startServer(loom, ['--web', web])

// ---- edits in two rooms -------------------------------------------------
const rooms = ['alpha', 'beta/with/slashes']
const clients = []
for (const room of rooms) {
  for (let i = 0; i < 4; i++) clients.push({ room, ...client(srv.url, room) })
}
await Promise.all(clients.map((c) => c.synced))
check(true, 'every client synced')

let seed = 12345
const rnd = (n) => { seed = (seed * 1103515245 + 12345) % 2147483648; return Math.floor(seed / 2147483648 * n) }
for (let round = 0; round < 40; round++) {
  for (const c of clients) {
    const t = c.doc.getText('text')
    const op = rnd(3)
    if (op === 0 || t.length === 0) t.insert(rnd(t.length + 1), `${c.room[0]}${round}`)
    else if (op === 1) t.delete(rnd(t.length), Math.min(2, t.length))
    else c.doc.getMap('map').set(`k${rnd(5)}`, { by: c.doc.clientID, round })
  }
  if (round % 10 === 0) await sleep(5)
}
for (const room of rooms) {
  const cs = clients.filter((c) => c.room === room)
  const ok = await until(() => cs.every((c) => json(c.doc) === json(cs[0].doc)), 15000)
  check(ok, `room ${room}: ${cs.length} clients converge`)
}
const a0 = clients.find((c) => c.room === 'alpha')
const b0 = clients.find((c) => c.room !== 'alpha')
check(!a0.doc.getText('text').toString().includes('b') && !b0.doc.getText('text').toString().includes('a'),
  'rooms do not leak into each other')

// a late joiner gets the whole state
const late = client(srv.url, 'alpha')
await late.synced
check(await until(() => json(late.doc) === json(a0.doc)), 'a late joiner gets the full state')

// ---- awareness ------------------------------------------------------------
const p1 = client(srv.url, 'presence')
const p2 = client(srv.url, 'presence')
await Promise.all([p1.synced, p2.synced])
p1.awareness.setLocalStateField('user', { name: 'Ada' })
check(await until(() => p2.awareness.getStates().get(p1.doc.clientID)?.user?.name === 'Ada'),
  'awareness reaches the other client')
// query-awareness from a raw socket is answered with all states
const q = await raw(srv.url, 'presence')
await until(() => q.messages.length >= 2)
const before = q.messages.length
q.ws.send(Buffer.from([3]))
check(await until(() => q.messages.length > before && q.messages[q.messages.length - 1][0] === 1),
  'query-awareness is answered with an awareness message')
const last = q.messages[q.messages.length - 1]
check(last.includes(Buffer.from('"Ada"')), 'the answer holds the known state')
q.ws.close()
// closing p1's connection removes its state at p2
const p1id = p1.doc.clientID
p1.provider.ws.close()  // simulate a dropped connection (no goodbye message)
p1.provider.shouldConnect = false
check(await until(() => !p2.awareness.getStates().has(p1id)), 'the state is removed when its connection closes')

// ---- room names: the raw path, not percent-decoded (as the reference) ----
const named = client(srv.url, 'caf\u00e9 au lait')
await named.synced
const rawNamed = await raw(srv.url, 'caf%C3%A9%20au%20lait')
await until(() => rawNamed.messages.length >= 1)
named.doc.getText('text').insert(0, 'hello')
check(await until(() => rawNamed.messages.some((m) => m[0] === 0 && m[1] === 2)),
  'a room named with non-ASCII and spaces is the same room as its percent-encoded path')
check(srv.log().includes('room caf%C3%A9%20au%20lait: '), 'the room name is the raw, percent-encoded path')
rawNamed.ws.close()
named.provider.destroy()

// ---- http ---------------------------------------------------------------------
const h = await fetch(`${srv.http}/healthz`)
check(h.status === 200 && (await h.text()).trim() === 'ok', '/healthz says ok')
const m = await (await fetch(`${srv.http}/metrics`)).text()
const get = async (path) => {
  const r = await fetch(`${srv.http}${path}`)
  return { status: r.status, type: r.headers.get('content-type'), body: await r.text() }
}
let g = await get('/')
check(g.status === 200 && g.type.startsWith('text/html') && g.body.includes('<title>loom'), '--web: / serves index.html')
g = await get('/sub/')
check(g.status === 200 && g.body === 'sub page', '--web: a folder path serves its index.html')
g = await get('/app.mjs')
check(g.status === 200 && g.type.startsWith('text/javascript'), '--web: .mjs is JavaScript')
g = await get('/style.css')
check(g.status === 200 && g.type.startsWith('text/css'), '--web: .css is CSS')
g = await get('/node_modules/lib.js')
check(g.status === 200 && g.body === 'export default 2', '--web: a symbolic link inside the folder is followed')
g = await get('/missing.js')
check(g.status === 404, '--web: a missing file is 404')
// fetch() would resolve dot segments itself: send the request line raw
const rawGet = (path) => new Promise((resolve) => {
  const sock = net.connect(srv.port, '127.0.0.1', () => sock.write(`GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`))
  let data = ''
  sock.on('data', (d) => { data += d })
  sock.on('close', () => resolve(data))
  sock.on('error', () => resolve(data))
})
for (const path of ['/../loom-secret.txt', '/sub/../../loom-secret.txt', '/%2e%2e/loom-secret.txt', '/sub/%2E%2E/%2e%2e/loom-secret.txt', '/..%2floom-secret.txt']) {
  const r = await rawGet(path)
  check(!/^HTTP\/1\.1 200/.test(r) && !r.includes('secret'), `--web: ${path} does not leave the folder (${r.split('\r\n')[0] || 'closed'})`)
}
check(/^loom_connections \d+$/m.test(m) && /^loom_updates_applied_total [1-9]\d*$/m.test(m), '/metrics has connections and applied updates')

for (const c of [...clients, late, p1, p2]) c.provider.destroy()
// a connection open at shutdown gets a close frame: 1001 going away
const open = await raw(srv.url, 'alpha')
await until(() => open.messages.length >= 1)
const st = await stopServer(srv)
// the server may exit before this process has read the close frame
await until(() => open.closed !== null, 3000)
check(open.closed && open.closed.code === 1001, `SIGTERM closes open connections with 1001 (got ${open.closed && open.closed.code})`)
check(st.code === 0, `SIGTERM: exit 0 (got ${st.code} ${st.sig})`)
check(/stopping/.test(srv.log()) && /stopped/.test(srv.log()), 'the log says it stopped')
rmSync(web, { recursive: true, force: true })
rmSync(outside, { recursive: true, force: true })
rmSync(join(tmpdir(), 'loom-secret.txt'), { force: true })
done()
