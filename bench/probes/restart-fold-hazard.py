#!/usr/bin/env python3
# bench/probes/restart-fold-hazard.py — is it safe to fold a WAL restart's header write into the
# restart batch's single fdatasync (header + frames written, one sync), instead of syncing the
# new header before the first frame (SQLite's walFrames, "ticket ff5be73dee"; walnut's
# WalFile.appendAfterHeader)? Answer by a power-loss model over real bytes:
#
#   1. python3's sqlite3 makes a WAL database with tables t and u (root pages 2 and 3), and the
#      page images of three later states: A (t=v1, u=v0), B (t=v2, u=v2), C (t=v3, u=v3).
#   2. A walnut writer (node, this checkout's dist/) commits A (1 frame) and B (2 frames), both
#      acknowledged ('full'), then checkpoints (the database file holds B, synced; every frame
#      backfilled). The WAL and database bytes now are the last synced state S0.
#   3. It commits C: the WAL restarts (new header, new salts) and C's 2 frames overwrite frames
#      1..2 of the old generation. The WAL bytes after it are S1.
#   4. A power loss keeps any subset of the sectors written since the last completed sync.
#      Folded (one sync for header + frames): any subset of the header's and frames' sectors of
#      S1 over S0. Header synced first: the header is durable (S0 with S1's 32 header bytes),
#      then any subset of the frames' sectors. For each crash image a fresh sqlite3 process
#      (no -shm: it recovers from the WAL) reads t and u and runs integrity_check.
#   Acceptable: (v2, v2) (C lost: it was never acknowledged) or (v3, v3). Anything else loses an
#   acknowledged commit (v1: B's value went back to A's) or tears C.
#
# Why folding loses B: with the old header still on disk, a new frame that reached the disk in
# slot 2 breaks the old generation's chain after frame 1, which is A's commit. Recovery then takes
# frames 1..1 as the WAL: page 2 is read from the WAL as A wrote it (v1), though B (v2) was
# acknowledged and checkpointed. Syncing the new header first makes every old frame fail the salt
# test before any new frame can reach the disk.
#
# Usage: python3 bench/probes/restart-fold-hazard.py [--sector 512] [--samples 300] [--seed 1]
# Prints one line per model and a JSON summary; exit status 0 when the header-first model is
# clean (the fold's hazards are the expected finding, not a failure).
import argparse
import itertools
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PAGE = 4096

WRITER = r"""
const fs = require('node:fs');
const { open } = require(process.argv[1] + '/dist/index.js');
const [, , db, pagesJson] = process.argv;
const versions = JSON.parse(fs.readFileSync(pagesJson, 'utf8'));
const pages = (v) => Object.entries(versions[v]).map(([pgno, hex]) => ({ pgno: Number(pgno), data: Buffer.from(hex, 'hex') }));
(async () => {
  const store = await open(db, { synchronous: 'full', autoCheckpoint: false });
  await store.commit(pages('A'));
  await store.commit(pages('B'));
  const c = await store.checkpoint('passive');
  if (c.checkpointedFrames !== c.walFrames) throw new Error('checkpoint incomplete: ' + JSON.stringify(c));
  fs.copyFileSync(db + '-wal', db + '.S0-wal');
  fs.copyFileSync(db, db + '.S0');
  await store.commit(pages('C'));
  fs.copyFileSync(db + '-wal', db + '.S1-wal');
  await store.close();
})().catch((e) => { console.error(e); process.exit(1); });
"""


