// The commit lane was found by the database file's (device, inode) alone, so a store opened
// through a second hard link (b.db, the same inode as a.db) joined a.db's lane: its commits were
// written by a.db's store into a.db-wal, and acknowledged, while its own connection reads
// b.db-wal and b.db-shm (-wal and -shm are named after the path, as SQLite names them): a store
// that did not see its own acknowledged commit. The lane is now keyed by the database's real
// path too: a name by symbolic link (the same real path, the same -wal) still joins the lane;
// a hard link's name has its own -wal, so its store has its own lane, as it has its own
// connection (two names of one database stay SQLite's hazard: each has its own WAL).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect, it } from 'vitest';

import { open } from '../../lib/index';
import { tmpDir } from '../helpers/tmp';

const page = (v: number) => Buffer.alloc(4096, v);

it('a store opened by a hard link has its own lane and reads its own commits; one opened by a symbolic link joins the lane', async () => {
  const dir = tmpDir();
  const a = await open(path.join(dir, 'a.db'));
  try {
    await a.commit([{ pgno: 2, data: page(1) }]);
    fs.linkSync(path.join(dir, 'a.db'), path.join(dir, 'b.db'));
    fs.symlinkSync('a.db', path.join(dir, 'c.db'));

    const b = await open(path.join(dir, 'b.db'));
    try {
      expect(b.metrics().lane!.members).toBe(1);
      expect(b.metrics().lane!.leader).toBe(true);
      await b.commit([{ pgno: 2, data: page(2) }]);
      const snap = await b.snapshot();
      expect((await snap.read(2))[0]).toBe(2); // it read page 2 as a.db-wal's 1 or the file's before: its own commit was in a.db-wal
      snap.release();
    } finally {
      await b.close();
    }

    const c = await open(path.join(dir, 'c.db'));
    try {
      expect(c.metrics().lane!.members).toBe(2);
      expect(c.metrics().lane!.leader).toBe(false);
      await c.commit([{ pgno: 3, data: page(3) }]);
      const snap = await c.snapshot();
      expect((await snap.read(3))[0]).toBe(3);
      snap.release();
      const mine = await a.snapshot();
      expect((await mine.read(3))[0]).toBe(3);
      mine.release();
    } finally {
      await c.close();
    }
  } finally {
    await a.close();
  }
});
