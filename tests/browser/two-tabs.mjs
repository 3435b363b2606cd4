// SPDX-License-Identifier: MIT
//
// tests/browser/two-tabs.mjs: the demo page (web/, laid out by
// scripts/web-build.mjs) in a real browser: Debian's headless Chromium,
// driven by playwright-core, opens two tabs of the page in one room. Then:
//
//   - both tabs load with no failed request and no script error, connect
//     and sync (the textarea is enabled only after the first sync);
//   - each tab's "Online" list shows both tabs' users, by name;
//   - text typed in one tab appears in the other, and typing in the second
//     tab comes back to the first: both show the same text;
//   - closing a tab removes its user from the other tab's list.
//
// The page talks to the server of its own origin. With --server loom that
// is `loom serve --web DIR`; the reference server serves no files, so
// tests/interop/static.mjs serves DIR and forwards the socket to it. The
// page turns off y-websocket's BroadcastChannel, so the tabs can only see
// each other through the server.
//
// Usage: node tests/browser/two-tabs.mjs [--server loom|reference]
//          [--loom PATH] [--if-available] [--screenshot FILE] [--headed]
//   Chromium: environment CHROMIUM, default /usr/bin/chromium (a missing
//   browser is a failure: scripts/deps.sh installs the package).
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { ROOT, Server, requireServer, serverArgs, serverName } from '../interop/servers.mjs';
import { startStatic } from '../interop/static.mjs';

const opts = serverArgs(process.argv.slice(2));
let screenshot = null;
let headed = false;
for (let i = 0; i < opts.rest.length; i++) {
  if (opts.rest[i] === '--screenshot') screenshot = path.resolve(opts.rest[++i]);
  else if (opts.rest[i] === '--headed') headed = true;
  else {
    console.error(`two-tabs: unknown argument ${opts.rest[i]}`);
    process.exit(2);
  }
}
requireServer(opts, 'two-tabs');
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';

class Failure extends Error {}
const check = (cond, msg) => {
  if (!cond) throw new Failure(msg);
};
const ok = (what) => console.log(`ok   ${what}`);

// The names in a tab's online list, its own first.
async function onlineNames(page) {
  return page.$$eval('#online li', (lis) => lis
    .map((li) => ({ self: li.hasAttribute('data-self'), name: li.textContent.replace(/ \(you\)$/, '') }))
    .sort((a, b) => Number(b.self) - Number(a.self))
    .map((x) => x.name));
}

async function waitOnline(page, want, what) {
  try {
    await page.waitForFunction((n) => {
      const names = [...document.querySelectorAll('#online li')]
        .map((li) => li.textContent.replace(/ \(you\)$/, '')).sort();
      return JSON.stringify(names) === JSON.stringify(n);
    }, [...want].sort(), { timeout: 5000, polling: 50 });
  } catch {
    throw new Failure(`${what}: the online list is [${(await onlineNames(page)).join(', ')}], ` +
      `want [${want.join(', ')}]`);
  }
}

