// Hostile: open() of a new database on a full disk (a real tmpfs filled up). The file was
// created (O_EXCL) and its page 1 could not be written: open() failed with WALNUT_FULL and left
// a 0-byte file of that name behind — SQLite's "empty database", which the next open() then
// took as one (and walnut/sql's openDatabase the same). A refused open changes nothing: the
// file it created and could not fill is now removed before the error is reported; once space is
// freed, open() creates the database as usual.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { open, WalnutError } from '../../lib/index';
import { openDatabase } from '../../lib/sql';
import { fillUp, MOUNT_SKIP, smallTmpfs } from '../helpers/small-fs';

describe.skipIf(MOUNT_SKIP !== null)(`open() of a new database on a full disk${MOUNT_SKIP === null ? '' : ` (${MOUNT_SKIP})`}`, () => {
  it('fails with WALNUT_FULL and leaves no file behind', async () => {
    const dir = smallTmpfs('512k');
    const filler = fillUp(dir);
    for (const [name, opening] of [
      ['a.db', (f: string) => open(f, { pageSize: 4096 })],
      ['s.db', (f: string) => openDatabase(f)],
    ] as const) {
      const file = path.join(dir, name);
      const e = await (opening as (f: string) => Promise<unknown>)(file).then(() => null, (err: unknown) => err);
      expect(e).toBeInstanceOf(WalnutError);
      expect((e as WalnutError).code).toBe('WALNUT_FULL');
      expect(fs.existsSync(file)).toBe(false); // was a 0-byte file
    }
    fs.rmSync(filler);
    const store = await open(path.join(dir, 'a.db'), { pageSize: 4096 });
    await store.commit([{ pgno: 2, data: Buffer.alloc(4096, 5) }]);
    await store.close();
    expect(fs.statSync(path.join(dir, 'a.db')).size).toBe(8192);
  });
});
