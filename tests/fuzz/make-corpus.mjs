// SPDX-License-Identifier: MIT
//
// tests/fuzz/make-corpus.mjs: writes the seed corpora of the fuzz targets
// (tests/fuzz/corpus/<target>/) from the test vectors (tests/vectors, made by
// the real yjs 13.6.33), and tests/fuzz/base.h, the update that pre-fills
// the documents of the targets, made here by the real yjs.
//
//   node tests/fuzz/make-corpus.mjs        (after `npm ci` at the root)
//
// Deterministic: files are named by the SHA-1 of their content (as
// libFuzzer names its own), old seed files are replaced. The output is
// committed; rerun when the vectors change.
//
// Targets and their inputs:
//   update    v1 updates (final updates, emitted updates, sync transfers)
//   any       one mode byte, then the input: 0 = lib0 Any bytes
//             (primitives.json), 1 = JSON text
//   anycheck  one byte (the number of values - 1), then lib0 Any values
//             back to back: flat objects of scalars as a map holds, and
//             what the parser's fast checker must hand to the full one
//   sv        encoded state vectors
//   snapshot  encoded snapshots (v1)
//   relpos    encoded relative positions
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '../..');
const VEC = path.join(ROOT, 'tests', 'vectors');
const yjsFile = path.join(ROOT, 'node_modules', 'yjs', 'dist', 'yjs.mjs');
if (!existsSync(yjsFile)) {
  console.error('make-corpus: node_modules/yjs is missing: run `npm ci` in the repository root');
  process.exit(1);
}
const Y = await import(pathToFileURL(yjsFile).href);

const fromHex = (h) => Buffer.from(h, 'hex');
const load = (f) => JSON.parse(readFileSync(f, 'utf8'));
const cases = readdirSync(path.join(VEC, 'cases')).filter((f) => f.endsWith('.json')).sort()
  .map((f) => load(path.join(VEC, 'cases', f)));
const fuzzRuns = readdirSync(path.join(VEC, 'fuzz')).filter((f) => f.endsWith('.json')).sort()
  .map((f) => load(path.join(VEC, 'fuzz', f)));

// Up to `max` distinct inputs, smallest first among equals in `limit`.
function pick(list, max, limit = 4096) {
  const seen = new Set();
  const out = [];
  for (const b of list) {
    if (b.length > limit) continue;
    const k = b.toString('hex');
    if (seen.has(k)) continue;
    seen.add(k);
    out.push(b);
    if (out.length >= max) break;
  }
  return out;
}

// Replaces the seeds of a target (files named by their SHA-1); inputs kept by
// name (reproducers of fixed bugs, moved from crashes/) stay.
function writeCorpus(target, inputs) {
  const dir = path.join(HERE, 'corpus', target);
  mkdirSync(dir, { recursive: true });
  for (const f of readdirSync(dir)) if (/^[0-9a-f]{40}$/.test(f)) rmSync(path.join(dir, f));
  for (const b of inputs) {
    writeFileSync(path.join(dir, createHash('sha1').update(b).digest('hex')), b);
  }
  console.log(`corpus/${target}: ${inputs.length} files`);
}

