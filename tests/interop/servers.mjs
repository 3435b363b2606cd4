// SPDX-License-Identifier: MIT
//
// tests/interop/servers.mjs: starts and stops the y-websocket server under
// test, so one scenario runs unchanged against `loom serve` and against the
// reference server (npm @y/websocket-server, the server behind `npx
// y-websocket`). Used by tests/interop/converge.mjs,
// tests/browser/two-tabs.mjs and bench/net/load.mjs.
//
// Which server: --server loom|reference (environment LOOM_SERVER). The loom
// command is --loom PATH, or LOOM_SERVER_CMD (a command line split at
// spaces, e.g. "valgrind -q build/loom", to wrap it), or build/loom. Every
// server listens on 127.0.0.1 at a free port and counts as up once
// GET /healthz answers 200 (loom's health check; the reference answers
// every plain HTTP request with 200, so the same wait fits both).
//
// What each can do differs, and the scenarios ask `features` rather than
// the kind: only loom has tokens and SIGTERM handling; the reference
// persists only with YPERSISTENCE (LevelDB), which startServer sets when a
// data directory is given.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const REFERENCE_MAIN = path.join(ROOT, 'node_modules/@y/websocket-server/src/server.js');

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// serverArgs(argv): pulls --server, --loom and --if-available out of argv.
// Returns { kind, loomCmd, ifAvailable, rest } (rest: the other arguments).
export function serverArgs(argv) {
  const o = {
    kind: process.env.LOOM_SERVER || 'loom',
    loomCmd: process.env.LOOM_SERVER_CMD
      ? process.env.LOOM_SERVER_CMD.split(/\s+/).filter(Boolean)
      : [path.join(ROOT, 'build/loom')],
    ifAvailable: false,
    rest: [],
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--server' && i + 1 < argv.length) o.kind = argv[++i];
    else if (a === '--loom' && i + 1 < argv.length) o.loomCmd = [argv[++i]];
    else if (a === '--if-available') o.ifAvailable = true;
    else o.rest.push(a);
  }
  if (o.kind !== 'loom' && o.kind !== 'reference') {
    throw new Error(`--server must be loom or reference, not '${o.kind}'`);
  }
  return o;
}

// serverName(opts): what a report calls the server under test: the kind,
// and for loom the command (the contract stand-in is not loom).
export function serverName(opts) {
  return opts.kind === 'loom' ? `loom (${opts.loomCmd.join(' ')})` : opts.kind;
}

// loomHasServe(loomCmd): true when this loom binary knows `serve`
// (`loom help serve` exits 0; before the command exists it exits 2).
export function loomHasServe(loomCmd) {
  const r = spawnSync(loomCmd[0], [...loomCmd.slice(1), 'help', 'serve'], { stdio: 'ignore' });
  return r.status === 0;
}

// requireServer(opts, what): for --if-available runs, exits 77 (ctest's
// skip code here) with a note when loom has no `serve` yet. Without
// --if-available a missing command is a failure, reported by startServer.
export function requireServer(opts, what) {
  if (opts.kind !== 'loom') return;
  if (!fs.existsSync(opts.loomCmd[opts.loomCmd.length - 1]) && opts.loomCmd.length === 1) {
    console.error(`${what}: ${opts.loomCmd[0]} does not exist (build loom first)`);
    process.exit(1);
  }
  if (opts.ifAvailable && !loomHasServe(opts.loomCmd)) {
    console.log(`${what}: SKIP: ${opts.loomCmd.join(' ')} has no 'serve' command yet`);
    process.exit(77);
  }
}

export function features(kind, { dataDir } = {}) {
  return {
    auth: kind === 'loom',
    persistence: kind === 'loom' || Boolean(dataDir),
    sigterm: kind === 'loom',
    static: kind === 'loom',
  };
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

export function httpGet(url, timeoutMs = 1000) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { timeout: timeoutMs }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers,
        body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

// Every server started and not yet gone; killed when this process exits or
// is interrupted, so no server outlives its test.
const live = new Set();
process.on('exit', () => {
  for (const p of live) p.kill('SIGKILL');
});
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    console.error(`interrupted (${sig}): stopping the servers`);
    process.exit(1);
  });
}

// A running server. `log` keeps its last output for failure messages.
export class Server {
  constructor(kind, opts = {}) {
    this.kind = kind;
    this.opts = opts;
    this.proc = null;
    this.port = opts.port || 0;
    this.log = '';
    this.exit = null;
  }

