#!/usr/bin/env bash
# The WebAssembly build and the page in web/, tested in a real (headless) Chromium:
#   1. dgen-wasm (web/wasm, outside the workspace): format, clippy for the host and wasm32,
#      its host tests, its docs (warnings denied);
#   2. a fresh build of the module equals the committed web/dgen.wasm, byte for byte, and
#      it is at most 120,000 bytes;
#   3. the page, served from a plain static server (python3 -m http.server on 127.0.0.1)
#      holding only the three published files and some model files:
#      - ?digits=0123456789&seed=42: the `checksums` element equals
#        `firmware-sim --checksums 0123456789 --seed 42` line for line;
#      - ?grid=1&seed=0 (digits 0-9 x seeds 0-9): equals firmware-sim, row by row;
#      - ?model=<an intact copy of the shipped model>: the same checksums, no error;
#      - ?model=<a corrupt copy> (a flipped byte; a truncated file): the error element
#        shows the core's message (the one firmware-sim prints for that file) and the page
#        still draws with the shipped model;
#   4. a screenshot of the page (target/web/web.png; `--update-screenshot` also copies it
#      to docs/web.png for the README), taken by .ci/web_page.py on the real clock;
#      it prints the page's status line with the time per digit it measured.
# Fails (non-zero, with a FAIL line) on any mismatch. Needs rustup, cargo, python3 and, on
# a clean machine, apt-get for Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
START=$SECONDS

say() { printf -- '--- %s\n' "$*"; }
die() { printf 'web.sh: FAIL: %s\n' "$*" >&2; exit 1; }

UPDATE_SCREENSHOT=0
for arg in "$@"; do
  case $arg in
    --update-screenshot) UPDATE_SCREENSHOT=1 ;;
    *) die "unknown argument $arg (accepted: --update-screenshot)" ;;
  esac
done

if ! command -v chromium >/dev/null; then
  say "installing chromium"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
rustup target add wasm32-unknown-unknown >/dev/null 2>&1 || true

WORK=$(mktemp -d)
SERVER_PID=
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

say "dgen-wasm: format, clippy (host and wasm32), host tests, docs"
MANIFEST=(--manifest-path web/wasm/Cargo.toml)
cargo fmt "${MANIFEST[@]}" -- --check
cargo clippy "${MANIFEST[@]}" --release --all-targets --locked --target-dir target/web-host -- -D warnings
cargo clippy "${MANIFEST[@]}" --release --locked --target wasm32-unknown-unknown --target-dir target/web -- -D warnings
cargo test "${MANIFEST[@]}" --release --locked --target-dir target/web-host
RUSTDOCFLAGS="-D warnings" cargo doc "${MANIFEST[@]}" --release --locked --no-deps --target-dir target/web-host

say "web/dgen.wasm equals a fresh build"
web/build.sh "$WORK/fresh.wasm"
if ! cmp -s "$WORK/fresh.wasm" web/dgen.wasm; then
  die "web/dgen.wasm ($(wc -c < web/dgen.wasm) B) differs from a fresh build ($(wc -c < "$WORK/fresh.wasm") B, $(rustc -V)): run web/build.sh and commit web/dgen.wasm"
fi
echo "web/dgen.wasm: $(wc -c < web/dgen.wasm) bytes, $(gzip -9 -c web/dgen.wasm | wc -c) gzipped; equals the fresh build"
WASM_BUDGET=120000 # issue 22's floor, with the model embedded
[ "$(wc -c < web/dgen.wasm)" -le "$WASM_BUDGET" ] \
  || die "web/dgen.wasm is $(wc -c < web/dgen.wasm) bytes, over the budget of $WASM_BUDGET"

cargo build -p firmware-sim
SIM=$ROOT/target/debug/firmware-sim

