// Live interop at scale: a SQLite read transaction in another process (better-sqlite3,
// test/helpers/sqlite-peer.js) held while walnut/sql (auto-checkpoint on: it checkpoints and
// would restart the WAL whenever it may) and a python3 sqlite3 writer (large-wal.ts
// startWalFiller) grow the WAL past 16,000 frames (512-byte pages: 4+ wal-index segments).
// SQLite's reader keeps its snapshot all along: the same answer at the end as at its start (the
// WAL never restarted or checkpointed past its read mark under it); once it ends its
// transaction it sees every row both writers committed; walnut reads them too; the auto-
// checkpoint, no longer held, then restarts the WAL at walnut's next commit; integrity ok.
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { openDatabase } from '../../lib/sql';
import { SqlitePeer } from '../helpers/children';
import { segmentEnd, shmMxFrame, startWalFiller } from '../helpers/large-wal';
import { sqliteIntegrity } from '../helpers/sqlite-db';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
const SNAPSHOT = 'SELECT count(*) AS n, coalesce(sum(length(v)), 0) AS bytes, coalesce(max(id), 0) AS top FROM t';

describe('a SQLite read transaction in another process while walnut/sql and python3 grow the WAL past 16,000 frames', () => {
  it('its snapshot never moves; after it ends it sees every row of both; the WAL restarts at the next walnut commit; integrity ok', async () => {
    const file = path.join(dir, 'live.db');
    const db = await openDatabase(file, { pageSize: 512, autoCheckpoint: 200 });
    const reader = new SqlitePeer(file);
    try {
      await db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, w TEXT, v BLOB)');
      for (let i = 0; i < 20; i++) await db.run("INSERT INTO t(w, v) VALUES ('walnut', randomblob(100))");
      await reader.exec('BEGIN');
      const first = await reader.get(SNAPSHOT);
      expect(first).toMatchObject({ n: 20 });

      const filler = startWalFiller(file, segmentEnd(3) + 300, 't'); // its rows: w NULL
      let filled = false;
      void filler.filled.then(() => (filled = true));
      let walnut = 20;
      while (!filled && db.store.metrics().walFrames < 4000) {
        await db.run("INSERT INTO t(w, v) VALUES ('walnut', randomblob(100))");
        walnut++;
      }
      await filler.filled;
      filler.stop();
      const python = await filler.done;
      expect(shmMxFrame(file)).toBeGreaterThan(segmentEnd(3)); // not restarted under the reader

      expect(await reader.get(SNAPSHOT)).toEqual(first);
      await reader.exec('COMMIT');
      const all = { n: walnut + python };
      expect(await reader.get('SELECT count(*) AS n FROM t')).toEqual(all);
      expect(await db.get('SELECT count(*) AS n FROM t')).toEqual(all);
      expect(await db.get("SELECT count(*) AS n FROM t WHERE w = 'walnut'")).toEqual({ n: walnut });

      await db.run("INSERT INTO t(w, v) VALUES ('walnut', randomblob(100))"); // the reader gone, the auto-checkpoint copies and the WAL restarts
      expect(shmMxFrame(file)).toBeLessThan(segmentEnd(0));
      expect(await reader.get('SELECT count(*) AS n FROM t')).toEqual({ n: all.n + 1 });
    } finally {
      await reader.close();
      await db.close();
    }
    expect(sqliteIntegrity(file)).toEqual(['ok']);
  });
});
