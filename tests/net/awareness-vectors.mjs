// tests/net/awareness-vectors.mjs: awareness vectors made by the real
// y-protocols 1.0.7 (tests/vectors/awareness-random.json), replayed by
// tests/unit/test_proto.c. A receiving Awareness (client 1, local state {})
// gets a seeded random sequence of updates: senders' new states and
// removals, stale replays, equal-clock nulls (a server's removal), equal-
// clock states, nulls for the receiver's own client, multi-entry updates and
// hand-written JSON with other spacing. After each step the vector records
// the update, the 'update' and 'change' events, and the receiver encoded
// two ways (every client it has a record of, and every client with a state
// in Map order), which loom must reproduce byte for byte.
//
//   node tests/net/awareness-vectors.mjs > tests/vectors/awareness-random.json
//   node tests/net/awareness-vectors.mjs --check tests/vectors/awareness-random.json
import { readFileSync } from 'node:fs'
import * as Y from 'yjs'
import * as awarenessProtocol from 'y-protocols/awareness'
import * as encoding from 'lib0/encoding'

const hex = (u) => Buffer.from(u).toString('hex')
let seed = 20260101
// the high bits: the low bits of this generator repeat with short periods
const rnd = (n) => { seed = (seed * 1103515245 + 12345) % 2147483648; return Math.floor(seed / 2147483648 * n) }

function awareness (clientID) {
  const doc = new Y.Doc()
  doc.clientID = clientID
  return new awarenessProtocol.Awareness(doc)
}

// Hand-written update: entries [client, clock, text].
function manual (entries) {
  const e = encoding.createEncoder()
  encoding.writeVarUint(e, entries.length)
  for (const [client, clock, text] of entries) {
    encoding.writeVarUint(e, client)
    encoding.writeVarUint(e, clock)
    encoding.writeVarString(e, text)
  }
  return encoding.toUint8Array(e)
}

const values = [1, 1.5, -2, 0, 1e21, 123456789012, 'é', 'x"y', '\u2028', true, null, [1, [2]], { z: 1, a: 2, 10: 'n', 2: 'm' }]
const randomState = () => {
  const s = { user: { name: `u${rnd(5)}`, color: `#${rnd(999)}` } }
  if (rnd(2)) s.cursor = rnd(3) ? { anchor: rnd(50), head: rnd(50) } : null
  if (rnd(3) === 0) s.extra = values[rnd(values.length)]
  return s
}

const receiver = awareness(1)
const senders = [10, 11, 12, 13, 2 ** 40 + 7].map(awareness)
const sent = []
const steps = []
let events = null
receiver.on('update', ({ added, updated, removed }) => { events.update = { added, updated, removed } })
receiver.on('change', ({ added, updated, removed }) => { events.change = { added, updated, removed } })

for (let i = 0; i < 300; i++) {
  const s = senders[rnd(senders.length)]
  const id = s.clientID
  const clockAt = (c) => receiver.meta.get(c)?.clock ?? 0
  let update
  switch (rnd(10)) {
    case 0: case 1: case 2:
      s.setLocalState(randomState())
      update = awarenessProtocol.encodeAwarenessUpdate(s, [id])
      break
    case 3:
      s.setLocalState(null)
      update = awarenessProtocol.encodeAwarenessUpdate(s, [id])
      break
    case 4:
      update = sent.length ? sent[rnd(sent.length)] : manual([[id, 0, '{}']])
      break
    case 5: // a server's removal of a peer: same clock, null
      update = manual([[id, clockAt(id), 'null']])
      break
    case 6: // the same clock with some state: refused unless new
      update = manual([[id, clockAt(id) + rnd(2), rnd(2) ? '{ "a" : 1.0 , "b":[ ] }' : '"text"']])
      break
    case 7: // someone removing the receiver's own state
      update = manual([[1, clockAt(1) + rnd(2), 'null']])
      break
    case 8: // a renewal: the same state with the next clock
      s.setLocalState(s.getLocalState())
      update = awarenessProtocol.encodeAwarenessUpdate(s, [id])
      break
    default: { // several entries at once
      const n = 1 + rnd(3)
      const entries = []
      for (let k = 0; k < n; k++) {
        const t = senders[rnd(senders.length)]
        t.setLocalState(rnd(4) ? randomState() : null)
        entries.push([t.clientID, t.meta.get(t.clientID).clock, JSON.stringify(t.getLocalState())])
      }
      update = manual(entries)
    }
  }
  sent.push(update)
  events = { update: { added: [], updated: [], removed: [] }, change: { added: [], updated: [], removed: [] } }
  awarenessProtocol.applyAwarenessUpdate(receiver, update, 'test')
  steps.push({
    update: hex(update),
    events,
    metaClients: Array.from(receiver.meta.keys()),
    known: hex(awarenessProtocol.encodeAwarenessUpdate(receiver, Array.from(receiver.meta.keys()))),
    states: receiver.getStates().size ? hex(awarenessProtocol.encodeAwarenessUpdate(receiver, Array.from(receiver.getStates().keys()))) : ''
  })
}
for (const a of [receiver, ...senders]) a.destroy()

const out = JSON.stringify({
  description: 'awareness updates applied by the real y-protocols 1.0.7 to a receiver with client id 1 and local state {} (tests/net/awareness-vectors.mjs)',
  yProtocolsVersion: '1.0.7',
  receiverClient: 1,
  steps
}, null, 1) + '\n'
if (process.argv[2] === '--check') {
  if (readFileSync(process.argv[3], 'utf8') !== out) {
    console.error(`${process.argv[3]} differs from what y-protocols produces now`)
    process.exit(1)
  }
  console.log(`${process.argv[3]}: ${steps.length} steps, as y-protocols makes them`)
} else {
  process.stdout.write(out)
}
