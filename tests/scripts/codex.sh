#!/usr/bin/env bash
# The pinned Codex CLI for tests/tests/codex.rs, installed with npm into .tools/codex (or
# $CODEX_DIR) when missing; prints the path of the `codex` launcher. Fails (and the test is
# skipped, saying so) when npm or the package registry is not there.
set -euo pipefail
version=0.171.0
root=$(cd "$(dirname "$0")/../.." && pwd)
dir=${CODEX_DIR:-$root/.tools/codex}
bin="$dir/node_modules/@openai/codex/bin/codex.js"
installed=$(sed -n 's/.*"version": *"\([^"]*\)".*/\1/p' "$dir/node_modules/@openai/codex/package.json" 2>/dev/null | head -1 || true)
if [ ! -f "$bin" ] || [ "$installed" != "$version" ]; then
  command -v npm >/dev/null || { echo "npm is not installed" >&2; exit 1; }
  mkdir -p "$dir"
  npm install --prefix "$dir" --no-audit --no-fund --silent "@openai/codex@$version" >&2
fi
# The launcher runs the native binary of this platform (an optional dependency).
node "$bin" --version >/dev/null
echo "$bin"
