#!/usr/bin/env python3
# bench/probes/restart-cycle.py: where a batch's cycle goes at 64 committers, for walnut-64 and
# for the bound it is compared with (bench/commit.js raw-64-ckpt-bg-restart(-hdr)), from the
# system calls both make (issue #19, bench/README "Session 28").
#
# Runs `node bench/commit.js` with the cases compared (WALNUT_BENCH_ONLY, interleaved rounds)
# under `perf record` of the file system calls' syscall tracepoints (every thread; descriptors
# named from /proc while it runs), and splits each case's WAL thread time into batches, over its
# own measured rounds (the warm-up left out). A batch is one write of frames into the WAL
# (pwritev at offset >= 32, at least one frame) and the WAL fdatasync after it; its cycle runs
# from the end of the previous batch's fdatasync to the end of its own:
#   gap      previous fdatasync's end -> this batch's frame write (the JavaScript between two
#            batches, the I/O thread's hops; in a restart batch also its wait: the catch-up copy,
#            the database fdatasync, the new header's write + fdatasync)
#   write    the frame write (pwritev)
#   sync     the WAL fdatasync
# Batches are classed as: restart (the first frame write at offset 32 of a new generation),
# grew (its write carried zeros past the WAL's end: the file grew), sync-beside-db (its
# fdatasync overlaps a database fdatasync), sync-beside-copy (overlaps a checkpoint's database
# writes: from the first after a database sync to the next sync), normal. Also: database
# writes, ftruncates and fdatasyncs, what the restart batches' gap held, and the other calls per
# batch on the case's files (fcntl, fstat, lseek, pread). The block requests each sync issued
# (block:block_rq_issue in the syncing thread while it ran): data writes, and metadata writes
# (rwbs with M: on this ext4 without a journal, the inode's block, which a timestamp update
# dirties). Tracing costs every call a little: compare two cases traced together, not rates.
#
# Time marks: the probe runs a scratch copy of dist/ and bench/ with marks added
# (process.hrtime, the clock perf records with -k mono) to the copy's group committer: a batch
# taken (tStart), its append submitted (tSerialized, after locks, header and any checkpoint
# wait), the append's promise settled on the JS thread (tIo), its commits resolved (tPublished),
# and in dist/wal/wal-file.js the native append's call. A batch's gap then splits into:
#   completion  the WAL fdatasync's end -> tIo: the I/O thread's wake-up of the JS thread and the
#               append's JS continuation (index append, header publish)
#   resolve     tIo -> tPublished: the batch's commits resolved
#   between     tPublished -> the next tStart: the committers' reactions, their next commit()
#               calls, the gathering turn (setImmediate)
#   serialize   tStart -> tSerialized: the WRITE run's header, conflict checks, beforeAppend
#               (a restart batch's catch-up checkpoint)
#   plan        tSerialized -> the native call: the index and window work, the append's plan
#   hop         the native call -> the frame write: argument parsing, the I/O thread's wake-up,
#               the window check's pread + lseek (a restart batch: the new header's write + sync)
# The raw-64-ckpt-bg-restart loops get the same marks (a batch's call, its frames' writev,
# settled): there resolve and plan are 0, between is the loop's own turn, and serialize holds a
# restart's wait and header sync.
#
# Usage: python3 bench/probes/restart-cycle.py [seconds per round=1] [rounds=4]
#            [cases=walnut-64,raw-64-ckpt-bg-restart-hdr]
#        (perf must be installed and allowed to trace syscalls)
import bisect
import json
import os
import shutil
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict

FRAME = 24 + 4096
SYSCALLS = ('pwritev', 'pwritev2', 'pwrite64', 'fdatasync', 'fsync', 'ftruncate', 'fallocate', 'pread64', 'fcntl', 'lseek', 'newfstat', 'statx')
BLOCK = re.compile(r'^\s*\S+\s+(\d+)\s+(\d+\.\d+):\s+block:block_rq_issue:\s+\S+\s+(\w+)\s+(\d+)')
EVENT = re.compile(r'^\s*\S+\s+(\d+)\s+(\d+\.\d+):\s+syscalls:sys_(enter|exit)_(\w+):\s*(.*)$')
FIELD = re.compile(r'(\w+): (0x[0-9a-f]+)')


def kind(path):
    if path.endswith('-wal') or path.endswith('.wal'):
        return 'wal'
    if path.endswith('-shm'):
        return 'shm'
    if path.endswith('.db'):
        return 'db'
    return 'other'


