// SPDX-License-Identifier: MIT
//
// bench/net/load.mjs: a load generator for y-websocket servers, run against
// `loom serve` or the reference server (tests/interop/servers.mjs starts
// either). It measures, in three phases:
//
//   1. idle connections: N connections (--idle, default 10000) over
//      --idle-rooms rooms, each doing the y-websocket handshake (sync step 1
//      and 2) and then nothing. The server's VmRSS before and after gives
//      the memory per connection. After --hold seconds every connection must
//      still be open and receive one update sent in its room: "held" counts
//      the connections that did.
//   2. load: R rooms (--rooms) of K clients (--clients) for --secs seconds.
//      Every client pushes small edits to its own root array, each carrying
//      its send time (performance.now() of this process, which is also the
//      receivers' clock). A client keeps at most --window edits that the next
//      client of its room has not yet received (closed loop: as fast as the
//      server delivers), or sends --rate edits per second within that window.
//      Every other client of the room must receive every edit; the figures
//      are edits delivered to other clients per second, delivery latency
//      p50/p99 (send to receipt), the share of deliveries that arrived
//      (must be 1), and the server's CPU time and peak RSS. A closed loop
//      measures latency under saturation (queueing included);
//   3. fixed rate: the same clients then send a light fixed rate
//      (--fixed-rate), for the latency without queueing (keys fixed_*).
//
// The clients are light: a TCP socket with a minimal WebSocket client
// speaking the y-websocket framing (spec §13), and one Y.Doc per client for
// its own edits only, so the generator spends its CPU on sockets rather
// than on merging every update into 100 replicas. Received updates are not
// applied; the send time is found by scanning the update bytes for the
// edit's marker string (a v1 update carries strings verbatim), which also
// works when a server merges several updates into one message; a receiver
// counts each edit once. The first second of each load phase is warm-up and
// not counted. With --gen, phases 2 and 3 run in the C generator
// (bench/net/loadgen.c), which does the same at less CPU per message.
//
// Prints progress on stderr and one JSON line on stdout.
//
// Usage: node bench/net/load.mjs [--server loom|reference] [--loom PATH]
//   [--rooms R] [--clients K] [--secs S] [--window W] [--rate N]
//   [--idle N] [--idle-rooms M] [--hold S] [--threads T] [--gen PATH] [--persist]
//   [--memory]
//   [--fixed-rate N] [--fixed-secs S]
//   --fixed-rate, --fixed-secs: the second load phase, N edits per second
//   per client (default 5: 500 edits/s, 4,500 deliveries/s for 10x10) for
//   S seconds (default 6), 0 to skip it.
//   --threads: split the load phase's rooms over T worker threads (default
//   1), for a server fast enough to leave the generator short of CPU; the
//   generator's CPU share is reported either way.
//   --gen PATH: run the load phases with the C generator instead
//   (bench/net/loadgen.c, built as build/loom_loadgen): the same edits and
//   figures at a fraction of the CPU per message.
//   --persist: give the reference server a LevelDB (YPERSISTENCE) as well;
//   loom runs with --data (its durability is part of its cost) unless
//   --memory: then without a store, as the reference runs by default, for
//   latency without the disk sync each relayed update waits for.
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { performance } from 'node:perf_hooks';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import * as Y from 'yjs';
import * as encoding from 'lib0/encoding';
import { Server, requireServer, serverArgs, sleep } from '../../tests/interop/servers.mjs';

const opts = serverArgs(process.argv.slice(2));
const cfg = { rooms: 10, clients: 10, secs: 10, window: 4, rate: 0, idle: 10000, idleRooms: 100, hold: 5,
  persist: false, memory: false, warmup: 1, threads: 1, fixedRate: 5, fixedSecs: 6, gen: null };
