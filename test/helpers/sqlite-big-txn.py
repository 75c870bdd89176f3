# One large sqlite3 transaction (python3's sqlite3 module): inserts ROWS rows of SIZE-byte
# random blobs into t(w, i, v) with w = WRITER, adds ROWS to both rows of pair (the pair
# invariant of sqlite-pair-writer.py), and commits once (wal_autocheckpoint off); prints ROWS.
# usage: python3 sqlite-big-txn.py DB ROWS SIZE WRITER
import sqlite3
import sys

db, rows, size, writer = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
c = sqlite3.connect(db, timeout=60, isolation_level=None)
c.execute('PRAGMA wal_autocheckpoint=0')
c.execute('PRAGMA cache_size=-200000')
c.execute('BEGIN IMMEDIATE')
c.execute('UPDATE pair SET n = n + ?', (rows,))
c.executemany('INSERT INTO t(w, i, v) VALUES (?, ?, randomblob(?))', ((writer, k, size) for k in range(rows)))
c.execute('COMMIT')
c.close()
print(rows)
