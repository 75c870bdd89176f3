# A sqlite3 process (python3's sqlite3) that commits DELAY_MS after it said so: BEGIN IMMEDIATE,
# the SQL, then "ready" on stdout, a sleep, COMMIT, "committed". A test starts a long synchronous
# walnut/sql statement on "ready", so this commit lands in the middle of that statement's run.
# usage: python3 sqlite-commit-later.py DB DELAY_MS SQL
import sqlite3
import sys
import time

db, delay, sql = sys.argv[1], int(sys.argv[2]), sys.argv[3]
c = sqlite3.connect(db, timeout=10, isolation_level=None)
c.execute('BEGIN IMMEDIATE')
c.execute(sql)
print('ready', flush=True)
time.sleep(delay / 1000)
c.execute('COMMIT')
print('committed', flush=True)
c.close()
