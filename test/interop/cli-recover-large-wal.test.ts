// `walnut recover` (rebuildWalIndex: the -shm rebuilt from the -wal, as SQLite's recovery does)
// run again and again on a WAL of 16,000+ frames (512-byte pages: 4+ wal-index segments) while
// a python3 sqlite3 writer (another process, large-wal.ts startWalFiller) commits one row after
// another: recover-live-readers has readers only. A rebuild works under the locks SQLite's
// recovery takes, so no commit of the writer's is left out of the index it publishes: each run
// exits 0 naming at least the frames committed before it began; the writer never fails; a new
// sqlite3 connection sees every row the writer had committed by then, and at the end every row
// it committed, integrity ok.
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { spawnOutput } from '../helpers/children';
import { segmentEnd, shmMxFrame, startWalFiller } from '../helpers/large-wal';
import { sqliteIntegrity, sqliteRowCount, walDatabase } from '../helpers/sqlite-db';
import { tmpDir } from '../helpers/tmp';
import { until, WAIT_MS } from '../helpers/until';

const dir = tmpDir();
const bin = path.resolve(__dirname, '..', '..', 'bin', 'walnut.js');

describe('walnut recover beside a python3 writer, a WAL of 16,000+ frames', () => {
  it('every run exits 0 with the frames committed before it; the writer goes on; every row there, integrity ok', async () => {
    const db = walDatabase(path.join(dir, 'app.db'), 512, 'CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)');
    const writer = startWalFiller(db, segmentEnd(3) + 200, 't');
    let rows = -1;
    try {
      await writer.filled;
      for (let run = 0; run < 6; run++) {
        const before = shmMxFrame(db);
        const seen = sqliteRowCount(db, 't');
        const r = await spawnOutput(process.execPath, [bin, 'recover', db, '--json'], { timeout: WAIT_MS });
        expect(r.status, r.stderr).toBe(0);
        expect(JSON.parse(r.stdout).walFrames, `run ${run}`).toBeGreaterThanOrEqual(before);
        expect(sqliteRowCount(db, 't'), `run ${run}: rows after the rebuild`).toBeGreaterThanOrEqual(seen);
        const after = shmMxFrame(db);
        await until(() => shmMxFrame(db) > after, WAIT_MS, () => shmMxFrame(db)); // the writer goes on
      }
    } finally {
      writer.stop();
      rows = await writer.done;
    }
    expect(sqliteIntegrity(db)).toEqual(['ok']);
    expect(sqliteRowCount(db, 't')).toBe(rows);
  });
});
