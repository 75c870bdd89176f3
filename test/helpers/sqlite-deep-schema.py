# Writes, with python3's sqlite3 (SQLite's own library, on the native stack), schema entries
# nested deeper than SQLite's stack in wasm takes, for walnut/sql's schema-load tests
# (test/hostile/sql-schema-stack-overflow.test.ts). The nesting is a chain of COLLATE
# operators: SQLite's expression depth limit (SQLITE_MAX_EXPR_DEPTH, 1000 natively) does not
# count them, so native SQLite parses a chain of tens of thousands, and SQLite in wasm recurses
# once per link while it loads the schema (a chain of `+`, held to 1000 natively, is not deep
# enough to overflow it).
#   init PATH          a WAL-mode database with table t(x) holding the row 1
#   deepen PATH DEPTH  CREATE VIEW deep (the chain, DEPTH links), then a UNIQUE index on t(x),
#                      in that order in sqlite_master: a schema load that stops at the view
#                      misses the index
#   heal PATH          DROP VIEW deep
# usage: python3 sqlite-deep-schema.py COMMAND PATH [DEPTH]   (prints PRAGMA integrity_check)
import sqlite3
import sys

cmd, path = sys.argv[1], sys.argv[2]
c = sqlite3.connect(path, timeout=5, isolation_level=None)
if cmd == 'init':
    c.execute('PRAGMA journal_mode=WAL')
    c.execute('CREATE TABLE t(x)')
    c.execute('INSERT INTO t VALUES (1)')
elif cmd == 'deepen':
    depth = int(sys.argv[3])
    c.execute('BEGIN')
    c.execute('CREATE VIEW deep AS SELECT x' + ' COLLATE BINARY' * depth + ' AS y FROM t')
    c.execute('CREATE UNIQUE INDEX t_x ON t(x)')
    c.execute('COMMIT')
elif cmd == 'heal':
    c.execute('DROP VIEW deep')
else:
    raise SystemExit('unknown command ' + cmd)
print(c.execute('PRAGMA integrity_check').fetchone()[0])
c.close()
