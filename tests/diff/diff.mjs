// SPDX-License-Identifier: MIT
//
// tests/diff/diff.mjs: differential test of loom against the real yjs
// (the version pinned in the repository's package.json, from node_modules).
//
// For each seed, N replicas (3 or 4, with their own client ids and gc
// settings) run seeded random edits: maps (numbers, strings, booleans, null,
// undefined, bigints, binary, nested objects and arrays), arrays (insert,
// push, delete, nested map/array/text types), text (insert with and without
// attributes, format, delete, embeds, multi-byte and astral characters, never
// splitting a surrogate pair), XML (elements, texts, hooks, attributes), and
// transactions of several ops. Every replica exists twice: a yjs Y.Doc in
// this process and a loom doc in the driver program (tests/diff/driver.c,
// a child process). Both copies always receive the same ops and the same
// updates in the same order, so they must stay identical:
//
//   - every update a replica emits (local transaction, remote transaction,
//     formatting cleanup) must be byte-identical in both engines;
//   - updates cross engines: the bytes yjs emitted are applied to the loom
//     copies and the bytes loom emitted to the yjs copies. Emitted updates
//     go to a pool and are delivered to random replicas as random subsets in
//     random order, with duplicates, sometimes merged first (mergeUpdates,
//     compared between the engines);
//   - state-vector syncs (encodeStateVector / encodeStateAsUpdate(sv)) run
//     now and then and must produce the same bytes;
//   - at the end, after two full sync rounds: every replica has the same
//     JSON in both engines and across replicas (object key order ignored),
//     the same text deltas, and loom's encodeStateAsUpdate and state vector
//     equal yjs's byte for byte; mergeUpdates, diffUpdate and
//     encodeStateVectorFromUpdate over the pool must agree too.
//
// On a mismatch the script prints the seed, the failure, and the op log
// (vector ops: tests/vectors/README.md) cut down to a small reproducer, and
// writes the reproducer as JSON (replay it with --replay FILE); exit 1.
//
// Usage: node tests/diff/diff.mjs --driver PATH [options]
//   --seeds N       number of seeds (env LOOM_DIFF_SEEDS, default 300)
//   --start S       first seed (env LOOM_DIFF_SEED_START, default 1)
//   --ops N         random steps per seed (env LOOM_DIFF_OPS, default 150)
//   --kinds LIST    comma list of map,array,text,xml (env LOOM_DIFF_KINDS,
//                   default all); for bisecting only
//   --keep-going    go on after a failing seed (report all at the end)
//   --no-minimize   do not cut the op log down (env LOOM_DIFF_MINIMIZE=0)
//   --minimize-secs time budget for cutting one failure (default 60)
//   --out DIR       where reproducers go (default: the system temp dir)
//   --replay PATH   run a reproducer written by an earlier failure, or every
//                   *.json of a directory (tests/diff/repro)
//   --verbose       one line per seed
//
// No package is optional: without node_modules/yjs the test fails (run
// `npm ci` at the repository root; `make test` does).
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const YJS_PIN = '13.6.33';

// ---- arguments --------------------------------------------------------------

