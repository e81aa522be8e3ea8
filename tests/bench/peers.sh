#!/usr/bin/env bash
# `make bench BENCH_PEERS=1` set-up: the other gateways, measured in the same run against the same
# fake upstream, so that the ratios are measured and not quoted. Installed only when missing, at
# pinned versions, each in its own place (both ignored by git):
#   LiteLLM proxy   PyPI `litellm[proxy]`          -> .venv-peers/  (its own venv: its many
#                                                     dependencies stay out of the project's .venv)
#   Portkey gateway npm `@portkey-ai/gateway`        -> .tools/portkey/
# A peer that cannot be installed is reported and skipped; the benchmark goes on without it.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
# 1.102.4: the newest release whose dependencies the registry this project uses can serve (from
# 1.103 on, litellm requires a certifi newer than the one available there).
LITELLM_VERSION=1.102.4
PORTKEY_VERSION=1.15.2

venv="$root/.venv-peers"
if [ "$(cat "$venv/.litellm-version" 2>/dev/null)" != "$LITELLM_VERSION" ] || [ ! -x "$venv/bin/litellm" ]; then
  echo "bench peers: installing litellm[proxy]==$LITELLM_VERSION into .venv-peers (a few minutes)"
  if { [ -x "$venv/bin/python" ] || python3 -m venv "$venv"; } &&
     timeout 900 "$venv/bin/pip" install -q --disable-pip-version-check "litellm[proxy]==$LITELLM_VERSION"; then
    echo "$LITELLM_VERSION" > "$venv/.litellm-version"
  else
    echo "bench peers: LiteLLM could not be installed (pip failed or timed out); it is skipped" >&2
  fi
fi

portkey="$root/.tools/portkey"
if [ "$(cat "$portkey/.portkey-version" 2>/dev/null)" != "$PORTKEY_VERSION" ] ||
   [ ! -f "$portkey/node_modules/@portkey-ai/gateway/build/start-server.js" ]; then
  if ! command -v npm >/dev/null; then
    echo "bench peers: npm is not installed; Portkey is skipped" >&2
  else
    echo "bench peers: installing @portkey-ai/gateway@$PORTKEY_VERSION into .tools/portkey"
    mkdir -p "$portkey"
    if timeout 600 npm install --prefix "$portkey" --no-audit --no-fund --loglevel=error \
         "@portkey-ai/gateway@$PORTKEY_VERSION" >/dev/null; then
      echo "$PORTKEY_VERSION" > "$portkey/.portkey-version"
    else
      echo "bench peers: Portkey could not be installed (npm failed or timed out); it is skipped" >&2
    fi
  fi
fi
exit 0
