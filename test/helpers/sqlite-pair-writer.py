# A sqlite3 writer process (python3's sqlite3 module) for the pair invariant of
# test/interop/replicate-truncate-load.test.ts: each transaction adds 1 to both rows of
# pair (each row on a page of its own) and inserts one row of its own into t, so that in every
# committed state pair 1's n = pair 2's n = count(*) of t. Runs for SECONDS (wal_autocheckpoint
# CKPT), then prints the number of transactions it committed. With REPORT 1 it also prints, after
# each COMMIT, the id of the row it inserted into t (a commit durable before its line is read:
# test/interop/replicate-stop-tail.test.ts, which ends it with SIGTERM).
# usage: python3 sqlite-pair-writer.py DB SECONDS WRITER_ID CKPT [REPORT]
import sqlite3
import sys
import time

db, seconds, writer, ckpt = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
report = len(sys.argv) > 5 and sys.argv[5] == '1'
c = sqlite3.connect(db, timeout=30, isolation_level=None)
c.execute('PRAGMA wal_autocheckpoint=%d' % ckpt)
n = 0
end = time.time() + seconds
while time.time() < end:
    try:
        c.execute('BEGIN IMMEDIATE')
    except sqlite3.OperationalError as e:
        if 'locked' not in str(e) and 'busy' not in str(e):
            raise
        continue
    c.execute('UPDATE pair SET n = n + 1')
    row = c.execute('INSERT INTO t(w, i, v) VALUES (?, ?, randomblob(?))', (writer, n, 200 + (n * 37) % 3000)).lastrowid
    c.execute('COMMIT')
    if report:
        print(row, flush=True)
    n += 1
c.close()
print(n)
