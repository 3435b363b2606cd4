// tests/peer/hostile.mjs: the native peer against a server that misbehaves,
// played by a small `ws` server in this script. `loom watch` (the provider
// underneath) must never apply or crash on what it gets, must log and
// reconnect with growing delays after bad bytes, and must stop for good
// when it is refused. Under the ASan build the same script catches leaks
// and memory errors in those paths. Usage:
//   node tests/peer/hostile.mjs build/loom
import { spawn } from 'node:child_process'
import { WebSocketServer } from 'ws'
import { check, done, syncUpdateMsg, until, varuint, Y } from '../net/lib.mjs'

const loom = process.argv[2]
if (!loom) {
  console.error('usage: node tests/peer/hostile.mjs LOOM')
  process.exit(2)
}

// A server whose behaviour per connection is script(ws, n, req), n counting
// connections from 1.
function hostile (script) {
  return new Promise((resolve) => {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 })
    const s = { wss, conns: 0, received: [] }
    wss.on('connection', (ws, req) => {
      s.conns++
      ws.on('message', (m) => s.received.push(Buffer.from(m)))
      script(ws, s.conns, req)
    })
    wss.on('listening', () => {
      s.url = `ws://127.0.0.1:${wss.address().port}`
      resolve(s)
    })
  })
}

function watch (url, args = []) {
  const proc = spawn(loom, ['watch', url, '--log', 'debug', ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  const r = { proc, out: '', err: '' }
  proc.stdout.on('data', (d) => { r.out += d })
  proc.stderr.on('data', (d) => { r.err += d })
  r.exited = new Promise((resolve) => proc.on('exit', (code, sig) => resolve({ code, sig })))
  return r
}

const step2 = (u) => Buffer.concat([Buffer.from([0, 1]), varuint(u.length), Buffer.from(u)])
const good = (() => {
  const d = new Y.Doc()
  d.clientID = 42
  d.getText('t').insert(0, 'fine')
  return Y.encodeStateAsUpdate(d)
})()

// ---- garbage of every kind, then a good step 2 ----------------------------
{
  const bad = [
    Buffer.from([0xff, 0xff, 0xff]), // not a message
    Buffer.from([9]), // unknown outer type
    Buffer.from([0, 7, 0]), // unknown sync type
    Buffer.from([0, 1, 40, 1, 2]), // length past the end
    step2(Buffer.from([1, 1, 0xde, 0xad, 0xbe, 0xef, 5])), // not an update
    Buffer.from([1, 5, 1, 2, 3, 4, 5]), // not an awareness update
    Buffer.from([0, 1, 1, 0]) // a step 2 whose update is cut short (empty is [0, 0])
  ]
  const s = await hostile((ws, n) => {
    if (n <= bad.length) {
      ws.send(bad[n - 1])
    } else if (n === bad.length + 1) {
      ws.send('a text frame')
    } else {
      ws.send(step2(good))
    }
  })
  const w = watch(`${s.url}/room`, ['--once', '--timeout', '30'])
  const ex = await w.exited
  check(ex.code === 0, `watch survives ${bad.length} malformed messages and a text frame, then syncs (${ex.code} ${ex.sig})`)
  check(w.out.trim() === '{"t":"fine"}', `only the good step 2 was applied: ${w.out.trim()}`)
  check(s.conns === bad.length + 2, `one connection per bad message (${s.conns})`)
  check(/bad message from the server/.test(w.err) && /text frame/.test(w.err), 'each is logged')
  const delays = [...w.err.matchAll(/retry in (\d+) ms/g)].map((m) => Number(m[1]))
  check(delays.length >= 3 && delays[1] > delays[0] && delays[2] > delays[1],
    `delays grow after bad messages: ${delays.join(', ')}`)
  check(s.received.some((m) => m[0] === 0 && m[1] === 0), 'the peer sent step 1 on open')
  s.wss.close()
}

// ---- close code 4403: stop for good ---------------------------------------
{
  const s = await hostile((ws) => ws.close(4403, 'go away'))
  const w = watch(`${s.url}/room`)
  const ex = await Promise.race([w.exited, new Promise((resolve) => setTimeout(() => resolve(null), 10000))])
  check(ex && ex.code === 1, `close code 4403 ends watch with 1 (${ex && ex.code})`)
  check(s.conns === 1, `and it does not come back (${s.conns} connection)`)
  if (!ex) w.proc.kill('SIGKILL')
  s.wss.close()
}

// ---- permission denied ----------------------------------------------------
{
  const reason = Buffer.from('no access to room')
  const s = await hostile((ws) => ws.send(Buffer.concat([Buffer.from([2, 0]), varuint(reason.length), reason])))
  const w = watch(`${s.url}/room`)
  const ex = await Promise.race([w.exited, new Promise((resolve) => setTimeout(() => resolve(null), 10000))])
  check(ex && ex.code === 1, `permission denied ends watch with 1 (${ex && ex.code})`)
  check(/permission denied: no access to room/.test(w.err), 'the reason is logged')
  check(s.conns === 1, 'no retry after permission denied')
  if (!ex) w.proc.kill('SIGKILL')
  s.wss.close()
}

// ---- an update after the sync, and a server that goes silent -------------
{
  let sock = null
  const s = await hostile((ws) => {
    sock = ws
    ws.send(step2(good))
  })
  const w = watch(`${s.url}/room`)
  check(await until(() => w.out.includes('{"t":"fine"}'), 5000), 'watch prints the first sync')
  const d = new Y.Doc()
  Y.applyUpdate(d, good)
  const sv = Y.encodeStateVector(d)
  d.clientID = 43
  d.getText('t').insert(4, '!')
  sock.send(syncUpdateMsg(Y.encodeStateAsUpdate(d, sv)))
  check(await until(() => w.out.includes('{"t":"fine!"}'), 5000), 'and a later update')
  w.proc.kill('SIGTERM')
  const ex = await w.exited
  check(ex.code === 0, `SIGTERM: exit 0 (${ex.code})`)
  s.wss.close()
}

done()