function parseArgs(argv) {
  const env = process.env;
  const o = {
    driver: null,
    seeds: Number(env.LOOM_DIFF_SEEDS || 300),
    start: Number(env.LOOM_DIFF_SEED_START || 1),
    ops: Number(env.LOOM_DIFF_OPS || 150),
    kinds: (env.LOOM_DIFF_KINDS || 'map,array,text,xml').split(',').filter(Boolean),
    keepGoing: false,
    minimize: env.LOOM_DIFF_MINIMIZE !== '0',
    minimizeSecs: Number(env.LOOM_DIFF_MINIMIZE_SECS || 60),
    out: env.LOOM_DIFF_OUT || os.tmpdir(),
    replay: null,
    verbose: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      if (i + 1 >= argv.length) usage(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--driver') o.driver = val();
    else if (a === '--seeds') o.seeds = Number(val());
    else if (a === '--start') o.start = Number(val());
    else if (a === '--ops') o.ops = Number(val());
    else if (a === '--kinds') o.kinds = val().split(',').filter(Boolean);
    else if (a === '--keep-going') o.keepGoing = true;
    else if (a === '--no-minimize') o.minimize = false;
    else if (a === '--minimize-secs') o.minimizeSecs = Number(val());
    else if (a === '--out') o.out = val();
    else if (a === '--replay') o.replay = val();
    else if (a === '--verbose') o.verbose = true;
    else usage(`unknown argument ${a}`);
  }
  if (!o.driver) usage('--driver PATH is required');
  for (const k of o.kinds) if (!['map', 'array', 'text', 'xml'].includes(k)) usage(`unknown kind ${k}`);
  if (!(o.seeds >= 0 && o.ops >= 0 && Number.isInteger(o.start))) usage('bad --seeds/--start/--ops');
  return o;
}

function usage(msg) {
  process.stderr.write(`diff.mjs: ${msg}\nusage: node tests/diff/diff.mjs --driver PATH [--seeds N] [--start S] [--ops N] [--kinds LIST] [--keep-going] [--no-minimize] [--replay FILE] [--verbose]\n`);
  process.exit(2);
}

const opts = parseArgs(process.argv.slice(2));

// ---- the real yjs -----------------------------------------------------------

const pkgFile = path.join(ROOT, 'node_modules', 'yjs', 'package.json');
if (!existsSync(pkgFile)) {
  process.stderr.write(`diff.mjs: FAIL: ${pkgFile} is missing.\n` +
    'The differential test needs the real yjs: run `npm ci` in the repository root ' +
    '(make test does it through scripts/deps.sh).\n');
  process.exit(1);
}
const yjsVersion = createRequire(pkgFile)(pkgFile).version;
if (yjsVersion !== YJS_PIN) {
  process.stderr.write(`diff.mjs: FAIL: node_modules has yjs ${yjsVersion}, the reference is ${YJS_PIN}: run \`npm ci\`.\n`);
  process.exit(1);
}
const Y = await import(pathToFileURL(path.join(ROOT, 'node_modules', 'yjs', 'dist', 'yjs.mjs')).href);
if (!existsSync(opts.driver)) {
  process.stderr.write(`diff.mjs: FAIL: driver ${opts.driver} does not exist (build loom_diff_driver)\n`);
  process.exit(1);
}

// ---- helpers ------------------------------------------------------------------

const toHex = (u8) => Buffer.from(u8).toString('hex');
const fromHex = (h) => new Uint8Array(Buffer.from(h, 'hex'));

const mulberry32 = (a) => () => {
  a |= 0; a = a + 0x6D2B79F5 | 0;
  let t = Math.imul(a ^ a >>> 15, 1 | a);
  t = t + Math.imul(t ^ t >>> 7, 61 | t) ^ t;
  return ((t ^ t >>> 14) >>> 0) / 4294967296;
};

// Key-order-free canonical text of a TJSON value.
function canon(v) {
  const rec = (x) => {
    if (Array.isArray(x)) return x.map(rec);
    if (x !== null && typeof x === 'object') {
      const o = {};
      for (const k of Object.keys(x).sort()) o[k] = rec(x[k]);
      return o;
    }
    return x;
  };
  return JSON.stringify(rec(v));
}

const SPECIAL = ['$undefined', '$bigint', '$binary', '$number', '$ytype', '$ydoc'];
const isSpecial = (v) => v !== null && typeof v === 'object' && !Array.isArray(v) &&
  Object.keys(v).some((k) => SPECIAL.includes(k));

// TJSON -> JS value; $ytype makes a new empty shared type (as gen.mjs).
function fromTJ(v) {
  if (v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) return v.map(fromTJ);
  if (isSpecial(v)) {
    if ('$undefined' in v) return undefined;
    if ('$bigint' in v) return BigInt(v.$bigint);
    if ('$binary' in v) return fromHex(v.$binary);
    if ('$number' in v) return Number(v.$number);
    if ('$ytype' in v) {
      switch (v.$ytype) {
        case 'map': return new Y.Map();
        case 'array': return new Y.Array();
        case 'text': return new Y.Text();
        case 'xmlfragment': return new Y.XmlFragment();
        case 'xmlelement': return new Y.XmlElement(v.name);
        case 'xmltext': return new Y.XmlText();
        case 'xmlhook': return new Y.XmlHook(v.name);
      }
      throw new Error('unknown $ytype ' + v.$ytype);
    }
    if ('$ydoc' in v) return new Y.Doc(v.$ydoc);
  }
  const o = {};
  for (const k of Object.keys(v)) o[k] = fromTJ(v[k]);
  return o;
}

const typeName = (t) => {
  if (t instanceof Y.XmlText) return 'xmltext';
  if (t instanceof Y.XmlHook) return 'xmlhook';
  if (t instanceof Y.XmlElement) return 'xmlelement';
  if (t instanceof Y.XmlFragment) return 'xmlfragment';
  if (t instanceof Y.Text) return 'text';
  if (t instanceof Y.Map) return 'map';
  if (t instanceof Y.Array) return 'array';
  return 'untyped';
};

// JS value -> TJSON (as gen.mjs).
function toTJ(v) {
  if (v === undefined) return { $undefined: true };
  if (v === null) return null;
  switch (typeof v) {
    case 'number':
      if (Object.is(v, -0)) return { $number: '-0' };
      if (!Number.isFinite(v)) return { $number: String(v) };
      return v;
    case 'bigint': return { $bigint: v.toString() };
    case 'string':
    case 'boolean': return v;
  }
  if (v instanceof Uint8Array) return { $binary: toHex(v) };
  if (v instanceof Y.AbstractType) {
    const d = { $ytype: typeName(v) };
    if (v instanceof Y.XmlElement) d.name = v.nodeName;
    if (v instanceof Y.XmlHook) d.name = v.hookName;
    return d;
  }
  if (v instanceof Y.Doc) return { $ydoc: { guid: v.guid } };
  if (Array.isArray(v)) return v.map(toTJ);
  const o = {};
  for (const k of Object.keys(v)) o[k] = toTJ(v[k]);
  return o;
}

// A readable view of a v1 update (Y.decodeUpdate), for reports.
function describe(hex) {
  let dec;
  try {
    dec = Y.decodeUpdate(fromHex(hex));
  } catch (e) {
    return `(yjs cannot decode: ${e.message})`;
  }
  const id = (x) => (x ? `${x.client}:${x.clock}` : '-');
  const lines = dec.structs.map((st) => {
    if (st instanceof Y.GC) return `    GC ${id(st.id)} len ${st.length}`;
    if (st instanceof Y.Skip) return `    Skip ${id(st.id)} len ${st.length}`;
    const c = st.content;
    let what = c.constructor.name.replace(/^Content/, '');
    if (c instanceof Y.ContentString) what += ' ' + JSON.stringify(c.str);
    else if (c instanceof Y.ContentAny || c instanceof Y.ContentJSON) what += ' ' + JSON.stringify(c.arr.map(toTJ));
    else if (c instanceof Y.ContentFormat) what += ` ${c.key}=${JSON.stringify(toTJ(c.value))}`;
    else if (c instanceof Y.ContentEmbed) what += ' ' + JSON.stringify(toTJ(c.embed));
    else if (c instanceof Y.ContentType) what += ' ' + typeName(c.type);
    else if (c instanceof Y.ContentDeleted) what += ' ' + c.len;
    let parent = st.parent;
    if (parent && typeof parent !== 'string') parent = id(parent);
    return `    Item ${id(st.id)} len ${st.length} origin ${id(st.origin)} right ${id(st.rightOrigin)}` +
      (parent ? ` parent ${parent}` : '') + (st.parentSub !== null ? ` sub ${JSON.stringify(st.parentSub)}` : '') + ` ${what}`;
  });
  const ds = [];
  dec.ds.clients.forEach((items, client) => ds.push(`${client}: ${items.map((d) => `[${d.clock},+${d.len}]`).join(' ')}`));
  return lines.join('\n') + (ds.length ? `\n    delete set ${ds.join('; ')}` : '');
}

function describeList(list) {
  return list.map((e) => `  doc ${e.doc}: ${e.update}\n${describe(e.update)}`).join('\n');
}

// A failure of the comparison (as opposed to a bug of this script).
class Mismatch extends Error {
  constructor(kind, msg, detail) {
    super(msg);
    this.kind = kind;
    this.detail = detail;
  }
}
// A reduced op log that is not valid any more (index out of range...).
class Invalid extends Error {}

// ---- the loom driver ------------------------------------------------------------

class Driver {
  constructor(file) {
    this.file = file;
    this.start();
  }

  start() {
    this.dead = null;
    this.waiting = [];
    // LOOM_DIFF_WRAPPER (e.g. "valgrind -q --error-exitcode=99") prefixes
    // the driver, as LOOM_CLI_WRAPPER does for the CLI test.
    const wrap = (process.env.LOOM_DIFF_WRAPPER || '').split(/\s+/).filter(Boolean);
    const argv = [...wrap, this.file];
    this.child = spawn(argv[0], argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
    this.stderr = '';
    this.child.stderr.on('data', (b) => { this.stderr = (this.stderr + b.toString()).slice(-8000); });
    this.child.stdin.on('error', () => {});
    const rl = readline.createInterface({ input: this.child.stdout, crlfDelay: Infinity });
    rl.on('line', (line) => {
      const w = this.waiting.shift();
      if (!w) return;
      try {
        w.resolve(JSON.parse(line));
      } catch (e) {
        w.reject(new Mismatch('driver', `driver answered non-JSON: ${line.slice(0, 200)}`));
      }
    });
    this.child.on('exit', (code, signal) => {
      this.dead = `loom driver exited (code ${code}, signal ${signal})` +
        (this.stderr ? `; its stderr:\n${this.stderr}` : '');
      for (const w of this.waiting.splice(0)) w.reject(new Mismatch('crash', this.dead));
    });
  }

  async restart() {
    if (!this.dead) {
      this.child.kill('SIGKILL');
      await new Promise((r) => this.child.once('exit', r));
    }
    this.start();
  }

  call(cmd) {
    if (this.dead) return Promise.reject(new Mismatch('crash', this.dead));
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.child.stdin.write(JSON.stringify(cmd) + '\n');
    });
  }

  // Ends the driver; a driver that exits with a failure (a sanitizer's
  // leak report, say) fails the run.
  async quit() {
    if (this.dead) return this.dead;
    const p = new Promise((r) => this.child.once('exit', (code, signal) => r({ code, signal })));
    this.child.stdin.end(JSON.stringify({ cmd: 'quit' }) + '\n');
    const { code, signal } = await p;
    if (code === 0) return null;
    return `loom driver exited with code ${code}, signal ${signal} at the end` +
      (this.stderr ? `; its stderr:\n${this.stderr}` : '');
  }
}

