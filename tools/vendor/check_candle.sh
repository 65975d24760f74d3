#!/usr/bin/env bash
# Checks that vendor/candle-core is the published candle-core plus vendor/candle-core-backprop.patch
# and nothing else: the crate is fetched from the registry (a throwaway manifest), patched, and
# compared file by file with the vendored copy.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
version="$(sed -n 's/^version = "\(.*\)"$/\1/p' "$root/vendor/candle-core/Cargo.toml" | head -1)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/probe/src"
printf '[package]\nname = "probe"\nversion = "0.0.0"\nedition = "2021"\n[dependencies]\ncandle-core = "=%s"\n' "$version" > "$tmp/probe/Cargo.toml"
touch "$tmp/probe/src/lib.rs"
(cd "$tmp/probe" && cargo fetch --quiet)
published="$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/candle-core-"$version" | head -1)"
cp -r "$published" "$tmp/expected"
rm -f "$tmp/expected/.cargo-ok" "$tmp/expected/Cargo.lock"
(cd "$tmp/expected" && patch -p1 --quiet < "$root/vendor/candle-core-backprop.patch")
if ! diff -r "$tmp/expected" "$root/vendor/candle-core" > "$tmp/diff"; then
  echo "vendor/candle-core is not candle-core $version + vendor/candle-core-backprop.patch:" >&2
  head -40 "$tmp/diff" >&2
  exit 1
fi
echo "vendor/candle-core = candle-core $version (crates.io) + vendor/candle-core-backprop.patch"
