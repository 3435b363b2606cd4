// SPDX-License-Identifier: MIT
//
// tests/interop/converge.mjs: the real y-websocket client (the version pinned
// in package.json, in Node through `ws`) against a y-websocket server,
// `loom serve` or the reference server (tests/interop/servers.mjs):
//
//   1. convergence: 20 WebsocketProviders in two rooms make seeded random
//      edits for a few seconds (text inserts and deletes, map sets, array
//      pushes and inserts, in transactions of 1-3 ops); one client per room
//      goes offline for a second in the middle and edits on. Then every
//      client of a room has the same doc.toJSON(), no array element is lost
//      (the count of inserts is known), nothing of one room shows up in the
//      other, and a client that joins late gets the same state;
//   2. awareness: every client sees the states of all clients of its room
//      and none of the other; a client that leaves cleanly (provider.destroy)
//      and one whose socket just drops (no goodbye, so the server must
//      remove its state) disappear from the others' states within 3 s;
//   3. restart (persistence): the server is killed with SIGKILL while the
//      clients are connected, the clients are destroyed, the server starts
//      again on the same data directory, and a new client of each room gets
//      the full state. loom: always (--data); the reference: with
//      YPERSISTENCE (LevelDB), given a second to write first, since it
//      stores updates asynchronously while loom promises that an update is
//      durable before anyone else receives it;
//   4. tokens (loom only): a server with --auth-secret refuses the upgrade
//      with HTTP 401 for a missing, garbage, forged, tampered, expired and
//      wrong-room token and accepts good ones; a client with a read-only
//      token gets the document, receives the permission-denied message when
//      it edits, and its edits reach no other client and do not survive a
//      restart (after which it re-sends them in its sync step 2);
//   5. SIGTERM (loom only): the server exits with status 0.
//
// Features the reference server does not have are printed as "n/a", never
// counted as passed. Any failure prints what differed and the server's last
// output, and exits 1.
//
// Usage: node tests/interop/converge.mjs [--server loom|reference]
//          [--loom PATH] [--if-available] [--seed N] [--secs S] [--verbose]
//   --server        environment LOOM_SERVER, default loom
//   --loom PATH     the loom binary (or LOOM_SERVER_CMD; default build/loom)
//   --if-available  exit 77 (skipped) when loom has no `serve` command
//   --seed N        seed of the random edits (default: time based; printed;
//                   the interleaving with the network still varies per run)
//   --secs S        seconds of editing (default 4)
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import * as Y from 'yjs';
import { WebsocketProvider } from 'y-websocket';
import * as authProtocol from 'y-protocols/auth';
import { Server, loomToken, requireServer, serverArgs, serverName, sleep } from './servers.mjs';

const CLIENTS_PER_ROOM = 10;
const AWARENESS_BOUND_MS = 3000;
const CONVERGE_BOUND_MS = 15000;

// ---- arguments --------------------------------------------------------------

const opts = serverArgs(process.argv.slice(2));
let seed = Date.now() % 1000000;
let secs = 4;
let verbose = false;
for (let i = 0; i < opts.rest.length; i++) {
  const a = opts.rest[i];
  if (a === '--seed') seed = Number(opts.rest[++i]);
  else if (a === '--secs') secs = Number(opts.rest[++i]);
  else if (a === '--verbose') verbose = true;
  else {
    console.error(`converge: unknown argument ${a} (see the head of the file)`);
    process.exit(2);
  }
}
requireServer(opts, 'converge');

// ---- reporting --------------------------------------------------------------

const report = { passed: 0, na: 0 };
const ok = (what) => {
  report.passed++;
  console.log(`ok   ${what}`);
};
const na = (what, why) => {
  report.na++;
  console.log(`n/a  ${what}: ${why}`);
};
class Failure extends Error {}
const fail = (msg) => {
  throw new Failure(msg);
};
const check = (cond, msg) => {
  if (!cond) fail(msg);
};
const note = (msg) => {
  if (verbose) console.log(`     ${msg}`);
};

