// tests/net/persist.mjs: `loom serve --data DIR`: every accepted update is
// in the store before anyone else sees it, so a server killed with SIGKILL
// right after a client saw an edit still has that edit when it restarts;
// rooms unload when idle and load again with everything; a SIGTERM exits 0.
// Usage: node persist.mjs path/to/loom
import { mkdtempSync, rmSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startServer, stopServer, client, json, check, done, until, sleep, raw, syncUpdateMsg, Y } from './lib.mjs'

process.setMaxListeners(100)
const loom = process.argv[2]
const dir = mkdtempSync(join(tmpdir(), 'loom-persist-'))
const data = join(dir, 'data')
let srv = await startServer(loom, ['--data', data, '--unload-after', '1'])
check(existsSync(join(data, 'loom.db')), 'the store file is created')

const rooms = ['one', 'two']
let clients = []
for (const room of rooms) for (let i = 0; i < 3; i++) clients.push({ room, ...client(srv.url, room) })
await Promise.all(clients.map((c) => c.synced))
let seed = 99
const rnd = (n) => { seed = (seed * 1103515245 + 12345) % 2147483648; return Math.floor(seed / 2147483648 * n) }
for (let round = 0; round < 30; round++) {
  for (const c of clients) {
    const t = c.doc.getText('text')
    if (rnd(3) === 0 && t.length) t.delete(rnd(t.length), 1)
    else t.insert(rnd(t.length + 1), `${c.room}${round} `)
    if (rnd(4) === 0) c.doc.getMap('map').set(`k${rnd(4)}`, round)
  }
}
const expected = {}
for (const room of rooms) {
  const cs = clients.filter((c) => c.room === room)
  check(await until(() => cs.every((c) => json(c.doc) === json(cs[0].doc))), `room ${room} converges`)
  expected[room] = json(cs[0].doc)
}
// one more edit, and the kill as soon as another client has it: the store
// had it before that client could
const [w, r] = clients.filter((c) => c.room === 'one')
w.doc.getText('text').insert(0, 'LAST ')
check(await until(() => r.doc.getText('text').toString().startsWith('LAST '), 5000), 'the last edit reached another client')
srv.proc.kill('SIGKILL')
await srv.exited
expected.one = json(r.doc)
for (const c of clients) c.provider.destroy()

srv = await startServer(loom, ['--data', data, '--unload-after', '1'])
for (const room of rooms) {
  const fresh = client(srv.url, room)
  await fresh.synced
  check(await until(() => json(fresh.doc) === expected[room], 5000), `after SIGKILL and restart: room ${room} has everything`)
  fresh.provider.destroy()
}
// a malformed update is neither stored nor relayed, with a store too; a
// good one from the same kind of raw client is
const evil = new Y.Doc()
evil.getText('text').insert(0, 'EVIL')
const evilUpdate = Buffer.from(Y.encodeStateAsUpdate(evil))
const watcher = client(srv.url, 'two')
await watcher.synced
const bad = await raw(srv.url, 'two')
await until(() => bad.messages.length >= 1)
bad.ws.send(syncUpdateMsg(Buffer.concat([evilUpdate, Buffer.from([9, 9])])))
const closed = await bad.closedP
check(closed.code === 1007, `a malformed update closes its connection (${closed.code})`)
const good = await raw(srv.url, 'two')
await until(() => good.messages.length >= 1)
const ok = new Y.Doc()
ok.getText('text').insert(0, 'GOOD ')
good.ws.send(syncUpdateMsg(Buffer.from(Y.encodeStateAsUpdate(ok))))
check(await until(() => watcher.doc.getText('text').toString().includes('GOOD ')), 'a valid update from a raw client is relayed')
check(!watcher.doc.getText('text').toString().includes('EVIL'), 'the malformed one is not')
expected.two = json(watcher.doc)
good.ws.close()
watcher.provider.destroy()

// idle rooms unload, and load again intact
check(await until(async () => /^loom_rooms 0$/m.test(await (await fetch(`${srv.http}/metrics`)).text()), 5000),
  'rooms unload once idle')
const again = client(srv.url, 'one')
await again.synced
check(await until(() => json(again.doc) === expected.one), 'an unloaded room loads again with everything')
again.doc.getText('text').insert(0, 'after-unload ')
await sleep(100)
const m = await (await fetch(`${srv.http}/metrics`)).text()
check(/^loom_store_append_seconds_count [1-9]/m.test(m), 'metrics count store appends')
again.provider.destroy()
check((await stopServer(srv)).code === 0, 'SIGTERM: exit 0')
srv = await startServer(loom, ['--data', data])
const last = client(srv.url, 'one')
await last.synced
check(await until(() => last.doc.getText('text').toString().startsWith('after-unload ')), 'an edit after a reload survives a restart')
const two = client(srv.url, 'two')
await two.synced
check(await until(() => json(two.doc) === expected.two), 'the stored room has the good update and not the malformed one')
two.provider.destroy()
last.provider.destroy()
await stopServer(srv)

// compaction runs off the event loop once a log passes --compact-rows; the
// edits made around it all survive a restart
srv = await startServer(loom, ['--data', data, '--compact-rows', '5'])
const metric = async (name) => {
  const t = await (await fetch(`${srv.http}/metrics`)).text()
  const m = t.match(new RegExp(`^${name} (\\d+)$`, 'm'))
  return m ? Number(m[1]) : -1
}
const typer = client(srv.url, 'three')
const reader = client(srv.url, 'three')
await Promise.all([typer.synced, reader.synced])
for (let i = 0; i < 40; i++) {
  typer.doc.getText('text').insert(0, `${i} `)
  // one turn, one row: wait until the other client has it
  await until(() => reader.doc.getText('text').toString().startsWith(`${i} `), 5000)
}
check(await until(async () => (await metric('loom_store_compactions_total')) >= 1, 5000),
  'a room past --compact-rows is compacted (metrics)')
check((await metric('loom_store_compaction_errors_total')) === 0, 'no compaction failed')
const typed = json(reader.doc)
typer.provider.destroy()
reader.provider.destroy()
check((await stopServer(srv)).code === 0, 'SIGTERM with the compactor running: exit 0')
srv = await startServer(loom, ['--data', data])
const after = client(srv.url, 'three')
await after.synced
check(await until(() => json(after.doc) === typed, 5000), 'a compacted room has every edit after a restart')
after.provider.destroy()
await stopServer(srv)
rmSync(dir, { recursive: true, force: true })
done()
