#!/usr/bin/env node
// SPDX-License-Identifier: MIT
//
// tests/interop/contract-loom.mjs: a stand-in for the `loom` binary that
// implements only the command-line contract of `loom serve` and
// `loom token`, in Node, so the loom-only parts of the server tests (tokens,
// 401s, read-only connections, restart from --data, SIGTERM, --web) can be
// checked before loom's own server exists, and checked again whenever the
// tests change. It is not loom and proves nothing about loom: the test
// that uses it is named "contract", never "loom".
//
//   contract-loom.mjs help serve
//   contract-loom.mjs serve [--host H] [--port N] [--data DIR] [--web DIR]
//                           [--auth-secret FILE]
//   contract-loom.mjs token --secret FILE --room GLOB --mode rw|r [--ttl S]
//
// The server is a small y-websocket server on y-protocols (the room is the
// URL path; step 1 and the awareness states on connect; updates and
// awareness relayed to every connection; a connection's awareness states
// removed when it closes). With --data each room's updates are appended to
// DIR/<room, percent-encoded>.log and fsynced before they are relayed. With
// --auth-secret the upgrade needs ?token=JWT (HS256 over the trimmed file
// contents; claims room (a glob with *), mode, exp), else 401; an `r`
// connection's step 2 and updates are answered with the permission-denied
// auth message and dropped.
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { WebSocketServer } from 'ws';
import * as Y from 'yjs';
import * as syncProtocol from 'y-protocols/sync';
import * as awarenessProtocol from 'y-protocols/awareness';
import * as authProtocol from 'y-protocols/auth';
import * as encoding from 'lib0/encoding';
import * as decoding from 'lib0/decoding';
import { serveFile } from './static.mjs';

const [cmd, ...args] = process.argv.slice(2);

function flags(list, known) {
  const o = {};
  for (let i = 0; i < list.length; i++) {
    const k = list[i].replace(/^--/, '');
    if (!known.includes(k) || i + 1 >= list.length) {
      console.error(`contract-loom: bad argument ${list[i]}`);
      process.exit(2);
    }
    o[k] = list[++i];
  }
  return o;
}

const b64url = (x) => Buffer.from(x).toString('base64url');
const secretOf = (file) => fs.readFileSync(file, 'utf8').trim();
const sign = (secret, data) => b64url(crypto.createHmac('sha256', secret).update(data).digest());

if (cmd === 'help') {
  if (args[0] === 'serve' || args[0] === 'token') {
    console.log('contract-loom: a stand-in for the loom serve contract (tests/interop/contract-loom.mjs)');
    process.exit(0);
  }
  process.exit(2);
} else if (cmd === 'token') {
  const o = flags(args, ['secret', 'room', 'mode', 'ttl']);
  if (!o.secret || !o.room || !['rw', 'r'].includes(o.mode)) process.exit(2);
  const exp = Math.floor(Date.now() / 1000) + Number(o.ttl || 3600);
  const body = `${b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))}.${b64url(JSON.stringify({ room: o.room, mode: o.mode, exp }))}`;
  console.log(`${body}.${sign(secretOf(o.secret), body)}`);
  process.exit(0);
} else if (cmd !== 'serve') {
  console.error('usage: contract-loom.mjs help serve | serve ... | token ...');
  process.exit(2);
}

// ---- serve -----------------------------------------------------------------------

const o = flags(args, ['host', 'port', 'data', 'web', 'auth-secret']);
const host = o.host || process.env.HOST || '127.0.0.1';
const port = Number(o.port || process.env.PORT || 1234);
const secret = o['auth-secret'] ? secretOf(o['auth-secret']) : null;
if (o.data) fs.mkdirSync(o.data, { recursive: true });