# The site: exactly the files a publisher copies, plus the models the tests load.
SITE=$WORK/site
mkdir -p "$SITE/models"
cp web/index.html web/dgen.js web/dgen.wasm "$SITE/"
MODEL=generator-core/models/default.dgen
cp "$MODEL" "$SITE/models/intact.dgen"
python3 - "$MODEL" "$SITE/models" <<'EOF'
import sys
data = bytearray(open(sys.argv[1], "rb").read())
open(sys.argv[2] + "/truncated.dgen", "wb").write(data[:100])
data[len(data) // 2] ^= 0x55  # a payload byte: the CRC-32 no longer matches
open(sys.argv[2] + "/flipped.dgen", "wb").write(data)
EOF

python3 -u -m http.server --bind 127.0.0.1 --directory "$SITE" 0 > "$WORK/server.log" 2>&1 &
SERVER_PID=$!
PORT=
for _ in $(seq 50); do
  PORT=$(sed -n 's/.* port \([0-9][0-9]*\).*/\1/p' "$WORK/server.log" | head -n1)
  [ -n "$PORT" ] && break
  sleep 0.1
done
[ -n "$PORT" ] || die "the static server did not start: $(cat "$WORK/server.log")"
BASE="http://127.0.0.1:$PORT/"
say "serving $SITE at $BASE"

CHROMIUM=(chromium --headless --no-sandbox --disable-gpu --no-first-run
  --disable-background-networking --disable-component-update --disable-sync)

# dom QUERY: the page's DOM after its scripts ran, in $WORK/dom.html.
dom() {
  "${CHROMIUM[@]}" --user-data-dir="$(mktemp -d -p "$WORK")" --virtual-time-budget=10000 \
    --dump-dom "$BASE$1" > "$WORK/dom.html" 2> "$WORK/chromium.log" \
    || die "chromium failed on $1: $(tail -n 5 "$WORK/chromium.log")"
}

# element ID: the text of the element with that id in $WORK/dom.html ("" if empty).
element() {
  python3 - "$1" "$WORK/dom.html" <<'EOF'
import sys
from html.parser import HTMLParser

class Find(HTMLParser):
    def __init__(self, want):
        super().__init__(convert_charrefs=True)
        self.want, self.depth, self.text, self.found, self.state = want, 0, [], False, None
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "body":
            self.state = a.get("data-state")
        if self.depth:
            self.depth += 1
        elif a.get("id") == self.want:
            self.depth, self.found = 1, True
    def handle_endtag(self, tag):
        if self.depth:
            self.depth -= 1
    def handle_data(self, data):
        if self.depth:
            self.text.append(data)

f = Find(sys.argv[1])
f.feed(open(sys.argv[2], encoding="utf-8").read())
if sys.argv[1] == "@state":
    print(f.state or "")
elif not f.found:
    sys.exit(f"no element with id {sys.argv[1]!r} in the page")
else:
    sys.stdout.write("".join(f.text))
EOF
}

# expect_page QUERY EXPECTED_CHECKSUMS_FILE EXPECTED_ERROR ("" for none)
expect_page() {
  local query=$1 want=$2 error=$3
  dom "$query"
  local state
  state=$(element @state)
  [ "$state" = ready ] || die "$query: the page did not finish (data-state '$state'; error: $(element error))"
  element checksums > "$WORK/page.txt"
  if ! diff -u "$want" "$WORK/page.txt" > "$WORK/diff.txt"; then
    cat "$WORK/diff.txt" >&2
    die "$query: the page's checksums differ from firmware-sim's (above)"
  fi
  local shown
  shown=$(element error)
  if [ -z "$error" ]; then
    [ -z "$shown" ] || die "$query: unexpected error shown: $shown"
  else
    case $shown in
      *": $error") ;;
      *) die "$query: error shown is '$shown', expected the core's '$error'" ;;
    esac
  fi
  echo "ok  $query: $(wc -l < "$WORK/page.txt") checksum lines equal firmware-sim's${error:+; shows \"$shown\"}"
}

say "the page in Chromium ($("${CHROMIUM[0]}" --version 2>/dev/null | head -n1))"
"$SIM" --checksums 0123456789 --seed 42 > "$WORK/row.txt"
[ "$(wc -l < "$WORK/row.txt")" -eq 10 ] || die "firmware-sim printed $(wc -l < "$WORK/row.txt") lines, expected 10"
expect_page '?digits=0123456789&seed=42' "$WORK/row.txt" ""

