// Committing through the wal-index the way a writer must (until lib/commit lands): a read
// snapshot, WRITE for that snapshot, append + index + publish, release. Retries when another
// connection committed in between (BusySnapshot). And a store's commits counted in page 1's
// user_version (commitsToUserVersion), beside other writers of the same database.
import { setTimeout as sleep } from 'node:timers/promises';

import type { Store } from '../../lib/commit/store';
import { isWalnutError } from '../../lib/errors';
import type { WalIndex } from '../../lib/wal-index/wal-index';
import type { Snapshot } from '../../lib/wal-index/snapshot';
import type { AppendResult, WalTransaction } from '../../lib/wal/wal-file';

export async function commitVia(index: WalIndex, txns: WalTransaction[], build?: (snap: Snapshot) => Promise<WalTransaction[]>): Promise<AppendResult> {
  for (;;) {
    const snap = await index.beginRead();
    try {
      const work = build ? await build(snap) : txns;
      try {
        await index.beginWrite(snap);
      } catch (e) {
        if (isWalnutError(e, 'WALNUT_BUSY') && e.reason === 'BusySnapshot') continue;
        throw e;
      }
      try {
        return await index.appendAndPublish(work, 'data');
      } finally {
        index.endWrite();
      }
    } finally {
      snap.release();
    }
  }
}

/**
 * Transactions of `store` that add 1 to page 1's user_version (a read-modify-write of page 1,
 * offset 60), one after another with a 2 ms pause (the write lock left to the others now and
 * then), until `over()`: how many were acknowledged. A first-committer-wins conflict or a busy
 * write lock (another writer) only costs that turn; PRAGMA user_version then equals the count.
 */
export async function commitsToUserVersion(store: Store, over: () => boolean): Promise<number> {
  let acked = 0;
  while (!over()) {
    const tx = store.begin();
    const page1 = await tx.read(1);
    page1.writeUInt32BE(page1.readUInt32BE(60) + 1, 60);
    tx.write(1, page1);
    try {
      await tx.commit();
      acked++;
    } catch (e) {
      if (!isWalnutError(e, 'WALNUT_CONFLICT') && !isWalnutError(e, 'WALNUT_BUSY')) throw e;
    }
    await sleep(2);
  }
  return acked;
}
