// A torn wal-index header, while a sqlite3 connection in another process runs
// wal_checkpoint(TRUNCATE): the checkpointer holds CKPT and waits (its busy handler) for WRITE.
// walnut's recovery took WRITE and then waited for CKPT, so each waited for the other until
// walnut's busy timeout: open() (or a snapshot of an open store) failed WALNUT_BUSY ("checkpoint
// (CKPT) lock ... held by another connection past the busy timeout") whenever it came to WRITE
// first (most runs of the open() case, every run of the snapshot case). SQLite's reader takes
// the recovery locks without waiting and retries from the start when they are busy (wal.c
// walIndexRecover, walTryBeginRead's WAL_RETRY); so does walnut now (WalIndex.header): it lets
// WRITE go, the checkpointer recovers the header itself, checkpoints and truncates the WAL, and
// walnut goes on. So does a commit whose run took WRITE and then met the torn header (nothing of
// the run written yet). The WAL holds 16,500 frames (5 -shm segments) when the header is torn;
// afterwards both write, and sqlite3 finds the database whole with every row.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { expect, it } from 'vitest';

import { open } from '../../lib';
import type { Store } from '../../lib/commit/store';
import { SHM_LOCK } from '../../lib/format/shm-header';
import { WalnutFile } from '../../lib/io/file';
import { openDatabase } from '../../lib/sql';
import { SqlitePeer } from '../helpers/children';
import { tmpDir } from '../helpers/tmp';
import { until } from '../helpers/until';

const dir = tmpDir();
const sqlite3 = (db: string, sql: string): string => execFileSync('sqlite3', ['-cmd', '.timeout 5000', db, sql], { encoding: 'utf8' }).trim();
const insert = (src: string, rows: number): string => `WITH RECURSIVE s(v) AS (SELECT 1 UNION ALL SELECT v + 1 FROM s WHERE v < ${rows}) INSERT INTO t(src, v) SELECT '${src}', randomblob(400) FROM s`;
type CheckpointRow = { busy: number; log: number; checkpointed: number };

/**
 * A database of 16,500 rows in a 16,500-frame WAL, kept by `peer` (autocheckpoint off); its
 * wal-index header torn under WRITE (as a writer killed between the two copies leaves it) and
 * the peer's wal_checkpoint(TRUNCATE) started, holding CKPT and waiting for WRITE. `then` runs
 * right after WRITE is let go (the peer's busy handler then sleeps 100 ms between its tries, so
 * walnut mostly comes to WRITE first; with `stoppedMs` always: the peer is stopped, SIGSTOP, from
 * before WRITE is let go until that long after); resolves with the checkpoint's result.
 * `before` runs once the rows are in, before the header is torn.
 */
async function tornBesideCheckpointer(db: string, peer: SqlitePeer, then: () => Promise<void>, { before, stoppedMs }: { before?: () => Promise<void>; stoppedMs?: number } = {}): Promise<CheckpointRow[]> {
  await peer.exec(`PRAGMA page_size=512; PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0; CREATE TABLE IF NOT EXISTS t(src TEXT, v BLOB); ${insert('peer', 16_500)}`);
  expect(fs.statSync(`${db}-wal`).size).toBeGreaterThan(16_500 * 536);
  await before?.();
  const shm = WalnutFile.openSync(`${db}-shm`);
  let checkpoint: Promise<CheckpointRow[]>;
  let after: Promise<void>;
  try {
    expect(shm.tryLock(SHM_LOCK.WRITE, 1, 'exclusive')).toBe(true);
    const word = new Uint8Array(4);
    shm.readSync(word, 0, 4, 40); // copy 0's checksum: the two copies differ
    word[0]! ^= 0xff;
    shm.writeSync(word, 0, 4, 40);
    checkpoint = peer.all<CheckpointRow>('PRAGMA wal_checkpoint(TRUNCATE)'); // busy timeout 5 s, past walnut's 2 s
    await until(() => shm.lockHolder(SHM_LOCK.CKPT, 1, 'exclusive') !== null);
    await new Promise((resolve) => setTimeout(resolve, 400));
    if (stoppedMs === undefined) {
      shm.unlock(SHM_LOCK.WRITE, 1);
      after = then();
    } else {
      process.kill(peer.pid, 'SIGSTOP');
      try {
        shm.unlock(SHM_LOCK.WRITE, 1);
        after = then();
        await new Promise((resolve) => setTimeout(resolve, stoppedMs));
      } finally {
        process.kill(peer.pid, 'SIGCONT');
      }
    }
  } finally {
    shm.closeSync();
  }
  await after;
  return checkpoint;
}