for d in 0 1 2 3 4 5 6 7 8 9; do
  "$SIM" --checksums "$d$d$d$d$d$d$d$d$d$d" --seed 0
done > "$WORK/grid.txt"
expect_page '?grid=1&seed=0' "$WORK/grid.txt" ""

expect_page '?digits=0123456789&seed=42&model=models/intact.dgen' "$WORK/row.txt" ""

# The core's message for a bad file, as firmware-sim prints it:
# "error: model file PATH: MESSAGE" (exit status 2).
core_message() {
  local out status=0
  out=$("$SIM" --checksums 0 --model "$1" 2>&1 >/dev/null) || status=$?
  [ "$status" -eq 2 ] || die "firmware-sim accepted the corrupt model $1 (status $status)"
  printf '%s' "${out#"error: model file $1: "}"
}
for bad in flipped truncated; do
  message=$(core_message "$SITE/models/$bad.dgen")
  [ -n "$message" ] || die "no error message from firmware-sim for $bad.dgen"
  expect_page "?digits=0123456789&seed=42&model=models/$bad.dgen" "$WORK/row.txt" "$message"
done

# The file picker and the screenshot need a browser on the real clock: .ci/web_page.py
# drives Chromium over the DevTools protocol and prints the page's texts as JSON.
BROWSER_FLAGS=("${CHROMIUM[@]:2}" --hide-scrollbars)

# expect_pick FILE EXPECTED_ERROR ("" for none): picks FILE with the page's file picker.
expect_pick() {
  local file=$1 error=$2 query='?digits=0123456789&seed=42'
  .ci/web_page.py "$BASE$query" --pick "$file" -- "${BROWSER_FLAGS[@]}" > "$WORK/page.json" \
    || die "file picker with $file: the browser run failed"
  python3 - "$WORK/page.json" "$WORK/row.txt" "$(basename "$file")" "$error" <<'EOF'
import json, sys
page = json.load(open(sys.argv[1]))
want, name, error = open(sys.argv[2]).read(), sys.argv[3], sys.argv[4]
if page["checksums"] != want:
    sys.exit(f"web.sh: FAIL: file picker with {name}: checksums\n{page['checksums']}differ from firmware-sim's\n{want}")
expected = f"{name}: {error}" if error else ""
if page["error"] != expected:
    sys.exit(f"web.sh: FAIL: file picker with {name}: error shown is {page['error']!r}, expected {expected!r}")
if not error and f"model: {name} " not in page["status"]:
    sys.exit(f"web.sh: FAIL: file picker with {name}: the page does not use it: {page['status']}")
print(f"ok  file picker with {name}: {len(want.splitlines())} checksum lines equal firmware-sim's"
      + (f"; shows {page['error']!r}" if error else "; in use"))
EOF
}
expect_pick "$SITE/models/flipped.dgen" "$(core_message "$SITE/models/flipped.dgen")"
expect_pick "$SITE/models/intact.dgen" ""

say "screenshot on the real clock (so that the page's time per digit is measured)"
mkdir -p target/web
.ci/web_page.py "${BASE}?digits=3141592653&seed=42" --screenshot "$ROOT/target/web/web.png" \
  --size 1000x560 -- "${BROWSER_FLAGS[@]}" --window-size=1000,560 > "$WORK/page.json" \
  || die "the screenshot failed"
python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["status"])' "$WORK/page.json"
[ "$(head -c 8 target/web/web.png | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] \
  || die "target/web/web.png is not a PNG"
echo "target/web/web.png: $(wc -c < target/web/web.png) bytes"
if [ "$UPDATE_SCREENSHOT" = 1 ]; then
  cp target/web/web.png docs/web.png
  echo "copied to docs/web.png"
fi

echo "web.sh: all checks passed in $((SECONDS - START)) s"
