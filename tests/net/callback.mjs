// tests/net/callback.mjs: the HTTP callback of the reference server
// (CALLBACK_URL, CALLBACK_OBJECTS, CALLBACK_DEBOUNCE_WAIT,
// CALLBACK_DEBOUNCE_MAXWAIT), against loom serve or, to show the test
// checks what the reference does, against @y/websocket-server itself:
//   node tests/net/callback.mjs --server loom --loom build/loom
//   node tests/net/callback.mjs --server reference
// A real y-websocket client edits; an HTTP receiver here collects the
// POSTs.
//
//  (a) one POST per burst of edits, after the debounce, with the body the
//      reference builds: {room, data: {OBJ: {type, content: toJSON()}}},
//      JSON content type, to the URL's path;
//  (b) edits without pause for longer than the max wait still send;
//  (c) loom only: two rooms edited one right after the other both send
//      (the reference debounces all rooms with one timer, so the first
//      room's callback is dropped; noted, not asserted);
//  (d) loom only: a callback URL that nobody answers is counted in
//      /metrics and changes nothing else.
import http from 'node:http'
import { serverArgs, Server, freePort, httpGet } from '../interop/servers.mjs'
import { check, client, done, sleep, until } from './lib.mjs'

const opts = serverArgs(process.argv.slice(2))
const posts = []
const receiver = http.createServer((req, res) => {
  let body = ''
  req.on('data', (d) => { body += d })
  req.on('end', () => {
    let json = null
    try { json = JSON.parse(body) } catch {}
    posts.push({ at: Date.now(), method: req.method, url: req.url, type: req.headers['content-type'], json, body })
    res.writeHead(200, { 'content-type': 'text/plain' })
    res.end('ok')
  })
})
await new Promise((resolve) => receiver.listen(0, '127.0.0.1', resolve))
const hook = `http://127.0.0.1:${receiver.address().port}/hook`

const env = {
  CALLBACK_URL: hook,
  CALLBACK_OBJECTS: JSON.stringify({ text: 'Text', map: 'Map', list: 'Array', absent: 'Map' }),
  CALLBACK_DEBOUNCE_WAIT: '300',
  CALLBACK_DEBOUNCE_MAXWAIT: '1500'
}
const srv = new Server(opts.kind, { loomCmd: opts.loomCmd, env })
await srv.start()
const forRoom = (room) => posts.filter((p) => p.json && p.json.room === room)

// ---- (a) one POST after a burst, the reference's body ---------------------------
{
  const c = client(srv.url, 'cb-room')
  await c.synced
  const t0 = Date.now()
  c.doc.getText('text').insert(0, 'hello')
  c.doc.getMap('map').set('k', 1)
  c.doc.getMap('map').set('nested', { a: [1, 'two'] })
  c.doc.getArray('list').push([1, 'a'])
  check(await until(() => forRoom('cb-room').length >= 1, 5000), 'a POST arrives after a burst of edits')
  await sleep(600)
  const got = forRoom('cb-room')
  check(got.length === 1, `one POST for the burst (${got.length})`)
  const p = got[0]
  check(p && p.at - t0 >= 250, `sent after the debounce (${p && p.at - t0} ms)`)
  check(p && p.method === 'POST' && p.url === '/hook', `POST to the URL's path (${p && p.method} ${p && p.url})`)
  check(p && /^application\/json/.test(p.type || ''), `JSON content type (${p && p.type})`)
  const want = {
    room: 'cb-room',
    data: {
      text: { type: 'Text', content: 'hello' },
      map: { type: 'Map', content: { k: 1, nested: { a: [1, 'two'] } } },
      list: { type: 'Array', content: [1, 'a'] },
      absent: { type: 'Map', content: {} }
    }
  }
  const same = (a, b) => JSON.stringify(a, Object.keys(flat(a)).sort()) === JSON.stringify(b, Object.keys(flat(b)).sort())
  check(p && same(p.json, want), `the body is the reference's: ${p && p.body}`)
  c.provider.destroy()
}

