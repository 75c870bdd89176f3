// walnut/sql on a database whose path is longer than 56 bytes: wa-sqlite's VFS base class tells
// SQLite paths are at most 64 bytes (mxPathname), and SQLite's pager refuses a database whose
// full path plus 8 bytes ("-journal") passes that, so openDatabase('/tmp/.../app.db') of 57+ bytes
// failed with WALNUT_SQL 'unable to open database file' (past 64: 'disk I/O error'), where
// walnut's open() and sqlite3 open it. Found by a follow-export stress run whose scratch
// directory names were long. Each path here is written through walnut/sql (writer and a read
// connection) and read back by sqlite3.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { openDatabase } from '../../lib/sql';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();

/** A path of exactly `bytes` UTF-8 bytes under `dir`, its last directory named with `ch`. */
function pathOf(bytes: number, ch: string): string {
  const tail = '/app.db';
  const room = bytes - Buffer.byteLength(dir) - 1 - tail.length;
  const per = Buffer.byteLength(ch);
  const name = ch.repeat(Math.floor(room / per)) + 'x'.repeat(room % per);
  const p = path.join(dir, name) + tail;
  expect(Buffer.byteLength(p)).toBe(bytes);
  fs.mkdirSync(path.dirname(p), { recursive: true });
  return p;
}

describe('walnut/sql on a database with a long path', () => {
  it.each([
    [56, 'a'],
    [57, 'b'],
    [65, 'c'],
    [200, 'd'],
    [250, 'é'], // 2-byte characters: SQLite counts bytes
  ])('a path of %i bytes: opened, written and read; sqlite3 finds the rows', async (bytes, ch) => {
    const file = pathOf(bytes, ch);
    const db = await openDatabase(file, { readConnections: 1 });
    try {
      await db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)');
      await db.run('INSERT INTO t(v) VALUES (?)', ['one']);
      await db.transaction(async (tx) => {
        await tx.run('INSERT INTO t(v) VALUES (?)', ['two']);
      });
      expect(await db.all('SELECT v FROM t ORDER BY id')).toEqual([{ v: 'one' }, { v: 'two' }]);
    } finally {
      await db.close();
    }
    expect(execFileSync('sqlite3', [file, 'PRAGMA integrity_check; SELECT group_concat(v) FROM t'], { encoding: 'utf8' })).toBe('ok\none,two\n');
  });
});
