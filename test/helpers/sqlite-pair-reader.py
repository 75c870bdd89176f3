# A sqlite3 reader process (python3's sqlite3 module) for the pair invariant (see
# sqlite-pair-writer.py): for SECONDS it opens DB afresh now and then and holds read
# transactions of a few milliseconds (read-only), reading pair 1, t's count and pair 2 with
# pauses between; in every read pair 1's n = pair 2's n = count(*) of t. A quick_check every 10th read. Prints
# "reads N" and one line per state that broke it ("bad ..."); SQLITE_BUSY is skipped.
# usage: python3 sqlite-pair-reader.py DB SECONDS
import os
import sqlite3
import sys
import time

db, seconds = sys.argv[1], float(sys.argv[2])
end = time.time() + seconds
reads = 0
bad = []
c = None
while time.time() < end:
    try:
        if c is None or reads % 7 == 0:
            if c is not None:
                c.close()
            c = sqlite3.connect('file:%s?mode=ro' % db, uri=True, timeout=2, isolation_level=None)
        c.execute('BEGIN')
        a = c.execute('SELECT n FROM pair WHERE id = 1').fetchone()
        time.sleep(0.002)
        cnt = c.execute('SELECT count(*) FROM t').fetchone()[0]
        time.sleep(0.002)
        b = c.execute('SELECT n FROM pair WHERE id = 2').fetchone()
        qc = c.execute('PRAGMA quick_check').fetchone()[0] if reads % 10 == 0 else 'ok'
        c.execute('COMMIT')
        reads += 1
        if a is None or b is None or a[0] != b[0] or a[0] != cnt or qc != 'ok':
            bad.append('bad a=%r b=%r count=%r quick_check=%r' % (a, b, cnt, qc))
    except sqlite3.OperationalError as e:
        s = str(e)
        try:
            c.execute('ROLLBACK')
        except Exception:
            pass
        if 'locked' in s or 'busy' in s or 'no such table' in s:
            continue
        if 'unable to open' in s:
            c = None
            # not there yet, or a base image just renamed in without its -wal (a read-only
            # connection cannot create it: SQLite's rule, not a state of the replica)
            if not os.path.exists(db) or not os.path.exists(db + '-wal'):
                continue
            s += ' (wal %s, shm %s)' % (os.path.exists(db + '-wal'), os.path.exists(db + '-shm'))
        bad.append('error %s' % s)
    except sqlite3.DatabaseError as e:
        bad.append('error %s' % e)
        c = None
print('reads %d' % reads)
for line in bad[:20]:
    print(line)
