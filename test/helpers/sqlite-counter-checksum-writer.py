# A sqlite3 writer process (python3's sqlite3, SQLite's own library) whose every transaction
# leaves one whole state readers can check: t's counter row (id 1) is K, its checksum row (id 2)
# is checksum(K) = K * 2654435761 mod 2^32, and g holds K rows: all three written by transaction
# K, so a reader that sees them disagree saw part of a transaction. It creates the WAL-mode
# database (t, g, and f for filler blobs), then grows the WAL to TARGET frames (each transaction
# also inserting 400 blobs of 3,000 bytes into f: ~400 frames a commit; wal_autocheckpoint off,
# synchronous OFF); prints "filled"; then one transaction per millisecond (no blob) until the
# file STOP exists; prints "done K" (its last transaction) and closes. The mxFrame is read
# through one descriptor of the -shm kept open for the whole run (sqlite-wal-filler.py says why).
# usage: python3 sqlite-counter-checksum-writer.py DB TARGET STOP
import os
import sqlite3
import struct
import sys
import time

db, target, stop = sys.argv[1], int(sys.argv[2]), sys.argv[3]
c = sqlite3.connect(db, timeout=60, isolation_level=None)
c.execute('PRAGMA journal_mode=WAL')
c.execute('PRAGMA wal_autocheckpoint=0')
c.execute('PRAGMA synchronous=OFF')
c.execute('CREATE TABLE t(id INTEGER PRIMARY KEY, n INTEGER NOT NULL)')
c.execute('CREATE TABLE g(k INTEGER PRIMARY KEY)')
c.execute('CREATE TABLE f(v BLOB)')
c.execute('INSERT INTO t VALUES (1, 0), (2, 0)')
shm = os.open(db + '-shm', os.O_RDONLY)  # never closed before the connection is


def mx_frame():
    return struct.unpack('=I', os.pread(shm, 4, 16))[0]


k = 0


def commit(blobs):
    global k
    k += 1
    c.execute('BEGIN IMMEDIATE')
    c.execute('UPDATE t SET n = ? WHERE id = 1', (k,))
    c.execute('INSERT INTO g VALUES (?)', (k,))
    if blobs:
        c.executemany('INSERT INTO f VALUES (randomblob(3000))', ((),) * blobs)
    c.execute('UPDATE t SET n = ? WHERE id = 2', ((k * 2654435761) % 4294967296,))
    c.execute('COMMIT')


while mx_frame() < target:
    commit(400)
print('filled', flush=True)
while not os.path.exists(stop):
    commit(0)
    time.sleep(0.001)
print('done', k, flush=True)
c.close()
os.close(shm)
