# A sqlite3 writer process (python3's sqlite3, SQLite's own library) that grows the WAL of a
# WAL-mode database to TARGET frames beside other writers: 100-row transactions of 900-byte blobs
# into TABLE(v) (wal_autocheckpoint off, synchronous NORMAL, a 2 ms pause after each so that the
# others get turns) until the -shm header's mxFrame reaches TARGET; prints "filled", then inserts
# one 200-byte row per commit until the file STOP exists; prints "done ROWS" (every row it
# committed) and closes (the last connection's checkpoint, when it is the last).
# The mxFrame is read through one descriptor of the -shm kept open for the whole run: closing
# any descriptor of a file drops every POSIX lock this process holds on it, SQLite's read lock on
# the DMS byte among them, and another connection would then take itself for the first and
# truncate the -shm under this one (SIGBUS). The -wal's size is no measure: walnut extends the
# file ahead of its frames (in chunks, or zeroed ahead).
# usage: python3 sqlite-wal-filler.py DB TARGET STOP TABLE
import os
import sqlite3
import struct
import sys
import time

db, target, stop, table = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
c = sqlite3.connect(db, timeout=60, isolation_level=None)
c.execute('PRAGMA wal_autocheckpoint=0')
c.execute('PRAGMA synchronous=NORMAL')
c.execute('SELECT count(*) FROM sqlite_schema').fetchone()  # attached to the -shm from here on
shm = os.open(db + '-shm', os.O_RDONLY)  # never closed before the connection is


def mx_frame():
    return struct.unpack('=I', os.pread(shm, 4, 16))[0]


rows = 0
while mx_frame() < target:
    c.execute('BEGIN IMMEDIATE')
    c.executemany('INSERT INTO %s(v) VALUES (randomblob(900))' % table, ((),) * 100)
    c.execute('COMMIT')
    rows += 100
    time.sleep(0.002)
print('filled', flush=True)
while not os.path.exists(stop):
    c.execute('INSERT INTO %s(v) VALUES (randomblob(200))' % table)
    rows += 1
    time.sleep(0.001)
print('done', rows, flush=True)
c.close()
os.close(shm)
