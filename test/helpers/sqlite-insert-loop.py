# A sqlite3 writer as an application writes (python3's sqlite3 with its defaults: busy timeout
# 5 s, a deferred transaction opened by the INSERT): one-row INSERT INTO t(src) VALUES ('py') and
# UPDATE c SET n = n + 1 WHERE id = 1 (a counter the test's other writer counts too), commit(),
# and again at once, until SIGTERM. Its next INSERT takes WRITE a few microseconds after its
# commit let it go.
# usage: python3 sqlite-insert-loop.py DB
import sqlite3
import sys

c = sqlite3.connect(sys.argv[1])
while True:
    c.execute("INSERT INTO t(src) VALUES ('py')")
    c.execute('UPDATE c SET n = n + 1 WHERE id = 1')
    c.commit()
