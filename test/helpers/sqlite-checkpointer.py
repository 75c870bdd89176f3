# A sqlite3 checkpointer process (python3's sqlite3, SQLite's own library, busy_timeout BUSY_MS, 5000):
# runs PRAGMA wal_checkpoint(MODE) for each mode of MODES (comma-separated), ROUNDS times over,
# DELAY_MS apart. A result of (1, -1, -1) means another connection held the checkpoint lock
# (SQLite then returns SQLITE_BUSY at once, without its busy handler): retried after 10 ms, and
# counted. Prints one JSON line: {"results": [{"mode", "busy", "log", "checkpointed", "ms"}],
# "ckptBusy": retries}.
# usage: python3 sqlite-checkpointer.py DB MODES ROUNDS [DELAY_MS [BUSY_MS]]
import json
import sqlite3
import sys
import time

db, modes, rounds = sys.argv[1], sys.argv[2].split(','), int(sys.argv[3])
delay = (int(sys.argv[4]) if len(sys.argv) > 4 else 100) / 1000
busy_ms = int(sys.argv[5]) if len(sys.argv) > 5 else 5000
c = sqlite3.connect(db, timeout=busy_ms / 1000, isolation_level=None)
c.execute('PRAGMA busy_timeout=%d' % busy_ms)
results = []
ckpt_busy = 0
for r in range(rounds):
    for mode in modes:
        time.sleep(delay)
        t0 = time.time()
        while True:
            busy, log, done = c.execute('PRAGMA wal_checkpoint(%s)' % mode).fetchone()
            if (busy, log, done) != (1, -1, -1) or ckpt_busy >= 1000:
                break
            ckpt_busy += 1
            time.sleep(0.01)
        results.append({'mode': mode, 'busy': busy, 'log': log, 'checkpointed': done, 'ms': round((time.time() - t0) * 1000)})
c.close()
print(json.dumps({'results': results, 'ckptBusy': ckpt_busy}))
