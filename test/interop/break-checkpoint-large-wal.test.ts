// break-checkpoint.test.ts at scale, with another process writing: walnut/sql's own
// store.checkpoint() in full, restart and truncate mode, each over a WAL of 16,000+ frames
// (512-byte pages: 4+ wal-index segments) that python3 (another process, large-wal.ts
// startWalFiller) and walnut/sql grew, while both go on committing: 8 walnut/sql callers (each
// commit a conditional commit on a base snapshot, its read mark kept until the commit settles)
// and python3's one-row commits. The checkpoint holds WRITE and waits for readers; the callers'
// bases in its way are counted busy at once (CheckpointOptions.readersWaitingForWrite), so no
// call waits out the busy timeout. Asserted: every checkpoint resolves (the full one copies the
// 16,000+ frames, a restart or truncate that finds python3 in its way says busy), no caller
// fails, python3 never fails; every acknowledged row of both is there, integrity ok.
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import type { CheckpointResult } from '../../lib/index';
import { openDatabase } from '../../lib/sql';
import { commitBetweenFillerTurns, segmentEnd, startWalFiller } from '../helpers/large-wal';
import { sqliteIntegrity, sqliteRowCount } from '../helpers/sqlite-db';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
const CALLERS = 8;

describe("walnut/sql's own checkpoints of a 16,000+-frame WAL while its callers and python3 commit", () => {
  for (const mode of ['full', 'restart', 'truncate'] as const) {
    it(`${mode}: it resolves, no caller fails or waits out the busy timeout, python3 goes on; every row there, integrity ok`, async () => {
      const file = path.join(dir, `${mode}.db`);
      const db = await openDatabase(file, { pageSize: 512, autoCheckpoint: false, busyTimeout: 5000 });
      let acked = 0;
      const failures: string[] = [];
      let python = -1;
      let result: CheckpointResult | null = null;
      try {
        await db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, w TEXT, v BLOB)');
        const filler = startWalFiller(file, segmentEnd(3) + 200, 't'); // its rows: w NULL
        acked += await commitBetweenFillerTurns(file, filler, () => db.run("INSERT INTO t(w, v) VALUES ('walnut', randomblob(100))"));
        expect(db.store.metrics().walFrames).toBeGreaterThan(segmentEnd(3));
        let stop = false;
        const callers = Array.from({ length: CALLERS }, async () => {
          while (!stop) {
            try {
              await db.run("INSERT INTO t(w, v) VALUES ('walnut', randomblob(100))");
              acked++;
            } catch (e) {
              failures.push(`${(e as { code?: string }).code}: ${(e as Error).message}`);
              return;
            }
          }
        });
        result = await db.store.checkpoint(mode);
        stop = true;
        await Promise.all(callers);
        filler.stop();
        python = await filler.done;
      } finally {
        await db.close();
      }
      expect(failures).toEqual([]);
      expect(result).toMatchObject({ mode });
      if (mode === 'full') expect(result!.checkpointedFrames).toBeGreaterThan(segmentEnd(3));
      console.log(`${mode}: ${JSON.stringify(result)}; ${acked} walnut rows, ${python} python3 rows`);
      expect(sqliteIntegrity(file)).toEqual(['ok']);
      expect(sqliteRowCount(file, 't', "w = 'walnut'")).toBe(acked);
      expect(sqliteRowCount(file, 't', 'w IS NULL')).toBe(python);
    });
  }
});