  get url() { return `ws://127.0.0.1:${this.port}`; }
  get httpUrl() { return `http://127.0.0.1:${this.port}`; }
  get pid() { return this.proc ? this.proc.pid : 0; }
  get features() { return features(this.kind, this.opts); }

  command() {
    const o = this.opts;
    if (this.kind === 'reference') {
      const env = { HOST: '127.0.0.1', PORT: String(this.port) };
      if (o.dataDir) env.YPERSISTENCE = o.dataDir;
      return { argv: [process.execPath, REFERENCE_MAIN], env: { ...env, ...(o.env || {}) } };
    }
    const cmd = o.loomCmd || [path.join(ROOT, 'build/loom')];
    const argv = [...cmd, 'serve', '--host', '127.0.0.1', '--port', String(this.port)];
    if (o.dataDir) argv.push('--data', o.dataDir);
    if (o.webDir) argv.push('--web', o.webDir);
    if (o.authSecret) argv.push('--auth-secret', o.authSecret);
    return { argv, env: { ...(o.env || {}) } };
  }

  async start(timeoutMs = 15000) {
    if (!this.port) this.port = await freePort();
    const { argv, env } = this.command();
    this.exit = null;
    this.log = '';
    const proc = spawn(argv[0], argv.slice(1), {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.proc = proc;
    live.add(proc);
    const keep = (chunk) => {
      this.log = (this.log + chunk.toString('utf8')).slice(-8000);
      if (this.opts.verbose) process.stderr.write(`[${this.kind}] ${chunk}`);
    };
    proc.stdout.on('data', keep);
    proc.stderr.on('data', keep);
    this.exited = new Promise((resolve) => {
      proc.on('exit', (code, signal) => {
        live.delete(proc);
        this.exit = { code, signal };
        resolve(this.exit);
      });
      proc.on('error', (e) => {
        this.log += `\nspawn failed: ${e.message}`;
        this.exit = { code: null, signal: null, error: e };
        resolve(this.exit);
      });
    });
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.exit) {
        throw new Error(`${this.kind} server exited before it was up ` +
          `(${JSON.stringify(this.exit)}): ${argv.join(' ')}\n${this.log}`);
      }
      let r = null;
      try {
        r = await httpGet(`${this.httpUrl}/healthz`, 500);
      } catch {
        // not listening yet
      }
      if (r && r.status === 200) {
        // loom's contract: 200 and "ok" (the reference says "okay" to
        // every request, so only the status counts there).
        if (this.kind === 'loom' && r.body.trim() !== 'ok') {
          await this.kill('SIGKILL');
          throw new Error(`${argv.join(' ')}: GET /healthz answered ${JSON.stringify(r.body)}, want "ok"`);
        }
        return this;
      }
      await sleep(50);
    }
    await this.kill('SIGKILL');
    throw new Error(`${this.kind} server not up after ${timeoutMs} ms: ${argv.join(' ')}\n${this.log}`);
  }

  // kill(signal): sends the signal and waits for the exit; { code, signal }.
  async kill(signal = 'SIGKILL', timeoutMs = 10000) {
    if (!this.proc || this.exit) return this.exit;
    this.proc.kill(signal);
    const t = setTimeout(() => this.proc.kill('SIGKILL'), timeoutMs);
    const r = await this.exited;
    clearTimeout(t);
    return r;
  }

  // stop(): SIGTERM, then SIGKILL after 5 s.
  stop() { return this.kill('SIGTERM', 5000); }

  // rssBytes(): the server process's resident set (VmRSS) now.
  rssBytes() {
    const status = fs.readFileSync(`/proc/${this.pid}/status`, 'utf8');
    const m = /^VmRSS:\s+(\d+) kB/m.exec(status);
    if (!m) throw new Error(`no VmRSS in /proc/${this.pid}/status`);
    return Number(m[1]) * 1024;
  }
}

// loomToken(loomCmd, opts): runs `loom token` and returns the JWT.
export function loomToken(loomCmd, { secretFile, room, mode, ttl }) {
  const args = [...loomCmd.slice(1), 'token', '--secret', secretFile, '--room', room, '--mode', mode];
  if (ttl !== undefined) args.push('--ttl', String(ttl));
  const r = spawnSync(loomCmd[0], args, { encoding: 'utf8' });
  if (r.status !== 0) {
    throw new Error(`loom token ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  }
  return r.stdout.trim();
}
