// SPDX-License-Identifier: MIT
//
// tests/cli/vec.mjs: the node half of tests/cli/run.sh. Plain node, no
// packages. Run in the test's scratch directory:
//
//   node vec.mjs prepare VECTORS_DIR > jobs.tsv
//       reads the test vectors (VECTORS_DIR/README.md) and writes
//         in/NAME.hex     every input file, as hex (run.sh turns each into
//                         in/NAME.bin with xxd -r -p)
//         want/ID.hex     expected output bytes        (expect "bytes")
//         want/ID.json    expected JSON and ignored keys (expect "json")
//         want/ID.sv      expected state vector, hex   (expect "sv")
//       and prints one job a line: ID TAB EXPECT TAB ARG TAB ARG ...
//       EXPECT: bytes | json | sv | malformed:NAME (exit 1, and stderr
//       names NAME and a byte offset). An ARG "<FILE" is loom's stdin.
//
//   node vec.mjs verify < jobs.tsv
//       compares out/ID (loom's stdout) with want/ID.json / want/ID.sv for
//       the json and sv jobs that exited 0 (status/ID holds the exit code).
//       Object key order is ignored (the vectors sort keys); state vector
//       entries must come in the order of the encoded bytes. Prints one
//       FAIL line per difference; exits 1 if there was any.
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const [cmd, ...args] = process.argv.slice(2);

// ---- prepare -------------------------------------------------------------

// Cases whose gc-on docs are rebuilt from their updates and checked with
// dump / encode / sv. The second element lists top-level keys to ignore:
// xml-types' `hooks` JSON is a JavaScript artifact ("[object Object]").
const REPLAY = [
  ['cases/map-set-int'],
  ['cases/map-any-all-tags'],
  ['cases/map-number-edge-cases'],
  ['cases/map-unicode-keys'],
  ['cases/map-nested-types'],
  ['cases/map-concurrent-set-2'],
  ['cases/array-insert-basic'],
  ['cases/array-mixed-content'],
  ['cases/array-concurrent-insert-3'],
  ['cases/text-basic'],
  ['cases/text-format-bold'],
  ['cases/text-embed'],
  ['cases/text-emoji-surrogates'],
  ['cases/text-concurrent-typing'],
  ['cases/nested-deep'],
  ['cases/xml-types', ['hooks']],
  ['cases/diff-update'],
  ['cases/delete-set-multi-client'],
  ['cases/large-client-ids'],
  ['fuzz/fuzz-seed-1'],
  ['fuzz/fuzz-seed-3'],
];

// applyUpdate sequences (pending structs / delete sets), one root each.
const APPLY = ['merge-updates-gap-skip', 'pending-delete-set', 'pending-out-of-order'];

