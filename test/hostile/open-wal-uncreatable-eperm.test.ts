// Hostile: a WAL-mode database whose directory refuses to create the -wal with EPERM (an
// immutable directory, chattr +i) rather than EACCES (a directory the user may not write). Both
// are "no permission" and SQLite says SQLITE_CANTOPEN for either; walnut said WALNUT_CANTOPEN for
// EACCES but WALNUT_IO for EPERM, as if a disk had failed. Now both are WALNUT_CANTOPEN (errno
// kept), and the database is left as it was.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

import { open } from '../../lib/index';
import { openDatabase } from '../../lib/sql';
import { expectRejectsWalnut } from '../helpers/expect-error';
import { immutableSkip } from '../helpers/small-fs';
import { Database as Sqlite } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';

const root = tmpDir();
const SKIP = immutableSkip(root);
const frozen: string[] = [];

afterEach(() => {
  for (const dir of frozen.splice(0)) execFileSync('chattr', ['-i', dir]);
});

describe.skipIf(SKIP !== null)(`open() where the -wal cannot be created: EPERM${SKIP === null ? '' : ` (${SKIP})`}`, () => {
  it('is WALNUT_CANTOPEN with errno EPERM, as EACCES is; the database stays as it was', async () => {
    const dir = path.join(root, 'frozen');
    fs.mkdirSync(dir);
    const file = path.join(dir, 'app.db');
    const db = new Sqlite(file);
    db.pragma('journal_mode = WAL');
    db.exec('CREATE TABLE t(x)');
    db.close(); // the last connection removes the -wal and -shm
    const before = fs.readFileSync(file);
    execFileSync('chattr', ['+i', dir]);
    frozen.push(dir);
    await expectRejectsWalnut(open(file), 'WALNUT_CANTOPEN', { errno: 1 }); // was WALNUT_IO
    await expectRejectsWalnut(openDatabase(file), 'WALNUT_CANTOPEN', { errno: 1 });
    expect(fs.readdirSync(dir)).toEqual(['app.db']);
    expect(fs.readFileSync(file).equals(before)).toBe(true);
  });
});
