// Committing through the wal-index the way a writer must (until lib/commit lands): a read
// snapshot, WRITE for that snapshot, append + index + publish, release. Retries when another
// connection committed in between (BusySnapshot).
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