function prepare(vectors) {
  mkdirSync('in', { recursive: true });
  mkdirSync('want', { recursive: true });
  const jobs = [];
  const load = (name) => JSON.parse(readFileSync(join(vectors, name + '.json'), 'utf8'));
  const input = (name, hex) => {
    writeFileSync(`in/${name}.hex`, hex);
    return `in/${name}.bin`;
  };
  const job = (id, expect, want, argv) => {
    if (expect === 'bytes') writeFileSync(`want/${id}.hex`, want);
    else if (expect === 'json') writeFileSync(`want/${id}.json`, JSON.stringify(want));
    else if (expect === 'sv') writeFileSync(`want/${id}.sv`, want);
    jobs.push([id, expect, ...argv].join('\t'));
  };
  const rootArgs = (c) => Object.entries(c.roots || {}).map(([n, k]) => `--root=${n}=${k}`);
  const safe = (s) => s.replace(/[^A-Za-z0-9_.-]/g, '_');

  // 1. Rebuild docs from their updates (README "bytes mode").
  for (const [name, ignore = []] of REPLAY) {
    const c = load(name);
    for (const d of c.docs.filter((d) => d.gc)) {
      const tag = `${safe(name)}-doc${d.id}`;
      const ups = bytesMode(c, d.id).map((hex, i) => input(`${tag}-${String(i).padStart(3, '0')}`, hex));
      if (ups.length === 0) continue;
      const fin = c.final.find((r) => r.doc === d.id);
      job(`${tag}-dump`, 'json', { json: fin.json, ignore }, ['update', 'dump', ...rootArgs(c), ...ups]);
      job(`${tag}-encode`, 'bytes', fin.update, ['update', 'encode', ...ups]);
      job(`${tag}-sv`, 'sv', fin.stateVector, ['update', 'sv', ...ups]);
      // The final update alone, no hints: kinds are inferred (every root of
      // these cases has content).
      const f = input(`${tag}-final`, fin.update);
      job(`${tag}-dump-inferred`, 'json', { json: fin.json, ignore }, ['update', 'dump', f]);
    }
  }

  // 2. Every mergeUpdates / diffUpdate check of the cases.
  for (const file of readdirSync(join(vectors, 'cases')).sort()) {
    const base = file.replace(/\.json$/, '');
    const c = load(`cases/${base}`);
    let m = 0;
    let d = 0;
    for (const k of c.checks || []) {
      if (k.fn === 'mergeUpdates') {
        const id = `${base}-merge${m++}`;
        // `loom update merge` needs at least one file (mergeUpdates([]) is
        // the empty update 0000, but no files is a usage error for loom).
        if (k.inputs.length === 0) continue;
        const files = k.inputs.map((hex, i) => input(`${id}-${i}`, hex));
        job(id, 'bytes', k.output, ['update', 'merge', ...files]);
      } else if (k.fn === 'diffUpdate') {
        const id = `${base}-diff${d++}`;
        job(id, 'bytes', k.output, ['update', 'diff', input(`${id}-u`, k.update), input(`${id}-sv`, k.stateVector)]);
      }
    }
  }

  // 3. applyUpdate sequences: after each step, the JSON of the one root, the
  //    state vector and encodeStateAsUpdate (pending structs included).
  for (const base of APPLY) {
    const c = load(`cases/${base}`);
    const root = Object.keys(c.roots)[0];
    const files = [];
    let i = 0;
    for (const k of (c.checks || []).filter((k) => k.fn.startsWith('applyUpdate'))) {
      const id = `${base}-apply${i++}`;
      files.push(input(id, k.input));
      job(`${id}-dump`, 'json', { json: { [root]: k.json }, ignore: [] }, ['update', 'dump', ...rootArgs(c), ...files]);
      job(`${id}-sv`, 'sv', k.stateVector, ['update', 'sv', ...files]);
      job(`${id}-encode`, 'bytes', k.encodeStateAsUpdate, ['update', 'encode', ...files]);
    }
  }

  // 4. Standard input, and malformed inputs.
  const sample = load('cases/text-basic').final[0];
  const good = input('good', sample.update);
  job('stdin-encode', 'bytes', sample.update, ['update', 'encode', '-', `<${good}`]);
  job('stdin-dump', 'json', { json: sample.json, ignore: [] }, ['update', 'dump', '-', `<${good}`]);
  job('stdin-merge', 'bytes', sample.update, ['update', 'merge', '-', `<${good}`]);
  job('stdin-diff', 'bytes', sample.update, ['update', 'diff', '-', input('empty-sv', '00'), `<${good}`]);

  const truncated = input('truncated', sample.update.slice(0, -6));
  const garbage = input('garbage', 'ff'.repeat(11));
  const empty = input('empty', '');
  const badSv = input('bad-sv', '020501'); // says 2 entries, holds 1
  for (const sub of ['dump', 'encode', 'sv']) {
    job(`bad-${sub}-truncated`, 'malformed:truncated.bin', null, ['update', sub, good, truncated]);
    job(`bad-${sub}-garbage`, 'malformed:garbage.bin', null, ['update', sub, garbage]);
    job(`bad-${sub}-empty`, 'malformed:empty.bin', null, ['update', sub, empty]);
  }
  job('bad-merge-truncated', 'malformed:truncated.bin', null, ['update', 'merge', good, truncated]);
  job('bad-merge-garbage', 'malformed:garbage.bin', null, ['update', 'merge', garbage, good]);
  job('bad-diff-update', 'malformed:truncated.bin', null, ['update', 'diff', truncated, 'in/empty-sv.bin']);
  job('bad-diff-sv', 'malformed:bad-sv.bin', null, ['update', 'diff', good, badSv]);
  job('bad-stdin', 'malformed:<stdin>', null, ['update', 'dump', '-', `<${truncated}`]);

  process.stdout.write(jobs.join('\n') + '\n');
}

