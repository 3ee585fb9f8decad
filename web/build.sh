#!/usr/bin/env bash
# Builds web/dgen.wasm (or OUT, the first argument) from web/wasm (the crate dgen-wasm)
# with its size-tuned release profile. Needs only rustup and cargo. Paths are remapped so that the bytes do not
# depend on where the repository or the cargo registry lives: CI rebuilds the module and
# fails if it differs from the committed web/dgen.wasm.
set -euo pipefail
OUT=$(realpath -m "${1:-$(dirname "$0")/dgen.wasm}")
cd "$(dirname "$0")/.."
ROOT=$PWD
CARGO_HOME=${CARGO_HOME:-$HOME/.cargo}
rustup target add wasm32-unknown-unknown >/dev/null 2>&1 || true
RUSTFLAGS="--remap-path-prefix=$ROOT=/dgen --remap-path-prefix=$CARGO_HOME=/cargo" \
  cargo build --release --locked --manifest-path web/wasm/Cargo.toml \
  --target wasm32-unknown-unknown --target-dir target/web
cp target/web/wasm32-unknown-unknown/release/dgen_wasm.wasm "$OUT"
echo "${OUT#"$ROOT"/}: $(wc -c < "$OUT") bytes"
