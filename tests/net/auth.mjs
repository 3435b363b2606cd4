// tests/net/auth.mjs: `loom serve --auth-secret` with tokens from
// `loom token`: a valid token opens its rooms; a missing, forged, expired,
// wrong-room or malformed token gets HTTP 401 on the upgrade; a read-only
// client receives everything, its edits are refused with the y-protocols
// permission-denied message and nobody else ever sees them.
// Usage: node auth.mjs path/to/loom
import { execFileSync } from 'node:child_process'
import { createHmac } from 'node:crypto'
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startServer, stopServer, client, json, check, done, until, sleep, upgradeStatus, raw, syncUpdateMsg, Y } from './lib.mjs'

process.setMaxListeners(100)
const loom = process.argv[2]
const dir = mkdtempSync(join(tmpdir(), 'loom-auth-'))
const secretFile = join(dir, 'secret')
writeFileSync(secretFile, 'correct horse battery staple\n')
const token = (room, mode, ttl = 3600) =>
  execFileSync(loom, ['token', '--secret', secretFile, '--room', room, '--mode', mode, '--ttl', String(ttl)]).toString().trim()

// A JWT made here with Node's HMAC: the same key (newline trimmed) unless
// told otherwise; lets the test make expired and forged tokens.
const b64 = (s) => Buffer.from(s).toString('base64url')
function jwt (claims, key = 'correct horse battery staple', header = { alg: 'HS256', typ: 'JWT' }) {
  const head = `${b64(JSON.stringify(header))}.${b64(JSON.stringify(claims))}`
  return `${head}.${createHmac('sha256', key).update(head).digest('base64url')}`
}
const now = Math.floor(Date.now() / 1000)

const srv = await startServer(loom, ['--auth-secret', secretFile])
const rw = token('doc*', 'rw')
const ro = token('doc1', 'r')

check(await upgradeStatus(`${srv.url}/doc1?token=${rw}`) === 101, 'a valid rw token opens its room')
check(await upgradeStatus(`${srv.url}/doc1?x=1&token=${jwt({ room: 'doc1', mode: 'r', exp: now + 60 })}`) === 101,
  'a token made by another HS256 implementation is accepted')
const refused = {
  'no token': `${srv.url}/doc1`,
  'empty token': `${srv.url}/doc1?token=`,
  'wrong room': `${srv.url}/other?token=${rw}`,
  'read-only token, wrong room': `${srv.url}/doc2?token=${ro}`,
  expired: `${srv.url}/doc1?token=${jwt({ room: 'doc1', mode: 'rw', exp: now - 1 })}`,
  forged: `${srv.url}/doc1?token=${jwt({ room: 'doc1', mode: 'rw', exp: now + 60 }, 'another key')}`,
  'forged by editing the claims': `${srv.url}/doc1?token=${rw.split('.')[0]}.${b64(JSON.stringify({ room: '*', mode: 'rw', exp: now + 60 }))}.${rw.split('.')[2]}`,
  'alg none': `${srv.url}/doc1?token=${b64('{"alg":"none"}')}.${b64(JSON.stringify({ room: 'doc1', mode: 'rw', exp: now + 60 }))}.`,
  'unknown mode': `${srv.url}/doc1?token=${jwt({ room: 'doc1', mode: 'admin', exp: now + 60 })}`,
  garbage: `${srv.url}/doc1?token=abc.def`,
  'key with the newline kept': `${srv.url}/doc1?token=${jwt({ room: 'doc1', mode: 'rw', exp: now + 60 }, 'correct horse battery staple\n')}`
}
for (const [what, url] of Object.entries(refused)) {
  check(await upgradeStatus(url) === 401, `401 for ${what}`)
}

// read-write and read-only clients in one room
const writer = client(srv.url, 'doc1', { params: { token: rw } })
const reader = client(srv.url, 'doc1', { params: { token: ro } })
await Promise.all([writer.synced, reader.synced])
writer.doc.getText('text').insert(0, 'from the writer')
check(await until(() => reader.doc.getText('text').toString() === 'from the writer'), 'the read-only client receives edits')

const denied = await raw(srv.url, `doc1?token=${ro}`)
await until(() => denied.messages.length >= 1)
reader.doc.getText('text').insert(0, 'READER ')
// a raw read-only connection sends an update and gets the auth message
const evil = new Y.Doc()
evil.getText('text').insert(0, 'EVIL')
const u = Y.encodeStateAsUpdate(evil)
const before = denied.messages.length
denied.ws.send(syncUpdateMsg(u))
check(await until(() => denied.messages.slice(before).some((m) => m[0] === 2 && m[1] === 0)),
  'a read-only update is answered with permission denied (outer 2, type 0)')
const reason = denied.messages.slice(before).find((m) => m[0] === 2)
check(reason && reason.toString('utf8', 3).includes('read-only'), 'the reason text says read-only')
await sleep(500)
check(!writer.doc.getText('text').toString().includes('READER') && !writer.doc.getText('text').toString().includes('EVIL'),
  'the writer never sees the read-only edits')
const fresh = client(srv.url, 'doc1', { params: { token: rw } })
await fresh.synced
check(json(fresh.doc) === json(writer.doc) && fresh.doc.getText('text').toString() === 'from the writer',
  'a new client gets the document without them')
check(denied.closed === null, 'the read-only connection stays open')
const m = await (await fetch(`${srv.http}/metrics`)).text()
check(/^loom_updates_refused_total [1-9]/m.test(m), 'metrics count refused updates')
check(/^loom_connections_rejected_total (\d+)/m.exec(m)[1] >= Object.keys(refused).length, 'metrics count rejected upgrades')

denied.ws.close()
for (const c of [writer, reader, fresh]) c.provider.destroy()
check((await stopServer(srv)).code === 0, 'exit 0 on SIGTERM')
rmSync(dir, { recursive: true, force: true })
done()