def parse(script, fds):
    """Completed calls from `perf script` lines: dicts of pid (thread), name, start, end, dur,
    kind, args (fd, pos/len...), ret. `fds`: fd number -> path, as /proc showed them."""
    calls = []
    pending = {}
    blocks = defaultdict(list)  # thread -> (time, rwbs, bytes) of the block requests it issued
    for raw in script.splitlines():
        bm = BLOCK.match(raw)
        if bm:
            blocks[int(bm.group(1))].append((float(bm.group(2)), bm.group(3), int(bm.group(4))))
            continue
        m = EVENT.match(raw)
        if not m:
            continue
        tid, ts, edge, name, rest = int(m.group(1)), float(m.group(2)), m.group(3), m.group(4), m.group(5)
        if edge == 'enter':
            pending[tid] = (name, ts, {k: int(v, 16) for k, v in FIELD.findall(rest)})
            continue
        if tid not in pending or pending[tid][0] != name:
            continue
        _, start, args = pending.pop(tid)
        ret = int(rest.strip(), 16) if rest.strip().startswith('0x') else None
        if ret is not None and ret >= 1 << 63:
            ret -= 1 << 64
        path = fds.get(args.get('fd', -1), '')
        calls.append({'pid': tid, 'name': name, 'start': start, 'end': ts, 'dur': ts - start, 'kind': kind(path), 'path': path, 'args': args, 'ret': ret})
    calls.sort(key=lambda c: c['start'])
    # the requests a sync issued (in its own thread, while it ran): data, and metadata (the inode's block)
    for c in calls:
        if c['name'] in ('fdatasync', 'fsync'):
            mine = [b for b in blocks.get(c['pid'], []) if c['start'] <= b[0] <= c['end'] and b[1].startswith('W')]
            c['meta'] = sum(1 for b in mine if 'M' in b[1])
            c['data'] = sum(1 for b in mine if 'M' not in b[1])
    return calls


def offset_of(c):
    a = c['args']
    return a['pos_l'] + (a.get('pos_h', 0) << 32) if 'pos_l' in a else a.get('pos')


def pct(xs, p):
    if not xs:
        return 0.0
    s = sorted(xs)
    return s[min(len(s) - 1, int(len(s) * p / 100))]


def windows_of(frame_writes):
    """The case's rounds: runs of its frame writes with no pause over 300 ms (the other cases'
    rounds lie between); the first (the warm-up, with the file's first growth) is left out."""
    spans = []
    for w in frame_writes:
        if spans and w['start'] - spans[-1][1] < 0.3:
            spans[-1][1] = w['end']
        else:
            spans.append([w['start'], w['end']])
    return spans[1:]