// ---- the mirrored replicas -------------------------------------------------------

const ROOT_KINDS = { map: 'map', array: 'array', text: 'text', xml: 'xmlfragment' };
const ROOT_NAMES = { map: 'm', array: 'a', text: 't', xml: 'x' };

function getRoot(doc, name, kind) {
  switch (kind) {
    case 'map': return doc.getMap(name);
    case 'array': return doc.getArray(name);
    case 'text': return doc.getText(name);
    case 'xmlfragment': return doc.getXmlFragment(name);
  }
  throw new Error('bad root kind ' + kind);
}

// Runs steps on both engines and checks that they agree. A "case" is
// {docs:[{id, clientID, gc}], roots:{name: kind}}.
class Pair {
  constructor(driver, spec) {
    this.driver = driver;
    this.spec = spec;
    this.log = []; // vector ops, for the report
    this.entries = new Map(); // id -> {doc, roots}
    this.capture = null;
  }

  async init() {
    for (const d of this.spec.docs) {
      const doc = new Y.Doc({ gc: d.gc, guid: 'diff-' + d.id });
      doc.clientID = d.clientID;
      const roots = {};
      for (const [name, kind] of Object.entries(this.spec.roots)) roots[name] = getRoot(doc, name, kind);
      doc.on('update', (u) => {
        if (this.capture) this.capture.push({ doc: d.id, update: toHex(u) });
      });
      this.entries.set(d.id, { id: d.id, doc, roots });
    }
    const r = await this.driver.call({ cmd: 'init', docs: this.spec.docs, roots: this.spec.roots });
    if (!r.ok) throw new Mismatch('error', `loom init failed: ${r.error}`);
  }

  destroy() {
    for (const e of this.entries.values()) e.doc.destroy();
  }

  // Runs f() on yjs and returns what the yjs docs emitted meanwhile.
  yjs(f) {
    this.capture = [];
    try {
      f();
      return this.capture;
    } finally {
      this.capture = null;
    }
  }

  // Compares the emitted updates of one step.
  sameEmitted(what, y, l) {
    const ys = JSON.stringify(y);
    const ls = JSON.stringify(l);
    if (ys !== ls) {
      throw new Mismatch('emitted', `${what}: the engines emitted different updates`,
        `yjs emitted:\n${describeList(y)}\nloom emitted:\n${describeList(l)}`);
    }
  }

  loomOk(what, r) {
    if (!r.ok) throw new Mismatch('error', `${what}: loom failed: ${r.error} (code ${r.code})`,
      r.emitted && r.emitted.length ? `loom emitted before failing: ${JSON.stringify(r.emitted)}` : undefined);
    return r;
  }

  // A local op (vector op with doc; transact included). `yjsDone`: the yjs
  // side already ran (and emitted `yEmitted`).
  async local(op, yjsDone, yEmitted) {
    this.log.push(op);
    const y = yjsDone ? yEmitted : this.yjs(() => execOp(this.entries.get(op.doc), op, true));
    const r = this.loomOk(`op ${op.op} on doc ${op.doc}`, await this.driver.call({ cmd: 'op', op }));
    this.sameEmitted(`op ${op.op} on doc ${op.doc}`, y, r.emitted);
    return { y, l: r.emitted };
  }

  // Delivers an update: loom bytes to the yjs copy, yjs bytes to the loom
  // copy (identical when everything before passed).
  async deliver(to, yHex, lHex) {
    this.log.push({ op: 'apply', doc: to, update: yHex });
    const y = this.yjs(() => Y.applyUpdate(this.entries.get(to).doc, fromHex(lHex), 'diff'));
    const r = this.loomOk(`apply to doc ${to}`, await this.driver.call({ cmd: 'apply', doc: to, update: yHex }));
    this.sameEmitted(`apply to doc ${to}`, y, r.emitted);
    return { y, l: r.emitted };
  }

  // sv = encodeStateVector(to); u = encodeStateAsUpdate(from, sv); apply,
  // crossing engines; compares sv, u and what `to` emitted.
  async sync(from, to) {
    this.log.push({ op: 'sync', from, to });
    const ysv = toHex(Y.encodeStateVector(this.entries.get(to).doc));
    const lsv = this.loomOk('state vector', await this.driver.call({ cmd: 'sv', doc: to })).sv;
    if (ysv !== lsv) throw new Mismatch('sv', `sync ${from}->${to}: state vectors of doc ${to} differ`, `yjs:  ${ysv}\nloom: ${lsv}`);
    const yu = toHex(Y.encodeStateAsUpdate(this.entries.get(from).doc, fromHex(ysv)));
    const lu = this.loomOk('encode', await this.driver.call({ cmd: 'encode', doc: from, sv: lsv })).update;
    if (yu !== lu) {
      throw new Mismatch('encode', `sync ${from}->${to}: encodeStateAsUpdate(doc ${from}, sv) differs`,
        `sv:   ${ysv}\nyjs:  ${yu}\n${describe(yu)}\nloom: ${lu}\n${describe(lu)}`);
    }
    const y = this.yjs(() => Y.applyUpdate(this.entries.get(to).doc, fromHex(lu), 'diff'));
    const r = this.loomOk(`sync apply to doc ${to}`, await this.driver.call({ cmd: 'apply', doc: to, update: yu }));
    this.sameEmitted(`sync ${from}->${to}`, y, r.emitted);
    return { y, l: r.emitted };
  }

  async fullSync(rounds) {
    const ids = this.spec.docs.map((d) => d.id);
    for (let k = 0; k < rounds; k++) {
      for (const a of ids) for (const b of ids) if (a !== b) await this.sync(a, b);
    }
  }

