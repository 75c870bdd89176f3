// The commit lane was found by the database file's (device, inode) alone, so a store opened
// through a second hard link (b.db, the same inode as a.db) joined a.db's lane: its commits were
// written by a.db's store into a.db-wal, and acknowledged, while its own connection reads
// b.db-wal and b.db-shm (-wal and -shm are named after the path, as SQLite names them): a store
// that did not see its own acknowledged commit. The lane is keyed by the database's real path
// too: a name by symbolic link (the same real path, the same -wal) joins the lane. A hard link's
// name would have a -wal of its own, a second WAL of the same pages: while the file is open in
// this process under its other name, an open through the link is refused (WALNUT_CANTOPEN reason
// HardLink, nothing created; test/interop/close-names); once that name's connections are closed
// the link opens, with its own lane, and reads its own commits.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect, it } from 'vitest';

import { open } from '../../lib/index';
import { expectRejectsWalnut } from '../helpers/expect-error';
import { tmpDir } from '../helpers/tmp';

const page = (v: number) => Buffer.alloc(4096, v);

it('a store opened by a symbolic link joins the lane; one by a hard link is refused while the other name is open, then has its own lane and reads its own commits', async () => {
  const dir = tmpDir();
  const a = await open(path.join(dir, 'a.db'));
  fs.linkSync(path.join(dir, 'a.db'), path.join(dir, 'b.db'));
  fs.symlinkSync('a.db', path.join(dir, 'c.db'));
  try {
    await a.commit([{ pgno: 2, data: page(1) }]);

    await expectRejectsWalnut(open(path.join(dir, 'b.db')), 'WALNUT_CANTOPEN', { reason: 'HardLink' });
    expect(fs.existsSync(path.join(dir, 'b.db-wal')) || fs.existsSync(path.join(dir, 'b.db-shm'))).toBe(false);

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

  const b = await open(path.join(dir, 'b.db'));
  try {
    expect(b.metrics().lane!.members).toBe(1);
    expect(b.metrics().lane!.leader).toBe(true);
    const before = await b.snapshot();
    expect((await before.read(3))[0]).toBe(3); // a's commits, checkpointed into the one file at its close
    before.release();
    await b.commit([{ pgno: 2, data: page(2) }]);
    const snap = await b.snapshot();
    expect((await snap.read(2))[0]).toBe(2);
    snap.release();
  } finally {
    await b.close();
  }
});