def analyse(calls, marks, stem):
    """One case's batches (its files' names contain `stem`), in its measured rounds."""
    calls = [c for c in calls if stem in os.path.basename(c['path'])]
    writes = ('pwritev', 'pwrite64', 'pwritev2')
    wal_writes = [c for c in calls if c['kind'] == 'wal' and c['name'] in writes]
    wal_syncs = [c for c in calls if c['kind'] == 'wal' and c['name'] in ('fdatasync', 'fsync')]
    db_syncs = [c for c in calls if c['kind'] == 'db' and c['name'] in ('fdatasync', 'fsync')]
    db_writes = [c for c in calls if c['kind'] == 'db' and c['name'] in writes]
    db_truncs = [c for c in calls if c['kind'] == 'db' and c['name'] == 'ftruncate']
    # the batches: a frame write (not the bench's 1 MiB prefill, pwrite64), then the next WAL sync on the same thread
    frame_writes = [c for c in wal_writes if c['name'] != 'pwrite64' and (offset_of(c) or 0) >= 32 and (c['ret'] or 0) >= FRAME]
    windows = windows_of(frame_writes)
    if not windows:
        print('no measured rounds found')
        return
    inside = lambda t: any(a <= t <= z for a, z in windows)
    span = sum(z - a for a, z in windows)
    syncs_by_pid = defaultdict(list)
    for s in wal_syncs:
        syncs_by_pid[s['pid']].append(s)
    starts = {pid: [s['start'] for s in ss] for pid, ss in syncs_by_pid.items()}
    batches = []
    max_end = 0
    for w in frame_writes:
        ss = syncs_by_pid.get(w['pid'], [])
        i = bisect.bisect_left(starts.get(w['pid'], []), w['end'] - 1e-7)
        sync = ss[i] if i < len(ss) else None
        max_end = max(max_end, w['ret'] + offset_of(w))
        batches.append({'w': w, 'sync': sync, 'restart': offset_of(w) == 32, 'bytes': w['ret']})
    header_writes = [c for c in wal_writes if offset_of(c) == 0 and inside(c['start'])]
    rows = defaultdict(lambda: defaultdict(list))
    # the checkpoint copies: from the first database write after a database sync to the next sync's start
    copy_spans = []
    first = None
    for c in sorted(db_writes + db_syncs, key=lambda c: c['start']):
        if c['name'] in ('fdatasync', 'fsync'):
            if first is not None:
                copy_spans.append((first, c['start']))
            first = None
        elif first is None:
            first = c['start']
    prev_end = None
    steady = []
    restart_parts = []
    mark_times = defaultdict(list)
    for kind_, t in marks:
        mark_times[kind_].append(t)
    for v in mark_times.values():
        v.sort()
    gap_parts = defaultdict(lambda: defaultdict(list))
    for b in batches:
        if b['sync'] is None:
            prev_end = None
            continue
        w, s = b['w'], b['sync']
        if prev_end is not None and inside(w['start']) and inside(prev_end):
            gap = (w['start'] - prev_end) * 1e6
            overl = any(d['start'] < s['end'] and d['end'] > s['start'] for d in db_syncs)
            copying = any(a < s['end'] and z > s['start'] for a, z in copy_spans)
            cls = 'restart' if b['restart'] else ('grew' if b['bytes'] > 64 * FRAME + 4096 else ('sync-beside-db' if overl else ('sync-beside-copy' if copying else 'normal')))
            r = rows[cls]
            r['gap'].append(gap)
            r['write'].append(w['dur'] * 1e6)
            r['sync'].append(s['dur'] * 1e6)
            r['cycle'].append((s['end'] - prev_end) * 1e6)
            r['meta'].append(s.get('meta', 0))
            r['data'].append(s.get('data', 0))
            steady.append(b)
            split = split_gap(mark_times, prev_end, w['start'])
            if split is not None:
                for k, v in split.items():
                    gap_parts[cls][k].append(v)
            if b['restart']:
                # what the restart batch's gap held: the copy's reads and writes, the database's
                # ftruncate and fdatasync, the new header's write and fdatasync
                parts = Counter()
                for c in calls:
                    if c['start'] >= prev_end and c['end'] <= w['start'] and (c['pid'] == w['pid'] or c['kind'] == 'db'):
                        key = f"{c['name']}({c['kind']}{', header' if c['kind'] == 'wal' and offset_of(c) == 0 else ''})"
                        parts[key] += c['dur'] * 1e6
                restart_parts.append((gap, parts))
        prev_end = s['end']
    n = sum(len(r['cycle']) for r in rows.values())
    total = sum(sum(r['cycle']) for r in rows.values())
    print(f'{len(windows)} rounds, {span:.2f} s, {n} batches, {n * 64 / span:.0f} commits/s under tracing; mean cycle {total / max(1, n):.0f} µs')
    print(f'{"class":16} {"batches":>7} {"share":>6}  {"cycle p50/mean":>15}  {"gap p50/mean":>13}  {"write p50":>9}  {"sync p50/mean":>14}  {"µs/batch of all (gap, write, sync)":>34}  {"requests per sync (data, inode)":>31}')
    mean = lambda xs: sum(xs) / len(xs)
    for cls in ('normal', 'sync-beside-copy', 'sync-beside-db', 'grew', 'restart'):
        r = rows[cls]
        k = len(r['cycle'])
        if k == 0:
            continue
        print(f'{cls:16} {k:7d} {k / n:6.1%}  {pct(r["cycle"], 50):7.0f}/{mean(r["cycle"]):7.0f}  {pct(r["gap"], 50):6.0f}/{mean(r["gap"]):6.0f}  {pct(r["write"], 50):9.0f}  {pct(r["sync"], 50):6.0f}/{mean(r["sync"]):7.0f}  '
              f'{sum(r["gap"]) / n:10.0f} {sum(r["write"]) / n:10.0f} {sum(r["sync"]) / n:10.0f}  {mean(r["data"]):15.2f} {mean(r["meta"]):15.2f}')
    big = [b for b in steady if b['bytes'] > 64 * FRAME + 4096]
    restarts = sum(1 for b in steady if b['restart'])
    print(f'WAL: {restarts} restarts ({n / max(1, restarts):.1f} batches per generation); header writes at offset 0: {len(header_writes)}; '
          f'writes carrying zeros after the frames (the file grew): {len(big)}; the WAL\'s furthest end {max_end / 1e6:.2f} MB')
    ds = [d for d in db_syncs if inside(d['start'])]
    dw = [d for d in db_writes if inside(d['start'])]
    dt = [d for d in db_truncs if inside(d['start'])]
    if ds:
        print(f'database: {len(ds)} fdatasyncs (requests per sync: data {mean([d.get("data", 0) for d in ds]):.1f}, inode {mean([d.get("meta", 0) for d in ds]):.2f}; p50 {pct([d["dur"] * 1e6 for d in ds], 50):.0f} µs, mean {mean([d["dur"] for d in ds]) * 1e6:.0f}), {len(dw)} writes ({sum(d["ret"] or 0 for d in dw) / 4096 / len(ds):.0f} pages per sync), {len(dt)} ftruncates')
    if restart_parts:
        agg = Counter()
        for _, parts in restart_parts:
            agg.update(parts)
        k = len(restart_parts)
        gaps = sorted(g for g, _ in restart_parts)
        print(f'restart batches\' gap (mean {sum(gaps) / k:.0f} µs, p50 {pct(gaps, 50):.0f}), mean µs per restart in calls inside it: ' + ', '.join(f'{key} {v / k:.0f}' for key, v in agg.most_common(8)) + ' (database calls on any thread, the rest on the WAL thread; they overlap)')
    if gap_parts:
        print('the gap by the time marks (µs p50/mean; µs per batch of all):')
        for cls in ('normal', 'sync-beside-copy', 'sync-beside-db', 'grew', 'restart'):
            parts = gap_parts.get(cls)
            if parts:
                print(f'  {cls:16} {len(parts["hop"]):5d} batches: ' + ', '.join(f'{name} {pct(v, 50):.0f}/{mean(v):.0f} ({sum(v) / n:.0f})' for name, v in parts.items()))
    other = Counter()
    for c in calls:
        if inside(c['start']) and c['name'] not in writes + ('fdatasync', 'fsync'):
            other[f'{c["name"]}({c["kind"]})'] += 1
    print('other calls per batch (its own files): ' + ', '.join(f'{k} {v / max(1, n):.2f}' for k, v in other.most_common(8)))