  // mergeUpdates in both engines (yjs over yList, loom over lList, the
  // same bytes when all went well), compared; returns {y, l} (hex).
  async merge(yList, lList = yList) {
    const y = toHex(Y.mergeUpdates(yList.map(fromHex)));
    const l = this.loomOk('merge', await this.driver.call({ cmd: 'merge', updates: lList })).update;
    if (y !== l) {
      throw new Mismatch('merge', 'mergeUpdates differs',
        `inputs: ${JSON.stringify(yList)}\nyjs:  ${y}\n${describe(y)}\nloom: ${l}\n${describe(l)}`);
    }
    return { y, l };
  }

  async updateAlgebra(list, svHex) {
    const merged = (await this.merge(list)).y;
    const yd = toHex(Y.diffUpdate(fromHex(merged), fromHex(svHex)));
    const ld = this.loomOk('diff', await this.driver.call({ cmd: 'diff', update: merged, sv: svHex })).update;
    if (yd !== ld) throw new Mismatch('diff', 'diffUpdate differs', `update: ${merged}\nsv: ${svHex}\nyjs:  ${yd}\nloom: ${ld}`);
    for (const u of [merged, list[0]]) {
      const ys = toHex(Y.encodeStateVectorFromUpdate(fromHex(u)));
      const ls = this.loomOk('svu', await this.driver.call({ cmd: 'svu', update: u })).sv;
      if (ys !== ls) throw new Mismatch('svu', 'encodeStateVectorFromUpdate differs', `update: ${u}\nyjs:  ${ys}\nloom: ${ls}`);
    }
  }

  // The final comparison of every replica, across engines and replicas.
  async checkFinal() {
    let json0 = null;
    for (const e of this.entries.values()) {
      const st = this.loomOk('state', await this.driver.call({ cmd: 'state', doc: e.id }));
      const yu = toHex(Y.encodeStateAsUpdate(e.doc));
      const ysv = toHex(Y.encodeStateVector(e.doc));
      const yjson = {};
      for (const [name, t] of Object.entries(e.roots)) yjson[name] = toTJ(t.toJSON());
      if (canon(yjson) !== canon(st.json)) {
        throw new Mismatch('json', `doc ${e.id}: toJSON differs`, `yjs:  ${canon(yjson)}\nloom: ${canon(st.json)}`);
      }
      if (yu !== st.update) {
        throw new Mismatch('final', `doc ${e.id}: encodeStateAsUpdate differs`,
          `yjs:  ${yu}\n${describe(yu)}\nloom: ${st.update}\n${describe(st.update)}`);
      }
      if (ysv !== st.sv) throw new Mismatch('sv', `doc ${e.id}: state vector differs`, `yjs:  ${ysv}\nloom: ${st.sv}`);
      const ypend = (e.doc.store.pendingStructs ? 1 : 0) | (e.doc.store.pendingDs ? 2 : 0);
      if (ypend !== st.pending) throw new Mismatch('pending', `doc ${e.id}: pending flags differ`, `yjs: ${ypend} loom: ${st.pending}`);
      for (const { t, p } of collectTypes(e)) {
        if (!(t instanceof Y.Text)) continue;
        const yd = t.toDelta().map((op) => {
          const o = { insert: typeof op.insert === 'string' ? op.insert : toTJ(op.insert) };
          if (op.attributes !== undefined) o.attributes = toTJ(op.attributes);
          return o;
        });
        const ld = this.loomOk('delta', await this.driver.call({ cmd: 'delta', doc: e.id, path: p })).delta;
        if (canon(yd) !== canon(ld)) {
          throw new Mismatch('delta', `doc ${e.id}: toDelta of ${JSON.stringify(p)} differs`, `yjs:  ${canon(yd)}\nloom: ${canon(ld)}`);
        }
      }
      if (json0 === null) json0 = canon(yjson);
      else if (json0 !== canon(yjson)) {
        throw new Mismatch('converge', `doc ${e.id}: replicas did not converge (both engines agree)`,
          `first: ${json0}\nthis:  ${canon(yjson)}`);
      }
    }
  }
}

// Every live shared type of a replica, with its path.
function collectTypes(entry) {
  const res = [];
  const visit = (t, p) => {
    res.push({ t, p });
    if (t instanceof Y.Map) {
      for (const [k, v] of t.entries()) if (v instanceof Y.AbstractType) visit(v, [...p, k]);
    } else if (t instanceof Y.Array) {
      t.toArray().forEach((v, i) => { if (v instanceof Y.AbstractType) visit(v, [...p, i]); });
    } else if (t instanceof Y.XmlFragment) {
      // XmlElement too (a subclass)
      t.toArray().forEach((v, i) => { if (v instanceof Y.AbstractType) visit(v, [...p, i]); });
    }
  };
  for (const [name, r] of Object.entries(entry.roots)) visit(r, [name]);
  return res;
}

function resolvePath(entry, p) {
  let t = entry.roots[p[0]];
  if (t === undefined) throw new Invalid('unknown root ' + p[0]);
  for (let i = 1; i < p.length; i++) {
    const k = p[i];
    if (typeof k === 'number') {
      if (!(t instanceof Y.Array || t instanceof Y.XmlFragment) || k >= t.length) throw new Invalid('bad path');
      t = t.get(k);
    } else {
      if (!(t instanceof Y.Map)) throw new Invalid('bad path');
      t = t.get(k);
    }
    if (!(t instanceof Y.AbstractType)) throw new Invalid('path does not resolve to a shared type');
  }
  return t;
}

// The UTF-16 units of a text, embeds as one placeholder unit each (length
// equals t.length).
function textUnits(t) {
  return t.toDelta().map((op) => (typeof op.insert === 'string' ? op.insert : '\u0001')).join('');
}

const isHigh = (c) => c >= 0xd800 && c <= 0xdbff;
// True when index i falls between the two halves of a surrogate pair.
const splitsPair = (s, i) => i > 0 && i < s.length && isHigh(s.charCodeAt(i - 1));