def make_versions(work):
    base = os.path.join(work, 'base.db')
    c = sqlite3.connect(base)
    c.execute('PRAGMA page_size=%d' % PAGE)
    c.execute('PRAGMA journal_mode=WAL')
    c.execute('CREATE TABLE t(v TEXT)')
    c.execute('CREATE TABLE u(v TEXT)')
    c.execute("INSERT INTO t VALUES ('v0')")
    c.execute("INSERT INTO u VALUES ('v0')")
    c.commit()
    c.execute('PRAGMA wal_checkpoint(TRUNCATE)')
    c.close()
    pristine = open(base, 'rb').read()
    versions = {}
    for name, (tv, uv) in {'A': ('v1', 'v0'), 'B': ('v2', 'v2'), 'C': ('v3', 'v3')}.items():
        scratch = os.path.join(work, 'scratch-%s.db' % name)
        shutil.copyfile(base, scratch)
        c = sqlite3.connect(scratch)
        c.execute('UPDATE t SET v=?', (tv,))
        c.execute('UPDATE u SET v=?', (uv,))
        c.commit()
        c.execute('PRAGMA wal_checkpoint(TRUNCATE)')
        c.close()
        image = open(scratch, 'rb').read()
        assert len(image) == len(pristine), 'the updates must not grow the database'
        diff = {}
        for p in range(len(image) // PAGE):
            if image[p * PAGE:(p + 1) * PAGE] != pristine[p * PAGE:(p + 1) * PAGE]:
                diff[p + 1] = image[p * PAGE:(p + 1) * PAGE].hex()
        versions[name] = diff
    assert list(versions['A']) == [2] and sorted(versions['B']) == [2, 3] and sorted(versions['C']) == [2, 3], \
        {k: sorted(v) for k, v in versions.items()}
    return base, versions


def read_image(work, db_bytes, wal_bytes, n):
    d = os.path.join(work, 'img%d' % n)
    os.makedirs(d)
    db = os.path.join(d, 'x.db')
    open(db, 'wb').write(db_bytes)
    open(db + '-wal', 'wb').write(wal_bytes)
    c = sqlite3.connect(db)
    try:
        t = c.execute('SELECT v FROM t').fetchall()
        u = c.execute('SELECT v FROM u').fetchall()
        ok = c.execute('PRAGMA integrity_check').fetchall()
        return (t[0][0] if t else None, u[0][0] if u else None, ok[0][0])
    except sqlite3.DatabaseError as e:
        return (None, None, 'error: %s' % e)
    finally:
        c.close()
        shutil.rmtree(d)


def apply(base, new, sectors, size):
    out = bytearray(base.ljust(size, b'\0'))
    for s in sectors:
        lo, hi = s * size_of_sector, min((s + 1) * size_of_sector, size)
        out[lo:hi] = new[lo:hi]
    return bytes(out)


size_of_sector = 512


def main():
    global size_of_sector
    ap = argparse.ArgumentParser()
    ap.add_argument('--sector', type=int, default=512)
    ap.add_argument('--samples', type=int, default=300)
    ap.add_argument('--seed', type=int, default=1)
    args = ap.parse_args()
    size_of_sector = args.sector
    work = tempfile.mkdtemp(prefix='restart-fold-')
    try:
        base, versions = make_versions(work)
        db = os.path.join(work, 'walnut.db')
        shutil.copyfile(base, db)
        pages_json = os.path.join(work, 'pages.json')
        json.dump(versions, open(pages_json, 'w'))
        subprocess.run(['node', '-e', WRITER, ROOT, db, pages_json], check=True)
        s0_wal, s0_db, s1_wal = (open(db + suffix, 'rb').read() for suffix in ('.S0-wal', '.S0', '.S1-wal'))
        # the live database after the writer: C must be there (sanity of the writer)
        assert read_image(work, open(db, 'rb').read(), open(db + '-wal', 'rb').read() if os.path.exists(db + '-wal') else b'', 0)[:2] == ('v3', 'v3')
        assert s1_wal[16:24] != s0_wal[16:24], 'the commit after the checkpoint must restart the WAL (new salts)'
        frames = 2
        written_end = 32 + frames * (24 + PAGE)  # header + C's frames: the restart batch's bytes
        size = max(len(s0_wal), len(s1_wal))
        all_sectors = list(range((written_end + size_of_sector - 1) // size_of_sector))
        header_sector = 0
        rng = random.Random(args.seed)

        def subsets(units):
            seen = set()
            for k in sorted({0, 1, 2, len(units) - 1, len(units)}):  # every small and all-but-one subset
                for combo in itertools.combinations(units, k):
                    seen.add(frozenset(combo))
            while len(seen) < min(args.samples + len(units) * 4, 2 ** len(units)):
                seen.add(frozenset(u for u in units if rng.random() < 0.5))
            return sorted(seen, key=lambda s: (len(s), sorted(s)))

        results = {}
        n = 1
        # folded: nothing of the restart batch is durable until its one sync; any sector may land
        # header first: S0 plus the new header (synced alone), then any subset of the frames' sectors
        header_first_base = s1_wal[:32] + s0_wal[32:]
        models = {
            'folded': (s0_wal, all_sectors),
            'header-first': (header_first_base, all_sectors),
        }
        for name, (start, units) in models.items():
            outcomes = {}
            bad = []
            for subset in subsets(units):
                img = apply(start, s1_wal, subset, size)
                if name == 'header-first':
                    # sector 0 holds the header: the synced header bytes stay whatever else lands
                    img = s1_wal[:32] + img[32:]
                t, u, ok = read_image(work, s0_db, img, n)
                n += 1
                key = '%s/%s/%s' % (t, u, ok)
                outcomes[key] = outcomes.get(key, 0) + 1
                if not ((t, u) in (('v2', 'v2'), ('v3', 'v3')) and ok == 'ok'):
                    if len(bad) < 5:
                        bad.append({'sectorsKept': sorted(subset), 'read': [t, u, ok]})
            results[name] = {'images': sum(outcomes.values()), 'outcomes': outcomes, 'badExamples': bad,
                             'bad': sum(c for k, c in outcomes.items() if not (k in ('v2/v2/ok', 'v3/v3/ok')))}
            print('%-13s %4d crash images: %s -> %d lose an acknowledged commit or tear C' %
                  (name, results[name]['images'], outcomes, results[name]['bad']))
        print(json.dumps({'sector': size_of_sector, 'sqlite': sqlite3.sqlite_version, **results}))
        return 0 if results['header-first']['bad'] == 0 else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == '__main__':
    sys.exit(main())