it('open() of a database with a torn -shm header beside a sqlite3 TRUNCATE checkpoint waiting for WRITE: it lets WRITE go, the checkpointer recovers, the open succeeds', async () => {
  const db = path.join(dir, 'open.db');
  const peer = new SqlitePeer(db);
  try {
    let d: Awaited<ReturnType<typeof openDatabase>> | null = null;
    expect(await tornBesideCheckpointer(db, peer, async () => void (d = await openDatabase(db, { busyTimeout: 2000 })))).toEqual([{ busy: 0, log: 0, checkpointed: 0 }]);
    try {
      expect(await d!.get('SELECT count(*) AS n FROM t')).toEqual({ n: 16_500 });
      await peer.exec(insert('peer', 100));
      await d!.exec(insert('walnut', 100)); // (one after the other: an autocommit beside another's commit may be WALNUT_CONFLICT)
    } finally {
      await d!.close();
    }
  } finally {
    await peer.close();
  }
  expect(sqlite3(db, 'PRAGMA integrity_check')).toBe('ok');
  expect(sqlite3(db, "SELECT src || ':' || count(*) FROM t GROUP BY src ORDER BY src")).toBe('peer:16600\nwalnut:100');
}, 30_000);

/**
 * tornBesideCheckpointer beside a store opened before the rows are in; `act` gives what to run
 * (and its options) for it. The checkpoint completes, and the database is whole afterwards.
 */
async function withStoreBesideCheckpointer(name: string, act: (store: Store) => { then: () => Promise<void>; before?: () => Promise<void>; stoppedMs?: number }): Promise<void> {
  const db = path.join(dir, name);
  const peer = new SqlitePeer(db);
  try {
    await peer.exec('PRAGMA page_size=512; PRAGMA journal_mode=WAL; CREATE TABLE t(src TEXT, v BLOB)'); // a database for the store to open
    const store = await open(db, { busyTimeout: 2000, autoCheckpoint: false });
    try {
      const { then, ...options } = act(store);
      expect(await tornBesideCheckpointer(db, peer, then, options)).toEqual([{ busy: 0, log: 0, checkpointed: 0 }]);
      await peer.exec(insert('peer', 100));
    } finally {
      await store.close();
    }
  } finally {
    await peer.close();
  }
  expect(sqlite3(db, 'PRAGMA integrity_check')).toBe('ok');
  expect(sqlite3(db, 'SELECT count(*) FROM t')).toBe('16600');
}

it('a snapshot of an open store, same torn header and waiting checkpointer: it waits for the checkpointer, not the other way round', async () => {
  await withStoreBesideCheckpointer('snapshot.db', (store) => ({
    then: async () => {
      const snap = await store.snapshot();
      expect(snap.dbSize).toBeGreaterThan(16_500);
      snap.release();
    },
  }));
}, 30_000);

it('a commit whose run takes WRITE and meets the same torn header, the checkpointer stopped until then: the run lets WRITE go (nothing of it written), the checkpointer recovers and truncates, the commit lands', async () => {
  // the commit waited for CKPT holding the WRITE its run had just taken, and failed WALNUT_BUSY
  // (BusyCheckpoint) after its busy timeout; SQLite's walIndexReadHdr tries the recovery's locks
  // once without waiting (walDisableBlocking) and answers busy (WalIndex.beginWriteRun)
  let page1 = Buffer.alloc(0);
  await withStoreBesideCheckpointer('commit.db', (store) => ({
    before: async () => {
      const snap = await store.snapshot();
      page1 = Buffer.from(await snap.read(1));
      snap.release();
    },
    then: async () => expect(await store.commit([{ pgno: 1, data: page1 }]).then(() => 'committed', (e: unknown) => e)).toBe('committed'),
    stoppedMs: 300,
  }));
}, 30_000);
