// A torn wal-index header met by walnut's committer right after it took WRITE for a run of
// commit batches, while a sqlite3 connection in another process runs wal_checkpoint(TRUNCATE):
// the checkpointer holds CKPT and waits (its busy handler) for WRITE. SQLite's recovery takes
// CKPT and RECOVER without waiting (wal.c walIndexReadHdr: walDisableBlocking, then
// walIndexRecover's walLockExclusive) and a connection whose recovery finds them busy gives up
// (SQLITE_BUSY; a reader retries from the start, WAL_RETRY). The committer waited for CKPT
// holding WRITE, the checkpointer for WRITE holding CKPT: both until one busy timeout ran out.
// Now the committer's run, which has written nothing yet, lets WRITE go and takes it again
// after a pause (as header() does for the WRITE it takes itself: test/interop/
// torn-shm-header-checkpointer): the checkpointer recovers the header, checkpoints and
// truncates; the commit lands after it. The WAL holds 16,500 frames when the header is torn.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { expect, it } from 'vitest';

import { open } from '../../lib';
import { SHM_LOCK } from '../../lib/format/shm-header';
import { WalnutFile } from '../../lib/io/file';
import { SqlitePeer } from '../helpers/children';
import { tmpDir } from '../helpers/tmp';
import { until } from '../helpers/until';

const sqlite3 = (db: string, sql: string): string => execFileSync('sqlite3', ['-cmd', '.timeout 5000', db, sql], { encoding: 'utf8' }).trim();
const insert = (src: string, rows: number): string => `WITH RECURSIVE s(v) AS (SELECT 1 UNION ALL SELECT v + 1 FROM s WHERE v < ${rows}) INSERT INTO t(src, v) SELECT '${src}', randomblob(400) FROM s`;
type CheckpointRow = { busy: number; log: number; checkpointed: number };

it("a commit whose run takes WRITE and finds the header torn, beside a sqlite3 TRUNCATE checkpoint waiting for WRITE: it lets WRITE go, the checkpointer recovers and truncates, the commit lands", async () => {
  const db = path.join(tmpDir(), 'writer.db');
  const peer = new SqlitePeer(db);
  try {
    await peer.exec('PRAGMA page_size=512; PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0; CREATE TABLE t(src TEXT, v BLOB)');
    const store = await open(db, { busyTimeout: 2000, autoCheckpoint: false });
    try {
      await peer.exec(insert('peer', 16_500));
      expect(fs.statSync(`${db}-wal`).size).toBeGreaterThan(16_500 * 536);
      const page1 = await (async () => {
        const snap = await store.snapshot();
        try {
          return Buffer.from(await snap.read(1));
        } finally {
          snap.release();
        }
      })();
      const shm = WalnutFile.openSync(`${db}-shm`);
      let checkpoint: Promise<CheckpointRow[]>;
      let commit: Promise<unknown>;
      try {
        expect(shm.tryLock(SHM_LOCK.WRITE, 1, 'exclusive')).toBe(true);
        const word = new Uint8Array(4);
        shm.readSync(word, 0, 4, 40); // copy 0's checksum: the two copies differ (a writer killed between them)
        word[0]! ^= 0xff;
        shm.writeSync(word, 0, 4, 40);
        checkpoint = peer.all<CheckpointRow>('PRAGMA wal_checkpoint(TRUNCATE)'); // busy timeout 5 s, past walnut's 2 s
        await until(() => shm.lockHolder(SHM_LOCK.CKPT, 1, 'exclusive') !== null);
        // the checkpointer stopped in its busy handler (holding CKPT), the committer takes WRITE
        // first and meets the torn header; then the checkpointer goes on
        process.kill(peer.pid, 'SIGSTOP');
        try {
          commit = store.commit([{ pgno: 1, data: page1 }]).then(() => 'committed', (e: unknown) => e);
          shm.unlock(SHM_LOCK.WRITE, 1);
          await new Promise((resolve) => setTimeout(resolve, 300));
        } finally {
          process.kill(peer.pid, 'SIGCONT');
        }
      } finally {
        shm.closeSync();
      }
      expect(await commit).toBe('committed');
      expect(await checkpoint).toEqual([{ busy: 0, log: 0, checkpointed: 0 }]);
      await peer.exec(insert('peer', 100));
    } finally {
      await store.close();
    }
  } finally {
    await peer.close();
  }
  expect(sqlite3(db, 'PRAGMA integrity_check')).toBe('ok');
  expect(sqlite3(db, 'SELECT count(*) FROM t')).toBe('16600');
}, 30_000);
