# A sqlite3 process (python3's sqlite3) that commits DELAY_MS after it said so and then holds
# WAL's WRITE lock until told: BEGIN IMMEDIATE, the SQL, "ready" on stdout, a sleep, COMMIT,
# BEGIN IMMEDIATE and the SQL again at once (WRITE is free only for that moment), then waits for
# a line on stdin, COMMITs and prints "committed". A test starts a long synchronous walnut/sql
# statement on "ready": the commit lands during it (a conflict at its end) and its wait for the
# write lease that follows finds WRITE held for as long as the test needs.
# usage: python3 sqlite-commit-then-hold.py DB DELAY_MS SQL
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
c.execute('BEGIN IMMEDIATE')
c.execute(sql)
sys.stdin.readline()
c.execute('COMMIT')
print('committed', flush=True)
c.close()
