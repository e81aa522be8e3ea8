#!/usr/bin/env bash
# `make bench` set-up: installs, only when missing, the tools the benchmark drives.
#   wrk       (Debian)  the load generator: keep-alive HTTP/1.1, a Lua script for the POST body,
#                       latency percentiles from its HdrHistogram.
#   binaryen  (Debian)  wasm-opt, to report what the release .wasm would weigh after it (the
#                       shipped build does not run it; the benchmark only measures).
#   taskset   (util-linux, Debian's base system) pins the proxy under test to its own core.
# Every install is bounded in time; a failure says why and what is skipped.
set -euo pipefail

need=()
command -v wrk >/dev/null || need+=(wrk)
command -v wasm-opt >/dev/null || need+=(binaryen)
command -v taskset >/dev/null || need+=(util-linux)
[ ${#need[@]} -eq 0 ] && exit 0

if [ "$(id -u)" = 0 ]; then sudo=(); else sudo=(sudo -n); fi
echo "bench setup: installing ${need[*]} from Debian"
timeout 300 "${sudo[@]}" apt-get update -qq || echo "bench setup: apt-get update failed; trying the install anyway" >&2
if ! DEBIAN_FRONTEND=noninteractive timeout 600 "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; then
  echo "bench setup: could not install ${need[*]}" >&2
fi
command -v wrk >/dev/null || { echo "bench setup: wrk is required and could not be installed" >&2; exit 1; }
command -v wasm-opt >/dev/null || echo "bench setup: wasm-opt unavailable; the .wasm size after wasm-opt will not be reported" >&2
exit 0