// ---- update ------------------------------------------------------------------
{
  const finals = [];
  const emitted = [];
  const transfers = [];
  const checks = [];
  for (const c of cases) {
    for (const f of c.final) finals.push(fromHex(f.update));
    for (const rec of c.trace) {
      for (const e of rec.emitted || []) emitted.push(fromHex(e.update));
      if (rec.transfer) transfers.push(fromHex(rec.transfer));
      if (rec.op.op === 'apply') transfers.push(fromHex(rec.op.update));
    }
    for (const ch of c.checks || []) {
      if (!/merge|diff|restore|Update/i.test(ch.fn || '')) continue;
      for (const k of ['inputs', 'output', 'update', 'restoredUpdate']) {
        for (const x of [].concat(ch[k] || [])) if (typeof x === 'string' && /^([0-9a-f]{2})+$/.test(x)) checks.push(fromHex(x));
      }
    }
  }
  // every 7th emitted update, to keep the set small but varied
  const some = emitted.filter((_, i) => i % 7 === 0);
  // loaded maps: runs of entries {id, title, done} under one root (the
  // parser's and apply's fast path), then in turns with another root, of
  // two clients, one value not flat
  const maps = [];
  {
    const a = new Y.Doc();
    a.clientID = 1;
    const b = new Y.Doc();
    b.clientID = 2;
    for (let i = 0; i < 8; i++) {
      const v = { id: i * 3000, title: `task ${i}`, done: i % 3 === 0 };
      a.getMap(i < 5 || i % 2 ? 'map' : 'other').set(`k${i}`, v);
      b.getMap('map').set(`j${i}`, i === 6 ? { id: [i], t: 0.5 } : v);
    }
    maps.push(Buffer.from(Y.encodeStateAsUpdate(a)));
    Y.applyUpdate(a, Y.encodeStateAsUpdate(b));
    maps.push(Buffer.from(Y.encodeStateAsUpdate(a)));
  }
  const fuzzFinals = fuzzRuns.map((r) => fromHex(r.final[0].update));
  writeCorpus('update', [
    ...pick(finals, 30, 1024),
    ...pick(some, 15, 512),
    ...pick(transfers, 8, 512),
    ...pick(checks, 6, 512),
    ...fuzzFinals.slice(0, 2),
    ...maps,
    Buffer.from([0, 0]),
  ].filter((b, i, a) => a.findIndex((x) => x.equals(b)) === i));
}

// ---- any ---------------------------------------------------------------------
{
  const prim = load(path.join(VEC, 'primitives.json'));
  const bin = prim.any.map((a) => Buffer.concat([Buffer.from([0]), fromHex(a.hex)]));
  const json = [
    '{"a":[1,2.5,"x",null,true,false],"b":{"c":{}}}',
    '[]', '{}', '"\\ud83d\\ude00 \\u00e9\\n"', '"\\ud800"', '-0', '1e400', '-1.5e-7', '9007199254740993',
    '[[[[[[[[[[1]]]]]]]]]]', '{"k":1,"k":2}', ' [1 , 2 ] ', 'null', 'true', '"\\/\\b\\f\\r\\t"', '0.1',
    '123456789012345678901234567890', '{"\\u0000":"nul"}',
  ].map((s) => Buffer.concat([Buffer.from([1]), Buffer.from(s, 'utf8')]));
  writeCorpus('any', [...bin, ...json]);
}

// ---- anycheck --------------------------------------------------------------------
{
  const E = await import(pathToFileURL(path.join(ROOT, 'node_modules', 'lib0', 'encoding.js')).href);
  const anyBytes = (...values) => {
    const e = E.createEncoder();
    for (const v of values) E.writeAny(e, v);
    return Buffer.from(E.toUint8Array(e));
  };
  const todo = (i) => ({ id: i, title: `task ${i}`, done: i % 3 === 0 });
  const seeds = [
    [todo(0)], [todo(1), todo(2)], [todo(70000), todo(-5), todo(2 ** 31)],
    [{ id: 0.5, t: 'é', n: null, u: undefined, f: false, big: 2 ** 53 }],
    [{ 1: 'a', b: 2 }], [{ a: 1, a2: 2, a3: 3, a4: 4, a5: 5, a6: 6, a7: 7, a8: 8 }],
    [{ abcdefghijklmnopq: 1 }], [{ '': 0 }], [{}], [{ a: { b: 1 } }], [{ a: [1, 2] }],
    [{ a: new Uint8Array([1, 2]) }], [{ a: 10n }], ['x', 1, true, null], [-0, 1e300, -1.5],
  ].map((vs) => Buffer.concat([Buffer.from([vs.length - 1]), anyBytes(...vs)]));
  // what JS writes never repeats a key nor names __proto__: hand-made ones
  const raw = (n, hex) => Buffer.concat([Buffer.from([n - 1]), fromHex(hex)]);
  seeds.push(
    raw(1, '7602016177010161777d02'), // {a: 1, a: 2}
    raw(1, '7601095f5f70726f746f5f5f7d01'), // {__proto__: 1}
    raw(1, '760201617d0101627d'), // truncated
    raw(2, '7601016177017d05'), // a second value missing
  );
  writeCorpus('anycheck', seeds);
}

