# A sqlite3 process (python3's sqlite3) that holds WAL's WRITE lock until told: BEGIN IMMEDIATE,
# the SQL, "ready" on stdout, then waits for a line on stdin, COMMITs and prints "committed".
# A test uses it to keep walnut's commits waiting for WRITE for exactly as long as it needs.
# usage: python3 sqlite-hold-write.py DB SQL
import sqlite3
import sys

c = sqlite3.connect(sys.argv[1], timeout=10, isolation_level=None)
c.execute('BEGIN IMMEDIATE')
c.execute(sys.argv[2])
print('ready', flush=True)
sys.stdin.readline()
c.execute('COMMIT')
print('committed', flush=True)
c.close()
