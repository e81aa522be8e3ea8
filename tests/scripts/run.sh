#!/usr/bin/env bash
# `make run`: the demo provider on 127.0.0.1:10001 and Envoy with the gateway on 127.0.0.1:10000
# (admin on 127.0.0.1:9901). Ctrl-C stops both.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
pids=()
stop() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "stopped Envoy and the demo provider"
  exit 0
}
trap stop INT TERM EXIT

target/debug/fake-provider 10001 &
pids+=($!)
# Demo mode: providers without credentials in the environment are served by the demo provider in
# their own wire format (and get demo credentials); providers with credentials stay real.
mkdir -p .tools
demo=$(target/debug/demo-config .tools/run-envoy.json 10001)
eval "$(grep '^export ' <<<"$demo")"
# Provider keys reach the VM only through Envoy's environment (vm_config.environment_variables).
.venv/bin/envoy -c .tools/run-envoy.json --concurrency 2 --disable-hot-restart -l warning &
pids+=($!)

for _ in $(seq 1 100); do
  curl -fsS -o /dev/null http://127.0.0.1:9901/ready 2>/dev/null && break
  if ! kill -0 "${pids[1]}" 2>/dev/null; then echo "Envoy failed to start (see above)"; exit 1; fi
  sleep 0.1
done
cat <<MSG

  Gateway:        http://127.0.0.1:10000/v1   (OpenAI-compatible)
  Envoy admin:    http://127.0.0.1:9901       (stats: /stats/prometheus)
  Demo provider:  http://127.0.0.1:10001      (model "demo-chat", and every provider below that has no key)

Providers:
$(grep '^# ' <<<"$demo" | sed 's/^# /  /')

Models: $(curl -fsS http://127.0.0.1:10000/v1/models | grep -o '"id":"[^"]*"' | cut -d'"' -f4 | tr '\n' ' ')

Try:
  curl -s http://127.0.0.1:10000/v1/chat/completions -H 'content-type: application/json' \\
    -d '{"model":"demo-chat","messages":[{"role":"user","content":"Hello!"}]}'
  curl -sN http://127.0.0.1:10000/v1/chat/completions -H 'content-type: application/json' \\
    -d '{"model":"claude-haiku-4-5","stream":true,"messages":[{"role":"user","content":"Hello!"}]}'

Ctrl-C stops everything. Access log lines follow.
MSG
wait -n "${pids[@]}"
