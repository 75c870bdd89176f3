// WalnutFile.lockWithin()'s bursts (a write lease's wait for WRITE: wal-index.ts #spinForWrite)
// spin on an I/O thread for up to their whole time. They ran on the background lane, the one
// thread that also runs every checkpoint step (WAL sync, page copy, database sync), the WAL's
// zero-ahead and the FEC sidecar's writes of the environment: each of those queued behind
// whatever bursts were queued before it. Measured beside stores waiting for leases on databases
// a python3 sqlite3 process kept locked: a 3 ms passive checkpoint took 48 ms beside 8 such
// stores and 100 ms beside 16 (bursts of 2 ms, one per store, in front of each of its steps).
// Now bursts have a lane of their own (walnut-lk). Shown by order, not time: while a burst of a
// second waits for a lock another descriptor holds, a background-lane fdatasync and a store's
// checkpoint both settle before it (before, both settled after it).
import * as fs from 'node:fs';
import * as path from 'node:path';

import { expect, test } from 'vitest';

import { open } from '../../lib/index';
import { WalnutFile } from '../../lib/io/file';
import { tmpDir } from '../helpers/tmp';

test('a burst waiting a second for a held lock holds up neither a background-lane sync nor a checkpoint', async () => {
  const dir = tmpDir();
  const lockFile = path.join(dir, 'lock.bin');
  fs.writeFileSync(lockFile, '');
  const holder = WalnutFile.openSync(lockFile);
  expect(holder.tryLock(120, 1, 'exclusive')).toBe(true);
  const waiter = WalnutFile.openSync(lockFile);

  const bgFile = await WalnutFile.open(path.join(dir, 'bg.bin'), { create: true, lane: 'background' });
  const store = await open(path.join(dir, 'x.db'), { autoCheckpoint: false });
  const page = Buffer.alloc(store.pageSize, 5);
  for (let i = 0; i < 20; i++) await store.commit([{ pgno: 2 + (i % 5), data: page }]);

  const settled: string[] = [];
  const burst = waiter.lockWithin(120, 1, 'exclusive', 1_000_000).then((took) => {
    settled.push('burst');
    return took;
  });
  await new Promise((resolve) => setTimeout(resolve, 10)); // the burst is running
  const synced = bgFile.fdatasync().then(() => settled.push('background fdatasync'));
  const checkpointed = store.checkpoint('passive').then((r) => {
    settled.push('checkpoint');
    return r;
  });
  await Promise.all([synced, checkpointed]);
  expect(settled).toEqual(expect.arrayContaining(['background fdatasync', 'checkpoint']));
  expect(settled, settled.join(', ')).not.toContain('burst'); // both went by while it still tried
  expect((await checkpointed).busy).toBe(false);

  holder.unlock(120, 1);
  expect(await burst).toBe(true);
  waiter.closeSync();
  holder.closeSync();
  await bgFile.close();
  await store.close();
});