// waitFor(pred, ms, what): polls pred every 20 ms; fails after ms with
// what() (a function, so the message shows the state at the timeout).
async function waitFor(pred, ms, what) {
  const t0 = Date.now();
  for (;;) {
    if (pred()) return Date.now() - t0;
    if (Date.now() - t0 > ms) fail(typeof what === 'function' ? what() : what);
    await sleep(20);
  }
}

// ---- helpers ----------------------------------------------------------------

// A seeded PRNG (mulberry32), so a failing run can be repeated with --seed.
function prng(s) {
  let a = s >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// canon(v): JSON with object keys sorted (key order differs by replica).
function canon(v) {
  const sort = (x) => {
    if (Array.isArray(x)) return x.map(sort);
    if (x && typeof x === 'object') {
      const o = {};
      for (const k of Object.keys(x).sort()) o[k] = sort(x[k]);
      return o;
    }
    return x;
  };
  return JSON.stringify(sort(v));
}

const clients = [];
// Every WebsocketProvider in Node adds a process 'exit' listener.
process.setMaxListeners(0);

function makeClient(url, room, name, params = {}) {
  const doc = new Y.Doc();
  const provider = new WebsocketProvider(url, room, doc, {
    WebSocketPolyfill: WebSocket,
    disableBc: true,
    params,
    maxBackoffTime: 500,
  });
  const c = { doc, provider, room, name, denied: [], inserts: 0 };
  // The client's auth handler only logs; record the reasons instead.
  provider.messageHandlers[2] = (_encoder, decoder) => {
    authProtocol.readAuthMessage(decoder, doc, (_doc, reason) => c.denied.push(reason));
  };
  provider.awareness.setLocalStateField('user', { name, room });
  clients.push(c);
  return c;
}

function destroyClient(c) {
  c.provider.destroy();
  c.doc.destroy();
  const i = clients.indexOf(c);
  if (i >= 0) clients.splice(i, 1);
}

// doc.toJSON() lists only the root types this replica has asked for, with
// their kind; a client that only received them must name them first.
const json = (c) => {
  c.doc.getText('text');
  c.doc.getMap('map');
  c.doc.getArray('array');
  return canon(c.doc.toJSON());
};
const synced = (c) => c.provider.wsconnected && c.provider.synced;

// ---- 1. convergence ---------------------------------------------------------

// Each room writes its own characters and tags, so the separation check
// can tell where anything came from.
const ROOMS = [
  { tag: 'A', alphabet: 'abcdefghij éü字' },
  { tag: 'B', alphabet: 'KLMNOPQRST ÀÖ語' },
];

function randomEdit(c, rnd, room) {
  const text = c.doc.getText('text');
  const map = c.doc.getMap('map');
  const arr = c.doc.getArray('array');
  const ops = 1 + Math.floor(rnd() * 3);
  c.doc.transact(() => {
    for (let i = 0; i < ops; i++) {
      const r = rnd();
      if (r < 0.35) {
        let s = '';
        const n = 1 + Math.floor(rnd() * 5);
        for (let j = 0; j < n; j++) s += room.alphabet[Math.floor(rnd() * room.alphabet.length)];
        text.insert(Math.floor(rnd() * (text.length + 1)), s);
      } else if (r < 0.5 && text.length > 0) {
        const at = Math.floor(rnd() * text.length);
        text.delete(at, Math.min(text.length - at, 1 + Math.floor(rnd() * 3)));
      } else if (r < 0.75) {
        const values = [Math.floor(rnd() * 1000), `${room.tag}-${c.name}`,
          { room: room.tag, n: c.inserts }, [room.tag, rnd() < 0.5], true, null];
        map.set(`k${Math.floor(rnd() * 8)}`, values[Math.floor(rnd() * values.length)]);
      } else {
        const v = `${room.tag}:${c.name}:${c.inserts++}`;
        if (rnd() < 0.6) arr.push([v]);
        else arr.insert(Math.floor(rnd() * (arr.length + 1)), [v]);
      }
    }
  });
}

function checkSeparation(room, c) {
  const j = c.doc.toJSON();
  for (const ch of j.text) {
    check(room.alphabet.includes(ch),
      `room ${room.name}: text has '${ch}', which only the other room writes`);
  }
  for (const v of j.array) {
    check(typeof v === 'string' && v.startsWith(`${room.tag}:`),
      `room ${room.name}: array has ${JSON.stringify(v)} from elsewhere`);
  }
  for (const [k, v] of Object.entries(j.map)) {
    const s = JSON.stringify(v);
    const other = ROOMS.find((r) => r !== room).tag;
    check(!s.includes(`"${other}-`) && !s.includes(`"${other}"`),
      `room ${room.name}: map.${k} = ${s} comes from the other room`);
  }
}

async function convergence(server) {
  const rnd = prng(seed);
  const runId = crypto.randomBytes(3).toString('hex');
  for (const room of ROOMS) {
    room.name = `converge-${room.tag.toLowerCase()}-${runId}`;
    room.clients = [];
    for (let i = 0; i < CLIENTS_PER_ROOM; i++) {
      room.clients.push(makeClient(server.url, room.name, `${room.tag}${i}`));
    }
  }
  const all = ROOMS.flatMap((r) => r.clients);
  await waitFor(() => all.every(synced), 10000,
    () => `only ${all.filter(synced).length} of ${all.length} clients synced after 10 s`);

  // Random edits, each client on its own timer; the first client of each
  // room is offline from 1/4 to 1/2 of the time and edits on meanwhile.
  const t0 = Date.now();
  const end = t0 + secs * 1000;
  let offline = false;
  let online = false;
  await new Promise((resolve) => {
    let running = all.length;
    for (const room of ROOMS) {
      for (const c of room.clients) {
        const step = () => {
          const now = Date.now();
          if (room.clients[0] === c) {
            if (!offline && now > t0 + secs * 250) {
              offline = true;
              for (const r of ROOMS) r.clients[0].provider.disconnect();
            }
            if (offline && !online && now > t0 + secs * 500) {
              online = true;
              for (const r of ROOMS) r.clients[0].provider.connect();
            }
          }
          if (now >= end) {
            if (--running === 0) resolve();
            return;
          }
          randomEdit(c, rnd, room);
          setTimeout(step, 5 + Math.floor(rnd() * 20));
        };
        setTimeout(step, Math.floor(rnd() * 20));
      }
    }
  });
  check(offline && online, 'the offline/online switch did not run (editing time too short?)');

  for (const room of ROOMS) {
    const took = await waitFor(
      () => room.clients.every(synced) && new Set(room.clients.map(json)).size === 1,
      CONVERGE_BOUND_MS,
      () => {
        const states = new Set(room.clients.map(json));
        return `room ${room.name}: ${states.size} different states after ` +
          `${CONVERGE_BOUND_MS} ms (connected and synced: ` +
          `${room.clients.filter(synced).length}/${room.clients.length}); text lengths ` +
          room.clients.map((c) => c.doc.getText('text').length).join(',');
      });
    const c = room.clients[0];
    const inserts = room.clients.reduce((n, x) => n + x.inserts, 0);
    const length = c.doc.getArray('array').length;
    check(length === inserts,
      `room ${room.name}: array has ${length} elements, the clients inserted ${inserts}`);
    checkSeparation(room, c);
    room.expected = json(c);
    note(`room ${room.name}: converged ${took} ms after the edits; text ` +
      `${c.doc.getText('text').length} chars, array ${length}, map ${c.doc.getMap('map').size} keys`);
  }
  check(ROOMS[0].expected !== ROOMS[1].expected, 'both rooms hold the same document');
  const edits = ROOMS.reduce((n, r) => n + r.clients.reduce((m, x) => m + x.inserts, 0), 0);
  ok(`convergence: ${all.length} clients in 2 rooms, ${secs} s of random edits ` +
    `(seed ${seed}, ${edits} array inserts counted), identical JSON per room, nothing lost`);
  ok('rooms stay separate: no text, array or map value of one room in the other');

  // A late joiner syncs from the server's copy alone.
  for (const room of ROOMS) {
    const late = makeClient(server.url, room.name, `${room.tag}-late`);
    await waitFor(() => synced(late) && json(late) === room.expected, 5000,
      () => `room ${room.name}: a late joiner's state differs from the room's`);
    destroyClient(late);
  }
  ok('a client joining afterwards gets the same state');
}

// ---- 2. awareness -----------------------------------------------------------

function seenNames(c) {
  const names = [];
  for (const state of c.provider.awareness.getStates().values()) {
    if (state && state.user) names.push(`${state.user.room}/${state.user.name}`);
  }
  return names.sort();
}

async function awareness() {
  // Everyone announces itself afresh first. A y-websocket client that
  // reconnected (the offline ones above) re-sends its state with the clock
  // its peers already saw removed, and drops the states it knew, which come
  // back with unchanged clocks; y-protocols ignores both until the 15 s
  // renewal. A new clock makes the check about what the server relays.
  for (const c of ROOMS.flatMap((r) => r.clients)) {
    c.provider.awareness.setLocalStateField('user', { name: c.name, room: c.room, renewed: true });
  }
  for (const room of ROOMS) {
    const want = room.clients.map((c) => `${room.name}/${c.name}`).sort().join(' ');
    await waitFor(() => room.clients.every((c) => seenNames(c).join(' ') === want), 5000,
      () => {
        const bad = room.clients.find((c) => seenNames(c).join(' ') !== want);
        return `awareness in ${room.name}: ${bad.name} sees [${seenNames(bad).join(' ')}], want [${want}]`;
      });
  }
  ok(`awareness: each of the ${CLIENTS_PER_ROOM} clients of a room sees all of its room and none of the other`);

  // Room A: a clean leave (the client sends its null state itself).
  // Room B: the socket drops without a word; only the server can tell.
  const [ra, rb] = ROOMS;
  const gone = [ra.clients[1], rb.clients[1]];
  const ids = gone.map((c) => c.doc.clientID);
  destroyClient(ra.clients[1]);
  ra.clients.splice(1, 1);
  const b = rb.clients[1];
  b.provider.shouldConnect = false;
  b.provider.ws.terminate();
  rb.clients.splice(1, 1);
  const t0 = Date.now();
  for (const [room, id, how] of [[ra, ids[0], 'left cleanly'], [rb, ids[1], 'dropped its socket']]) {
    await waitFor(() => room.clients.every((c) => !c.provider.awareness.getStates().has(id)),
      AWARENESS_BOUND_MS - (Date.now() - t0),
      () => `awareness in ${room.name}: the state of a client that ${how} is still seen by ` +
        `${room.clients.filter((c) => c.provider.awareness.getStates().has(id)).length} clients ` +
        `after ${AWARENESS_BOUND_MS} ms`);
  }
  const took = Date.now() - t0;
  check(took <= AWARENESS_BOUND_MS, `awareness: removals took ${took} ms, bound ${AWARENESS_BOUND_MS} ms`);
  ok(`awareness: a client that leaves and one whose socket drops are removed from the others ` +
    `within ${took} ms (bound ${AWARENESS_BOUND_MS} ms)`);
  destroyClient(b);
}

// ---- 3. restart -------------------------------------------------------------

async function restart(server) {
  if (server.kind === 'reference') {
    // The reference hands each update to LevelDB without waiting.
    await sleep(1000);
  }
  const killed = await server.kill('SIGKILL');
  check(killed && killed.signal === 'SIGKILL',
    `the server did not die of SIGKILL: ${JSON.stringify(killed)}`);
  for (const c of [...clients]) destroyClient(c);
  await server.start();
  for (const room of ROOMS) {
    const c = makeClient(server.url, room.name, `${room.tag}-after-restart`);
    await waitFor(() => synced(c) && json(c) === room.expected, 10000,
      () => `room ${room.name} after SIGKILL and restart: a new client has ` +
        `${json(c).length} bytes of JSON, ${room.expected.length} were there before ` +
        `(text ${c.doc.getText('text').length} chars, array ${c.doc.getArray('array').length})`);
    destroyClient(c);
  }
  ok('restart: after SIGKILL and a restart on the same data, a new client gets the full state of both rooms');
}

// ---- 4. tokens --------------------------------------------------------------

const b64url = (buf) => Buffer.from(buf).toString('base64url');

// upgradeStatus(url): the HTTP status of a WebSocket upgrade, 101 if it
// opened.
function upgradeStatus(url) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    const t = setTimeout(() => {
      ws.terminate();
      reject(new Error(`no answer to the upgrade of ${url}`));
    }, 5000);
    ws.on('unexpected-response', (_req, res) => {
      clearTimeout(t);
      resolve(res.statusCode);
      res.resume();
      ws.terminate();
    });
    ws.on('open', () => {
      clearTimeout(t);
      resolve(101);
      ws.close();
    });
    ws.on('error', () => {});
  });
}

