// SPDX-License-Identifier: MIT
//
// scripts/web-build.mjs: lays out the demo page of web/ in build/web/ so a
// plain static file server (`loom serve --web build/web`, or the tests'
// static server) can serve it with no bundler.
//
// The browser resolves bare imports such as `yjs` or `lib0/encoding` only
// through an import map, and lib0 and y-protocols name their modules by
// package `exports` subpaths without `.js`. So this script walks the npm
// packages the page needs (yjs, y-websocket and their dependencies, as
// installed in the repository's node_modules by `npm ci`), resolves every
// export for the browser conditions, and writes the map into
// build/web/index.html in place of the `<!-- importmap -->` line of
// web/index.html. The other files of web/ are copied, and
// build/web/node_modules/<package> is a symlink to the installed package
// (only the packages in the map, so nothing else of node_modules is served).
//
// Usage: node scripts/web-build.mjs [--out DIR]   (default: build/web)
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ROOTS = ['yjs', 'y-websocket'];
// Conditions a browser loading ES modules satisfies, in the order a bundler
// targeting the browser would try them.
const CONDITIONS = ['browser', 'module', 'import', 'default'];

function parseArgs(argv) {
  let out = path.join(ROOT, 'build/web');
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--out' && i + 1 < argv.length) out = path.resolve(argv[++i]);
    else {
      console.error('usage: node scripts/web-build.mjs [--out DIR]');
      process.exit(2);
    }
  }
  return out;
}

function readPackage(name) {
  const dir = path.join(ROOT, 'node_modules', name);
  const file = path.join(dir, 'package.json');
  if (!fs.existsSync(file)) {
    throw new Error(`node_modules/${name} is missing: run npm ci (or make deps) first`);
  }
  return { dir, pkg: JSON.parse(fs.readFileSync(file, 'utf8')) };
}

// resolveTarget(value): the file an exports entry names for a browser, or
// null (a CommonJS-only or node-only entry).
function resolveTarget(value) {
  if (typeof value === 'string') return value;
  if (value === null || typeof value !== 'object') return null;
  for (const cond of CONDITIONS) {
    if (cond in value) {
      const t = resolveTarget(value[cond]);
      if (t !== null) return t;
    }
  }
  return null;
}

// entriesOf(name, pkg): [specifier, file inside the package] for every
// module the package exports to browsers.
function entriesOf(name, pkg) {
  const out = [];
  let exp = pkg.exports;
  if (exp === undefined) {
    const main = (typeof pkg.browser === 'string' && pkg.browser) || pkg.module || pkg.main || 'index.js';
    return [[name, main]];
  }
  if (typeof exp === 'string' || !Object.keys(exp).every((k) => k.startsWith('.'))) exp = { '.': exp };
  for (const [key, value] of Object.entries(exp)) {
    if (key.includes('*') || key === './package.json') continue;
    const target = resolveTarget(value);
    if (target === null || target.endsWith('.cjs') || target.endsWith('.json')) continue;
    out.push([key === '.' ? name : name + key.slice(1), target]);
  }
  return out;
}

function build(out) {
  const imports = {};
  const seen = new Set();
  const queue = [...ROOTS];
  while (queue.length > 0) {
    const name = queue.shift();
    if (seen.has(name)) continue;
    seen.add(name);
    const { pkg } = readPackage(name);
    for (const [spec, target] of entriesOf(name, pkg)) {
      imports[spec] = `/node_modules/${name}/${target.replace(/^\.\//, '')}`;
    }
    // Peer dependencies (yjs for y-websocket) are in ROOTS or reached anyway.
    for (const dep of Object.keys(pkg.dependencies || {})) queue.push(dep);
  }

  const src = path.join(ROOT, 'web');
  fs.rmSync(out, { recursive: true, force: true });
  fs.mkdirSync(path.join(out, 'node_modules'), { recursive: true });
  for (const file of fs.readdirSync(src)) {
    if (file === 'index.html') continue;
    fs.copyFileSync(path.join(src, file), path.join(out, file));
  }
  const html = fs.readFileSync(path.join(src, 'index.html'), 'utf8');
  const marker = '<!-- importmap -->';
  if (!html.includes(marker)) throw new Error(`web/index.html has no ${marker} line`);
  const map = JSON.stringify({ imports }, null, 2).replace(/\n/g, '\n    ');
  fs.writeFileSync(path.join(out, 'index.html'),
    html.replace(marker, `<script type="importmap">\n    ${map}\n    </script>`));
  for (const name of [...seen].sort()) {
    const link = path.join(out, 'node_modules', name);
    fs.mkdirSync(path.dirname(link), { recursive: true });
    fs.symlinkSync(path.join(ROOT, 'node_modules', name), link);
  }
  return { imports: Object.keys(imports).length, packages: [...seen].sort() };
}

const out = parseArgs(process.argv.slice(2));
try {
  const r = build(out);
  console.log(`web-build: ${path.relative(process.cwd(), out) || '.'}: ` +
    `${r.imports} import map entries from ${r.packages.join(', ')}`);
} catch (e) {
  console.error(`web-build: ${e.message}`);
  process.exit(1);
}