async function waitText(page, want, what) {
  try {
    await page.waitForFunction((t) => document.getElementById('text').value === t, want,
      { timeout: 5000, polling: 50 });
  } catch {
    const got = await page.$eval('#text', (t) => t.value);
    throw new Failure(`${what}: the textarea holds ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
  }
}

async function main(cleanup) {
  check(fs.existsSync(executablePath),
    `${executablePath} is missing: install Debian's chromium (scripts/deps.sh does)`);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'loom-two-tabs-'));
  cleanup.push(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const web = path.join(tmp, 'web');
  const built = spawnSync(process.execPath, [path.join(ROOT, 'scripts/web-build.mjs'), '--out', web],
    { encoding: 'utf8' });
  check(built.status === 0, `scripts/web-build.mjs failed: ${built.stderr}${built.stdout}`);

  const server = new Server(opts.kind, { loomCmd: opts.loomCmd, webDir: web, dataDir: path.join(tmp, 'data') });
  await server.start();
  cleanup.push(() => server.kill('SIGKILL'));
  let origin = server.httpUrl;
  if (!server.features.static) {
    const front = await startStatic({ root: web, backendPort: server.port });
    cleanup.push(() => front.close());
    origin = `http://127.0.0.1:${front.port}`;
    console.log(`two-tabs: the reference server serves no files: page from ${origin}, sockets forwarded`);
  }

  const args = ['--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'];
  // Chromium's sandbox refuses to run as root (CI runs as root).
  if (process.getuid && process.getuid() === 0) args.push('--no-sandbox');
  const browser = await chromium.launch({ executablePath, headless: !headed, args });
  cleanup.push(() => browser.close());
  const context = await browser.newContext({ viewport: { width: 900, height: 500 } });

  const problems = [];
  const room = `two-tabs-${crypto.randomBytes(3).toString('hex')}`;
  const url = `${origin}/?room=${room}`;
  const open = async (label) => {
    const page = await context.newPage();
    page.on('pageerror', (e) => problems.push(`${label}: script error: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(`${label}: console error: ${m.text()}`);
    });
    page.on('requestfailed', (r) => problems.push(`${label}: request failed: ${r.url()}`));
    page.on('response', (r) => {
      if (r.status() >= 400) problems.push(`${label}: HTTP ${r.status()} for ${r.url()}`);
    });
    await page.goto(url);
    try {
      await page.waitForSelector('#text:not([disabled])', { timeout: 10000 });
    } catch {
      throw new Failure(`${label}: the page did not sync within 10 s ` +
        `(status: ${await page.$eval('#status', (s) => s.textContent)}; ${problems.join('; ') || 'no errors seen'})`);
    }
    return page;
  };
  const a = await open('tab A');
  const b = await open('tab B');
  check(problems.length === 0, problems.join('\n'));
  check(await a.$eval('#room', (e) => e.textContent) === room, 'the page does not show the room of its URL');
  ok(`two tabs of ${url} load yjs and y-websocket through the import map and sync`);

  const nameA = (await onlineNames(a))[0];
  const nameB = (await onlineNames(b))[0];
  check(nameA && nameB && nameA !== nameB, `the tabs' own names: '${nameA}', '${nameB}'`);
  await waitOnline(a, [nameA, nameB], 'tab A');
  await waitOnline(b, [nameA, nameB], 'tab B');
  ok(`each tab's online list shows both users (${nameA}, ${nameB})`);

  const typedA = 'Hello from tab A, ünïcödé 字.';
  await a.click('#text');
  await a.keyboard.type(typedA, { delay: 5 });
  await waitText(b, typedA, 'tab B after typing in tab A');
  ok('text typed in tab A appears in tab B');

  // B types at the start; A, whose caret is at the end, keeps it there.
  await b.click('#text');
  await b.keyboard.press('Control+Home');
  await b.keyboard.type('B says: ', { delay: 5 });
  const both = `B says: ${typedA}`;
  await waitText(a, both, 'tab A after typing in tab B');
  await a.keyboard.type(' A again.', { delay: 5 });
  await waitText(b, `${both} A again.`, 'tab B after tab A typed at its caret');
  await waitText(a, `${both} A again.`, 'tab A');
  ok('typing in tab B reaches tab A, and tab A\'s caret stays where it was');

  if (screenshot) {
    await b.screenshot({ path: screenshot });
    console.log(`two-tabs: screenshot of tab B in ${screenshot}`);
  }

  await a.close();
  await waitOnline(b, [nameB], 'tab B after tab A closed');
  ok('closing tab A removes its user from tab B\'s online list');
  check(problems.length === 0, problems.join('\n'));
}

const cleanup = [];
const started = Date.now();
const watchdog = setTimeout(() => {
  console.error('two-tabs: FAIL: still running after 60 s');
  process.exit(1);
}, 60000);
let code = 0;
try {
  await main(cleanup);
  console.log(`two-tabs: ${serverName(opts)}: passed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
} catch (e) {
  console.error(`two-tabs: FAIL (${serverName(opts)} server): ${e instanceof Failure ? e.message : e.stack}`);
  code = 1;
}
for (const f of cleanup.reverse()) {
  try {
    await f();
  } catch {
    // already gone
  }
}
clearTimeout(watchdog);
process.exit(code);
