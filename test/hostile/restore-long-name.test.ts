// Hostile: walnut restore --force to a database whose name is long (in bytes: 73 CJK characters
// are 219), which SQLite and python3 use as any other. restore's own names beside it are longer
// (the temporary file .<name>.restore-<12 hex>: 22 bytes more; its asides, .aside-journal: 36):
// - a name of 222 bytes: the restore replaced the database, then looked for the asides at names
//   too long to exist (lstat ENAMETOOLONG), took that for a failure and exited 2 (WALNUT_IO
//   "cannot replace ... the restored database is in place"), and every settle of its marker failed
//   the same way: .<name>.restore-asides stayed for good. Now such a name is taken as absent: exit
//   0, the new rows, nothing of the restore left.
// - a name of 236 bytes (its temporary file's name does not fit): the restore was refused, "cannot
//   create a file in <dir> (ENAMETOOLONG)", and left its marker for good. Now it is refused
//   naming the file whose name is too long (WALNUT_CANTOPEN, reason NameTooLong), the old
//   database untouched, nothing left.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';

import { spawnOutput } from '../helpers/children';
import { newDatabaseStream } from '../helpers/new-database-stream';
import { oldWalDatabase } from '../helpers/old-wal-database';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
const bin = path.resolve(__dirname, '..', '..', 'bin', 'walnut.js');
const walnut = (...args: string[]) => spawnOutput(process.execPath, [bin, ...args]);

const rows = (db: string): string => execFileSync('sqlite3', [db, "SELECT who || ':' || count(*) FROM t GROUP BY who; PRAGMA integrity_check"], { encoding: 'utf8' }).trim();

/** DIR/NAME/<`bytes` bytes of a name: CJK characters, then ASCII to the length, then .db>, the old database there. */
function longNamedOldDatabase(name: string, bytes: number): string {
  const d = path.join(dir, name);
  fs.mkdirSync(d);
  const cjk = '数'.repeat(Math.floor((bytes - 3) / 3));
  const file = `${cjk}${'x'.repeat(bytes - 3 - Buffer.byteLength(cjk))}.db`;
  expect(Buffer.byteLength(file)).toBe(bytes);
  const db = path.join(d, file);
  oldWalDatabase(db);
  expect(rows(db)).toBe('old:30\nok');
  return db;
}

const restoreFiles = (db: string): string[] => fs.readdirSync(path.dirname(db)).filter((f) => f.includes('.restore-'));

describe('walnut restore --force to a database with a long name', () => {
  beforeAll(async () => {
    await newDatabaseStream(dir, true);
  });

  it('222 bytes (73 CJK characters and .db): replaced, exit 0, nothing of the restore left', async () => {
    const db = longNamedOldDatabase('fits', 222);
    const r = await walnut('restore', path.join(dir, 'new.ark'), db, '--force');
    expect(r.status, r.stderr).toBe(0);
    expect(rows(db)).toBe('new:7\nok');
    expect(restoreFiles(db)).toEqual([]);
    const again = await walnut('restore', path.join(dir, 'new.ark'), db, '--force'); // (and again, over a database with no -wal)
    expect(again.status, again.stderr).toBe(0);
    expect(restoreFiles(db)).toEqual([]);
  }, 60_000);

  it('236 bytes (its temporary file\'s name does not fit): refused naming that file, the old database untouched, nothing left', async () => {
    const db = longNamedOldDatabase('too-long', 236);
    const r = await walnut('restore', path.join(dir, 'new.ark'), db, '--force');
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/WALNUT_CANTOPEN: cannot restore to .*: its name is too long for the file a restore makes beside it \(\..*\.restore-[0-9a-f]{12}, 258 bytes\)/);
    expect(rows(db)).toBe('old:30\nok');
    expect(restoreFiles(db)).toEqual([]);
  }, 60_000);
});
