// SPDX-License-Identifier: MIT
//
// tests/interop/static.mjs: a small static file server for build/web/ that
// forwards WebSocket upgrades to a y-websocket server. The reference server
// serves no files, and the demo page connects to its own origin, so for the
// reference the browser test puts this in front of it: the page and the
// socket then share one origin, as they do with `loom serve --web`. It
// mirrors what loom promises for --web: `/` is index.html, symlinks inside
// the folder are followed, content types for html/js/mjs/css/json.
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
};

// serveFile(root, req, res): answers a GET for a file of the folder root.
export function serveFile(root, req, res) {
  const base = path.resolve(root);
  let rel;
  try {
    rel = decodeURIComponent(new URL(req.url, 'http://x').pathname);
  } catch {
    res.writeHead(400).end();
    return;
  }
  if (rel.endsWith('/')) rel += 'index.html';
  // Normalised before the symlinks are followed: a path may not climb out
  // of the folder, a symlink inside it may point anywhere.
  const file = path.join(base, path.normalize(rel));
  if (file !== base && !file.startsWith(base + path.sep)) {
    res.writeHead(403).end();
    return;
  }
  fs.stat(file, (err, st) => {
    if (err || !st.isFile()) {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found');
      return;
    }
    res.writeHead(200, {
      'Content-Type': TYPES[path.extname(file)] || 'application/octet-stream',
      'Content-Length': st.size,
      'Cache-Control': 'no-store',
    });
    fs.createReadStream(file).pipe(res);
  });
}

// startStatic({ root, backendPort }): resolves to { server, port, close() }.
export function startStatic({ root, backendPort }) {
  const server = http.createServer((req, res) => serveFile(root, req, res));
  // Upgrades go to the backend byte for byte: the request line and headers
  // as received, then both sockets piped together.
  const tunnels = new Set();
  server.on('upgrade', (req, socket, head) => {
    tunnels.add(socket);
    socket.on('close', () => tunnels.delete(socket));
    const upstream = net.connect(backendPort, '127.0.0.1', () => {
      let h = `${req.method} ${req.url} HTTP/${req.httpVersion}\r\n`;
      for (let i = 0; i < req.rawHeaders.length; i += 2) {
        h += `${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}\r\n`;
      }
      upstream.write(h + '\r\n');
      if (head.length > 0) upstream.write(head);
      socket.pipe(upstream).pipe(socket);
    });
    const drop = () => {
      socket.destroy();
      upstream.destroy();
    };
    upstream.on('error', drop);
    socket.on('error', drop);
    upstream.on('close', () => socket.destroy());
    socket.on('close', () => upstream.destroy());
  });
  return new Promise((resolve, reject) => {
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      resolve({
        server,
        port: server.address().port,
        close: () => new Promise((r) => {
          for (const s of tunnels) s.destroy();
          server.closeAllConnections();
          server.close(() => r());
        }),
      });
    });
  });
}
