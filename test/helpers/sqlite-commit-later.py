# A sqlite3 process (python3's sqlite3) that commits DELAY_MS after it is told to: BEGIN IMMEDIATE,
# the SQL, then "ready" on stdout; then a line on stdin ("go"), a sleep, COMMIT, "committed". A
# test writes "go" and, in the same synchronous stretch, starts a long synchronous walnut/sql
# statement, so this commit lands in the middle of that statement's run. (The sleep once began at
# "ready": on a loaded machine "ready" reached the test more than DELAY_MS late, the commit came
# before the statement began, and the statement was not overtaken: sql-conflict-lease-wait-close.)
# With "hold" it then holds WAL's WRITE lock until told: BEGIN IMMEDIATE and the SQL again at once
# after that COMMIT (WRITE is free only for that moment), then it waits for another line on stdin,
# COMMITs and prints "committed" (once, after this second commit): the long statement's wait for
# the write lease that follows its conflict finds WRITE held for as long as the test needs.
# usage: python3 sqlite-commit-later.py DB DELAY_MS SQL [hold]
import sqlite3
import sys
import time

db, delay, sql = sys.argv[1], int(sys.argv[2]), sys.argv[3]
hold = sys.argv[4:] == ['hold']
c = sqlite3.connect(db, timeout=10, isolation_level=None)
c.execute('BEGIN IMMEDIATE')
c.execute(sql)
print('ready', flush=True)
sys.stdin.readline()
time.sleep(delay / 1000)
c.execute('COMMIT')
if hold:
    c.execute('BEGIN IMMEDIATE')
    c.execute(sql)
    sys.stdin.readline()
    c.execute('COMMIT')
print('committed', flush=True)
c.close()
