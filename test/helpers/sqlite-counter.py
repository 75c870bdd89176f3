# A sqlite3 process incrementing counters beside walnut/sql (python3's sqlite3, SQLite's own
# library): INCREMENTS read-modify-write transactions (BEGIN IMMEDIATE; read n; write n + 1;
# COMMIT), round robin over counters 1..COUNTERS of table c(id, n), busy_timeout 10 s. Prints
# one JSON line: {"acked": {id: increments acknowledged}, "busy": transactions that gave up}.
# usage: python3 sqlite-counter.py DB INCREMENTS COUNTERS
import json
import sqlite3
import sys

db, increments, counters = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
c = sqlite3.connect(db, timeout=10, isolation_level=None)
acked = {i: 0 for i in range(1, counters + 1)}
busy = 0
for k in range(increments):
    cid = 1 + k % counters
    try:
        c.execute('BEGIN IMMEDIATE')
        (n,) = c.execute('SELECT n FROM c WHERE id = ?', (cid,)).fetchone()
        c.execute('UPDATE c SET n = ? WHERE id = ?', (n + 1, cid))
        c.execute('COMMIT')
    except sqlite3.OperationalError as e:
        if 'locked' not in str(e) and 'busy' not in str(e):
            raise
        busy += 1
        if c.in_transaction:
            c.execute('ROLLBACK')
        continue
    acked[cid] += 1
c.close()
print(json.dumps({'acked': acked, 'busy': busy}))
