# Fills a WAL-mode database from a sqlite3 process (python3's sqlite3, SQLite's own library):
# ROWS rows of a BYTES-byte blob into t(w, v) (w = -1) in ONE transaction, wal_autocheckpoint off,
# so the WAL grows by about ROWS * BYTES / page size frames. Run it while another connection
# (walnut) has the database open: SQLite's close then does not checkpoint and delete the WAL.
# usage: python3 sqlite-fill.py DB ROWS BYTES
import sqlite3
import sys

db, rows, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
c = sqlite3.connect(db, timeout=10, isolation_level=None)
c.execute('PRAGMA wal_autocheckpoint=0')
c.execute('BEGIN IMMEDIATE')
c.executemany('INSERT INTO t(w, v) VALUES (-1, randomblob(?))', ((size,) for _ in range(rows)))
c.execute('COMMIT')
c.close()
print(rows)
