# A sqlite3 writer process (python3's sqlite3 module, SQLite's own library): inserts one row per
# transaction (a 4-8 KB blob, three pages or so) into t(w, v) for SECONDS, with wal_autocheckpoint
# CKPT and synchronous FULL (SQLite's default; SYNC below), then prints the number of commits it made. With
# RESTART_EVERY, a RESTART checkpoint follows every that many commits (busy or not), and a second
# line gives how many of them restarted the WAL (not busy). With MIN_COMMITS it goes on past
# SECONDS until it has made that many (beside busy writers on a loaded machine a run of a few
# seconds can get no turn at all). With PAUSE_MS it sleeps that long after each commit. SIGTERM
# is SECONDS passing at once: the run ends after the commit under way (or once it has made
# MIN_COMMITS) and it prints as usual; a test whose other writers are done stops it there
# (children.ts startPython) instead of waiting out SECONDS chosen for a loaded machine. SYNC is
# its PRAGMA synchronous (FULL unless given): NORMAL for a writer that only fills the WAL beside
# the subject (no fsync per commit: 3,000 FULL commits were 8-13 s of a disk's syncs).
# usage: python3 sqlite-writer.py DB SECONDS WRITER_ID [CKPT [RESTART_EVERY [MIN_COMMITS [PAUSE_MS [SYNC]]]]]
import signal
import sqlite3
import sys
import time

stopped = False


def stop(_signum, _frame):
    global stopped
    stopped = True


signal.signal(signal.SIGTERM, stop)

db, seconds, writer = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
ckpt = int(sys.argv[4]) if len(sys.argv) > 4 else 200
restart_every = int(sys.argv[5]) if len(sys.argv) > 5 else 0
min_commits = int(sys.argv[6]) if len(sys.argv) > 6 else 0
pause = float(sys.argv[7]) / 1000 if len(sys.argv) > 7 else 0
sync = sys.argv[8] if len(sys.argv) > 8 else 'FULL'
restarts = 0
c = sqlite3.connect(db, timeout=30, isolation_level=None)
c.execute('PRAGMA wal_autocheckpoint=%d' % ckpt)
c.execute('PRAGMA synchronous=%s' % {'FULL': 'FULL', 'NORMAL': 'NORMAL'}[sync])
n = 0
end = time.time() + seconds
while (time.time() < end and not stopped) or n < min_commits:
    # wait for the other writers no longer than the run lasts (a busy insert commits nothing)
    c.execute('PRAGMA busy_timeout=%d' % max(1000 if n < min_commits else 1, int((end - time.time()) * 1000)))
    try:
        c.execute('INSERT INTO t(w, v) VALUES (?, randomblob(?))', (writer, 4000 + (n * 37) % 4000))
    except sqlite3.OperationalError as e:
        if 'locked' not in str(e) and 'busy' not in str(e):
            raise
        continue
    n += 1
    if pause > 0:
        time.sleep(pause)
    if restart_every > 0 and n % restart_every == 0:
        c.execute('PRAGMA busy_timeout=50')
        if c.execute('PRAGMA wal_checkpoint(RESTART)').fetchone()[0] == 0:
            restarts += 1
c.close()
print(n)
if restart_every > 0:
    print(restarts)