for (let i = 0; i < opts.rest.length; i++) {
  const a = opts.rest[i];
  const num = () => {
    const v = Number(opts.rest[++i]);
    if (!Number.isFinite(v) || v < 0) {
      console.error(`load: ${a} needs a number`);
      process.exit(2);
    }
    return v;
  };
  if (a === '--rooms') cfg.rooms = num();
  else if (a === '--clients') cfg.clients = num();
  else if (a === '--secs') cfg.secs = num();
  else if (a === '--window') cfg.window = num();
  else if (a === '--rate') cfg.rate = num();
  else if (a === '--idle') cfg.idle = num();
  else if (a === '--idle-rooms') cfg.idleRooms = num();
  else if (a === '--hold') cfg.hold = num();
  else if (a === '--threads') cfg.threads = num();
  else if (a === '--gen') cfg.gen = path.resolve(opts.rest[++i]);
  else if (a === '--fixed-rate') cfg.fixedRate = num();
  else if (a === '--fixed-secs') cfg.fixedSecs = num();
  else if (a === '--persist') cfg.persist = true;
  else if (a === '--memory') cfg.memory = true;
  else {
    console.error(`load: unknown argument ${a} (see the head of bench/net/load.mjs)`);
    process.exit(2);
  }
}
if (cfg.clients < 2 || cfg.rooms < 1 || cfg.window < 1 || cfg.secs <= cfg.warmup) {
  console.error('load: need --clients >= 2, --rooms >= 1, --window >= 1, --secs > 1');
  process.exit(2);
}
if (isMainThread) requireServer(opts, 'load');
const log = (msg) => process.stderr.write(`load[${opts.kind}]: ${msg}\n`);

// ---- a light y-websocket client ----------------------------------------------

const MARK = Buffer.from('LOOMTS:');
const SEP = ';'.charCodeAt(0);
const COLON = ':'.charCodeAt(0);
const DOT = '.'.charCodeAt(0);
const CLK_TCK = 100; // Linux USER_HZ, the unit of /proc/<pid>/stat times
const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
// Sync step 2 of a client with nothing: an empty update.
const EMPTY_UPDATE = Y.encodeStateAsUpdate(new Y.Doc());

// frame(outer, sync, payload): a y-websocket sync message.
function frame(outer, sync, payload) {
  const e = encoding.createEncoder();
  encoding.writeVarUint(e, outer);
  encoding.writeVarUint(e, sync);
  encoding.writeVarUint8Array(e, payload);
  return encoding.toUint8Array(e);
}

// wsFrame(opcode, payload): one final, masked client frame. The mask key
// is zero, so the payload goes out as it is (servers unmask whatever the
// key; RFC 6455 wants it unpredictable, which matters for proxies, not
// here).
function wsFrame(opcode, payload) {
  const n = payload.length;
  const hdr = n < 126 ? 6 : n < 65536 ? 8 : 14;
  const out = Buffer.allocUnsafe(hdr + n);
  out[0] = 0x80 | opcode;
  if (n < 126) {
    out[1] = 0x80 | n;
  } else if (n < 65536) {
    out[1] = 0x80 | 126;
    out.writeUInt16BE(n, 2);
  } else {
    out[1] = 0x80 | 127;
    out.writeBigUInt64BE(BigInt(n), 2);
  }
  out.writeUInt32BE(0, hdr - 4);
  out.set(payload, hdr);
  return out;
}

// One connection, on a plain TCP socket with just enough WebSocket (RFC
// 6455) for this: the upgrade (Sec-WebSocket-Accept checked), unmasked
// server frames parsed in place, pings answered. A generic WebSocket
// library costs several times more CPU per message, and the generator
// shares the machine with the server it measures. onEdit(sender, seq,
// sentAt) is called for every edit marker in every update received after
// the handshake.
class Client {
  constructor(url, room, id, onEdit) {
    const u = new URL(url);
    this.host = u.hostname;
    this.port = Number(u.port);
    this.path = `/${room}`;
    this.id = id;
    this.room = room;
    this.onEdit = onEdit;
    this.doc = null;
    this.seq = 0;
    this.sock = null;
    this.synced = false;
    this.closed = false;
  }

