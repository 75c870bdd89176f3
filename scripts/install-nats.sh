#!/usr/bin/env bash
# Installs Debian's nats-server (2.9.x, JetStream built in) when it is missing, for the
# replication tests (test/interop/replicate*.test.ts). Idempotent and quiet: prints one line.
# Never fails the caller: without root or without a reachable package mirror it says so and
# exits 0; the replication tests then skip with a message naming this script.
set -uo pipefail
if command -v nats-server >/dev/null 2>&1; then
  echo "nats-server present: $(nats-server --version 2>/dev/null)"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "nats-server missing and not root: replication tests will skip (run: apt-get install nats-server)"
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
if apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq nats-server >/dev/null 2>&1 \
   && command -v nats-server >/dev/null 2>&1; then
  # The package starts a system service; the tests run their own servers on random ports.
  (systemctl disable --now nats-server >/dev/null 2>&1 || true)
  echo "nats-server installed: $(nats-server --version 2>/dev/null)"
else
  echo "nats-server could not be installed: replication tests will skip"
fi
exit 0
