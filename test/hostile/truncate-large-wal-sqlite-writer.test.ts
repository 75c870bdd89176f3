// checkpoint('truncate') on a WAL of 16,000+ frames (its wal-index spans 4+ segments of the
// -shm) written mostly by a python3 sqlite3 process (sqlite-fill.py: one transaction of 16,000
// rows of ~4 KB, a leaf page each) between walnut/sql commits, while the store's own follow
// export runs (exportTo(..., { follow: true })). The export has read little of those frames when
// the truncate comes (they appear at once, with the python3 commit): the truncate copies them,
// hands the export the frames it has not read (under the 64 MiB hand-over limit: 16,000 frames
// are ~66 MB) and cuts the WAL to 0 bytes.
//  - quiet: no other process in the WAL at the truncate: not busy, walFrames 0, the -wal file 0
//    bytes at once, and a fresh sqlite3 process finds integrity ok and every row;
//  - the export stalled (its Writable stops taking data once the base is out), so the python3
//    frames are unread at the truncate: the truncate hands them over (16,000 frames, under the
//    limit) and cuts the WAL to 0 bytes; busy is accepted only with the WAL left as it was (the
//    documented hand-over limit: the stalled export's pending bytes count too), and then, the
//    sink released, a later truncate cuts it;
//  - beside two python3 sqlite3 writers (sqlite-writer.py) and a walnut/sql caller inserting
//    through truncates in a loop: none fails; each is busy (as SQLite's is while a writer's read
//    transaction is in the WAL) or reports walFrames 0; once the writers are gone the next is not
//    busy and cuts the -wal file to 0 bytes.
// Either way the stream, stopped and restored after close, holds the same rows as the source
// (every writer's) and the same bytes, and sqlite3's integrity_check is ok on both.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';

import type { CheckpointResult } from '../../lib/checkpoint/execute';
import { restore } from '../../lib/export/restore';
import { WalnutFile } from '../../lib/io/file';
import { isWalnutError, openDatabase, type Database } from '../../lib/sql';
import { HELPERS, runPython } from '../helpers/children';
import { segmentEnd, shmMxFrame } from '../helpers/large-wal';
import { stallableSink } from '../helpers/export-stream';
import { tmpDir } from '../helpers/tmp';
import { WAIT_MS } from '../helpers/until';
import { firstDifference, writerRows } from '../helpers/writer-rows';

const dir = tmpDir();
const FRAMES = 16_000;

