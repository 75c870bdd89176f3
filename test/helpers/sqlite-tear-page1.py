# A sqlite3 writer (python3's sqlite3) that leaves what a checkpoint interrupted while writing page 1
# leaves, again and again, and checkpoints it away: per round one transaction of BIG rows (a WAL of
# BIG+ frames at page size 512), a passive checkpoint, then QUICK times: a one-row transaction that
# writes page 1 (user_version), the database file's first 100 bytes overwritten with garbage (safe:
# page 1 is in the WAL and not yet copied, and only this process checkpoints), and
# wal_checkpoint(RESTART), then (TRUNCATE) alternately, which copy page 1 back and restart or empty
# the WAL. The file is written through one descriptor kept open: closing a descriptor of the
# database would drop this process's POSIX locks (SQLite's SHARED lock on it) with it.
# Runs SECONDS, then prints one JSON line: {"rows", "tears", "rounds"}.
# usage: python3 sqlite-tear-page1.py DB SECONDS BIG QUICK
import json
import os
import sqlite3
import sys
import time

db, seconds, big, quick = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
garbage = bytes(((k * 151 + 7) & 0xff) for k in range(100))
c = sqlite3.connect(db, timeout=20, isolation_level=None)
c.execute('PRAGMA wal_autocheckpoint=0')
tear_fd = os.open(db, os.O_WRONLY)
rows = tears = rounds = 0
end = time.time() + seconds
while time.time() < end:
    c.execute('BEGIN IMMEDIATE')
    c.executemany('INSERT INTO t(v) VALUES (randomblob(400))', [()] * big)
    c.execute('COMMIT')
    rows += big
    c.execute('PRAGMA wal_checkpoint(PASSIVE)')
    for q in range(quick):
        c.execute('BEGIN IMMEDIATE')
        c.execute('INSERT INTO t(v) VALUES (1)')
        c.execute('PRAGMA user_version=%d' % (tears % 1000000 + 1))
        c.execute('COMMIT')
        rows += 1
        os.pwrite(tear_fd, garbage, 0)
        tears += 1
        c.execute('PRAGMA wal_checkpoint(%s)' % ('RESTART' if q % 2 == 0 else 'TRUNCATE')).fetchone()
    rounds += 1
c.close()
print(json.dumps({'rows': rows, 'tears': tears, 'rounds': rounds}), flush=True)