// Runs one vector op on a yjs replica. `check`: refuse ops that are out of
// range or would split a surrogate pair (a cut-down log may hold them).
function execOp(entry, op, check) {
  if (op.op === 'transact') {
    entry.doc.transact(() => {
      for (const sub of op.ops) execOp(entry, sub, check);
    });
    return;
  }
  const t = resolvePath(entry, op.path);
  const need = (c) => { if (check && !c) throw new Invalid(`${op.op} out of range`); };
  const kind = typeName(t);
  switch (op.op) {
    case 'map.set': need(kind === 'map' || kind === 'xmlhook'); t.set(op.key, fromTJ(op.value)); break;
    case 'map.delete': need(kind === 'map' || kind === 'xmlhook'); t.delete(op.key); break;
    case 'array.insert': need(kind === 'array' && op.index <= t.length); t.insert(op.index, op.values.map(fromTJ)); break;
    case 'array.push': need(kind === 'array'); t.push(op.values.map(fromTJ)); break;
    case 'array.delete':
      need((kind === 'array' || kind === 'xmlfragment' || kind === 'xmlelement') && op.index + op.length <= t.length);
      t.delete(op.index, op.length);
      break;
    case 'text.insert': {
      need(t instanceof Y.Text && op.index <= t.length && !splitsPair(textUnits(t), op.index));
      t.insert(op.index, op.text, op.attributes === undefined ? undefined : fromTJ(op.attributes));
      break;
    }
    case 'text.insertEmbed':
      need(t instanceof Y.Text && op.index <= t.length && !splitsPair(textUnits(t), op.index));
      t.insertEmbed(op.index, fromTJ(op.embed), op.attributes === undefined ? undefined : fromTJ(op.attributes));
      break;
    case 'text.delete':
    case 'text.format': {
      if (check) {
        need(t instanceof Y.Text && op.index + op.length <= t.length);
        const s = textUnits(t);
        need(!splitsPair(s, op.index) && !splitsPair(s, op.index + op.length));
      }
      if (op.op === 'text.delete') t.delete(op.index, op.length);
      else t.format(op.index, op.length, fromTJ(op.attributes));
      break;
    }
    case 'xml.insert': need((kind === 'xmlfragment' || kind === 'xmlelement') && op.index <= t.length); t.insert(op.index, op.values.map(fromTJ)); break;
    case 'xml.setAttribute': need(kind === 'xmlelement'); t.setAttribute(op.key, fromTJ(op.value)); break;
    case 'xml.removeAttribute': need(kind === 'xmlelement'); t.removeAttribute(op.key); break;
    default: throw new Error('unknown op ' + op.op);
  }
}

// ---- random edits ---------------------------------------------------------------

const WORDS = ['a', 'b', 'xy', 'hello', ' ', 'é', '€', '😀', 'a😀', '日本', '👍🏽', '\n', 'Zz', '𝄞', 'ñü', 'ok'];
const KEYS = ['a', 'b', 'c', 'd', 'ключ', '🔑', '', 'long key with spaces'];
const INSERT_ATTRS = [{ bold: true }, {}, { italic: true, color: '#0f0' }, { bold: null }, { link: { href: 'https://x.y/' } }, { size: 12 }];
const FORMAT_ATTRS = [{ bold: true }, { bold: null }, { italic: true }, { color: '#f00' }, { color: null, italic: null },
  { link: { href: 'z' } }, { size: 3 }, { bold: true, italic: true }];
const EMBEDS = [{ image: 'a.png' }, { formula: 'e=mc^2' }, { obj: { k: [1, 2, null] } }, { video: '😀' }];
const XML_NAMES = ['p', 'div', 'span', 'h1'];

class Gen {
  constructor(seed, kinds) {
    this.rnd = mulberry32(seed);
    this.seed = seed;
    this.kinds = kinds;
    this.nsub = 0;
    this.cursors = new WeakMap(); // entry -> Map(path -> text cursor)
    // every third seed edits plain text only (no attributes, formats or
    // embeds): loom's fast paths for plain text run there
    this.plain = seed % 3 === 0;
    this.lastPath = new WeakMap(); // entry -> the path of its last op
    this.lastDoc = undefined;
  }

  // The replica of a local step: in plain seeds often the last one again.
  pickDoc(ids) {
    if (!this.plain || this.lastDoc === undefined || !this.chance(0.6)) this.lastDoc = this.pick(ids);
    return this.lastDoc;
  }

  int(n) { return Math.floor(this.rnd() * n); }
  pick(a) { return a[this.int(a.length)]; }
  chance(p) { return this.rnd() < p; }

  // depth 0: a map value, 1: a top-level array element (both may be shared
  // types); deeper: inside an Any value.
  value(depth) {
    const nested = this.kinds.includes('text') ? ['map', 'array', 'text'] : ['map', 'array'];
    switch (this.int(depth >= 2 ? 10 : 13)) {
      case 0: return this.int(100);
      case 1: return this.chance(0.5) ? 2147483647 - this.int(3) : -this.int(1 << 20);
      case 2: return this.pick([1.5, 0.1, -2.25, 1e10 + 0.5, 3.14159, 2 ** 53, -(2 ** 31), 1e300, 5e-324]);
      case 3: return this.pick(WORDS) + this.pick(WORDS);
      case 4: return this.pick([true, false, null, '']);
      case 5: return { $binary: toHex(new Uint8Array(Array.from({ length: this.int(5) }, () => this.int(256)))) };
      case 6: return this.pick([{ $bigint: '12345678901234567' }, { $bigint: '-5' }, { $undefined: true }, { $number: '-0' },
        { $number: 'NaN' }, { $number: 'Infinity' }]);
      case 7: return [this.value(depth + 2), this.value(depth + 2)];
      case 8: return { k: this.value(depth + 2), [this.pick(KEYS)]: this.value(depth + 2) };
      case 9: return [];
      case 10: return { $ytype: this.pick(nested) };
      case 11: return { $ytype: this.pick(['map', 'array']) };
      default:
        if (depth === 0 && this.chance(0.2)) return { $ydoc: { guid: `sub-${this.seed}-${this.nsub++}` } };
        return { $ytype: this.pick(nested) };
    }
  }

  // A surrogate-safe index of s (moved left off the middle of a pair).
  safe(s, i) { return splitsPair(s, i) ? i - 1 : i; }

