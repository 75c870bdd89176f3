# A sqlite3 writer on a rollback-journal database (python3's sqlite3 module, SQLite's own
# library, journal_mode DELETE): for SECONDS, transactions of 50 updates of random rows of
# t(id, k, v) (k indexed, v a blob of random size), so every commit rewrites pages of the table
# and its index across the file; prints the number of commits it made.
# usage: python3 sqlite-rollback-writer.py DB SECONDS ROWS
import random
import sqlite3
import sys
import time

db, seconds, rows = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
c = sqlite3.connect(db, timeout=30, isolation_level=None)
n = 0
end = time.time() + seconds
while time.time() < end:
    c.execute('BEGIN IMMEDIATE')
    for _ in range(50):
        c.execute('UPDATE t SET k = ?, v = randomblob(?) WHERE id = ?', (str(random.random()), random.randint(10, 900), random.randint(1, rows)))
    c.execute('COMMIT')
    n += 1
c.close()
print(n)