async function tokens(opts, tmp) {
  const secretFile = path.join(tmp, 'secret');
  fs.writeFileSync(secretFile, crypto.randomBytes(32).toString('hex') + '\n', { mode: 0o600 });
  const server = new Server('loom', { loomCmd: opts.loomCmd, dataDir: path.join(tmp, 'auth-data'),
    authSecret: secretFile, verbose });
  servers.push(server);
  await server.start();
  const room = `auth-${crypto.randomBytes(3).toString('hex')}`;
  const tok = (r, mode, ttl) => loomToken(opts.loomCmd, { secretFile, room: r, mode, ttl });
  const expired = tok('auth-*', 'rw', 1);
  const expiredAt = Date.now();
  const rw = tok('auth-*', 'rw');
  const ro = tok('auth-*', 'r');
  const [h, p, s] = rw.split('.');
  check(h && p && s, `loom token printed no JWT: ${rw}`);
  const forged = `${h}.${p}.${b64url(crypto.createHmac('sha256', 'not the secret').update(`${h}.${p}`).digest())}`;
  // One payload character changed, the signature kept.
  const mid = Math.floor(p.length / 2);
  const tampered = `${h}.${p.slice(0, mid)}${p[mid] === 'A' ? 'B' : 'A'}${p.slice(mid + 1)}.${s}`;
  const bad = {
    'no token': '',
    garbage: '?token=not-a-jwt',
    forged: `?token=${forged}`,
    tampered: `?token=${tampered}`,
    'wrong room': `?token=${tok('other-*', 'rw')}`,
  };
  await sleep(Math.max(0, expiredAt + 2100 - Date.now()));
  bad.expired = `?token=${expired}`;
  for (const [what, q] of Object.entries(bad)) {
    const st = await upgradeStatus(`${server.url}/${room}${q}`);
    check(st === 401, `tokens: ${what}: the upgrade got ${st}, want 401`);
  }
  check(await upgradeStatus(`${server.url}/${room}?token=${rw}`) === 101, 'tokens: a good rw token was refused');
  check(await upgradeStatus(`${server.url}/${room}?token=${ro}`) === 101, 'tokens: a good r token was refused');
  ok(`tokens: ${Object.keys(bad).join(', ')} get 401; good rw and r tokens connect`);

  const writer = makeClient(server.url, room, 'writer', { token: rw });
  await waitFor(() => synced(writer), 5000, 'tokens: the rw client did not sync');
  writer.doc.getText('text').insert(0, 'written with an rw token');
  writer.doc.getMap('map').set('by', 'writer');
  const reader = makeClient(server.url, room, 'reader', { token: ro });
  const want = json(writer);
  await waitFor(() => synced(reader) && json(reader) === want, 5000,
    () => `tokens: the read-only client has ${json(reader)}, want ${want}`);
  ok('read-only: a client with an r token receives the document');

  reader.doc.getText('text').insert(0, 'READ-ONLY ');
  reader.doc.getMap('map').set('by', 'reader');
  reader.doc.getArray('array').push(['reader']);
  await waitFor(() => reader.denied.length > 0, 3000,
    'read-only: no permission-denied auth message after the read-only client edited');
  await sleep(1000);
  check(json(writer) === want, `read-only: the reader's edits reached the writer: ${json(writer)}`);
  const third = makeClient(server.url, room, 'third', { token: rw });
  await waitFor(() => synced(third), 5000, 'read-only: a new rw client did not sync');
  check(json(third) === want, `read-only: a new client sees the reader's edits: ${json(third)}`);
  destroyClient(third);

  // Restart with both clients still there: on reconnecting, the reader
  // offers its edits again in sync step 2; they must be refused again.
  const deniedBefore = reader.denied.length;
  const term = await server.stop();
  check(term && term.code === 0, `SIGTERM: loom serve exited with ${JSON.stringify(term)}, want status 0`);
  await server.start();
  await waitFor(() => synced(writer) && synced(reader), 10000, 'read-only: the clients did not reconnect after the restart');
  await waitFor(() => reader.denied.length > deniedBefore, 3000,
    'read-only: no permission-denied message for the step 2 the reader sent after the restart');
  await sleep(500);
  const fresh = makeClient(server.url, room, 'fresh', { token: ro });
  await waitFor(() => synced(fresh), 5000, 'read-only: no sync after the restart');
  check(json(fresh) === want && json(writer) === want,
    `read-only: after a restart the document is ${json(fresh)}, want ${want}`);
  ok(`read-only: its edits (denied ${reader.denied.length} times: "${reader.denied[0]}") reach no ` +
    'other client, and after a restart nothing of them is there');
  for (const c of [writer, reader, fresh]) destroyClient(c);
  const term2 = await server.stop();
  check(term2 && term2.code === 0, `SIGTERM: loom serve exited with ${JSON.stringify(term2)}, want status 0`);
}

