#!/usr/bin/env bash
# Builds web/dgen.wasm (or OUT, the first argument) from web/wasm (the crate dgen-wasm)
# with its size-tuned release profile. Needs only rustup and cargo.
#
# The bytes must not depend on where the repository lives: CI rebuilds the module and fails
# if it differs from the committed web/dgen.wasm. Panic locations carry source paths, and
# Cargo hashes RUSTFLAGS (so a `--remap-path-prefix` of the checkout's own path) into every
# symbol. So the sources are copied to one fixed folder and built there, with fixed flags.
set -euo pipefail
OUT=$(realpath -m "${1:-$(dirname "$0")/dgen.wasm}")
cd "$(dirname "$0")/.."
ROOT=$PWD
CARGO_HOME=${CARGO_HOME:-$HOME/.cargo}
BUILD=/tmp/dgen-wasm-build
rustup target add wasm32-unknown-unknown >/dev/null 2>&1 || true

# The crate, the core and the root manifest (the core inherits its fields from it).
mkdir -p "$BUILD"
rm -rf "$BUILD/src"
mkdir -p "$BUILD/src/web" "$BUILD/src/generator-core"
cp Cargo.toml "$BUILD/src/"
cp -r web/wasm "$BUILD/src/web/wasm"
rm -rf "$BUILD/src/web/wasm/target"
for f in Cargo.toml build.rs README.md src models benches; do
  cp -r "generator-core/$f" "$BUILD/src/generator-core/"
done

RUSTFLAGS="--remap-path-prefix=$BUILD/src=/dgen --remap-path-prefix=$CARGO_HOME=/cargo" \
  cargo build --release --locked --manifest-path "$BUILD/src/web/wasm/Cargo.toml" \
  --target wasm32-unknown-unknown --target-dir "$BUILD/target"
cp "$BUILD/target/wasm32-unknown-unknown/release/dgen_wasm.wasm" "$OUT"
echo "${OUT#"$ROOT"/}: $(wc -c < "$OUT") bytes"