// verify(token, room): 'rw', 'r' or null.
function verify(token, room) {
  const parts = (token || '').split('.');
  if (parts.length !== 3) return null;
  const want = Buffer.from(sign(secret, `${parts[0]}.${parts[1]}`));
  const got = Buffer.from(parts[2]);
  if (want.length !== got.length || !crypto.timingSafeEqual(want, got)) return null;
  let claims;
  try {
    claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
  } catch {
    return null;
  }
  if (typeof claims.exp !== 'number' || claims.exp <= Date.now() / 1000) return null;
  const glob = new RegExp(`^${String(claims.room).split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
  if (!glob.test(room)) return null;
  return claims.mode === 'rw' || claims.mode === 'r' ? claims.mode : null;
}

const rooms = new Map();

function logFile(name) {
  return path.join(o.data, `${encodeURIComponent(name)}.log`);
}

function getRoom(name) {
  let room = rooms.get(name);
  if (room) return room;
  const doc = new Y.Doc();
  const awareness = new awarenessProtocol.Awareness(doc);
  awareness.setLocalState(null);
  room = { name, doc, awareness, conns: new Map() };
  if (o.data && fs.existsSync(logFile(name))) {
    const buf = fs.readFileSync(logFile(name));
    for (let at = 0; at + 4 <= buf.length;) {
      const n = buf.readUInt32LE(at);
      if (at + 4 + n > buf.length) break; // a torn tail
      Y.applyUpdate(doc, buf.subarray(at + 4, at + 4 + n));
      at += 4 + n;
    }
  }
  // Durable first, relayed second: this handler is registered before the
  // broadcast below.
  if (o.data) {
    doc.on('update', (update) => {
      const fd = fs.openSync(logFile(name), 'a');
      const len = Buffer.alloc(4);
      len.writeUInt32LE(update.length);
      fs.writeSync(fd, Buffer.concat([len, update]));
      fs.fsyncSync(fd);
      fs.closeSync(fd);
    });
  }
  doc.on('update', (update) => {
    const e = encoding.createEncoder();
    encoding.writeVarUint(e, 0);
    syncProtocol.writeUpdate(e, update);
    const msg = encoding.toUint8Array(e);
    for (const ws of room.conns.keys()) send(ws, msg);
  });
  awareness.on('update', ({ added, updated, removed }, origin) => {
    const changed = added.concat(updated, removed);
    const ids = room.conns.get(origin);
    if (ids) {
      for (const c of added) ids.add(c);
      for (const c of removed) ids.delete(c);
    }
    const e = encoding.createEncoder();
    encoding.writeVarUint(e, 1);
    encoding.writeVarUint8Array(e, awarenessProtocol.encodeAwarenessUpdate(awareness, changed));
    const msg = encoding.toUint8Array(e);
    for (const ws of room.conns.keys()) send(ws, msg);
  });
  rooms.set(name, room);
  return room;
}

function send(ws, msg) {
  if (ws.readyState === ws.OPEN) ws.send(msg);
}

function onConnection(ws, name, mode) {
  const room = getRoom(name);
  room.conns.set(ws, new Set());
  ws.binaryType = 'arraybuffer';
  ws.on('message', (data) => {
    const d = decoding.createDecoder(new Uint8Array(data));
    const outer = decoding.readVarUint(d);
    if (outer === 0) {
      const e = encoding.createEncoder();
      encoding.writeVarUint(e, 0);
      const type = decoding.peekVarUint(d);
      if (mode === 'r' && type !== syncProtocol.messageYjsSyncStep1) {
        const deny = encoding.createEncoder();
        encoding.writeVarUint(deny, 2);
        authProtocol.writePermissionDenied(deny, 'read-only token');
        send(ws, encoding.toUint8Array(deny));
        return;
      }
      syncProtocol.readSyncMessage(d, e, room.doc, ws);
      if (encoding.length(e) > 1) send(ws, encoding.toUint8Array(e));
    } else if (outer === 1) {
      awarenessProtocol.applyAwarenessUpdate(room.awareness, decoding.readVarUint8Array(d), ws);
    }
  });
  ws.on('close', () => {
    const ids = room.conns.get(ws);
    room.conns.delete(ws);
    awarenessProtocol.removeAwarenessStates(room.awareness, [...ids], null);
  });
  const e = encoding.createEncoder();
  encoding.writeVarUint(e, 0);
  syncProtocol.writeSyncStep1(e, room.doc);
  send(ws, encoding.toUint8Array(e));
  const states = [...room.awareness.getStates().keys()];
  if (states.length > 0) {
    const a = encoding.createEncoder();
    encoding.writeVarUint(a, 1);
    encoding.writeVarUint8Array(a, awarenessProtocol.encodeAwarenessUpdate(room.awareness, states));
    send(ws, encoding.toUint8Array(a));
  }
}

const wss = new WebSocketServer({ noServer: true });
const server = http.createServer((req, res) => {
  if (req.url === '/healthz') {
    res.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok');
  } else if (o.web) {
    serveFile(o.web, req, res);
  } else {
    res.writeHead(404).end();
  }
});
server.on('upgrade', (req, socket, head) => {
  const url = new URL(req.url, 'http://x');
  const name = url.pathname.slice(1);
  let mode = 'rw';
  if (secret !== null) {
    mode = verify(url.searchParams.get('token'), name);
    if (mode === null) {
      socket.end('HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
      return;
    }
  }
  wss.handleUpgrade(req, socket, head, (ws) => onConnection(ws, name, mode));
});
server.listen(port, host, () => console.log(`contract-loom: listening on ${host}:${port}`));
process.on('SIGTERM', () => {
  for (const c of wss.clients) c.terminate();
  server.close(() => process.exit(0));
});
