# Soak child: python3's sqlite3 (SQLite's own library) writing and checkpointing the soak
# database beside walnut. Read-modify-write increments of the shared counters (BEGIN IMMEDIATE;
# read c.n; write n + 1; insert the increment's row into inc; COMMIT), printing `a <k>` after
# each COMMIT returned, and every CKPT_EVERY increments a PRAGMA wal_checkpoint cycling PASSIVE,
# RESTART, TRUNCATE (busy_timeout 500 ms), printing `c <mode> <busy> <log> <done>`.
# The soak SIGKILLs it now and then and starts it again with a new SRC. SIGTERM: prints
# `stats {...}` and exits.
# usage: python3 py-writer.py DB SRC [CKPT_EVERY]
import json
import random
import signal
import sqlite3
import sys
import time

db, src = sys.argv[1], sys.argv[2]
ckpt_every = int(sys.argv[3]) if len(sys.argv) > 3 else 40
running = True


def stop(*_):
    global running
    running = False


signal.signal(signal.SIGTERM, stop)
c = sqlite3.connect(db, timeout=5, isolation_level=None)
c.execute('PRAGMA busy_timeout=5000')
stats = {'commits': 0, 'busy': 0, 'checkpoints': 0, 'checkpointBusy': 0, 'errors': {}}
modes = ['PASSIVE', 'RESTART', 'TRUNCATE']
rnd = random.Random(src)
print('ready', flush=True)
k = 0
while running:
    cid = rnd.randint(1, 8)
    try:
        c.execute('BEGIN IMMEDIATE')
        (n,) = c.execute('SELECT n FROM c WHERE id = ?', (cid,)).fetchone()
        c.execute('UPDATE c SET n = ? WHERE id = ?', (n + 1, cid))
        c.execute('INSERT INTO inc(src, k, cid, pad) VALUES (?, ?, ?, randomblob(?))', (src, k, cid, rnd.randint(50, 3000)))
        c.execute('COMMIT')
        print('a %d' % k, flush=True)
        stats['commits'] += 1
        k += 1
    except sqlite3.OperationalError as e:
        if c.in_transaction:
            c.execute('ROLLBACK')
        if 'locked' in str(e) or 'busy' in str(e):
            stats['busy'] += 1
        else:
            stats['errors'][str(e)] = stats['errors'].get(str(e), 0) + 1
        time.sleep(0.005)
        continue
    if k % ckpt_every == 0:
        mode = modes[(k // ckpt_every) % 3]
        try:
            # a short busy timeout for the checkpoint (README, follow mode: a RESTART/TRUNCATE
            # beside a follow export waits it out holding the write lock)
            c.execute('PRAGMA busy_timeout=500')
            busy, log, done = c.execute('PRAGMA wal_checkpoint(%s)' % mode).fetchone()
            c.execute('PRAGMA busy_timeout=5000')
            stats['checkpoints'] += 1
            if busy:
                stats['checkpointBusy'] += 1
            print('c %s %d %d %d' % (mode, busy, log, done), flush=True)
        except sqlite3.OperationalError as e:
            stats['errors']['checkpoint: ' + str(e)] = stats['errors'].get('checkpoint: ' + str(e), 0) + 1
    time.sleep(rnd.random() * 0.004)
c.close()
print('stats ' + json.dumps(stats), flush=True)
