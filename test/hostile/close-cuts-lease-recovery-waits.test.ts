// close() while a commit and a snapshot() wait to recover a torn wal-index header (its two copies
// differ) under the store's own write lease (holdWriteLease: WRITE is this connection's) while
// another process (lock-holder.js) holds RECOVER or CKPT: the commit's run (beginWriteRun under
// the lease, as under a kept run) and the snapshot, finding WRITE this connection's, wait for
// CKPT and RECOVER to recover it (WalIndex.header). Those waits were not cut (a torn header's
// other waits are: close-cuts-read-lock-waits): close() waited 19.5 s of the 20 s busy timeout
// with them, and both failed WALNUT_BUSY BusyCheckpoint. Now close() settles within
// CLOSE_MS_AT_MOST (~15 ms measured), both reject WALNUT_CLOSED, reason RecoveryWaitCut, and
// nothing is left held: once the other process let go, sqlite3 checkpoints the WAL whole and
// takes WRITE at once, every acknowledged commit is there, and a fresh store reads and commits.
import { describe, expect, it } from 'vitest';

import { open } from '../../lib/commit/store';
import { SHM_LOCK } from '../../lib/format/shm-header';
import { holdLock, release } from '../helpers/children';
import { BUSY_TIMEOUT_MS, closeDuringTheWait, commitUserVersion, newCutDatabase, nothingHeld, outcome, page1WithUserVersion, tearHeader } from '../helpers/close-cut';
import { tmpDir } from '../helpers/tmp';


const dir = tmpDir();
const newDatabase = (): string => newCutDatabase(dir);



describe("close() cuts waits to recover a torn header under the store's write lease (busyTimeout 20 s)", () => {
  for (const other of ['RECOVER', 'CKPT'] as const) {
    it(`a commit and a snapshot() waiting to recover a torn header under the store's write lease while another process holds ${other}: close() settles at once, they reject WALNUT_CLOSED RecoveryWaitCut, nothing held`, async () => {
      const file = newDatabase();
      const store = await open(file, { busyTimeout: BUSY_TIMEOUT_MS, shareLane: false, autoCheckpoint: false });
      try {
        await commitUserVersion(store, 11);
        const page12 = await page1WithUserVersion(store, 12);
        await store.holdWriteLease();
        const holder = await holdLock(`${file}-shm`, SHM_LOCK[other], 1, 'exclusive');
        try {
          tearHeader(file);
          const commit = outcome(store.commit([{ pgno: 1, data: page12 }]));
          const snapshot = outcome(store.snapshot());
          await closeDuringTheWait(() => store.close());
          expect([await commit, await snapshot]).toEqual(['WALNUT_CLOSED/RecoveryWaitCut', 'WALNUT_CLOSED/RecoveryWaitCut']);
        } finally {
          await release(holder);
        }
        await nothingHeld(file, 11);
      } finally {
        await store.close();
      }
    });
  }
});
