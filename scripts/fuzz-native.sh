#!/usr/bin/env bash
# npm run fuzz:native [-- SECONDS]: libFuzzer targets for the native code that parses untrusted
# bytes (the WAL frame scan, the wal-index lookup over a corrupt -shm, every checksum path
# against scalar, the export's base image chunk reader, the restore's base image run, the PAGE_DELTA encoder, the export's commit framer), built with clang + ASan + UBSan and run for SECONDS each (default 60).
# Installs clang from Debian's packages when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
if ! command -v clang++ >/dev/null 2>&1; then
  echo "clang++ not found: installing clang from Debian's packages" >&2
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang >/dev/null
  else echo "fuzz:native needs clang (apt-get install clang) and cannot install it without root" >&2; exit 2; fi
fi
out=build-fuzz
mkdir -p "$out"
flags=(-std=c++17 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -Inative)
case "$(uname -m)" in x86_64) flags+=(-DWALNUT_X86=1) ;; esac
checksum_sources=(native/checksum/cpu.cc native/checksum/crc32c.cc native/checksum/crc32c_sse42.cc native/checksum/sqlite_wal.cc native/checksum/sqlite_wal_avx2.cc native/checksum/xxh3.cc native/checksum/xxh3_avx2.cc native/checksum/xxh3_avx512.cc)
clang++ "${flags[@]}" fuzz/native/fuzz_wal_scan.cc native/frame_scan.cc "${checksum_sources[@]}" -o "$out/fuzz_wal_scan"
clang++ "${flags[@]}" fuzz/native/fuzz_checksums.cc "${checksum_sources[@]}" -o "$out/fuzz_checksums"
clang++ "${flags[@]}" fuzz/native/fuzz_shm_lookup.cc -o "$out/fuzz_shm_lookup"
clang++ "${flags[@]}" fuzz/native/fuzz_rs.cc native/fec/rs.cc native/fec/gf256.cc native/checksum/cpu.cc -o "$out/fuzz_rs"
clang++ "${flags[@]}" fuzz/native/fuzz_base_image.cc native/base_image.cc "${checksum_sources[@]}" -o "$out/fuzz_base_image"
clang++ "${flags[@]}" fuzz/native/fuzz_base_restore.cc native/base_restore.cc "${checksum_sources[@]}" -o "$out/fuzz_base_restore"
clang++ "${flags[@]}" fuzz/native/fuzz_page_delta.cc native/page_delta.cc "${checksum_sources[@]}" -o "$out/fuzz_page_delta"
clang++ "${flags[@]}" fuzz/native/fuzz_commit_records.cc native/commit_records.cc native/page_delta.cc native/page_versions.cc "${checksum_sources[@]}" -o "$out/fuzz_commit_records"
status=0
for target in fuzz_wal_scan fuzz_checksums fuzz_shm_lookup fuzz_rs fuzz_base_image fuzz_base_restore fuzz_page_delta fuzz_commit_records; do
  mkdir -p "$out/corpus-$target"
  if "$out/$target" -max_total_time="$seconds" -print_final_stats=1 "$out/corpus-$target" >"$out/$target.log" 2>&1; then
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$out/$target.log" | grep -o '[0-9]*$' || echo '?')
    echo "$target: $execs executions in ${seconds}s, no crash"
  else
    echo "$target: FAILED (see $out/$target.log)"
    tail -30 "$out/$target.log"
    status=1
  fi
done
exit $status
