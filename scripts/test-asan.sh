#!/usr/bin/env bash
# npm run test:asan: builds the addon with AddressSanitizer + UBSan (cmake-js) and runs the
# whole test suite against it (child processes inherit the sanitizer build; the npm-pack test,
# which builds its own addon, is left out). Node itself is not instrumented, so the sanitizer
# runtimes are preloaded; leak checking is off (V8 keeps memory until exit by design).
set -euo pipefail
cd "$(dirname "$0")/.."
npm run build:asan
export WALNUT_NATIVE_PATH="$PWD/build-asan/Release/walnut.node"
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export LD_PRELOAD="$(gcc -print-file-name=libasan.so):$(gcc -print-file-name=libubsan.so)"
npm run build:ts
npx vitest run --exclude test/interop/package.test.ts "$@"
