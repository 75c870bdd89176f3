// Hostile: the last close() may not remove the -wal and -shm because the directory forbids it
// with EPERM (an immutable directory here, chattr +i; a sticky directory such as /tmp where the
// files are another user's gives the same EPERM). SQLite's last connection leaves them then, and
// walnut meant to (a denied removal is not a failure). But node's fs.rmSync takes unlink's EPERM
// for "maybe a directory" and throws ENOTDIR from a readdir of the file instead, so close() -
// walnut/sql's db.close() too - rejected with that plain Error, not a WalnutError, though every
// frame was in the database file. Now close() resolves, both files stay, and the next open and
// sqlite3 read every committed row.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

import { open } from '../../lib/index';
import { openDatabase } from '../../lib/sql';
import { sqliteIntegrity } from '../helpers/sqlite-db';
import { Database as Sqlite } from '../helpers/sqlite';
import { immutableSkip } from '../helpers/small-fs';
import { tmpDir } from '../helpers/tmp';

const root = tmpDir();
const SKIP = immutableSkip(root);
const frozen: string[] = [];

afterEach(() => {
  for (const dir of frozen.splice(0)) execFileSync('chattr', ['-i', dir]);
});

/** A directory holding a WAL-mode database with table t and its (empty) -wal and -shm, made immutable. */
function frozenDirectory(name: string): string {
  const dir = path.join(root, name);
  fs.mkdirSync(dir);
  const file = path.join(dir, 'app.db');
  const db = new Sqlite(file);
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE t(x)');
  db.close();
  fs.writeFileSync(`${file}-wal`, '');
  fs.writeFileSync(`${file}-shm`, '');
  execFileSync('chattr', ['+i', dir]);
  frozen.push(dir);
  return file;
}

describe.skipIf(SKIP !== null)(`the last close() where the directory refuses to remove the -wal and -shm (EPERM)${SKIP === null ? '' : ` (${SKIP})`}`, () => {
  it('walnut/sql: db.close() resolves, the files stay, every row is in the database file', async () => {
    const file = frozenDirectory('sql');
    const db = await openDatabase(file);
    for (let i = 0; i < 5; i++) await db.run('INSERT INTO t VALUES (?)', [i]);
    await db.close(); // rejected: ENOTDIR: not a directory, scandir '.../app.db-shm'
    expect(fs.readdirSync(path.dirname(file)).sort()).toEqual(['app.db', 'app.db-shm', 'app.db-wal']);
    const again = await openDatabase(file);
    expect(await again.get('SELECT count(*) AS n FROM t')).toEqual({ n: 5 });
    await again.close();
    expect(sqliteIntegrity(file)).toEqual(['ok']);
  });

  it('store: close() resolves', async () => {
    const file = frozenDirectory('store');
    const store = await open(file);
    await store.close();
    expect(fs.existsSync(`${file}-wal`)).toBe(true);
  });
});
