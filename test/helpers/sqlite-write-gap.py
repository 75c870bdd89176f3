# A sqlite3 writer (python3's sqlite3, busy timeout 0) driven line by line on stdin, one answer line
# each: "hold" takes WAL's WRITE lock (BEGIN IMMEDIATE, one INSERT INTO t) -> ok | busy;
# "gap MS" commits, lets WRITE go for MS milliseconds, then tries to take it again -> ok | busy
# (busy: somebody took it in the gap); "commit" -> ok. For tests of what a walnut wait for WRITE
# catches in a gap of known length, which a wait that sleeps between tries mostly misses.
# usage: python3 sqlite-write-gap.py DB
import sqlite3
import sys
import time

c = sqlite3.connect(sys.argv[1], timeout=0, isolation_level=None)


def hold():
    try:
        c.execute('BEGIN IMMEDIATE')
    except sqlite3.OperationalError:
        return 'busy'
    c.execute("INSERT INTO t VALUES (7, 'gap')")
    return 'ok'


for line in sys.stdin:
    words = line.split()
    if not words:
        continue
    if words[0] == 'hold':
        answer = hold()
    elif words[0] == 'gap':
        c.execute('COMMIT')
        time.sleep(float(words[1]) / 1000)
        answer = hold()
    elif words[0] == 'commit':
        c.execute('COMMIT')
        answer = 'ok'
    else:
        answer = 'unknown command'
    print(answer, flush=True)