  // One random local op on a yjs replica (its current state).
  localOp(entry, docId) {
    const types = collectTypes(entry);
    let { t, p } = this.pick(types);
    if (this.plain) {
      // plain seeds mostly stay on one type, so that edits at a cursor
      // come in runs
      const last = this.lastPath.get(entry);
      const same = last !== undefined && this.chance(0.75) && types.find((x) => JSON.stringify(x.p) === last);
      const texts = types.filter((x) => x.t instanceof Y.Text);
      if (same) ({ t, p } = same);
      else if (texts.length && this.chance(0.7)) ({ t, p } = this.pick(texts));
      this.lastPath.set(entry, JSON.stringify(p));
    }
    const kind = typeName(t);
    const base = docId === undefined ? { path: p } : { doc: docId, path: p };
    if (kind === 'map') {
      const keys = Array.from(t.keys());
      if (keys.length > 0 && this.chance(0.2)) return { ...base, op: 'map.delete', key: this.pick(keys) };
      return { ...base, op: 'map.set', key: this.pick(KEYS), value: this.value(0) };
    }
    if (kind === 'array') {
      const len = t.length;
      if (len > 0 && this.chance(0.3)) {
        const index = this.int(len);
        return { ...base, op: 'array.delete', index, length: 1 + this.int(Math.min(3, len - index)) };
      }
      const values = [];
      for (let i = 1 + this.int(3); i > 0; i--) {
        let v = this.value(1);
        // yjs refuses undefined and bigint as top-level array elements
        if (v !== null && typeof v === 'object' && ('$undefined' in v || '$bigint' in v)) v = [v];
        values.push(v);
      }
      if (this.chance(0.15)) return { ...base, op: 'array.push', values };
      return { ...base, op: 'array.insert', index: this.int(len + 1), values };
    }
    if (kind === 'xmlfragment' || kind === 'xmlelement') {
      const len = t.length;
      const r = this.rnd();
      if (kind === 'xmlelement' && r < 0.25) {
        const keys = Object.keys(t.getAttributes());
        if (keys.length > 0 && this.chance(0.3)) return { ...base, op: 'xml.removeAttribute', key: this.pick(keys) };
        return { ...base, op: 'xml.setAttribute', key: this.pick(['id', 'class', 'data-x', 'ü']), value: this.pick(WORDS) + this.int(10) };
      }
      if (len > 0 && r < 0.45) {
        const index = this.int(len);
        return { ...base, op: 'array.delete', index, length: 1 + this.int(Math.min(2, len - index)) };
      }
      const values = [];
      for (let i = 1 + this.int(2); i > 0; i--) {
        const x = this.rnd();
        if (x < 0.5) values.push({ $ytype: 'xmlelement', name: this.pick(XML_NAMES) });
        else if (x < 0.9 && this.kinds.includes('text')) values.push({ $ytype: 'xmltext' });
        else values.push({ $ytype: 'xmlhook', name: 'hook' });
      }
      return { ...base, op: 'xml.insert', index: this.int(len + 1), values };
    }
    if (kind === 'xmlhook') {
      // a hook is a map in yjs; give it map entries
      return { ...base, path: p, op: 'map.set', key: this.pick(KEYS), value: this.value(2) };
    }
    // text and xmltext
    const s = textUnits(t);
    const len = s.length;
    if (this.chance(0.45)) {
      const op = this.cursorOp(entry, p, s);
      if (op) return { ...base, ...op };
    }
    const r = this.rnd();
    if (len > 0 && r < 0.4) {
      const index = this.safe(s, this.int(len));
      let end = this.safe(s, Math.min(len, index + 1 + this.int(r < 0.25 ? 5 : 8)));
      if (end <= index) end = Math.min(len, index + 2);
      if (r < 0.22 || this.plain) return { ...base, op: 'text.delete', index, length: end - index };
      return { ...base, op: 'text.format', index, length: end - index, attributes: this.pick(FORMAT_ATTRS) };
    }
    const index = this.safe(s, this.int(len + 1));
    if (this.chance(0.1) && !this.plain) {
      const op = { ...base, op: 'text.insertEmbed', index, embed: this.pick(EMBEDS) };
      if (this.chance(0.4)) op.attributes = this.pick(INSERT_ATTRS);
      return op;
    }
    const op = { ...base, op: 'text.insert', index, text: this.pick(WORDS) + this.pick(WORDS) };
    if (this.chance(0.3) && !this.plain) op.attributes = this.pick(INSERT_ATTRS);
    return op;
  }
}

// Editing at a cursor, as people type: runs of characters typed, of
// backspaces and of forward deletes (one character each, two for a
// surrogate pair), the cursor and the run kept per replica and text
// (clamped when remote edits shrank the text), now and then moved. Drives
// loom's typing and deleting fast paths (text.c pos_append, pos_backspace,
// pos_delete_front), which need such runs at one place.
Gen.prototype.cursorOp = function cursorOp(entry, p, s) {
  let m = this.cursors.get(entry);
  if (!m) this.cursors.set(entry, (m = new Map()));
  const key = JSON.stringify(p);
  const len = s.length;
  let cur = m.get(key);
  if (!cur) m.set(key, (cur = { c: this.int(len + 1), mode: 0, left: 0 }));
  if (cur.c > len || this.chance(0.05)) cur.c = this.int(len + 1);
  cur.c = this.safe(s, cur.c);
  if (cur.left-- <= 0) {
    const r = this.rnd();
    cur.mode = r < 0.5 ? 0 : r < 0.8 ? 1 : 2; // type, backspace, forward
    cur.left = 1 + this.int(6);
  }
  const c = cur.c;
  if (cur.mode === 1 && c > 0) {
    let index = c - 1;
    if (splitsPair(s, index)) index--;
    cur.c = index;
    return { op: 'text.delete', index, length: c - index };
  }
  if (cur.mode === 2 && c < len) {
    let end = c + 1;
    if (splitsPair(s, end)) end++;
    return { op: 'text.delete', index: c, length: end - c };
  }
  const text = this.chance(0.9) ? this.pick(['a', 'b', 'c', 'd', 'e', ' ']) : this.pick(WORDS);
  cur.c = c + text.length;
  return { op: 'text.insert', index: c, text };
};

function makeSpec(gen, kinds) {
  const n = 3 + gen.int(2);
  const ranges = [() => 1 + gen.int(1000), () => 2147483000 + gen.int(1000), () => 4294967295 - gen.int(1000),
    () => gen.int(2 ** 32)];
  const docs = [];
  const used = new Set();
  for (let i = 0; i < n; i++) {
    let id;
    do id = ranges[i % ranges.length](); while (used.has(id));
    used.add(id);
    docs.push({ id: i + 1, clientID: id, gc: !gen.chance(0.3) });
  }
  const roots = {};
  for (const k of kinds) roots[ROOT_NAMES[k]] = ROOT_KINDS[k];
  return { docs, roots };
}

// ---- steps: what a seed does, replayable for cutting down ----------------------
//
// {t:'op', op}                      a local vector op (op.doc set)
// {t:'deliver', to, ref:[sid, k]}   the k-th update emitted by step sid
// {t:'merge', to, refs:[...]}       mergeUpdates of several, then deliver
// {t:'sync', from, to}              one state-vector sync
// Steps carry an id (sid); a cut-down log keeps the ids, and a delivery whose
// source step is gone is skipped.

async function runStep(pair, step, emittedBy, yjsDone) {
  let res = { y: [], l: [] };
  const lookup = (ref) => (emittedBy.get(ref[0]) || [])[ref[1]];
  switch (step.t) {
    case 'op':
      res = await pair.local(step.op, yjsDone !== undefined, yjsDone);
      break;
    case 'deliver': {
      const u = lookup(step.ref);
      if (u) res = await pair.deliver(step.to, u.y, u.l);
      break;
    }
    case 'merge': {
      const us = step.refs.map(lookup).filter(Boolean);
      if (us.length === 0) break;
      // both engines merged to the same bytes (checked): loom's merge goes
      // to the yjs copy and yjs's to the loom copy
      const m = await pair.merge(us.map((u) => u.y), us.map((u) => u.l));
      res = await pair.deliver(step.to, m.y, m.l);
      break;
    }
    case 'sync':
      res = await pair.sync(step.from, step.to);
      break;
    default:
      throw new Error('bad step ' + step.t);
  }
  // both engines' bytes (equal, checked), for later delivery across engines
  emittedBy.set(step.sid, res.y.map((e, i) => ({ y: e.update, l: res.l[i].update })));
}

