#!/usr/bin/env bash
# `BENCH_BASELINE=<git rev> make bench`: builds that revision's gateway .wasm so the benchmark
# measures it next to this tree's in the same run. The revision is checked out in a temporary
# `git worktree` (removed afterwards) and built with the Makefile's wasm build command
# (WASM_CARGO, WASM_FLAGS from the environment) into its own target dir,
# target/bench-baseline/target, then optimized as that revision's `make wasm` does (its own
# tests/scripts/wasm-opt.sh, when it has one). Kept per commit, for the driver
# (tests/src/bench/mod.rs, Baseline::find): target/bench-baseline/<commit>/ai_gateway.wasm and the revision's
# envoy/envoy.yaml, whose routes and plugin configuration format go with that .wasm. A commit
# already built is not built again.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
rev=${1:?usage: baseline.sh <git rev>}
wasm_cargo=${WASM_CARGO:-cargo}
wasm_flags=${WASM_FLAGS:---target wasm32-wasip1}

if ! commit=$(git -C "$root" rev-parse --verify --quiet --short=12 "$rev^{commit}"); then
  echo "bench baseline: '$rev' is not a commit of this repository" >&2
  exit 1
fi
base="$root/target/bench-baseline"
out="$base/$commit"
if [ -f "$out/ai_gateway.wasm" ] && [ -f "$out/envoy.yaml" ]; then
  echo "bench baseline: $rev ($commit) already built in target/bench-baseline/$commit"
  exit 0
fi

src="$base/src-$commit"
mkdir -p "$base"
git -C "$root" worktree prune
rm -rf "$src"
git -C "$root" worktree add --detach --quiet "$src" "$commit"
cleanup() { git -C "$root" worktree remove --force "$src" 2>/dev/null || rm -rf "$src"; git -C "$root" worktree prune; }
trap cleanup EXIT

echo "bench baseline: building $rev ($commit) in a temporary worktree (the first build takes a few minutes)"
# WASM_CARGO may start with a variable assignment (RUSTC_BOOTSTRAP=1 cargo): run it through env.
# shellcheck disable=SC2086
(cd "$src" && CARGO_TARGET_DIR="$base/target" env $wasm_cargo build --release $wasm_flags -p ai-gateway-filter)
mkdir -p "$out.tmp"
cp "$base/target/wasm32-wasip1/release/ai_gateway.wasm" "$out.tmp/ai_gateway.wasm"
# As that revision's `make wasm` leaves it: optimized by its own wasm-opt step, if it has one.
if [ -f "$src/tests/scripts/wasm-opt.sh" ]; then
  bash "$src/tests/scripts/wasm-opt.sh" "$out.tmp/ai_gateway.wasm"
  rm -f "$out.tmp/ai_gateway.wasm.opt-stamp"
fi
cp "$src/envoy/envoy.yaml" "$out.tmp/envoy.yaml"
rm -rf "$out" && mv "$out.tmp" "$out"
echo "bench baseline: $rev ($commit): $(stat -c %s "$out/ai_gateway.wasm") bytes in target/bench-baseline/$commit"
