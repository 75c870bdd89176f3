// store.begin()'s transaction conflicts with every commit made after begin() returned that
// touches its pages (README: "WALNUT_CONFLICT if page 7 changed since begin()"), also when its
// snapshot cannot be had at once. begin() takes the snapshot synchronously where a read mark can
// be had (6c4b3ea); where it cannot (another process's checkpointer holds the read slots while
// it moves their marks, as SQLite's checkpoint and WAL restart do), the snapshot came later,
// after a lone commit made right after begin(), so the transaction read that commit and its own
// commit overwrote it without a conflict: a lost update. Here the read slots are held by another
// process (lock-holder.js) while begin() and the commit run.
import * as path from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';

import { open } from '../../lib/commit/store';
import { SHM_LOCK } from '../../lib/format/shm-header';
import { holdLock, release } from '../helpers/children';
import { expectRejectsWalnut } from '../helpers/expect-error';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
const page = (v: number) => {
  const b = Buffer.alloc(4096, v & 0xff);
  b.writeUInt32BE(v, 0);
  return b;
};

describe('store.begin() while the read slots are busy', () => {
  it('a commit made right after begin() that changes a page the transaction writes is its conflict, not a lost update', async () => {
    const db = path.join(dir, 'busy-slots.db');
    const store = await open(db, { autoCheckpoint: false, busyTimeout: 5000 });
    onTestFinished(() => store.close());
    await store.commit([{ pgno: 2, data: page(1) }]); // frames not checkpointed: a reader needs a WAL read mark
    const holder = await holdLock(`${db}-shm`, SHM_LOCK.READ(1), 4, 'exclusive');
    onTestFinished(() => void holder.kill('SIGKILL'));
    const tx = store.begin();
    const other = store.commit([{ pgno: 2, data: page(2) }]); // after begin(): page 2 changed since
    await new Promise((r) => setTimeout(r, 50));
    await release(holder);
    await other;
    const seen = (await tx.read(2)).readUInt32BE(0);
    tx.write(2, page(seen + 10));
    await expectRejectsWalnut(tx.commit(), 'WALNUT_CONFLICT');
    const after = await store.snapshot();
    expect((await after.read(2)).readUInt32BE(0)).toBe(2); // the other commit stays
    after.release();
  });
});
