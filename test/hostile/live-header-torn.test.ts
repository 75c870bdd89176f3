// The store reads the live wal-index header without locks for its database size (the size a
// sequenced commit without dbSize leaves, what pending views see), where a transaction's
// conflicts count from when its snapshot comes late, the auto-checkpoint's frame count and
// metrics().walFrames. While another process writes that header (SQLite writes its two copies one
// after the other and may be descheduled between them) such a read is not good, and each of them
// took "none": 0 pages, 0 frames, conflicts counted from the later snapshot (past that process's
// commit). Found by fix/breakit for the export's behindBytes() (16,838 of 5.96 million reads
// beside a sqlite3 writer). Now they take the last good header (WalIndex.liveOrLastGoodHeader):
// here metrics().walFrames, read as fast as this thread can while a sqlite3 process commits with
// its auto-checkpoint off, never drops (the WAL only grows).
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { open } from '../../lib/commit/store';
import { runPython } from '../helpers/children';
import { Database } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir('walnut-live-header-torn-');
const HELPERS = path.join(__dirname, '..', 'helpers');

describe('the live header read while a sqlite3 process writes it', () => {
  it('metrics().walFrames never drops while the WAL only grows', async () => {
    const db = path.join(dir, 'torn.db');
    const init = new Database(db);
    init.exec('CREATE TABLE t(w INTEGER, v BLOB)');
    init.pragma('journal_mode = WAL');
    init.close();
    const store = await open(db, { autoCheckpoint: false });
    const readings: number[] = [];
    let sampling = true;
    try {
      const sample = (): void => {
        if (!sampling) return;
        for (let i = 0; i < 200; i++) readings.push(store.metrics().walFrames);
        setImmediate(sample);
      };
      sample();
      // auto-checkpoint 0: nothing restarts the WAL, its frame count only grows
      const out = await runPython(path.join(HELPERS, 'sqlite-writer.py'), [db, '2', '1', '0', '0', '200']);
      sampling = false;
      expect(Number(out.trim().split('\n')[0])).toBeGreaterThanOrEqual(200);
      let max = 0;
      const drops: { at: number; value: number; max: number }[] = [];
      readings.forEach((value, at) => {
        if (value < max) drops.push({ at, value, max });
        max = Math.max(max, value);
      });
      expect(max).toBeGreaterThanOrEqual(200);
      expect({ drops: drops.length, first: drops.slice(0, 3), readings: readings.length }).toEqual({ drops: 0, first: [], readings: readings.length });
    } finally {
      sampling = false;
      await store.close();
    }
  }, 60_000);
});
