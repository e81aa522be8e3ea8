#!/usr/bin/env bash
# Chroma (vector database, HTTP API v2) for tests/tests/cache_shared.rs, in a venv of its own
# under .tools/chroma (chromadb pulls a few hundred MB of dependencies; the project's .venv stays
# small). Installs once (idempotent, keyed on tests/chroma-requirements.txt); prints the path of
# the `chroma` command. The test starts `chroma run --path DIR --port N` and stops it by its PID.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
venv="$root/.tools/chroma"
req="$root/tests/chroma-requirements.txt"
stamp="$venv/.requirements.sha256"
mkdir -p "$root/.tools"
# The venv's scripts name its interpreter by the path it was made at: make it at the real path
# (.tools may be a symlink, as in a git worktree), and again when it was made elsewhere.
venv="$(readlink -f "$root/.tools")/chroma"
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$req" | cut -d' ' -f1) $venv"
if [ -d "$venv" ] && [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  rm -rf "$venv"
fi
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$req" >&2
  echo "$want" > "$stamp"
fi
echo "$venv/bin/chroma"