// ---- (b) edits without pause still send, every max wait -----------------------
{
  const c = client(srv.url, 'busy-room')
  await c.synced
  const t0 = Date.now()
  let n = 0
  while (Date.now() - t0 < 3200) {
    c.doc.getText('text').insert(0, 'x')
    n++
    await sleep(100)
  }
  const during = forRoom('busy-room').filter((p) => p.at <= t0 + 3200)
  check(during.length >= 1 && during.length <= 4, `edits every 100 ms for 3.2 s (${n}) send while they go on, bounded by the max wait (${during.length} POSTs)`)
  check(await until(() => {
    const last = forRoom('busy-room').at(-1)
    return last && last.json.data.text.content === c.doc.getText('text').toString()
  }, 5000), 'the last POST has the final text')
  c.provider.destroy()
}

// ---- (c) two rooms, one right after the other -----------------------------------
{
  const x = client(srv.url, 'room-x')
  const y = client(srv.url, 'room-y')
  await Promise.all([x.synced, y.synced])
  x.doc.getText('text').insert(0, 'in x')
  await sleep(50)
  y.doc.getText('text').insert(0, 'in y')
  await until(() => forRoom('room-y').length >= 1, 5000)
  await sleep(800)
  const gx = forRoom('room-x').length
  const gy = forRoom('room-y').length
  check(gy === 1, `the room edited last sends (${gy})`)
  if (opts.kind === 'loom') {
    check(gx === 1 && forRoom('room-x')[0].json.data.text.content === 'in x', `the room edited first sends too (${gx})`)
  } else {
    console.log(`note: ${opts.kind}: the room edited first sent ${gx} POST(s) (one debouncer for all rooms)`)
  }
  x.provider.destroy()
  y.provider.destroy()
}

{
  const ex = await srv.stop()
  // (loom exits 0 on SIGTERM, and an ASan build's leak report would not)
  if (opts.kind === 'loom') check(ex && ex.code === 0, `loom serve exits 0 on SIGTERM (${JSON.stringify(ex)})`)
}

// ---- (d) loom: nobody answers -------------------------------------------------------
if (opts.kind === 'loom') {
  const dead = await freePort()
  const s2 = new Server('loom', { loomCmd: opts.loomCmd, env: { ...env, CALLBACK_URL: `http://127.0.0.1:${dead}/gone`, CALLBACK_DEBOUNCE_WAIT: '50' } })
  await s2.start()
  const c = client(s2.url, 'r')
  await c.synced
  c.doc.getText('text').insert(0, 'nobody listens')
  const metric = async (name) => {
    const r = await httpGet(`${s2.httpUrl}/metrics`)
    const m = new RegExp(`^${name} (\\d+)$`, 'm').exec(r.body)
    return m ? Number(m[1]) : -1
  }
  check(await until(async () => (await metric('loom_callback_errors_total')) >= 1, 5000), 'a callback nobody answers is counted as an error')
  check(await metric('loom_callbacks_total') === 0, 'and not as sent')
  const c2 = client(s2.url, 'r')
  await c2.synced
  check(c2.doc.getText('text').toString() === 'nobody listens', 'the room is unaffected')
  c.provider.destroy()
  c2.provider.destroy()
  const ex2 = await s2.stop()
  check(ex2 && ex2.code === 0, `loom serve exits 0 on SIGTERM after failed callbacks (${JSON.stringify(ex2)})`)
  // a host name in the URL (resolved once, at start)
  const s3 = new Server('loom', { loomCmd: opts.loomCmd, env: { ...env, CALLBACK_URL: `http://localhost:${receiver.address().port}/named`, CALLBACK_DEBOUNCE_WAIT: '50' } })
  await s3.start()
  const c3 = client(s3.url, 'named-room')
  await c3.synced
  c3.doc.getText('text').insert(0, 'by name')
  check(await until(() => posts.some((p) => p.url === '/named' && p.json && p.json.data.text.content === 'by name'), 5000),
    'a callback URL with a host name (localhost) gets the POST')
  c3.provider.destroy()
  await s3.stop()
  const bad = new Server('loom', { loomCmd: opts.loomCmd, env: { ...env, CALLBACK_OBJECTS: '{"t":"Tree"}' } })
  let failed = false
  try { await bad.start(3000) } catch (e) { failed = /Array, Map, Text/.test(e.message) }
  check(failed, 'an unknown type in CALLBACK_OBJECTS stops loom serve at start with a clear message')
}

receiver.close()
done()

// Every key path of a JSON value, for a key-order-independent comparison.
function flat (v, out = {}) {
  if (v && typeof v === 'object') {
    for (const k of Object.keys(v)) { out[k] = true; flat(v[k], out) }
  }
  return out
}