// ---- main -------------------------------------------------------------------

const servers = [];

async function main() {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'loom-converge-'));
  try {
    console.log(`converge: ${serverName(opts)} server, seed ${seed}`);
    const dataDir = path.join(tmp, 'data');
    const server = new Server(opts.kind, { loomCmd: opts.loomCmd, dataDir, verbose });
    servers.push(server);
    await server.start();
    await convergence(server);
    await awareness();
    if (server.features.persistence) await restart(server);
    else na('restart', 'this server keeps nothing on disk');
    for (const c of [...clients]) destroyClient(c);
    if (server.features.sigterm) {
      const r = await server.stop();
      check(r && r.code === 0, `SIGTERM: the server exited with ${JSON.stringify(r)}, want status 0`);
      ok('SIGTERM: the server exits with status 0');
    } else {
      await server.stop();
      na('SIGTERM exit status', 'the reference server does not handle SIGTERM (dies of the signal)');
    }
    if (server.features.auth) await tokens(opts, tmp);
    else na('tokens, 401 and read-only connections', 'the reference server has no auth');
  } finally {
    for (const c of [...clients]) destroyClient(c);
    for (const s of servers) await s.kill('SIGKILL');
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

const watchdog = setTimeout(() => {
  console.error('converge: FAIL: still running after 90 s');
  for (const s of servers) if (s.proc) s.proc.kill('SIGKILL');
  process.exit(1);
}, 90000);

const started = Date.now();
main().then(() => {
  clearTimeout(watchdog);
  console.log(`converge: ${serverName(opts)}: ${report.passed} checks passed, ${report.na} not applicable, ` +
    `in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  process.exit(0);
}, (e) => {
  clearTimeout(watchdog);
  console.error(`converge: FAIL (${serverName(opts)} server, seed ${seed}): ${e instanceof Failure ? e.message : e.stack}`);
  for (const s of servers) if (s.log) console.error(`--- last output of the ${s.kind} server:\n${s.log}`);
  process.exit(1);
});
