// tests/net/abuse.mjs: hostile and broken clients against `loom serve`.
// Each of these closes only its own connection, with a log line, while a
// writer and a watcher in the same room keep syncing and nothing of the bad
// message is applied or relayed: garbage bytes, a text frame, a truncated
// message, an oversized message, a malformed update (a valid one with junk
// appended), an unknown message type, an unknown sync type, a malformed
// awareness update, a malformed state vector. Then a client that never
// reads is disconnected once its send queue is full, and the server's
// memory stays bounded. A connection that answers no ping is hung up, one
// that does stays, and upgrades over --max-conns get 503. Usage: node abuse.mjs path/to/loom
import { startServer, stopServer, client, check, done, until, raw, rssKiB, syncUpdateMsg, varuint, upgradeStatus, Y } from './lib.mjs'

process.setMaxListeners(100)
const loom = process.argv[2]
const srv = await startServer(loom, ['--max-message', '65536', '--max-queue', '262144'])

const writer = client(srv.url, 'room')
const watcher = client(srv.url, 'room')
await Promise.all([writer.synced, watcher.synced])
let n = 0
async function stillSyncing (what) {
  const word = `w${n++};`
  writer.doc.getText('text').insert(0, word)
  check(await until(() => watcher.doc.getText('text').toString().startsWith(word)), `after ${what}: the room still syncs`)
}

const evil = new Y.Doc()
evil.getText('text').insert(0, 'EVIL')
const evilUpdate = Buffer.from(Y.encodeStateAsUpdate(evil))
const big = Buffer.alloc(70000, 0x41)

const bad = {
  'garbage bytes': Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff]),
  'a text frame': 'hello',
  'a truncated message': syncUpdateMsg(evilUpdate).subarray(0, 9),
  'an oversized message': Buffer.concat([Buffer.from([0, 2]), varuint(big.length), big]),
  'a malformed update': syncUpdateMsg(Buffer.concat([evilUpdate, Buffer.from([7, 7, 7])])),
  'an update cut short inside its payload': syncUpdateMsg(evilUpdate.subarray(0, evilUpdate.length - 3)),
  'an unknown message type': Buffer.from([9, 0]),
  'an unknown sync type': Buffer.from([0, 7, 0]),
  'a malformed awareness update': Buffer.from([1, 5, 1, 1, 1, 1, 0x7b]),
  'a malformed state vector': Buffer.from([0, 0, 3, 5, 1, 1]),
  'an empty frame': Buffer.alloc(0)
}
for (const [what, payload] of Object.entries(bad)) {
  const r = await raw(srv.url, 'room')
  await until(() => r.messages.length >= 1)
  r.ws.send(payload)
  const closed = await Promise.race([r.closedP, new Promise((resolve) => setTimeout(() => resolve(null), 3000))])
  check(closed !== null && closed.code >= 1002 && closed.code <= 1011,
    `${what}: the connection is closed (${closed && closed.code} ${closed && closed.reason})`)
  await stillSyncing(what)
}
check(!watcher.doc.getText('text').toString().includes('EVIL') && !writer.doc.getText('text').toString().includes('EVIL'),
  'nothing of the malformed updates was applied or relayed')
const lateJoiner = client(srv.url, 'room')
await lateJoiner.synced
check(!lateJoiner.doc.getText('text').toString().includes('EVIL'), 'nor is it in the server document')
const log = srv.log()
for (const line of ['text frame', 'malformed message', 'message over', 'malformed update', 'unsupported message', 'malformed awareness', 'bad state vector']) {
  check(log.includes(line), `log line: "${line}"`)
}

// another room is unaffected by all of this
const other = client(srv.url, 'other')
await other.synced
check(other.doc.getText('text').toString() === '', 'another room opens fine')

// ---- a client that never reads ------------------------------------------------
const slow = await raw(srv.url, 'room')
await until(() => slow.messages.length >= 1)
slow.ws._socket.pause()
const rss0 = rssKiB(srv.proc.pid)
const chunk = 'x'.repeat(32000)
let sent = 0
for (let i = 0; i < 400 && slow.closed === null && !srv.log().includes('send queue over'); i++) {
  writer.doc.getText('bulk').insert(0, chunk)
  sent += chunk.length
  if (i % 20 === 19) await until(() => watcher.doc.getText('bulk').length === sent, 5000)
}
check(await until(() => srv.log().includes('send queue over'), 10000), `the slow reader is dropped (after ${(sent / 1e6).toFixed(1)} MB)`)
check(await until(() => watcher.doc.getText('bulk').length === sent, 10000), 'the watcher got every byte meanwhile')
const rss1 = rssKiB(srv.proc.pid)
console.log(`server RSS ${rss0} KiB -> ${rss1} KiB while ${(sent / 1e6).toFixed(1)} MB passed`)
// the document holds `sent` bytes of text; the queue may hold at most
// 256 KiB more than that (plus one message), not the whole stream again
check(rss1 - rss0 < (sent / 1024) * 3 + 32 * 1024, 'server memory stays bounded')
const m = await (await fetch(`${srv.http}/metrics`)).text()
check(/^loom_connections_dropped_total [1-9]/m.test(m), 'metrics count the dropped connection')

for (const c of [writer, watcher, lateJoiner, other]) c.provider.destroy()
check((await stopServer(srv)).code === 0, 'exit 0 on SIGTERM')

// ---- idle timeouts and the connection limit ---------------------------------
const srv2 = await startServer(loom, ['--ping', '1', '--max-conns', '2'])
const healthy = await raw(srv2.url, 'idle')      // ws answers pings by itself
const mute = await raw(srv2.url, 'idle')
mute.ws._socket.pause()                          // reads nothing, answers nothing
check(await upgradeStatus(`${srv2.url}/idle`) === 503, 'over --max-conns: HTTP 503')
check(await until(() => mute.closed !== null || /idle: \S+: disconnected/.test(srv2.log()), 8000),
  'a connection that answers no ping is hung up')
await new Promise((resolve) => setTimeout(resolve, 1500))
check(healthy.closed === null, 'an idle connection that answers pings stays')
healthy.ws.close()
check((await stopServer(srv2)).code === 0, 'exit 0 on SIGTERM')
done()
