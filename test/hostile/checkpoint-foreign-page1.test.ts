// A WAL whose committed page 1 is not this database's header (its page-size field says 1024 in
// a 4096-byte database, or the magic is gone) beside an intact WAL-mode file header: what another
// writer's bug or damage under an intact checksum chain leaves. walnut's own commits refuse such a
// page 1; an open takes the file's header without reading the WAL, so this one was opened, and
// the checkpoint (an explicit one, or the last close()'s) copied the header into the file: the
// next open read a file of 4096-byte pages as 1024-byte ones. sqlite3 fails such a database
// ("malformed database schema") and never checkpoints it. Now the checkpoint is WALNUT_CORRUPT
// (reason Page1Header) and copies nothing; the file stays as it was, and a database whose WAL
// gets a good page 1 again checkpoints as before.
import * as fs from 'node:fs';
import { describe, expect, it } from 'vitest';

import { open } from '../../lib';
import { expectRejectsWalnut } from '../helpers/expect-error';
import { rewritePage1InWal, sqliteWritesWal } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();

const cases = [
  { name: 'page-size', change: (page: Buffer) => page.writeUInt16BE(1024, 16), says: /says the page size is 1024/ },
  { name: 'magic', change: (page: Buffer) => (page[0] = 0x41), says: /is not a SQLite database header/ },
];

describe('a checkpoint of a WAL whose page 1 is not this database header', () => {
  for (const c of cases) {
    it(`${c.name}: WALNUT_CORRUPT (Page1Header), nothing copied, by checkpoint() or by close()`, async () => {
      const { db, wal } = sqliteWritesWal(dir, `foreign-page1-${c.name}`, 4096, (s) => {
        s.exec("CREATE TABLE t(w, v); INSERT INTO t VALUES (0, 'hello')");
      });
      rewritePage1InWal(wal, c.change);
      const before = fs.readFileSync(db);
      const store = await open(db);
      try {
        expect(store.pageSize).toBe(4096);
        const err = await expectRejectsWalnut(store.checkpoint('truncate'), 'WALNUT_CORRUPT', { reason: 'Page1Header', pgno: 1 });
        expect(err.message).toMatch(c.says);
        expect(fs.readFileSync(db).equals(before)).toBe(true);
      } finally {
        await store.close(); // the last connection's checkpoint fails the same way: the files are kept
      }
      expect(fs.readFileSync(db).equals(before)).toBe(true);
      expect(fs.existsSync(wal)).toBe(true);
      const again = await open(db);
      try {
        expect(again.pageSize).toBe(4096); // not read at the other size
      } finally {
        await again.close();
      }
    });
  }

  it('a good page 1 committed after the bad one is copied: the newest frame of page 1 decides', async () => {
    const { db, wal } = sqliteWritesWal(dir, 'foreign-page1-superseded', 4096, (s) => {
      s.exec("CREATE TABLE t(w, v); INSERT INTO t VALUES (0, 'hello')");
    });
    rewritePage1InWal(wal, cases[0]!.change);
    const store = await open(db);
    try {
      const page1 = fs.readFileSync(db).subarray(0, 4096); // the file's own (good) page 1, committed again
      await store.commit([{ pgno: 1, data: page1 }]);
      const r = await store.checkpoint('truncate');
      expect(r).toMatchObject({ busy: false, walFrames: 0 });
    } finally {
      await store.close();
    }
    const head = fs.readFileSync(db).subarray(16, 18).readUInt16BE(0);
    expect(head).toBe(4096);
  });
});
