// tests/net/gc.mjs: garbage collection in the rooms of loom serve, as the
// reference server's GC variable sets it. A client types a marker and
// deletes it; a later client (its own document with gc off, so it keeps
// whatever it is sent) gets the room's state: with gc on (the default) the
// deleted text is gone from it, with `--gc off` or GC=false it is there,
// so snapshots from before the delete can be restored.
//   node tests/net/gc.mjs build/loom
import { WebsocketProvider } from 'y-websocket'
import { check, client, done, startServer, stopServer, until, WebSocket, Y } from './lib.mjs'

const loom = process.argv[2]
const MARK = 'deleted-marker-7f3a'

async function deletedTextKept (args, env) {
  const srv = await startServer(loom, args, env)
  const a = client(srv.url, 'gc-room')
  await a.synced
  const t = a.doc.getText('text')
  t.insert(0, `keep ${MARK} keep`)
  t.delete(5, MARK.length + 1)
  await until(() => a.provider.ws && a.provider.ws.bufferedAmount === 0, 2000)
  await new Promise((resolve) => setTimeout(resolve, 200))
  const doc = new Y.Doc({ gc: false })
  const p = new WebsocketProvider(srv.url, 'gc-room', doc, { WebSocketPolyfill: WebSocket, disableBc: true })
  await until(() => p.synced && doc.getText('text').toString() === 'keep keep', 5000)
  const text = doc.getText('text').toString()
  const kept = Buffer.from(Y.encodeStateAsUpdate(doc)).includes(MARK)
  p.destroy()
  a.provider.destroy()
  const ex = await stopServer(srv)
  return { text, kept, code: ex.code }
}

const on = await deletedTextKept([])
check(on.text === 'keep keep', `the later client has the text (${on.text})`)
check(!on.kept, 'gc on (default): the deleted text is not sent')
const off = await deletedTextKept(['--gc', 'off'])
check(off.text === 'keep keep' && off.kept, `--gc off: the deleted text is kept and sent (${off.text})`)
const env = await deletedTextKept([], { GC: 'false' })
check(env.kept, 'GC=false: the same')
check(on.code === 0 && off.code === 0 && env.code === 0, 'loom serve exits 0 each time')
done()