MARKS = {'tStart': 'start', 'tSerialized': 'ser', 'tIo': 'io', 'tPublished': 'pub'}
PRELOAD = """globalThis.__walnutMarks = [];
process.on('exit', () => require('fs').writeFileSync(process.env.WALNUT_PROBE_MARKS, JSON.stringify(globalThis.__walnutMarks)));
"""


# bench/commit.js's bound with the same marks: a batch taken (the loop's call), its frames'
# write submitted, settled (io = pub: nothing to resolve)
BOUND_MARKS = [
    ("      commitOnce: async () => {\n        const walFrames = (n - generationStart) * BATCH;",
     "      commitOnce: async () => {\n        globalThis.__walnutMarks?.push('start', Number(process.hrtime.bigint()));\n        const walFrames = (n - generationStart) * BATCH;"),
    ("        await wal.writev(frames, off, 'data');\n",
     "        globalThis.__walnutMarks?.push('ser', Number(process.hrtime.bigint()), 'call', Number(process.hrtime.bigint()));\n        await wal.writev(frames, off, 'data');\n"
     "        globalThis.__walnutMarks?.push('io', Number(process.hrtime.bigint()), 'pub', Number(process.hrtime.bigint()));\n"),
]


def patch(path, pairs):
    src = open(path).read()
    for old, new in pairs:
        if src.count(old) != 1:
            sys.exit(f'{path}: expected one {old!r}')
        src = src.replace(old, new)
    open(path, 'w').write(src)


def marked_tree(root, scratch):
    """A copy of dist/ and bench/ whose group committer and raw-64-ckpt-bg-restart loop record
    MARKS (kind, monotonic ns) in globalThis.__walnutMarks; the addon and packages linked."""
    for part in ('dist', 'bench'):
        shutil.copytree(os.path.join(root, part), os.path.join(scratch, part), ignore=shutil.ignore_patterns('results'))
    for beside in ('build', 'node_modules', 'package.json'):
        os.symlink(os.path.join(root, beside), os.path.join(scratch, beside))
    patch(os.path.join(scratch, 'dist', 'commit', 'group-committer.js'),
          [(f'const {name} = nowUs();', f"const {name} = nowUs(); globalThis.__walnutMarks?.push('{kind}', Number(process.hrtime.bigint()));") for name, kind in MARKS.items()])
    # and the native append's call (the plan is made; the I/O thread's hop and window check follow)
    call = "            await native_1.nativeFrames.append("
    src = open(os.path.join(scratch, 'dist', 'wal', 'wal-file.js')).read()
    if src.count(call) != 2:
        sys.exit('dist/wal/wal-file.js: expected two native appends')
    open(os.path.join(scratch, 'dist', 'wal', 'wal-file.js'), 'w').write(src.replace(call, "            globalThis.__walnutMarks?.push('call', Number(process.hrtime.bigint()));\n" + call))
    patch(os.path.join(scratch, 'bench', 'commit.js'), BOUND_MARKS)
    return os.path.join(scratch, 'bench', 'commit.js')


