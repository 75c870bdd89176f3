#!/usr/bin/env bash
# Installs one Debian package for the tests when its command is missing.
# usage: install-debian-tool.sh COMMAND PACKAGE "WHAT SKIPS WITHOUT IT"
# Idempotent and quiet: prints one line. Never fails the caller: without root or without a
# reachable package mirror it says so and exits 0; the tests that need the command then skip
# with a message. A package that starts a system service (nats-server) has it stopped: the
# tests run their own processes on their own ports.
set -uo pipefail
cmd=$1 pkg=$2 what=$3
if command -v "$cmd" >/dev/null 2>&1; then
  echo "$cmd present"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "$cmd missing and not root: $what will skip (run: apt-get install $pkg)"
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
if { apt-get install -y -qq "$pkg" >/dev/null 2>&1 || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq "$pkg" >/dev/null 2>&1; }; } \
   && command -v "$cmd" >/dev/null 2>&1; then
  (systemctl disable --now "$pkg" >/dev/null 2>&1 || true)
  echo "$cmd installed ($pkg)"
else
  echo "$cmd could not be installed: $what will skip"
fi
exit 0
