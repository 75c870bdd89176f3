// walnut/sql text holding U+0000: wa-sqlite binds a string as a NUL-terminated C string and
// reads a TEXT column the same way, so 'a\0bc' was stored as 'a' (silently) and a TEXT value with
// a NUL inside read back cut. better-sqlite3 (whose shape walnut/sql follows) and SQLite keep
// the whole text: now walnut/sql does too, both ways, and sqlite3 sees the same bytes.
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { openDatabase } from '../../lib/sql';
import { Database } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();

describe('walnut/sql text with U+0000 inside', () => {
  it('is bound and read whole (positional, named, in a transaction), as better-sqlite3 does', async () => {
    const file = path.join(dir, 'nul.db');
    const texts = ['a\u0000bc', '\u0000', 'x\u0000', 'é\u0000€😀'];
    const db = await openDatabase(file, { readConnections: 1 });
    try {
      await db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)');
      await db.run('INSERT INTO t(v) VALUES (?)', [texts[0]!]);
      await db.run('INSERT INTO t(v) VALUES (:v)', { v: texts[1]! });
      await db.transaction(async (tx) => {
        await tx.run('INSERT INTO t(v) VALUES (@v)', { v: texts[2]! });
        await tx.run('INSERT INTO t(v) VALUES (?)', [texts[3]!]);
      });
      const want = texts.map((v) => ({ v, hex: Buffer.from(v).toString('hex').toUpperCase() }));
      expect(await db.all('SELECT v, hex(v) AS hex FROM t ORDER BY id')).toEqual(want); // a read connection
      expect(await db.transaction((tx) => tx.all('SELECT v, hex(v) AS hex FROM t ORDER BY id'))).toEqual(want); // the writer
      expect(await db.get("SELECT CAST(x'610062' AS TEXT) AS v")).toEqual({ v: 'a\u0000b' });
    } finally {
      await db.close();
    }
    const peer = new Database(file, { readonly: true });
    expect(peer.prepare('SELECT v FROM t ORDER BY id').all()).toEqual(texts.map((v) => ({ v })));
    peer.close();
    expect(execFileSync('sqlite3', [file, 'PRAGMA integrity_check'], { encoding: 'utf8' })).toBe('ok\n');
  });
});
