// tests/net/persist.mjs: `loom serve --data DIR`: every accepted update is
// in the store before anyone else sees it, so a server killed with SIGKILL
// right after a client saw an edit still has that edit when it restarts;
// rooms unload when idle and load again with everything; a SIGTERM exits 0.
// Usage: node persist.mjs path/to/loom
import { mkdtempSync, rmSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startServer, stopServer, client, json, check, done, until, sleep } from './lib.mjs'

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
last.provider.destroy()
await stopServer(srv)
rmSync(dir, { recursive: true, force: true })
done()
