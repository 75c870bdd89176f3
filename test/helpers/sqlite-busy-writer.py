# A sqlite3 writer that takes WAL's WRITE lock again at once (python3's sqlite3): BEGIN IMMEDIATE,
# one INSERT INTO t VALUES (7, 'x'), 4 ms with the lock held, COMMIT, and again, for SECONDS;
# then prints its commits. WRITE is free only in the tens of microseconds between its commits:
# what a walnut lock wait that sleeps between tries mostly misses.
# usage: python3 sqlite-busy-writer.py DB SECONDS
import sqlite3
import sys
import time

c = sqlite3.connect(sys.argv[1], timeout=30, isolation_level=None)
n = 0
end = time.time() + float(sys.argv[2])
while time.time() < end:
    c.execute('BEGIN IMMEDIATE')
    c.execute("INSERT INTO t VALUES (7, 'x')")
    time.sleep(0.004)
    c.execute('COMMIT')
    n += 1
print(n)
