# A sqlite3 reader process (python3's sqlite3 module, SQLite's own library), driven line by line
# over stdin, so a test can open a database, hold a read transaction (a WAL read mark, as any
# SQLite reader takes) and end it at moments of its choosing. One reply line per command:
# "ok [value]" or "err <message>".
#   open PATH   connect (busy timeout 5 s, autocommit mode: no implicit transactions)
#   begin       BEGIN, then SELECT count(*) FROM sqlite_master: a read transaction at the WAL's end; replies the count
#   end         COMMIT (the read mark goes)
#   close       close the connection
# usage: python3 sqlite-reader.py   (ends at EOF)
import sqlite3
import sys

c = None
for line in sys.stdin:
    cmd, _, arg = line.strip().partition(' ')
    try:
        if cmd == 'open':
            c = sqlite3.connect(arg, timeout=5, isolation_level=None)
            out = 'ok'
        elif cmd == 'begin':
            c.execute('BEGIN')
            out = 'ok %d' % c.execute('SELECT count(*) FROM sqlite_master').fetchone()[0]
        elif cmd == 'end':
            c.execute('COMMIT')
            out = 'ok'
        elif cmd == 'close':
            c.close()
            c = None
            out = 'ok'
        else:
            out = 'err unknown command %r' % cmd
    except Exception as e:  # reported, not fatal: the test decides
        out = 'err %s' % str(e).replace('\n', ' ')
    sys.stdout.write(out + '\n')
    sys.stdout.flush()
