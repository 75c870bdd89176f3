// close() while a call waits for a read lock another process holds (busyTimeout 20 s): a
// full/restart/truncate checkpoint that holds WRITE and waits for a python3 sqlite3 reader whose
// read mark is below the WAL's end (READ(i) exclusive), and a snapshot() or a transaction's
// snapshot waiting for a read slot while another process (lock-holder.js) holds READ(1..4)
// exclusively (no read mark can be had; the WAL holds frames the database file lacks, so READ(0)
// will not do); and a snapshot() and a commit waiting to read a torn wal-index header (its two
// copies differ) while another process holds WRITE (only a WRITE holder may recover it): they
// reject RecoveryWaitCut (under the store's own write lease: close-cuts-lease-recovery-waits).
// close() waited for them the rest of the busy timeout; now it cuts those waits
// (WalIndex.cutLockWaits): it settles within CLOSE_MS_AT_MOST (an honest, generous bound), each
// waiting call rejects WALNUT_CLOSED, reason ReadLockWaitCut, and nothing is left held: once
// the other process let go, sqlite3 checkpoints the WAL whole (TRUNCATE, not busy) and takes
// WRITE at once, every acknowledged commit is there, and a fresh store reads and commits.
import { describe, expect, it } from 'vitest';

import { open } from '../../lib/commit/store';
import { SHM_LOCK } from '../../lib/format/shm-header';
import { holdLock, pythonReader, release } from '../helpers/children';
import { BUSY_TIMEOUT_MS, closeDuringTheWait, commitUserVersion, newCutDatabase, nothingHeld, outcome, page1WithUserVersion, tearHeader } from '../helpers/close-cut';
import { tmpDir } from '../helpers/tmp';


const dir = tmpDir();
const newDatabase = (): string => newCutDatabase(dir);



describe('close() cuts waits for a read lock another process holds (busyTimeout 20 s)', () => {
  for (const mode of ['full', 'restart', 'truncate'] as const) {
    it(`a ${mode} checkpoint waiting for a python3 reader below the WAL's end: close() settles at once, it rejects WALNUT_CLOSED ReadLockWaitCut, nothing held`, async () => {
      const file = newDatabase();
      const store = await open(file, { busyTimeout: BUSY_TIMEOUT_MS, shareLane: false, autoCheckpoint: false });
      try {
        await commitUserVersion(store, 3);
        const reader = await pythonReader(file); // its read mark: the WAL's end now
        await commitUserVersion(store, 4); // past the reader: a checkpoint in this mode waits for it
        const checkpoint = outcome(store.checkpoint(mode));
        await closeDuringTheWait(() => store.close());
        expect(await checkpoint).toBe('WALNUT_CLOSED/ReadLockWaitCut');
        await reader.end();
        await nothingHeld(file, 4);
      } finally {
        await store.close(); // (the same promise: closed above)
      }
    });
  }

  it('snapshot() and a transaction waiting for a read slot (another process holds READ(1..4)): close() settles at once, they reject WALNUT_CLOSED ReadLockWaitCut, nothing held', async () => {
    const file = newDatabase();
    const store = await open(file, { busyTimeout: BUSY_TIMEOUT_MS, shareLane: false, autoCheckpoint: false });
    try {
      await commitUserVersion(store, 5); // frames the database file lacks: a reader needs a WAL read mark
      const holder = await holdLock(`${file}-shm`, SHM_LOCK.READ(1), 4, 'exclusive');
      try {
        const snapshot = outcome(store.snapshot());
        const tx = store.begin();
        const read = outcome(tx.read(1));
        await closeDuringTheWait(() => store.close());
        expect([await snapshot, await read]).toEqual(['WALNUT_CLOSED/ReadLockWaitCut', 'WALNUT_CLOSED/ReadLockWaitCut']);
      } finally {
        await release(holder);
      }
      await nothingHeld(file, 5);
    } finally {
      await store.close();
    }
  });
  it('snapshot() and a commit waiting for a wal-index header another process must recover (it holds WRITE, the header is torn): close() settles at once, they reject WALNUT_CLOSED RecoveryWaitCut, nothing held', async () => {
    const file = newDatabase();
    const store = await open(file, { busyTimeout: BUSY_TIMEOUT_MS, shareLane: false, autoCheckpoint: false });
    try {
      await commitUserVersion(store, 6);
      const holder = await holdLock(`${file}-shm`, SHM_LOCK.WRITE, 1, 'exclusive');
      try {
        tearHeader(file); // only a connection holding WRITE may recover it (the holder does not)
        const snapshot = outcome(store.snapshot());
        const commit = outcome(commitUserVersion(store, 7));
        await closeDuringTheWait(() => store.close());
        expect([await snapshot, await commit]).toEqual(['WALNUT_CLOSED/RecoveryWaitCut', 'WALNUT_CLOSED/RecoveryWaitCut']);
      } finally {
        await release(holder);
      }
      await nothingHeld(file, 6);
    } finally {
      await store.close();
    }
  });
  it('a commit and a FULL checkpoint waiting to recover a torn header under WRITE while another process holds RECOVER: close() settles at once, they reject WALNUT_CLOSED (RecoveryWaitCut, or WriteWaitCut where another took WRITE first); a store not closing waits and commits once it is let go', async () => {
    const file = newDatabase();
    const store = await open(file, { busyTimeout: BUSY_TIMEOUT_MS, shareLane: false, autoCheckpoint: false });
    const other = await open(file, { busyTimeout: BUSY_TIMEOUT_MS, shareLane: false, autoCheckpoint: false });
    try {
      await commitUserVersion(store, 8);
      const page9 = await page1WithUserVersion(store, 9);
      const page10 = await page1WithUserVersion(other, 10);
      const holder = await holdLock(`${file}-shm`, SHM_LOCK.RECOVER, 1, 'exclusive');
      let otherCommit: Promise<string>;
      try {
        // WRITE is free, so each takes it; the recovery under it needs RECOVER, held elsewhere
        // (the commit lets WRITE go and tries again, the checkpoint waits holding WRITE and CKPT)
        tearHeader(file);
        const commit = outcome(store.commit([{ pgno: 1, data: page9 }]));
        const checkpoint = outcome(store.checkpoint('full'));
        otherCommit = outcome(other.commit([{ pgno: 1, data: page10 }]));
        await closeDuringTheWait(() => store.close());
        // each wait is cut wherever it is: in the recovery's wait for RECOVER, or, when another of
        // the three took WRITE first, in the wait for WRITE (WriteWaitCut: the commit, once in a
        // fresh-clone CI run); before the fix they waited the busy timeout (close() with them)
        // and the commit failed WALNUT_BUSY BusyRecovery
        expect(await commit).toMatch(/^WALNUT_CLOSED\/(RecoveryWaitCut|WriteWaitCut)$/);
        expect(await checkpoint).toMatch(/^WALNUT_CLOSED\/(RecoveryWaitCut|WriteWaitCut)$/);
      } finally {
        await release(holder);
      }
      expect(await otherCommit).toBe('ok');
      await other.close();
      await nothingHeld(file, 10);
    } finally {
      await store.close();
      await other.close();
    }
  });
});
