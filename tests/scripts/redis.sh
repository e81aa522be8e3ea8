#!/usr/bin/env bash
# Debian's redis-server, the storage of the rate limit service in tests/tests/ratelimit_service.rs.
# Installs it once (idempotent); the tests start their own instance on a free loopback port, so
# the package's system service is kept from starting during the install.
set -euo pipefail
if command -v redis-server >/dev/null 2>&1; then
  exit 0
fi
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy"
  chmod +x "$policy"
  trap 'rm -f "$policy"' EXIT
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends redis-server >/dev/null
redis-server --version
