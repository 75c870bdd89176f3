#!/usr/bin/env bash
# Installs Debian's nats-server (2.9.x, JetStream built in) when it is missing, for the
# replication tests (test/interop/replicate*.test.ts); the tests start their own servers on
# random ports. Never fails the caller (install-debian-tool.sh); without it they skip with a
# message naming this script.
exec bash "$(dirname "$0")/install-debian-tool.sh" nats-server nats-server "replication tests"