// The end of every run: two full sync rounds and the final comparison, and
// the update algebra over every update emitted.
async function finish(pair, emittedBy) {
  await pair.fullSync(2);
  await pair.checkFinal();
  const all = [];
  for (const list of emittedBy.values()) for (const u of list) all.push(u.y);
  if (all.length > 0) {
    const rnd = new Gen(pair.spec.seed ^ 0x5bd1e995, []);
    const sub = [];
    for (let i = 0, n = 1 + rnd.int(Math.min(all.length, 12)); i < n; i++) sub.push(rnd.pick(all));
    const e = pair.entries.get(rnd.pick(pair.spec.docs).id);
    await pair.updateAlgebra(sub, toHex(Y.encodeStateVector(e.doc)));
    await pair.updateAlgebra(all, '00');
  }
}

// Generates and runs one seed. Returns the steps run (for cutting down).
async function runSeed(driver, seed, state) {
  const gen = new Gen(seed, opts.kinds);
  const spec = makeSpec(gen, opts.kinds);
  spec.seed = seed;
  state.spec = spec;
  state.steps = [];
  const pair = new Pair(driver, spec);
  state.pair = pair;
  const emittedBy = new Map();
  const ids = spec.docs.map((d) => d.id);
  const pool = []; // refs [sid, k]
  let sid = 0;
  try {
    await pair.init();
    for (let n = 0; n < opts.ops; n++) {
      let r = gen.rnd();
      // plain seeds: longer runs of local edits between deliveries
      if (gen.plain && r < 0.2 && gen.chance(0.6)) r = 0.2 + gen.rnd() * 0.8;
      let step;
      let yjsDone;
      if (r < 0.06) {
        const from = gen.pick(ids);
        let to = gen.pick(ids);
        if (to === from) to = ids[(ids.indexOf(from) + 1) % ids.length];
        step = { t: 'sync', from, to };
      } else if (r < 0.16 && pool.length > 0) {
        // a random subset in random order, with duplicates, to one replica
        const to = gen.pick(ids);
        for (let k = 1 + gen.int(4); k > 0; k--) {
          const s = { sid: sid++, t: 'deliver', to, ref: gen.pick(pool) };
          state.steps.push(s);
          await runStep(pair, s, emittedBy);
          pool.push(...emittedBy.get(s.sid).map((_, i) => [s.sid, i]));
        }
        continue;
      } else if (r < 0.19 && pool.length > 1) {
        const refs = [];
        for (let k = 2 + gen.int(4); k > 0; k--) refs.push(gen.pick(pool));
        step = { t: 'merge', to: gen.pick(ids), refs };
      } else if (r < 0.20) {
        for (const a of ids) for (const b of ids) if (a !== b) {
          const s = { sid: sid++, t: 'sync', from: a, to: b };
          state.steps.push(s);
          await runStep(pair, s, emittedBy);
        }
        continue;
      } else {
        const docId = gen.pickDoc(ids);
        const entry = pair.entries.get(docId);
        if (gen.chance(0.1)) {
          // a transaction of several ops, each made against the state the
          // previous one left (so yjs runs first, inside the transaction)
          const ops = [];
          yjsDone = pair.yjs(() => entry.doc.transact(() => {
            for (let k = 2 + gen.int(3); k > 0; k--) {
              const op = gen.localOp(entry);
              ops.push(op);
              execOp(entry, op, false);
            }
          }));
          step = { t: 'op', op: { op: 'transact', doc: docId, ops } };
        } else {
          step = { t: 'op', op: { ...gen.localOp(entry, docId) } };
        }
      }
      step.sid = sid++;
      state.steps.push(step);
      await runStep(pair, step, emittedBy, yjsDone);
      pool.push(...emittedBy.get(step.sid).map((_, i) => [step.sid, i]));
    }
    state.phase = 'final';
    await finish(pair, emittedBy);
  } finally {
    pair.destroy();
  }
}

// Replays steps on fresh replicas; returns the Mismatch, or null when all
// agree, or 'invalid' when the steps are not a valid log.
async function replay(driver, spec, steps) {
  const pair = new Pair(driver, spec);
  const emittedBy = new Map();
  try {
    await pair.init();
    for (const s of steps) await runStep(pair, s, emittedBy);
    await finish(pair, emittedBy);
    return { m: null, pair };
  } catch (e) {
    if (e instanceof Invalid) return { m: 'invalid', pair };
    if (e instanceof Mismatch) {
      if (e.kind === 'crash') await driver.restart();
      return { m: e, pair };
    }
    throw e;
  } finally {
    pair.destroy();
  }
}

// Cuts a failing step list down (ddmin, then one-by-one), keeping a failure
// of the same kind. Returns {steps, m, pair}.
async function minimize(driver, spec, steps, kind) {
  const deadline = Date.now() + opts.minimizeSecs * 1000;
  let best = null;
  const fails = async (cand) => {
    const res = await replay(driver, spec, cand);
    if (res.m && res.m !== 'invalid' && res.m.kind === kind) {
      best = { steps: cand, m: res.m, pair: res.pair };
      return true;
    }
    return false;
  };
  if (!(await fails(steps))) return null;
  let cur = steps;
  let n = 2;
  while (cur.length >= 2 && Date.now() < deadline) {
    const chunk = Math.ceil(cur.length / n);
    let reduced = false;
    for (let i = 0; i < n && Date.now() < deadline; i++) {
      const cand = cur.slice(0, i * chunk).concat(cur.slice((i + 1) * chunk));
      if (cand.length < cur.length && (await fails(cand))) {
        cur = cand;
        n = Math.max(n - 1, 2);
        reduced = true;
        break;
      }
    }
    if (!reduced) {
      if (n >= cur.length) break;
      n = Math.min(cur.length, n * 2);
    }
  }
  for (let pass = 0; pass < 2; pass++) {
    for (let i = cur.length - 1; i >= 0 && Date.now() < deadline; i--) {
      const cand = cur.slice(0, i).concat(cur.slice(i + 1));
      if (await fails(cand)) cur = cand;
    }
    // simpler forms of each remaining step
    for (let i = 0; i < cur.length && Date.now() < deadline; i++) {
      for (let again = true; again && Date.now() < deadline;) {
        again = false;
        for (const v of simpler(cur[i])) {
          const cand = cur.slice();
          cand[i] = v;
          if (await fails(cand)) {
            cur = cand;
            again = true;
            break;
          }
        }
      }
    }
  }
  await fails(cur); // leaves best on cur
  return best;
}

