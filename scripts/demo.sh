#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# scripts/demo.sh: a short tour of `loom update` on a real document (make
# run). Two peers, alice (client 10) and bob (client 20), type into the same
# Y.Text at the same spot; their updates were recorded from the real yjs
# 13.6.33 (tests/vectors/cases/text-concurrent-typing.json). The demo writes
# them to build/demo/ and runs the CLI on them; every output shown is real.
#
# Usage: scripts/demo.sh [LOOM]   (default: build/loom)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
loom=${1:-build/loom}
demo=build/demo
case_file=tests/vectors/cases/text-concurrent-typing.json

if [ ! -x "$loom" ]; then
    echo "demo: $loom is not built (run make)" >&2
    exit 1
fi
for tool in node xxd; do
    command -v "$tool" >/dev/null 2>&1 || {
        echo "demo: $tool is missing (scripts/deps.sh installs it)" >&2
        exit 1
    }
done

rm -rf "$demo"
mkdir -p "$demo"

# The recorded bytes: alice's four local updates, bob's view before the last
# sync (alice's first update, which he received, then his three), bob's
# state vector at that point and yjs's encodeStateAsUpdate of the end state.
node - "$case_file" >"$demo/hex.txt" <<'JS'
const c = JSON.parse(require('fs').readFileSync(process.argv[2], 'utf8'));
const local = (doc) => c.trace.filter((t) => t.op.doc === doc).map((t) => t.emitted[0].update);
const syncs = c.trace.filter((t) => t.op.op === 'sync' && t.op.to === 2);
local(1).forEach((u, i) => console.log(`alice-${i + 1}.bin ${u}`));
[syncs[0].transfer, ...local(2)].forEach((u, i) => console.log(`bob-${i + 1}.bin ${u}`));
console.log(`bob.sv ${syncs[1].stateVector}`);
console.log(`yjs-final.bin ${c.final[0].update}`);
// Two more for the README tour: XML and values JSON cannot express.
const finalOf = (name) => JSON.parse(require('fs').readFileSync(`tests/vectors/cases/${name}.json`, 'utf8')).final[0].update;
console.log(`xml.bin ${finalOf('xml-types')}`);
console.log(`tags.bin ${finalOf('map-any-all-tags')}`);
JS
while read -r name hex; do
    printf '%s' "$hex" | xxd -r -p >"$demo/$name"
done <"$demo/hex.txt"
rm "$demo/hex.txt"
loom=$(cd "$(dirname "$loom")" && pwd)/$(basename "$loom")
cd "$demo"

bold=
plain=
if [ -t 1 ]; then
    bold=$(tput bold 2>/dev/null || true)
    plain=$(tput sgr0 2>/dev/null || true)
fi
say() {
    printf '\n%s# %s%s\n' "$bold" "$*" "$plain"
}
# show CMD...: prints "$ loom ..." and runs it (loom = the built binary).
show() {
    printf '$ loom %s\n' "$*"
    "$loom" "$@"
}
# show_to FILE CMD...: the same, with loom's output going to FILE.
show_to() {
    local file=$1
    shift
    printf '$ loom %s > %s\n' "$*" "$file"
    "$loom" "$@" >"$file"
}

say "loom $("$loom" --version | cut -d' ' -f2): Yjs updates from the command line"
echo "Files in $demo/: alice-1..4.bin and bob-1..4.bin are v1 updates recorded"
echo "from yjs; bob.sv is bob's encoded state vector."

say "What alice typed (her four updates applied in order to a new doc):"
show update dump alice-*.bin
say "What bob has: alice's first update, then his own three:"
show update dump bob-*.bin

say "Merge alice's four updates into one, without a document (mergeUpdates):"
show_to alice.bin update merge alice-*.bin
echo "$(cat alice-*.bin | wc -c) bytes in 4 updates -> $(wc -c <alice.bin) bytes in alice.bin"

say "Both peers' edits together converge (YATA orders the concurrent inserts):"
show update dump alice.bin bob-*.bin
show update sv alice.bin bob-*.bin

say "The whole document as one update (encodeStateAsUpdate):"
show_to doc.bin update encode alice.bin bob-*.bin
xxd -p doc.bin | tr -d '\n'
echo
if cmp -s doc.bin yjs-final.bin; then
    echo "byte for byte what yjs wrote for the same document"
else
    echo "(differs from yjs's $(xxd -p yjs-final.bin | tr -d '\n'))"
fi

say "What bob lacks, given his state vector (diffUpdate), and his doc after it:"
show_to for-bob.bin update diff doc.bin bob.sv
echo "$(wc -c <for-bob.bin) bytes: $(xxd -p for-bob.bin | tr -d '\n')"
show update dump bob-*.bin for-bob.bin

say "A damaged update is refused with the file and byte offset:"
head -c 20 doc.bin >broken.bin
set +e
show update dump broken.bin 2>&1
echo "(exit status $?)"
set -e
echo
echo "More: loom help update; README.md has the tour."
