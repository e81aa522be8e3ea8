#!/usr/bin/env bash
# `make wasm`, last step: optimizes the release .wasm with binaryen's wasm-opt -O3 (Debian's
# `binaryen`, installed here when missing, bounded in time). Measured in `make bench` (README
# "Benchmarks"): smaller (1,088 KB -> 956 KB) and no slower. Without wasm-opt the cargo output is
# used as it is, and this says so. The file is optimized in place once: a stamp holds the
# checksum of the optimized file, so a second `make wasm` with nothing rebuilt does nothing.
set -euo pipefail
wasm=$1
stamp="$wasm.opt-stamp"
sum() { sha256sum "$1" | cut -d' ' -f1; }
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$(sum "$wasm")" ]; then
  exit 0
fi
if ! command -v wasm-opt >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then sudo=(); else sudo=(sudo -n); fi
  export DEBIAN_FRONTEND=noninteractive
  timeout 300 "${sudo[@]}" apt-get update -qq >/dev/null 2>&1 || true
  timeout 600 "${sudo[@]}" apt-get install -y -qq --no-install-recommends binaryen >/dev/null 2>&1 || true
fi
if ! command -v wasm-opt >/dev/null 2>&1; then
  echo "wasm-opt: binaryen is not installed and could not be; the .wasm is not optimized" >&2
  exit 0
fi
# The features rustc's wasm32-wasip1 output uses (binaryen 108 does not read them from the module).
features=(--enable-bulk-memory --enable-sign-ext --enable-nontrapping-float-to-int --enable-mutable-globals)
tmp="$wasm.opt-tmp"
if wasm-opt -O3 "${features[@]}" "$wasm" -o "$tmp"; then
  mv "$tmp" "$wasm"
  sum "$wasm" > "$stamp"
else
  rm -f "$tmp"
  echo "wasm-opt failed; the .wasm is not optimized" >&2
fi