// Simpler variants of one step: fewer ops in a transaction, fewer values
// in an insert, plain values instead of nested ones, fewer merged updates.
function simpler(step) {
  const res = [];
  const clone = () => JSON.parse(JSON.stringify(step));
  const simplerOp = (op) => {
    const out = [];
    if (op.op === 'transact') {
      for (let i = 0; i < op.ops.length; i++) {
        const o = JSON.parse(JSON.stringify(op));
        o.ops.splice(i, 1);
        out.push(o.ops.length === 1 ? { ...o.ops[0], doc: o.doc } : o);
      }
      for (let i = 0; i < op.ops.length; i++) {
        for (const sub of simplerOp(op.ops[i])) {
          const o = JSON.parse(JSON.stringify(op));
          o.ops[i] = sub;
          out.push(o);
        }
      }
    }
    if (Array.isArray(op.values)) {
      for (let i = 0; op.values.length > 1 && i < op.values.length; i++) {
        const o = JSON.parse(JSON.stringify(op));
        o.values.splice(i, 1);
        out.push(o);
      }
      for (let i = 0; i < op.values.length; i++) {
        if (op.values[i] !== 0 && !(op.values[i] && op.values[i].$ytype)) {
          const o = JSON.parse(JSON.stringify(op));
          o.values[i] = 0;
          out.push(o);
        }
      }
    }
    if (op.op === 'map.set' && op.value !== 0 && !(op.value && (op.value.$ytype || op.value.$ydoc))) out.push({ ...op, value: 0 });
    if (op.attributes && Object.keys(op.attributes).length > 1) {
      for (const k of Object.keys(op.attributes)) {
        const o = JSON.parse(JSON.stringify(op));
        delete o.attributes[k];
        out.push(o);
      }
    }
    if (typeof op.text === 'string' && op.text.length > 1) out.push({ ...op, text: 'x' });
    if (op.length > 1) out.push({ ...op, length: op.length - 1 });
    return out;
  };
  if (step.t === 'op') {
    for (const op of simplerOp(step.op)) res.push({ ...clone(), op });
  } else if (step.t === 'merge' && step.refs.length > 1) {
    for (let i = 0; i < step.refs.length; i++) {
      const c = clone();
      c.refs.splice(i, 1);
      res.push(c);
    }
  }
  return res;
}

// ---- reporting --------------------------------------------------------------

function report(seed, m, spec, log, cut) {
  const lines = [];
  lines.push(`\n==== diff: MISMATCH at seed ${seed} [${m.kind}]: ${m.message}`);
  if (m.detail) lines.push(m.detail);
  lines.push(`docs:  ${JSON.stringify(spec.docs)}`);
  lines.push(`roots: ${JSON.stringify(spec.roots)}`);
  if (cut) {
    lines.push(`cut-down op log (${cut.pair.log.length} ops incl. the final sync rounds; replay with --replay ${cut.file}):`);
    for (const op of cut.pair.log) lines.push('  ' + JSON.stringify(op));
    lines.push(`after the cut: [${cut.m.kind}] ${cut.m.message}`);
    if (cut.m.detail) lines.push(cut.m.detail);
  }
  lines.push(`full op log of the seed (${log.length} ops):`);
  const max = 400;
  for (const op of log.slice(0, max)) lines.push('  ' + JSON.stringify(op));
  if (log.length > max) lines.push(`  ... ${log.length - max} more`);
  lines.push(`rerun: node tests/diff/diff.mjs --driver ${opts.driver} --start ${seed} --seeds 1 --kinds ${opts.kinds.join(',')} --ops ${opts.ops}`);
  process.stdout.write(lines.join('\n') + '\n');
}

async function main() {
  const driver = new Driver(opts.driver);
  if (opts.replay) {
    // one case file, or every *.json of a directory (tests/diff/repro)
    const files = statSync(opts.replay).isDirectory()
      ? readdirSync(opts.replay).filter((f) => f.endsWith('.json')).sort().map((f) => path.join(opts.replay, f))
      : [opts.replay];
    const bad = [];
    for (const file of files) {
      const c = JSON.parse(readFileSync(file, 'utf8'));
      const res = await replay(driver, c, c.steps);
      if (res.m === 'invalid') {
        console.log(`diff: ${file}: not a valid log`);
        bad.push(file);
      } else if (res.m) {
        console.log(`\n==== diff: replay of ${file}:`);
        report(c.seed, res.m, c, res.pair.log, null);
        bad.push(file);
      } else {
        console.log(`diff: replay of ${file}: both engines agree`);
      }
    }
    const end = await driver.quit();
    if (end) bad.push(end);
    if (bad.length) {
      console.log(`diff: FAIL: ${bad.length} of ${files.length} case(s) fail`);
      process.exit(1);
    }
    return;
  }
  const failed = [];
  let nops = 0;
  const t0 = Date.now();
  for (let seed = opts.start; seed < opts.start + opts.seeds; seed++) {
    const state = {};
    try {
      await runSeed(driver, seed, state);
      nops += state.pair.log.length;
      if (opts.verbose) console.log(`seed ${seed}: ok (${state.spec.docs.length} replicas, ${state.pair.log.length} ops)`);
    } catch (e) {
      if (!(e instanceof Mismatch)) {
        console.log(`\n==== diff: seed ${seed}: the test script failed (not a loom mismatch):`);
        throw e;
      }
      if (e.kind === 'crash') await driver.restart();
      let cut = null;
      if (opts.minimize) {
        cut = await minimize(driver, state.spec, state.steps, e.kind);
        if (cut) {
          mkdirSync(opts.out, { recursive: true });
          cut.file = path.join(opts.out, `loom-diff-seed-${seed}.json`);
          writeFileSync(cut.file, JSON.stringify({ ...state.spec, steps: cut.steps }, null, 1));
        }
      }
      report(seed, e, state.spec, state.pair.log, cut);
      failed.push(seed);
      if (!opts.keepGoing) break;
    }
  }
  const bad = await driver.quit();
  if (bad) {
    console.log(`diff: FAIL: ${bad}`);
    process.exit(1);
  }
  const secs = ((Date.now() - t0) / 1000).toFixed(1);
  if (failed.length) {
    console.log(`diff: FAIL: ${failed.length} failing seed(s): ${failed.join(' ')} (kinds ${opts.kinds.join(',')}, ${secs}s)`);
    process.exit(1);
  }
  console.log(`diff: ok: seeds ${opts.start}..${opts.start + opts.seeds - 1}, ${nops} ops, kinds ${opts.kinds.join(',')}, yjs ${yjsVersion}, ${secs}s`);
}

await main();