// ---- sv ------------------------------------------------------------------------
{
  const svs = [];
  for (const c of [...cases, ...fuzzRuns]) {
    for (const f of c.final) svs.push(fromHex(f.stateVector));
    for (const rec of c.trace) if (rec.stateVector) svs.push(fromHex(rec.stateVector));
    for (const ch of c.checks || []) {
      for (const k of ['stateVector', 'stateVectorFromOutput']) if (typeof ch[k] === 'string') svs.push(fromHex(ch[k]));
    }
  }
  writeCorpus('sv', pick(svs, 30));
}

// ---- snapshot ------------------------------------------------------------------
{
  const snaps = [];
  for (const c of cases) {
    for (const f of c.final) if (f.snapshot) snaps.push(fromHex(f.snapshot));
    for (const ch of c.checks || []) for (const k of ['snapshot', 'output']) {
      if (ch.fn && /napshot/.test(ch.fn) && typeof ch[k] === 'string') snaps.push(fromHex(ch[k]));
    }
  }
  writeCorpus('snapshot', pick(snaps, 30, 1024));
}

// ---- relpos --------------------------------------------------------------------
{
  const rps = [];
  for (const c of cases) {
    for (const ch of c.checks || []) {
      if (ch.fn === 'encodeRelativePosition' && ch.output) rps.push(fromHex(ch.output));
    }
  }
  // a nested type's position (tag 2), a negative assoc, a missing assoc
  rps.push(fromHex('0201050001'), fromHex('0001034001'), fromHex('000103'), fromHex('0101744041'));
  writeCorpus('relpos', pick(rps, 30));
}

// ---- base.h: the document the targets start from -------------------------------
{
  const d1 = new Y.Doc();
  d1.clientID = 1;
  const d2 = new Y.Doc();
  d2.clientID = 2;
  const m = d1.getMap('m');
  m.set('n', 42);
  m.set('s', 'héllo');
  m.set('o', { a: [1, 2.5, null], b: true });
  m.set('bin', new Uint8Array([1, 2, 3]));
  m.set('big', 12345678901234567n);
  const sub = new Y.Map();
  m.set('sub', sub);
  sub.set('k', 'v');
  const a = d1.getArray('a');
  a.insert(0, [1, 'two', { three: 3 }]);
  a.push([new Y.Text()]);
  a.get(3).insert(0, 'nested');
  const t = d1.getText('t');
  t.insert(0, 'Hello 😀 world', { bold: true });
  t.format(0, 5, { italic: true });
  t.insertEmbed(6, { image: 'x.png' });
  t.delete(2, 2);
  const x = d1.getXmlFragment('x');
  const el = new Y.XmlElement('p');
  x.insert(0, [el]);
  el.setAttribute('class', 'c');
  const xt = new Y.XmlText();
  el.insert(0, [xt]);
  xt.insert(0, 'xml text', { b: true });
  Y.applyUpdate(d2, Y.encodeStateAsUpdate(d1));
  d2.getMap('m').set('n', 43);
  d2.getArray('a').delete(1, 1);
  d2.getText('t').insert(3, 'XY');
  d2.getMap('m').delete('s');
  Y.applyUpdate(d1, Y.encodeStateAsUpdate(d2));
  const u = Buffer.from(Y.encodeStateAsUpdate(d1));
  const rows = [];
  for (let i = 0; i < u.length; i += 12) {
    rows.push('    ' + Array.from(u.subarray(i, i + 12), (b) => `0x${b.toString(16).padStart(2, '0')},`).join(' '));
  }
  const h = `/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/base.h: the v1 update (${u.length} bytes) that pre-fills the
 * documents of the fuzz targets: a map with every kind of value and a nested
 * map, an array with a nested text, formatted text with an embed and
 * deletions, an XML element with an attribute and formatted XML text, edited
 * by two clients. Generated by the real yjs in tests/fuzz/make-corpus.mjs:
 * do not edit.
 */
#ifndef LOOM_FUZZ_BASE_H
#define LOOM_FUZZ_BASE_H

#include <stdint.h>

static const uint8_t fuzz_base_update[] = {
${rows.join('\n')}
};

#endif
`;
  writeFileSync(path.join(HERE, 'base.h'), h);
  console.log(`base.h: ${u.length} bytes`);
}