  connect(timeoutMs = 30000) {
    return new Promise((resolve, reject) => {
      const what = `ws://${this.host}:${this.port}${this.path}`;
      const sock = net.connect(this.port, this.host);
      this.sock = sock;
      sock.setNoDelay(true);
      const key = crypto.randomBytes(16).toString('base64');
      const accept = crypto.createHash('sha1').update(key + WS_GUID).digest('base64');
      let pending = null;
      let upgraded = false;
      const t = setTimeout(() => fail(`no sync within ${timeoutMs} ms`), timeoutMs);
      const fail = (why) => {
        clearTimeout(t);
        sock.destroy();
        reject(new Error(`${what}: ${why}`));
      };
      this.resolveSync = () => {
        clearTimeout(t);
        resolve(this);
      };
      this.fail = fail;
      sock.on('connect', () => {
        sock.write(`GET ${this.path} HTTP/1.1\r\nHost: ${this.host}:${this.port}\r\n` +
          'Upgrade: websocket\r\nConnection: Upgrade\r\n' +
          `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
      });
      sock.on('data', (chunk) => {
        let buf = pending === null ? chunk : Buffer.concat([pending, chunk]);
        pending = null;
        let at = 0;
        if (!upgraded) {
          const end = buf.indexOf('\r\n\r\n');
          if (end < 0) {
            pending = buf;
            return;
          }
          const head = buf.toString('latin1', 0, end);
          if (!/^HTTP\/1\.1 101 /.test(head)) return fail(`upgrade refused: ${head.split('\r\n')[0]}`);
          if (!new RegExp(`^sec-websocket-accept: *${accept.replace(/[+/=]/g, '\\$&')} *$`, 'im').test(head)) {
            return fail('wrong Sec-WebSocket-Accept');
          }
          upgraded = true;
          at = end + 4;
          // Sync step 1 with an empty state vector: the client has nothing.
          this.send(frame(0, 0, Uint8Array.of(0)));
        }
        while (buf.length - at >= 2) {
          const b0 = buf[at];
          const b1 = buf[at + 1];
          let len = b1 & 0x7f;
          let hdr = 2;
          if (b1 & 0x80) return fail('the server sent a masked frame');
          if ((b0 & 0x80) === 0 || (b0 & 0x0f) === 0) return fail('fragmented frame (not handled here)');
          if (len === 126) {
            if (buf.length - at < 4) break;
            len = buf.readUInt16BE(at + 2);
            hdr = 4;
          } else if (len === 127) {
            if (buf.length - at < 10) break;
            len = Number(buf.readBigUInt64BE(at + 2));
            hdr = 10;
          }
          if (buf.length - at < hdr + len) break;
          this.onFrame(b0 & 0x0f, buf, at + hdr, at + hdr + len);
          at += hdr + len;
        }
        if (at < buf.length) pending = Buffer.from(buf.subarray(at));
      });
      sock.on('close', () => {
        this.closed = true;
        if (!this.synced) fail('closed before sync');
      });
      sock.on('error', () => {});
    });
  }

  onFrame(opcode, buf, start, end) {
    if (opcode === 2) {
      if (buf[start] !== 0) return; // awareness, auth, query
      const type = buf[start + 1];
      if (type === 2) {
        if (this.synced) this.scan(buf, start, end);
      } else if (type === 0) {
        this.send(frame(0, 1, EMPTY_UPDATE)); // the server's step 1
      } else if (type === 1 && !this.synced) {
        this.synced = true;
        this.resolveSync();
      }
    } else if (opcode === 9) {
      this.sock.write(wsFrame(10, buf.subarray(start, end)));
    } else if (opcode === 8) {
      this.sock.end();
    }
  }

  send(payload) {
    if (!this.closed) this.sock.write(wsFrame(2, payload));
  }

  // scan: every marker LOOMTS:<sender>:<seq>:<ms>; in buf[start, end).
  scan(buf, start, end) {
    for (let at = buf.indexOf(MARK, start); at >= 0 && at < end; at = buf.indexOf(MARK, at + 1)) {
      let i = at + MARK.length;
      let sender = 0;
      for (; i < end && buf[i] !== COLON; i++) sender = sender * 10 + (buf[i] - 48);
      let seq = 0;
      for (i++; i < end && buf[i] !== COLON; i++) seq = seq * 10 + (buf[i] - 48);
      let ms = 0;
      for (i++; i < end && buf[i] !== DOT && buf[i] !== SEP; i++) ms = ms * 10 + (buf[i] - 48);
      let scale = 1;
      if (buf[i] === DOT) {
        for (i++; i < end && buf[i] !== SEP; i++) {
          scale /= 10;
          ms += (buf[i] - 48) * scale;
        }
      }
      if (i >= end) break; // cut off: not a whole marker
      this.onEdit(sender, seq, ms);
    }
  }

  // edit(): one push of a marker with the send time to this client's root
  // array, sent as a y-websocket update.
  // `at`: the send time, as it is printed (thousandths of a ms), which is
  // also what decides whether the edit counts (window()).
  edit(at = performance.now()) {
    if (this.doc === null) {
      this.doc = new Y.Doc();
      this.doc.on('update', (u) => this.send(frame(0, 2, u)));
    }
    const seq = ++this.seq;
    this.doc.getArray(`c${this.id}`).push([`LOOMTS:${this.id}:${seq}:${at.toFixed(3)};`]);
    return seq;
  }

  close() {
    if (this.sock) this.sock.destroy();
  }
}

// ---- measurements -------------------------------------------------------------

function serverCpuSeconds(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / CLK_TCK; // utime, stime
}

function openFilesLimit() {
  const m = /^Max open files\s+(\d+)/m.exec(fs.readFileSync('/proc/self/limits', 'utf8'));
  return m ? Number(m[1]) : 1024;
}

function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function connectAll(clients, batch = 500) {
  for (let i = 0; i < clients.length; i += batch) {
    await Promise.all(clients.slice(i, i + batch).map((c) => c.connect()));
  }
}

// ---- phase 1: idle connections --------------------------------------------------

async function idlePhase(server, result) {
  let n = cfg.idle;
  const limit = openFilesLimit();
  if (n + 200 > limit) {
    const was = n;
    n = Math.max(0, limit - 200);
    log(`open files limit is ${limit}: ${n} idle connections instead of ${was} (raise it with ulimit -n)`);
  }
  result.idle_wanted = cfg.idle;
  result.idle_conns = n;
  if (n === 0) return;
  const rooms = Math.max(1, Math.min(cfg.idleRooms, Math.floor(n / 2)));
  const got = new Map();
  const clients = [];
  for (let i = 0; i < n; i++) {
    const c = new Client(server.url, `idle-${i % rooms}`, i, (sender) => {
      if (sender !== c.id) got.set(c.id, true);
    });
    clients.push(c);
  }
  const rss0 = server.rssBytes();
  const t0 = performance.now();
  try {
    await connectAll(clients);
  } catch (e) {
    result.idle_error = String(e.message || e);
    log(`idle: ${result.idle_error}`);
  }
  result.idle_connect_s = (performance.now() - t0) / 1000;
  const synced = clients.filter((c) => c.synced).length;
  await sleep(500);
  const rss1 = server.rssBytes();
  result.rss_base_bytes = rss0;
  result.rss_idle_bytes = rss1;
  result.rss_per_conn_bytes = synced > 0 ? Math.round((rss1 - rss0) / synced) : null;
  log(`idle: ${synced}/${n} connections synced in ${result.idle_connect_s.toFixed(1)} s over ${rooms} rooms; ` +
    `server RSS ${(rss0 / 2 ** 20).toFixed(1)} -> ${(rss1 / 2 ** 20).toFixed(1)} MiB`);
  await sleep(cfg.hold * 1000);
  // Held: still open, and a message sent in each room reaches them.
  for (let r = 0; r < rooms; r++) {
    const first = clients[r];
    if (first.synced && !first.closed) first.edit();
  }
  const want = clients.filter((c) => c.id >= rooms);
  const deadline = performance.now() + 15000;
  while (performance.now() < deadline && want.some((c) => !got.has(c.id))) await sleep(50);
  const held = want.filter((c) => !c.closed && got.has(c.id)).length + clients.slice(0, rooms).filter((c) => !c.closed && c.synced).length;
  result.idle_held = held;
  log(`idle: after ${cfg.hold} s, ${held}/${n} connections still open and receiving`);
  for (const c of clients) c.close();
  await sleep(1000);
}

// ---- phase 2: load ------------------------------------------------------------------

// A share of the load: the rooms `first`..`first+count-1`, run in this
// thread. connect() opens and syncs every client; run(sendMs, warmupMs)
// sends for sendMs, counts what was sent after warmupMs and delivered in
// time, then drains up to 10 s. Everything is timed with this thread's
// performance.now(): a room's senders and receivers are in one thread.
class LoadShare {
  constructor(url, first, count) {
    this.all = [];
    this.sent = 0;
    this.delivered = 0;
    this.lat = [];
    this.windowStart = Infinity;
    this.windowEnd = Infinity;
    this.sending = false;
    let nextId = first * cfg.clients;
    for (let r = first; r < first + count; r++) {
      const members = [];
      for (let k = 0; k < cfg.clients; k++) {
        const c = new Client(url, `load-${r}`, nextId++, null);
        c.acked = 0;
        c.seen = new Map();
        members.push(c);
      }
      members.forEach((c, k) => {
        // Flow control: each client acknowledges the edits of the client
        // before it in the room.
        c.onEdit = (sender, seq, sentAt) => this.received(c, sender, seq, sentAt);
        c.ackFor = members[(k + members.length - 1) % members.length];
      });
      this.all.push(...members);
    }
  }

  received(c, sender, seq, sentAt) {
    if (sender === c.id) return; // the reference echoes to the sender
    if (seq <= (c.seen.get(sender) || 0)) return; // seen before
    c.seen.set(sender, seq);
    const s = c.ackFor;
    if (s.id === sender && seq > s.acked) {
      s.acked = seq;
      this.pump(s);
    }
    if (this.inWindow(sentAt)) {
      this.delivered++;
      this.lat.push(performance.now() - sentAt);
    }
  }

  send(c) {
    const now = performance.now();
    if (!this.sending || now >= this.windowEnd || c.seq - c.acked >= cfg.window) return false;
    const at = Math.round(now * 1000) / 1000;
    c.edit(at);
    if (this.inWindow(at)) this.sent++;
    return true;
  }

  // Whether an edit sent at `at` (ms, as printed in its marker) counts:
  // compared in whole thousandths, so sender and receiver always agree
  // (a time rounded past the window's end made 9 deliveries go missing).
  inWindow(at) {
    const k = Math.round(at * 1000);
    return k >= Math.round(this.windowStart * 1000) && k < Math.round(this.windowEnd * 1000);
  }

  pump(c) {
    if (this.rate) return;
    while (this.send(c));
  }

  connect() {
    return connectAll(this.all);
  }

  close() {
    for (const c of this.all) c.close();
  }

  async run(sendMs, warmupMs, rate) {
    this.rate = rate;
    this.sent = 0;
    this.delivered = 0;
    this.lat = [];
    const t0 = performance.now();
    this.windowStart = t0 + warmupMs;
    this.windowEnd = t0 + sendMs;
    this.sending = true;
    const cpu0 = process.cpuUsage();
    const timers = [];
    if (rate) {
      // Start times spread over one period, so the clients do not send in
      // lockstep.
      for (const c of this.all) {
        timers.push(setTimeout(() => {
          timers.push(setInterval(() => this.send(c), 1000 / rate));
        }, Math.random() * (1000 / rate)));
      }
    } else {
      for (const c of this.all) this.pump(c);
    }
    while (performance.now() < this.windowEnd) await sleep(50);
    this.sending = false;
    for (const t of timers) clearTimeout(t);
    const cpu = process.cpuUsage(cpu0);
    const expected = this.sent * (cfg.clients - 1);
    const drainEnd = performance.now() + 10000;
    while (this.delivered < expected && performance.now() < drainEnd) await sleep(50);
    return { sent: this.sent, delivered: this.delivered, expected, lat: Float64Array.from(this.lat),
      cpu_s: (cpu.user + cpu.system) / 1e6 };
  }
}

// In a worker thread: one share, driven by messages from the main thread.
if (!isMainThread) {
  const { url, first, count } = workerData;
  const share = new LoadShare(url, first, count);
  parentPort.on('message', async (m) => {
    if (m.op === 'connect') {
      await share.connect();
      parentPort.postMessage({ op: 'connected' });
    } else if (m.op === 'run') {
      const r = await share.run(m.sendMs, m.warmupMs, m.rate);
      parentPort.postMessage({ op: 'done', r }, [r.lat.buffer]);
    } else if (m.op === 'close') {
      share.close();
      parentPort.postMessage({ op: 'closed' });
    }
  });
}

// The C generator (--gen PATH) as one share of all the rooms: it prints
// {"ready":...} once every client synced, then one JSON line per `run`.
function cShare(url) {
  const u = new URL(url);
  const proc = spawn(cfg.gen, ['--host', u.hostname, '--port', u.port, '--rooms', String(cfg.rooms),
    '--clients', String(cfg.clients), '--window', String(cfg.window)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = readline.createInterface({ input: proc.stdout });
  const waiting = [];
  lines.on('line', (l) => {
    const w = waiting.shift();
    if (w) w.resolve(JSON.parse(l));
  });
  proc.on('exit', (code) => {
    for (const w of waiting.splice(0)) w.reject(new Error(`${cfg.gen} exited with ${code}`));
  });
  const next = () => new Promise((resolve, reject) => waiting.push({ resolve, reject }));
  return {
    connect: () => next(),
    run: async (sendMs, warmupMs, rate) => {
      proc.stdin.write(`run ${sendMs} ${warmupMs} ${rate}\n`);
      const r = await next();
      return { ...r, pct: true };
    },
    close: async () => {
      proc.stdin.end('quit\n');
      await new Promise((resolve) => (proc.exitCode !== null ? resolve() : proc.on('exit', resolve)));
    },
  };
}

// The shares of the rooms: the C generator, this thread, or --threads
// worker threads.
function makeShares(url) {
  if (cfg.gen) return [cShare(url)];
  const n = Math.max(1, Math.min(cfg.threads, cfg.rooms));
  const shares = [];
  for (let i = 0, first = 0; i < n; i++) {
    const count = Math.floor(cfg.rooms / n) + (i < cfg.rooms % n ? 1 : 0);
    if (n === 1) {
      const s = new LoadShare(url, first, count);
      shares.push({ connect: () => s.connect(), run: (...a) => s.run(...a), close: async () => s.close() });
    } else {
      const w = new Worker(new URL(import.meta.url), { workerData: { url, first, count },
        argv: process.argv.slice(2) });
      const next = (op) => new Promise((resolve, reject) => {
        const on = (m) => {
          if (m.op === op) {
            w.off('message', on);
            resolve(m.r);
          }
        };
        w.on('message', on);
        w.once('error', reject);
      });
      shares.push({
        connect: () => {
          w.postMessage({ op: 'connect' });
          return next('connected');
        },
        run: (sendMs, warmupMs, rate) => {
          w.postMessage({ op: 'run', sendMs, warmupMs, rate });
          return next('done');
        },
        close: async () => {
          w.postMessage({ op: 'close' });
          await next('closed');
          await w.terminate();
        },
      });
    }
    first += count;
  }
  return shares;
}

// runPhase(server, shares, secs, rate): one measured phase over the
// connected shares; returns its figures.
async function runPhase(server, shares, secs, rate) {
  const sendMs = secs * 1000;
  const warmupMs = cfg.warmup * 1000;
  const t0 = performance.now();
  const gen0 = process.cpuUsage();
  let done = null;
  Promise.all(shares.map((s) => s.run(sendMs, warmupMs, rate))).then((r) => {
    done = r;
  });
  // The server's CPU and RSS over the same window, seen from here.
  let rssPeak = server.rssBytes();
  let cpu0 = null;
  let cpu1 = null;
  while (done === null) {
    await sleep(100);
    const now = performance.now();
    if (cpu0 === null && now >= t0 + warmupMs) cpu0 = serverCpuSeconds(server.pid);
    if (cpu1 === null && now >= t0 + sendMs) cpu1 = serverCpuSeconds(server.pid);
    if (now < t0 + sendMs) rssPeak = Math.max(rssPeak, server.rssBytes());
  }
  // Per CPU second: the server's time up to the end of the drain, so the
  // work for the last deliveries counts too.
  const cpu2 = serverCpuSeconds(server.pid);
  if (cpu1 === null) cpu1 = cpu2;
  // With worker threads, process.cpuUsage() covers them all.
  const gen = process.cpuUsage(gen0);
  const span = (sendMs - warmupMs) / 1000;
  const sent = done.reduce((n, r) => n + r.sent, 0);
  const delivered = done.reduce((n, r) => n + r.delivered, 0);
  const expected = done.reduce((n, r) => n + r.expected, 0);
  // The C generator sends its percentiles, the Node shares their samples.
  const pct = done.length === 1 && done[0].pct ? done[0] : null;
  const lat = new Float64Array(pct ? 0 : done.reduce((n, r) => n + r.lat.length, 0));
  let at = 0;
  for (const r of pct ? [] : done) {
    lat.set(r.lat, at);
    at += r.lat.length;
  }
  lat.sort();
  return {
    edits_sent: sent,
    edits_per_s: sent / span,
    delivered,
    delivered_per_s: delivered / span,
    delivery_ratio: expected ? delivered / expected : null,
    p50_ms: pct ? pct.p50_ms : percentile(lat, 50),
    p99_ms: pct ? pct.p99_ms : percentile(lat, 99),
    max_ms: pct ? pct.max_ms : lat.length ? lat[lat.length - 1] : NaN,
    server_cpu_pct: (100 * (cpu1 - cpu0)) / span,
    delivered_per_server_cpu_s: cpu2 > cpu0 ? delivered / (cpu2 - cpu0) : null,
    // The C generator is a child process: its own figure, over its sending.
    loadgen_cpu_pct: pct ? (100 * pct.cpu_s) / (sendMs / 1000)
      : (100 * (gen.user + gen.system)) / 1e6 / (sendMs / 1000),
    rss_load_peak_bytes: rssPeak,
  };
}

function describe(r) {
  return `${r.edits_sent} edits sent, ${r.delivered} deliveries (${r.delivered_per_s.toFixed(0)}/s, ` +
    `ratio ${r.delivery_ratio}), latency p50 ${r.p50_ms.toFixed(2)} ms, p99 ${r.p99_ms.toFixed(2)} ms; ` +
    `server CPU ${r.server_cpu_pct.toFixed(0)}%, generator CPU ${r.loadgen_cpu_pct.toFixed(0)}%`;
}

// Two phases on the same clients: as fast as delivered (or --rate), for
// throughput; then a fixed light rate (--fixed-rate per client, for
// --fixed-secs), for latency without queueing. Keys of the second phase
// are prefixed fixed_.
async function loadPhase(server, result) {
  const shares = makeShares(server.url);
  await Promise.all(shares.map((s) => s.connect()));
  const total = cfg.rooms * cfg.clients;
  result.generator = cfg.gen ? 'c' : 'node';
  result.threads = cfg.gen ? 1 : shares.length;
  result.clients_total = total;
  log(`load: ${total} clients in ${cfg.rooms} rooms synced (${shares.length} thread(s)); sending for ` +
    `${cfg.secs} s (window ${cfg.window}${cfg.rate ? `, ${cfg.rate}/s per client` : ', as fast as delivered'})`);
  const r = await runPhase(server, shares, cfg.secs, cfg.rate);
  Object.assign(result, r);
  log(`load: ${describe(r)}`);
  if (cfg.fixedRate > 0 && cfg.fixedSecs > cfg.warmup) {
    await sleep(1000);
    log(`load: ${cfg.fixedRate} edits/s per client for ${cfg.fixedSecs} s`);
    const f = await runPhase(server, shares, cfg.fixedSecs, cfg.fixedRate);
    result.fixed_rate = cfg.fixedRate;
    for (const [k, v] of Object.entries(f)) result[`fixed_${k}`] = v;
    log(`load: fixed rate: ${describe(f)}`);
  }
  for (const s of shares) await s.close();
}

// ---- main --------------------------------------------------------------------------

if (isMainThread) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'loom-load-'));
  const dataDir = (opts.kind === 'loom' && !cfg.memory) || cfg.persist ? path.join(tmp, 'data') : undefined;
  const server = new Server(opts.kind, { loomCmd: opts.loomCmd, dataDir });
  const result = { server: opts.kind, persist: Boolean(dataDir), rooms: cfg.rooms, clients: cfg.clients,
    secs: cfg.secs, window: cfg.window, rate: cfg.rate, hold_s: cfg.hold };
  let code = 0;
  try {
    await server.start();
    await idlePhase(server, result);
    await loadPhase(server, result);
    process.stdout.write(JSON.stringify(result) + '\n');
  } catch (e) {
    console.error(`load: FAIL (${opts.kind}): ${e.stack || e}\n${server.log}`);
    code = 1;
  } finally {
    await server.kill('SIGKILL');
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  process.exit(code);
}
