#!/usr/bin/env bash
# The pinned Claude Code CLI for tests/tests/messages_api.rs, installed with npm into
# .tools/claude-code (or $CLAUDE_CODE_DIR) when missing; prints the path of the `claude` binary.
# Fails (and the test is skipped, saying so) when npm or the package registry is not there.
set -euo pipefail
version=2.1.328
root=$(cd "$(dirname "$0")/../.." && pwd)
dir=${CLAUDE_CODE_DIR:-$root/.tools/claude-code}
bin="$dir/node_modules/@anthropic-ai/claude-code/bin/claude.exe"
installed=$(sed -n 's/.*"version": *"\([^"]*\)".*/\1/p' "$dir/node_modules/@anthropic-ai/claude-code/package.json" 2>/dev/null | head -1 || true)
if [ ! -x "$bin" ] || [ "$installed" != "$version" ]; then
  command -v npm >/dev/null || { echo "npm is not installed" >&2; exit 1; }
  mkdir -p "$dir"
  npm install --prefix "$dir" --no-audit --no-fund --silent "@anthropic-ai/claude-code@$version" >&2
fi
# The package's own launcher is a native binary for this platform (an optional dependency).
"$bin" --version >/dev/null
echo "$bin"
