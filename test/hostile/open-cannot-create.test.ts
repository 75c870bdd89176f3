// open() of a database it cannot create: a path in a directory that is not there, a path
// through a regular file, a dangling link into a missing directory, a name too long. SQLite says
// SQLITE_CANTOPEN for each, and restore() and the walnut command say WALNUT_CANTOPEN for a
// database they cannot open; open() said WALNUT_IO (the create's errno), as if the disk had
// failed. Now WALNUT_CANTOPEN with the errno, syscall and path kept; nothing is created.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { open } from '../../lib/open';
import { openDatabase } from '../../lib/sql';
import { expectRejectsWalnut } from '../helpers/expect-error';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();

describe('open() of a database it cannot create', () => {
  it('is WALNUT_CANTOPEN with errno, syscall and path (store and walnut/sql), creating nothing', async () => {
    const file = path.join(dir, 'plain');
    fs.writeFileSync(file, 'x');
    const dangling = path.join(dir, 'dangling.db');
    fs.symlinkSync(path.join(dir, 'gone', 'x.db'), dangling);
    const cases: [string, number][] = [
      [path.join(dir, 'missing', 'x.db'), 2], // ENOENT
      [path.join(file, 'x.db'), 20], // ENOTDIR
      [dangling, 2],
      [path.join(dir, `${'n'.repeat(300)}.db`), 36], // ENAMETOOLONG
    ];
    for (const [db, errno] of cases) {
      const err = await expectRejectsWalnut(open(db), 'WALNUT_CANTOPEN', { errno, syscall: 'open' });
      expect(err.path, db).toBeDefined();
      await expectRejectsWalnut(openDatabase(db), 'WALNUT_CANTOPEN', { errno });
    }
    expect(fs.readdirSync(dir).sort()).toEqual(['dangling.db', 'plain']);
  });
});
