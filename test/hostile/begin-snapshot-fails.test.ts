// store.begin() whose snapshot fails: with the -shm truncated under the connection (another
// process's doing: WALNUT_CORRUPT, reason ShmTruncated), begin() threw that synchronously since
// it takes its snapshot at once where it can (6c4b3ea); before, and when the snapshot is taken
// later, it is the rejection of the transaction's read() and commit(). Now always the latter:
// begin() throws only WALNUT_CLOSED and its argument refusal, before it does anything (README).
// An unused transaction leaves no unhandled rejection.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { open } from '../../lib/index';
import { expectRejectsWalnut } from '../helpers/expect-error';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();

describe('store.begin() when its snapshot fails', () => {
  it('returns a transaction whose read() and commit() reject WALNUT_CORRUPT (ShmTruncated); close() works', async () => {
    const db = path.join(dir, 'a.db');
    const store = await open(db, { autoCheckpoint: false });
    for (let i = 0; i < 5; i++) await store.commit([{ pgno: 2, data: Buffer.alloc(4096, i + 1) }]);
    fs.truncateSync(`${db}-shm`, 0);
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown): void => void unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    try {
      let tx: ReturnType<typeof store.begin> | undefined;
      let thrown: unknown;
      try {
        tx = store.begin();
      } catch (e) {
        thrown = e;
      }
      expect(thrown).toBeUndefined();
      await expectRejectsWalnut(tx!.read(2), 'WALNUT_CORRUPT', { reason: 'ShmTruncated' });
      const tx2 = store.begin();
      tx2.write(3, Buffer.alloc(4096, 9));
      await expectRejectsWalnut(tx2.commit(), 'WALNUT_CORRUPT', { reason: 'ShmTruncated' });
      store.begin(); // never used
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
    await store.close();
  });
});
