// SPDX-License-Identifier: MIT
//
// web/app.js: the demo page's logic (web/index.html). One Y.Doc per tab,
// synced through a y-websocket server at the page's own origin; the room is
// ?room=NAME (default loom-demo). The textarea is bound to the Y.Text
// "text" by minimal diffs, so concurrent typing in other tabs merges
// instead of overwriting; awareness carries a random name and colour per
// tab, listed under "Online".
import * as Y from 'yjs';
import { WebsocketProvider } from 'y-websocket';

const params = new URLSearchParams(location.search);
const room = params.get('room') || 'loom-demo';
const token = params.get('token');
const server = `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}`;

const doc = new Y.Doc();
const ytext = doc.getText('text');
// disableBc: without it y-websocket also syncs tabs of the same origin
// through a BroadcastChannel, and two tabs would see each other even with no
// server in between; this page is a test of the server, so it goes through
// the socket only.
const provider = new WebsocketProvider(server, room, doc, {
  disableBc: true,
  params: token ? { token } : {},
});
const awareness = provider.awareness;

const textarea = document.getElementById('text');
const online = document.getElementById('online');
const status = document.getElementById('status');
document.getElementById('room').textContent = room;

// ---- presence ---------------------------------------------------------------

const NAMES = ['Ada', 'Alan', 'Barbara', 'Dennis', 'Donald', 'Edsger', 'Frances', 'Grace',
  'Hedy', 'John', 'Ken', 'Leslie', 'Margaret', 'Niklaus', 'Radia', 'Tony'];
const me = {
  name: `${NAMES[Math.floor(Math.random() * NAMES.length)]} ${Math.floor(10 + Math.random() * 90)}`,
  color: `hsl(${Math.floor(Math.random() * 360)} 65% 45%)`,
};
awareness.setLocalStateField('user', me);

function renderOnline() {
  const items = [];
  const states = [...awareness.getStates().entries()].sort((a, b) => a[0] - b[0]);
  for (const [client, state] of states) {
    const user = state && state.user;
    if (!user || typeof user.name !== 'string') continue;
    const li = document.createElement('li');
    li.dataset.client = String(client);
    // Remote states are whatever another tab sent: text only, never HTML,
    // and the colour only when it is a plain colour value.
    li.textContent = client === doc.clientID ? `${user.name} (you)` : user.name;
    if (client === doc.clientID) li.dataset.self = '';
    if (typeof user.color === 'string' && /^[#a-z0-9%(). ,-]+$/i.test(user.color)) {
      li.style.borderColor = user.color;
    }
    items.push(li);
  }
  online.replaceChildren(...items);
}
awareness.on('change', renderOnline);
renderOnline();

provider.on('status', ({ status: s }) => {
  status.textContent = s;
  status.dataset.status = s;
});

// ---- the text ---------------------------------------------------------------

const LOCAL = Symbol('textarea');

const isHigh = (c) => c >= 0xd800 && c <= 0xdbff;
const isLow = (c) => c >= 0xdc00 && c <= 0xdfff;

// Typing changes the textarea; the Y.Text gets only what changed (common
// prefix and suffix kept), widened so no surrogate pair is split (yjs would
// turn both halves into U+FFFD).
textarea.addEventListener('input', () => {
  const before = ytext.toString();
  const after = textarea.value;
  let start = 0;
  while (start < before.length && start < after.length && before[start] === after[start]) start++;
  let endBefore = before.length;
  let endAfter = after.length;
  while (endBefore > start && endAfter > start && before[endBefore - 1] === after[endAfter - 1]) {
    endBefore--;
    endAfter--;
  }
  if (start > 0 && isHigh(before.charCodeAt(start - 1))) start--;
  if (endBefore < before.length && isLow(before.charCodeAt(endBefore))) {
    endBefore++;
    endAfter++;
  }
  doc.transact(() => {
    if (endBefore > start) ytext.delete(start, endBefore - start);
    if (endAfter > start) ytext.insert(start, after.slice(start, endAfter));
  }, LOCAL);
});

// Remote changes rewrite the textarea; the caret and selection move with
// the text around them (positions after an insert shift right, positions
// inside a deleted range collapse to its start).
ytext.observe((event, transaction) => {
  if (transaction.origin === LOCAL) return;
  let sel = [textarea.selectionStart, textarea.selectionEnd];
  let index = 0;
  for (const op of event.delta) {
    if (op.retain !== undefined) {
      index += op.retain;
    } else if (op.insert !== undefined) {
      const n = typeof op.insert === 'string' ? op.insert.length : 1;
      sel = sel.map((p) => (p > index ? p + n : p));
      index += n;
    } else if (op.delete !== undefined) {
      sel = sel.map((p) => (p > index ? Math.max(index, p - op.delete) : p));
    }
  }
  textarea.value = ytext.toString();
  if (document.activeElement === textarea) textarea.setSelectionRange(sel[0], sel[1]);
});

// The first sync enables editing. Later syncs (after a reconnect) leave
// the textarea alone unless it differs: setting the value moves the caret.
provider.on('sync', (synced) => {
  if (!synced) return;
  if (textarea.value !== ytext.toString()) textarea.value = ytext.toString();
  textarea.disabled = false;
});

// For the browser test and for poking at the page from the console.
window.loom = { doc, ytext, provider, awareness, me, room };
