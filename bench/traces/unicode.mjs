// SPDX-License-Identifier: MIT
//
// bench/traces/unicode.mjs: a non-ASCII copy of an editing trace, so the
// benchmarks also cover text whose UTF-8 and UTF-16 lengths differ from
// its length in code points (the traces here are pure ASCII). Every
// character of the inserted text and of endContent is mapped one to one:
// a-z to Cyrillic (2 bytes of UTF-8), A-Z to CJK ideographs (3 bytes),
// 0-9 to emoji outside the BMP (4 bytes, a UTF-16 surrogate pair); the
// rest stays. Positions and lengths count code points, so they are kept.
//
//   node bench/traces/unicode.mjs IN.json.gz OUT.json.gz
import fs from 'node:fs'
import zlib from 'node:zlib'

const [src, dst] = process.argv.slice(2)
if (!src || !dst) {
  console.error('usage: node bench/traces/unicode.mjs IN.json.gz OUT.json.gz')
  process.exit(2)
}
const map = (s) => {
  let out = ''
  for (const ch of s) {
    const c = ch.codePointAt(0)
    if (c >= 0x61 && c <= 0x7a) out += String.fromCodePoint(0x430 + (c - 0x61))
    else if (c >= 0x41 && c <= 0x5a) out += String.fromCodePoint(0x4e00 + (c - 0x41) * 37)
    else if (c >= 0x30 && c <= 0x39) out += String.fromCodePoint(0x1f600 + (c - 0x30))
    else out += ch
  }
  return out
}
let raw = fs.readFileSync(src)
if (raw[0] === 0x1f && raw[1] === 0x8b) raw = zlib.gunzipSync(raw)
const data = JSON.parse(raw.toString('utf8'))
for (const txn of data.txns) txn.patches = txn.patches.map(([p, d, s]) => [p, d, map(s)])
data.endContent = map(data.endContent)
fs.writeFileSync(dst, zlib.gzipSync(JSON.stringify(data)))
