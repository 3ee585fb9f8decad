#!/usr/bin/env bash
# The trainer command must reuse the test command's build (issue 19, README "One build").
#
# Run right after `cargo test --workspace`: builds host-trainer as `cargo run -p host-trainer`
# does and fails if Cargo compiled any crate that is not one of the workspace's own (a
# registry crate compiled again means its features, and so its build hash, differ between the
# two commands: run `cargo hakari generate` and see CONTRIBUTING.md, "Build setup").
# Extra arguments go to `cargo build` (e.g. `--release` after `cargo test --workspace --release`).
set -euo pipefail
cd "$(dirname "$0")/.."

out=target/one-build.json
mkdir -p target
start=$(date +%s)
cargo build -p host-trainer "$@" --message-format=json >"$out"
secs=$(($(date +%s) - start))

# One JSON object per line; an artifact Cargo (re)compiled has "fresh":false. Path packages
# (the workspace's crates) may be recompiled, registry or git packages may not.
recompiled=$(grep '"reason":"compiler-artifact"' "$out" | grep '"fresh":false' |
  sed -n 's/.*"package_id":"\([^"]*\)".*/\1/p' | sort -u || true)
own=$(grep -c '^path+' <<<"$recompiled" || true)
foreign=$(grep -v '^path+' <<<"$recompiled" || true)

if [ -n "$foreign" ]; then
  echo "one build: FAILED: \`cargo build -p host-trainer $*\` compiled these crates again after the test command:"
  sed 's/^/  /' <<<"$foreign"
  echo "Their features (or profile settings) differ between the two builds. Run \`cargo hakari generate\` and"
  echo "\`cargo hakari manage-deps\`, then compare \`cargo tree -e features -i CRATE\` (CONTRIBUTING.md)."
  exit 1
fi
# A path package id is `path+file:///DIR#VERSION` or `path+file:///DIR#NAME@VERSION`.
names=$(awk -F'#' '/^path\+/ { n = $2; if (n ~ /@/) sub(/@.*/, "", n); else { n = $1; sub(/.*\//, "", n) } printf "%s ", n }' <<<"$recompiled")
echo "one build: ok: host-trainer built in ${secs} s; it compiled no registry crate, $own workspace crate(s): ${names:-none}"