def last_before(ts, t):
    i = bisect.bisect_right(ts, t)
    return ts[i - 1] if i > 0 else None


def split_gap(m, sync_end, write_start):
    """The gap between a WAL fdatasync's end and the next frame write, by the time marks around it."""
    ser = last_before(m['ser'], write_start)
    start = ser and last_before(m['start'], ser)
    pub = start and last_before(m['pub'], start)
    io = pub and last_before(m['io'], pub)
    if io is None or io < sync_end:
        return None
    call = last_before(m['call'], write_start)
    if call is None or call < ser:
        return None
    us = lambda a, b: (b - a) * 1e6
    return {'completion': us(sync_end, io), 'resolve': us(io, pub), 'between': us(pub, start), 'serialize': us(start, ser), 'plan': us(ser, call), 'hop': us(call, write_start)}


# the cases compared, and the stem of their files' names (bench/commit.js)
STEMS = {'walnut-64': 'w64.db', 'raw-64-ckpt-bg-restart': 'rawbgrestart.', 'raw-64-ckpt-bg-restart-hdr': 'rawbgrestarthdr.', 'raw-64-ckpt-bg': 'rawckptbg.'}


def main():
    seconds = sys.argv[1] if len(sys.argv) > 1 else '1'
    rounds = sys.argv[2] if len(sys.argv) > 2 else '4'
    cases = sys.argv[3].split(',') if len(sys.argv) > 3 else ['walnut-64', 'raw-64-ckpt-bg-restart-hdr']
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    scratch = tempfile.mkdtemp(prefix='restart-cycle-')
    data = os.path.join(scratch, 'perf.data')
    events = ','.join(f'syscalls:sys_{e}_{n}' for n in SYSCALLS for e in ('enter', 'exit')) + ',block:block_rq_issue'
    env = dict(os.environ, WALNUT_BENCH_ONLY='^(' + '|'.join(re.escape(c) for c in cases) + ')$', WALNUT_BENCH_ROUNDS=rounds, WALNUT_BENCH_SECONDS=seconds,
               WALNUT_PROBE_MARKS=os.path.join(scratch, 'marks.json'), WALNUT_BENCH_JSON=os.path.join(scratch, 'bench.json'))
    open(os.path.join(scratch, 'preload.js'), 'w').write(PRELOAD)
    bench = marked_tree(root, scratch)
    perf = subprocess.Popen(['perf', 'record', '-q', '-k', 'mono', '-e', events, '-o', data, '--', 'node', '-r', os.path.join(scratch, 'preload.js'), bench],
                            env=env, stdout=subprocess.DEVNULL)
    # the descriptors' paths, from /proc while the cases run (the last path seen for each)
    fds = {}
    node = None
    while perf.poll() is None:
        time.sleep(0.1)
        try:
            if node is None:
                kids = open(f'/proc/{perf.pid}/task/{perf.pid}/children').read().split()
                node = int(kids[0]) if kids else None
                continue
            for fd in os.listdir(f'/proc/{node}/fd'):
                try:
                    fds[int(fd)] = os.readlink(f'/proc/{node}/fd/{fd}')
                except OSError:
                    pass
        except (OSError, ValueError):
            pass
    script = subprocess.run(['perf', 'script', '-i', data, '-F', 'comm,tid,time,event,trace'], capture_output=True, text=True).stdout
    flat = json.load(open(env['WALNUT_PROBE_MARKS']))
    marks = [(flat[i], flat[i + 1] / 1e9) for i in range(0, len(flat), 2)]
    rates = json.load(open(env['WALNUT_BENCH_JSON']))['rounds']
    shutil.rmtree(scratch)
    calls = parse(script, fds)
    print(f'{rounds} interleaved rounds x {seconds} s, perf syscall tracepoints and time marks; commits/s per round (bench/commit.js, traced):')
    for c in cases:
        print(f'  {c}: ' + ' '.join(f'{r["perSecond"]:.0f}' for r in rates[c]))
    for c in cases[1:]:
        ratios = sorted(a['perSecond'] / b['perSecond'] for a, b in zip(rates[cases[0]], rates[c]))
        print(f'  {cases[0]} / {c}: median {ratios[len(ratios) // 2]:.2f}x [{ratios[0]:.2f}..{ratios[-1]:.2f}]')
    for c in cases:
        print(f'--- {c}')
        analyse(calls, marks, STEMS[c])


if __name__ == '__main__':
    main()
