// Hostile: restore() to a directory on a full disk (a real tmpfs filled up). Before its temporary
// file, a restore registers in the target's marker (`.<name>.restore-asides`): it creates the
// marker, then writes its magic and the restore's entry. On a full disk that write fails
// (WALNUT_FULL) and the restore was refused, as it should be, but the marker it had just
// created stayed beside the target, 0 bytes, hidden, listing nothing, until some later walnut
// open or restore of that target removed it (a sqlite3 user never does). A refused restore
// changes nothing (as a refused open: open-full-disk-new-file): the marker it made goes before
// the error is reported, and once space is freed the restore goes ahead.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { restore } from '../../lib/export/restore';
import { WalnutError } from '../../lib/index';
import { newDatabaseStream } from '../helpers/new-database-stream';
import { oneRowOldDatabase } from '../helpers/old-wal-database';
import { Database } from '../helpers/sqlite';
import { fillUp, MOUNT_SKIP, smallTmpfs } from '../helpers/small-fs';
import { tmpDir } from '../helpers/tmp';

describe.skipIf(MOUNT_SKIP !== null)(`restore() on a full disk${MOUNT_SKIP === null ? '' : ` (${MOUNT_SKIP})`}`, () => {
  for (const force of [false, true]) {
    it(`${force ? 'over an old database (force)' : 'to a new database'}: WALNUT_FULL, no marker left beside the target`, async () => {
      const ark = fs.readFileSync(await newDatabaseStream(fs.mkdtempSync(path.join(tmpDir(), 'stream-')), false));
      const dir = smallTmpfs('256k');
      const target = path.join(dir, 'restored.db');
      if (force) {
        oneRowOldDatabase(target);
      }
      const before = fs.readdirSync(dir).sort();
      const filler = fillUp(dir);
      const e = await restore(ark, target, { force }).then(() => null, (err: unknown) => err);
      expect(e).toBeInstanceOf(WalnutError);
      expect((e as WalnutError).code).toBe('WALNUT_FULL');
      expect(fs.readdirSync(dir).filter((n) => n !== 'filler').sort()).toEqual(before); // was: .restored.db.restore-asides, 0 bytes
      fs.rmSync(filler);
      const r = await restore(ark, target, { force });
      expect(r.dbPages).toBeGreaterThan(0);
      const db = new Database(target, { readonly: true });
      try {
        expect(db.prepare('SELECT count(*) AS n FROM t WHERE who = ?').get('new')).toEqual({ n: 7 });
      } finally {
        db.close();
      }
      expect(fs.readdirSync(dir).filter((n) => n.includes('.restore-'))).toEqual([]);
    });
  }
});