function sqlite3(file: string, sql: string): string {
  return execFileSync('sqlite3', ['-cmd', '.timeout 5000', file, sql], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

/** `n` walnut/sql inserts (w = 0), one after another; resolves with how many were acknowledged. */
async function inserts(db: Database, n: number): Promise<number> {
  for (let i = 0; i < n; i++) await db.run('INSERT INTO t(w, v) VALUES (0, randomblob(500))');
  return n;
}

/** A walnut/sql database with a follow export of its own, filled past FRAMES by python3 between walnut/sql commits. */
async function largeWalBesideExport(name: string) {
  const src = path.join(dir, `${name}.db`);
  const db = await openDatabase(src, { busyTimeout: 5000, autoCheckpoint: false, readConnections: 0 });
  await db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, w INTEGER, v BLOB)');
  const ark = path.join(dir, `${name}.ark`);
  const sink = await WalnutFile.open(ark, { create: true, truncate: true });
  const handle = db.store.exportTo(sink, { follow: true, pollMs: 5 });
  let acked = await inserts(db, 20);
  // 16,000 rows of 3,900 bytes in one python3 transaction: a leaf page each
  expect((await runPython(path.join(HELPERS, 'sqlite-fill.py'), [src, '16000', '3900'])).trim()).toBe('16000');
  acked += await inserts(db, 20);
  const frames = shmMxFrame(src);
  expect(frames).toBeGreaterThan(FRAMES);
  expect(frames).toBeGreaterThan(segmentEnd(2)); // frames in the 4th wal-index segment (or later)
  return { src, db, ark, sink, handle, acked, frames };
}


/** Stops the export, closes, restores the stream: same rows (every writer's), same bytes, integrity ok on both. */
async function expectStreamRestores(name: string, src: string, ark: string | Buffer, expected: { walnut: number; python: number }): Promise<void> {
  expect(fs.existsSync(`${src}-wal`)).toBe(false); // the last connection checkpointed everything
  const target = path.join(dir, `${name}-restored.db`);
  const r = await restore(typeof ark === 'string' ? fs.createReadStream(ark) : Readable.from([ark]), target);
  expect(r.stoppedBy).toBeNull();
  const a = writerRows(src);
  const b = writerRows(target);
  expect(a.filter((x) => x.w === 0).length).toBe(expected.walnut);
  expect(a.filter((x) => x.w !== 0).length).toBe(expected.python);
  expect(firstDifference(a, b)).toBeNull();
  expect(fs.readFileSync(target).equals(fs.readFileSync(src))).toBe(true);
  expect(sqlite3(src, 'PRAGMA integrity_check')).toBe('ok');
  expect(sqlite3(target, 'PRAGMA integrity_check')).toBe('ok');
}

describe("checkpoint('truncate') on a 16,000+-frame WAL written by python3 sqlite3, beside the store's own follow export", () => {
  it('quiet: not busy, the WAL cut to 0 bytes at once, sqlite3 finds it whole, the stream restores to the same rows and bytes', async () => {
    const w = await largeWalBesideExport('quiet');
    const { src, db, ark, sink, handle, frames } = w;
    let acked = w.acked;
    let r: CheckpointResult;
    try {
      const walBytes = fs.statSync(`${src}-wal`).size;
      const handedBefore = db.store.metrics().handedOverFrames;
      const t0 = performance.now();
      r = await db.store.checkpoint('truncate');
      const ms = Math.round(performance.now() - t0);
      console.log(`quiet: a WAL of ${frames} frames (${walBytes} bytes), truncate ${JSON.stringify(r)} in ${ms} ms, ${db.store.metrics().handedOverFrames - handedBefore} frames handed over to the export`);
      expect(r).toMatchObject({ busy: false, walFrames: 0, checkpointedFrames: 0 });
      expect(fs.statSync(`${src}-wal`).size).toBe(0);
      // a fresh sqlite3 process right after the truncate
      expect(sqlite3(src, 'PRAGMA integrity_check; SELECT count(*) FROM t WHERE w = -1; SELECT count(*) FROM t WHERE w = 0').split('\n')).toEqual(['ok', '16000', String(acked)]);
      // the WAL starts again: both write on
      acked += await inserts(db, 10);
      expect((await runPython(path.join(HELPERS, 'sqlite-writer.py'), [src, '0', '7', '1000', '0', '5'])).trim()).toBe('5');
      acked += await inserts(db, 10);
      expect(shmMxFrame(src)).toBeLessThan(100);
    } finally {
      await handle.stop();
      await sink.close();
      await db.close();
    }
    await expectStreamRestores('quiet', src, ark, { walnut: acked, python: 16_005 });
  });

  it('the export stalled, the python3 frames unread: the truncate hands them over and cuts the WAL to 0 bytes (or is busy with the WAL as it was, then cuts it once the sink drains), the stream restores to the same rows and bytes', async () => {
    const src = path.join(dir, 'stalled.db');
    const db = await openDatabase(src, { busyTimeout: 2000, autoCheckpoint: false, readConnections: 0 });
    await db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, w INTEGER, v BLOB)');
    const sink = stallableSink();
    const handle = db.store.exportTo(sink.w, { follow: true, pollMs: 5 });
    let acked = 0;
    try {
      acked += await inserts(db, 20);
      await new Promise((r) => setTimeout(r, 200)); // the base is out: the export follows the WAL
      acked += await inserts(db, 1);
      await new Promise((r) => setTimeout(r, 50));
      sink.stall();
      expect((await runPython(path.join(HELPERS, 'sqlite-fill.py'), [src, '16000', '3900'])).trim()).toBe('16000');
      acked += await inserts(db, 5);
      const frames = shmMxFrame(src);
      expect(frames).toBeGreaterThan(FRAMES);
      const walBytes = fs.statSync(`${src}-wal`).size;
      const handedBefore = db.store.metrics().handedOverFrames;
      const r = await db.store.checkpoint('truncate');
      const handed = db.store.metrics().handedOverFrames - handedBefore;
      console.log(`stalled: a WAL of ${frames} frames (${walBytes} bytes), ${sink.chunks.reduce((a, c) => a + c.length, 0)} bytes exported before the stall, truncate ${JSON.stringify(r)}, ${handed} frames handed over`);
      if (r.busy) {
        expect(fs.statSync(`${src}-wal`).size).toBe(walBytes);
        expect(handed).toBe(0);
      } else {
        expect(r.walFrames).toBe(0);
        expect(fs.statSync(`${src}-wal`).size).toBe(0);
        expect(handed).toBeGreaterThan(FRAMES / 2);
      }
      sink.release();
      acked += await inserts(db, 5);
      let again = await db.store.checkpoint('truncate');
      // (until the released sink has drained up to 64 MB: a hang guard, 5 s was a speed check)
      for (const deadline = Date.now() + WAIT_MS; again.busy && Date.now() < deadline; ) {
        await new Promise((res) => setTimeout(res, 50));
        again = await db.store.checkpoint('truncate');
      }
      expect(again).toMatchObject({ busy: false, walFrames: 0 });
      expect(sqlite3(src, 'PRAGMA integrity_check; SELECT count(*) FROM t').split('\n')).toEqual(['ok', String(acked + 16_000)]);
      acked += await inserts(db, 5);
    } finally {
      sink.release();
      await handle.stop();
      await db.close();
    }
    await expectStreamRestores('stalled', src, Buffer.concat(sink.chunks), { walnut: acked, python: 16_000 });
  });

  it('beside python3 sqlite3 writers: truncates in a loop never fail (busy or walFrames 0), the first once the writers are gone is not busy and cuts the WAL to 0 bytes, the stream restores to the same rows and bytes', async () => {
    const w = await largeWalBesideExport('writers');
    const { src, db, ark, sink, handle, frames } = w;
    let acked = w.acked;
    const results: CheckpointResult[] = [];
    const errors: string[] = [];
    let python = 16_000;
    try {
      // two python3 writers (wal_autocheckpoint 1000, as SQLite's default) for 1.5 s, walnut/sql inserting, truncates in a loop
      let writing = true;
      const writers = [1, 2].map((w) => runPython(path.join(HELPERS, 'sqlite-writer.py'), [src, '1.5', String(w), '1000', '0', '5']));
      const caller = (async () => {
        while (writing) {
          try {
            await db.run('INSERT INTO t(w, v) VALUES (0, randomblob(500))');
            acked++;
          } catch (e) {
            // a python3 commit overtook the statement past its retries, or held WRITE past the busy timeout
            if (!isWalnutError(e, 'WALNUT_CONFLICT') && !isWalnutError(e, 'WALNUT_BUSY')) errors.push(`insert: ${(e as { code?: string }).code}: ${(e as Error).message}`);
          }
          await new Promise((res) => setTimeout(res, 2));
        }
      })();
      const checkpointer = (async () => {
        while (writing) {
          try {
            results.push(await db.store.checkpoint('truncate'));
          } catch (e) {
            errors.push(`truncate: ${(e as { code?: string }).code}: ${(e as Error).message}`);
            return;
          }
          await new Promise((res) => setTimeout(res, 5));
        }
      })();
      python += (await Promise.all(writers).finally(() => (writing = false))).reduce((a, out) => a + Number(out.trim().split('\n')[0]), 0);
      await Promise.all([caller, checkpointer]);
      // the writers gone, nothing else is in the WAL: the next truncate is not busy
      const last = await db.store.checkpoint('truncate');
      expect(last).toMatchObject({ busy: false, walFrames: 0 });
      expect(fs.statSync(`${src}-wal`).size).toBe(0);
      results.push(last);
    } finally {
      await handle.stop();
      await sink.close();
      await db.close();
    }
    const cut = results.filter((x) => !x.busy);
    console.log(`writers: a WAL of ${frames} frames, ${results.length} truncates: ${cut.length} not busy, ${results.length - cut.length} busy (first ${JSON.stringify(results[0])}); walnut/sql ${acked} rows, python3 ${python}`);
    expect(errors).toEqual([]);
    expect(cut.length).toBeGreaterThan(0);
    for (const x of cut) expect(x.walFrames).toBe(0);
    await expectStreamRestores('writers', src, ark, { walnut: acked, python });
  });
});