// The updates that rebuild doc `id` from nothing (README "bytes mode"): the
// emitted updates of its local ops, the transfer of a sync to it, the bytes
// of an apply to it.
function bytesMode(c, id) {
  const out = [];
  for (const rec of c.trace) {
    const op = rec.op;
    if (op.op === 'sync') {
      if (op.to === id) out.push(rec.transfer);
    } else if (op.op === 'apply') {
      if (op.doc === id) out.push(op.update);
    } else if (op.doc === id) {
      for (const e of rec.emitted || []) if (e.doc === id) out.push(e.update);
    }
  }
  return out;
}

// ---- verify --------------------------------------------------------------

// Key-order-free canonical form.
function canon(v) {
  if (Array.isArray(v)) return v.map(canon);
  if (v !== null && typeof v === 'object') {
    const o = {};
    for (const k of Object.keys(v).sort()) o[k] = canon(v[k]);
    return o;
  }
  return v;
}

function decodeStateVector(hex) {
  const b = Buffer.from(hex, 'hex');
  let pos = 0;
  const varUint = () => {
    let v = 0n;
    for (let shift = 0n; ; shift += 7n) {
      if (pos >= b.length) throw new Error('truncated state vector');
      const byte = b[pos++];
      v |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) return v;
    }
  };
  const n = Number(varUint());
  const entries = [];
  for (let i = 0; i < n; i++) {
    const client = varUint().toString();
    entries.push([client, Number(varUint())]);
  }
  return entries;
}

function verify() {
  let failed = 0;
  let checked = 0;
  const fail = (id, msg) => {
    failed++;
    process.stdout.write(`FAIL: ${id}: ${msg}\n`);
  };
  for (const line of readFileSync(0, 'utf8').split('\n')) {
    if (!line) continue;
    const [id, expect] = line.split('\t');
    if (expect !== 'json' && expect !== 'sv') continue;
    if (!existsSync(`status/${id}`) || readFileSync(`status/${id}`, 'utf8').trim() !== '0') continue;
    checked++;
    const text = readFileSync(`out/${id}`, 'utf8');
    let actual;
    try {
      actual = JSON.parse(text);
    } catch (e) {
      fail(id, `loom printed invalid JSON (${e.message}): ${text.slice(0, 200)}`);
      continue;
    }
    if (expect === 'json') {
      const { json, ignore } = JSON.parse(readFileSync(`want/${id}.json`, 'utf8'));
      for (const k of ignore) {
        delete actual[k];
        delete json[k];
      }
      const a = JSON.stringify(canon(actual));
      const e = JSON.stringify(canon(json));
      if (a !== e) fail(id, `JSON differs\n    loom:     ${a}\n    expected: ${e}`);
    } else {
      // JSON.parse lists integer-like keys in numeric order: take the order
      // from the text.
      const order = [...text.matchAll(/"(\d+)"\s*:/g)].map((m) => m[1]);
      const a = JSON.stringify(order.map((k) => [k, actual[k]]));
      const e = JSON.stringify(decodeStateVector(readFileSync(`want/${id}.sv`, 'utf8')));
      if (a !== e) fail(id, `state vector differs\n    loom:     ${a}\n    expected: ${e}`);
    }
  }
  process.stdout.write(`verify: ${checked} JSON outputs compared, ${failed} differ\n`);
  process.exit(failed ? 1 : 0);
}

if (cmd === 'prepare' && args.length === 1) prepare(args[0]);
else if (cmd === 'verify') verify();
else {
  process.stderr.write('usage: node vec.mjs prepare VECTORS_DIR | verify\n');
  process.exit(2);
}
