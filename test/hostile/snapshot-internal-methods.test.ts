// Snapshot's methods that only walnut itself calls (the WAL index and the store: a class cannot
// keep them private across files) were callable by anyone holding a snapshot, and changed it
// without a check: snap.moveToDatabaseFile() made a snapshot whose pages were in the WAL read
// the database file instead (page 2, committed and acknowledged, read back as zeros) and left
// its WAL read mark held after release(); snap.attachPending(5) made every later read throw a
// raw TypeError ("p.readInto is not a function") and release() reject unhandled. Now each is
// WALNUT_INVALID_ARGUMENT, reason 'internal', before it changes anything; the snapshot reads
// as before and the store checkpoints the WAL away once it is released.
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { open, WalnutError, type Snapshot } from '../../lib/index';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
const PS = 1024;

describe("a snapshot's internal methods called from outside", () => {
  it('are refused and leave the snapshot as it was', async () => {
    const db = path.join(dir, 'a.db');
    const store = await open(db, { pageSize: PS, autoCheckpoint: false });
    await store.commit([{ pgno: 2, data: Buffer.alloc(PS, 7) }]);
    const snap = await store.snapshot();
    const s = snap as unknown as Record<string, (...a: unknown[]) => unknown>;
    const calls: [string, unknown[]][] = [
      ['moveToDatabaseFile', []],
      ['attachPending', [5]],
      ['afterReadsInFlight', [() => undefined]],
      ['bringForward', []],
      ['canMoveToDatabaseFile', [{ mxFrame: 1, salts: [0, 0] }]],
    ];
    for (const [name, args] of calls) {
      let err: unknown;
      try {
        s[name]!.apply(snap, args);
      } catch (e) {
        err = e;
      }
      expect(err, name).toBeInstanceOf(WalnutError);
      expect((err as WalnutError).code).toBe('WALNUT_INVALID_ARGUMENT');
      expect((err as WalnutError).reason).toBe('internal');
    }
    expect(snap.mxFrame).toBeGreaterThan(0);
    expect((await snap.read(2))[0]).toBe(7); // was 0: read from the database file
    expect(snap.readSync(2)[0]).toBe(7);
    await expect(snap.whenDurable()).resolves.toBeUndefined();
    snap.release();
    // its read mark went: a truncate checkpoint empties the WAL
    const r = await store.checkpoint('truncate');
    expect(r.busy).toBe(false);
    expect(r.walFrames).toBe(0);
    const again: Snapshot = await store.snapshot();
    expect((await again.read(2))[0]).toBe(7);
    again.release();
    await store.close();
  });
});
