#!/usr/bin/env python3
# bench/probes/wal-growth-bios.py — bios per batch by thread, from a block_bio_queue trace:
# data writes (and their KiB), metadata writes (rwbs with M: on ext4 the inode block), flushes.
# With wal-growth.c (threads wNN and zeroer; batches from its stderr lines "batches=N rR name"):
#   T=/sys/kernel/tracing/instances/walgrowth; mkdir -p $T; echo 32768 > $T/buffer_size_kb
#   echo 'comm ~ "w*" || comm ~ "zeroer"' > $T/events/block/block_bio_queue/filter
#   echo 1 > $T/events/block/block_bio_queue/enable; echo > $T/trace; echo 1 > $T/tracing_on
#   /tmp/wal-growth 2 0.5 /tmp abcdfg 2> log; echo 0 > $T/tracing_on
#   python3 bench/probes/wal-growth-bios.py $T/trace log; rmdir $T
import collections
import re
import sys

NAMES = ["overwrite-8MiB", "append", "append+1MiB-zero", "prezeroed", "prefilled-a5", "fallocated",
         "bg-zero-256K-sfr", "append+16MiB-zero", "reused-old-file", "bg-zero-1MiB-nosfr",
         "prezeroed-nosync-old", "bg-odirect-8MiB", "bg-256K-fdatasync", "bg-ftrunc-256K-sfr"]
batches = collections.Counter()
for line in open(sys.argv[2]):
    m = re.match(r'batches=(\d+) r\d+ (\S+)', line)
    if m:
        batches[m.group(2)] += int(m.group(1))
count = collections.defaultdict(collections.Counter)
mode = None
for line in open(sys.argv[1]):
    m = re.search(r'block_bio_queue: \S+ (\S+) \d+ \+ (\d+) \[(\S+)\]', line)
    if not m:
        continue
    rwbs, sectors, comm = m.groups()
    if re.match(r'w\d\d$', comm):
        mode, who = int(comm[1:]), 'w'
    elif comm == 'zeroer' and mode is not None:
        who = 'z'
    else:
        continue
    kind = 'F' if rwbs.startswith('F') else 'M' if 'M' in rwbs else 'W' if 'W' in rwbs else 'R'
    count[mode][who + kind] += 1
    if kind == 'W':
        count[mode][who + 'KiB'] += int(sectors) / 2
for v, c in sorted(count.items()):
    b = batches[NAMES[v]] or 1
    print(f"{NAMES[v]:22s} batches {b:5d}  per batch: writer data {c['wW'] / b:.2f} ({c['wKiB'] / b:.0f} KiB) meta {c['wM'] / b:.2f} flush {c['wF'] / b:.2f}"
          f" | zeroer data {c['zW'] / b:.2f} ({c['zKiB'] / b:.0f} KiB) meta {c['zM'] / b:.2f} flush {c['zF'] / b:.2f}")
