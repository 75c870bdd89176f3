# A sqlite3 writer for the replication stop()/close() tests: python3's sqlite3 (SQLite's own
# library), each transaction BEGIN IMMEDIATE (waiting out walnut's WRITE in its busy handler,
# timeout 30 s), one row INSERT INTO t(src, v) VALUES ('py', randomblob(300)), c.n += 1 (the
# count of committed transactions, so that every committed state has c.n = count(*) of t), COMMIT;
# again at once until SIGTERM, with wal_autocheckpoint CKPT (0: the WAL is never checkpointed by
# it). After each COMMIT it prints the row's id (a commit durable before the line is read).
# usage: python3 sqlite-count-loop.py DB CKPT
import signal
import sqlite3
import sys

signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
c = sqlite3.connect(sys.argv[1], timeout=30, isolation_level=None)
c.execute('PRAGMA wal_autocheckpoint=%d' % int(sys.argv[2]))
while True:
    try:
        c.execute('BEGIN IMMEDIATE')
    except sqlite3.OperationalError as e:
        if 'locked' not in str(e) and 'busy' not in str(e):
            raise
        continue
    row = c.execute("INSERT INTO t(src, v) VALUES ('py', randomblob(300))").lastrowid
    c.execute('UPDATE c SET n = n + 1 WHERE id = 1')
    c.execute('COMMIT')
    print(row, flush=True)
