// Checkpoints against real SQLite: walnut checkpoints what SQLite wrote (results as SQLite's
// PRAGMA wal_checkpoint reports them), respects live SQLite readers, and the WAL passes back
// and forth between SQLite and walnut checkpoints and restarts; faults and auto-checkpoint.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import type { CheckpointMode } from '../../lib/checkpoint/plan';
import { open } from '../../lib/commit/store';
import { HELPERS, runNode, SqlitePeer } from '../helpers/children';
import { Database, oracleScan, sqliteWritesWal, typicalWork } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
const MODES: CheckpointMode[] = ['passive', 'full', 'restart', 'truncate'];
let n = 0;

function copyOf(src: { db: string; wal: string }): string {
  const target = path.join(dir, `ck${n++}.db`);
  fs.copyFileSync(src.db, target);
  fs.copyFileSync(src.wal, `${target}-wal`);
  return target;
}

function rows(dbPath: string) {
  const db = new Database(dbPath, { readonly: true });
  try {
    return db.prepare('SELECT id, k, hex(v) AS v FROM t ORDER BY id').all();
  } finally {
    db.close();
  }
}

describe('walnut checkpoints WALs that SQLite wrote', () => {
  for (const pageSize of [1024, 4096, 65536]) {
    const src = sqliteWritesWal(dir, `src${pageSize}`, pageSize, typicalWork(pageSize === 65536 ? 8 : 25, pageSize));
    for (const mode of MODES) {
      it(`${mode}, page size ${pageSize}: same result as SQLite's own, same rows, integrity ok`, async () => {
        const expected = rows(copyOf(src));
        // SQLite's answer on one copy
        const theirs = copyOf(src);
        const peer = new SqlitePeer(theirs);
        const their = (await peer.all(`PRAGMA wal_checkpoint(${mode.toUpperCase()})`))[0] as { busy: number; log: number; checkpointed: number };
        await peer.close();
        // walnut's on another
        const ours = copyOf(src);
        const store = await open(ours, { keepWal: true });
        const r = await store.checkpoint(mode);
        expect({ busy: r.busy ? 1 : 0, log: r.walFrames, checkpointed: r.checkpointedFrames }).toEqual(their);
        await store.close();
        if (mode === 'truncate') expect(fs.statSync(`${ours}-wal`).size).toBe(0);
        // the database file alone (WAL removed) holds every commit after a complete checkpoint
        const alone = path.join(dir, `alone${n++}.db`);
        fs.copyFileSync(ours, alone);
        expect(rows(alone)).toEqual(expected);
        const db = new Database(alone);
        expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
        db.close();
      });
    }
  }
});

describe('with a live SQLite reader holding an old snapshot', () => {
  it('passive stops at its mark, the others report busy, its view is never disturbed; afterwards restart/truncate complete', async () => {
    const src = sqliteWritesWal(dir, 'reader', 4096, typicalWork(20, 9));
    const target = copyOf(src);
    const writer = new SqlitePeer(target);
    const total0 = await writer.get<{ n: number }>('SELECT count(*) AS n FROM t');
    const reader = new SqlitePeer(target);
    await reader.exec('BEGIN');
    const before = await reader.all('SELECT * FROM t ORDER BY id');
    await writer.exec("INSERT INTO t(k, v) VALUES ('late', x'00')"); // beyond the reader's snapshot
    const scan = oracleScan(fs.readFileSync(`${target}-wal`))!;
    const store = await open(target, { busyTimeout: 200 });
    const passive = await store.checkpoint('passive');
    expect(passive.busy).toBe(false);
    expect(passive.walFrames).toBe(scan.frames.length);
    expect(passive.checkpointedFrames).toBeLessThan(scan.frames.length); // stopped at the reader's mark
    for (const mode of ['full', 'restart', 'truncate'] as const) expect((await store.checkpoint(mode)).busy).toBe(true);
    expect(await reader.all('SELECT * FROM t ORDER BY id')).toEqual(before);
    await reader.exec('COMMIT');
    const truncate = await store.checkpoint('truncate');
    expect(truncate).toMatchObject({ busy: false, walFrames: 0, checkpointedFrames: 0 });
    expect(fs.statSync(`${target}-wal`).size).toBe(0);
    expect(await reader.get('SELECT count(*) AS n FROM t')).toEqual({ n: total0.n + 1 });
    expect(await reader.pragma('integrity_check')).toBe('ok');
    await reader.close();
    await writer.close();
    await store.close();
  });
});

describe('the WAL passes between SQLite and walnut', () => {
  it('SQLite checkpoints (TRUNCATE and RESTART) a WAL walnut wrote, walnut goes on writing; then the reverse', async () => {
    const src = sqliteWritesWal(dir, 'pingpong', 4096, typicalWork(1, 3));
    const target = copyOf(src);
    const sq = new SqlitePeer(target);
    const store = await open(target);
    const image = async (pgno: number) => {
      const snap = await store.snapshot();
      try {
        return await snap.read(pgno);
      } finally {
        snap.release();
      }
    };
    // walnut commits SQLite-valid pages: re-commit page 1 as it is (a no-op for SQL, real frames)
    for (let round = 0; round < 3; round++) {
      await store.commit([{ pgno: 1, data: await image(1) }]);
      await sq.exec(`INSERT INTO t(k, v) VALUES ('sqlite ${round}', x'01')`);
      expect((await sq.all(`PRAGMA wal_checkpoint(${round % 2 ? 'RESTART' : 'TRUNCATE'})`))[0]).toMatchObject({ busy: 0 });
      await store.commit([{ pgno: 1, data: await image(1) }]); // after SQLite reset the WAL: new salts
      const ours = await store.checkpoint(round % 2 ? 'restart' : 'truncate');
      expect(ours.busy).toBe(false);
      await sq.exec(`INSERT INTO t(k, v) VALUES ('after walnut ${round}', x'02')`); // SQLite after walnut's reset
    }
    expect(await sq.pragma('integrity_check')).toBe('ok');
    expect(await sq.get("SELECT count(*) AS n FROM t WHERE k LIKE 'sqlite %' OR k LIKE 'after walnut %'")).toEqual({ n: 6 });
    await store.close();
    await sq.close();
  });
});

describe('faults during a checkpoint', () => {
  // which file's call failed: under 'full' the checkpoint does not sync the WAL again (its frames
  // were synced at commit), so its only sync is the database's
  const failing = { copyWrite: ['pwritev', ''], dbSync: ['fdatasync', ''], walSyncNormal: ['fdatasync', '-wal'], dbSyncNormal: ['fdatasync', ''] } as const;
  for (const fault of ['copyWrite', 'dbSync', 'walSyncNormal', 'dbSyncNormal'] as const) {
    it(`${fault}: the checkpoint fails cleanly (the failing call named, nBackfill unchanged) and a reopen has every acknowledged commit`, async () => {
      const db = path.join(dir, `fault-${fault}.db`);
      const r = await runNode(path.join(HELPERS, 'checkpoint-fault-child.js'), [db, fault], { WALNUT_FAULT_INJECTION: '1' });
      expect(r.stderr).toBe('');
      const out = JSON.parse(r.stdout);
      expect(out.crashed).toBeUndefined();
      const [syscall, suffix] = failing[fault];
      expect(out.checkpoint).toEqual({ ok: false, code: 'WALNUT_IO', syscall, path: fs.realpathSync(db) + suffix });
      expect(out.nBackfill).toEqual([0, 0]);
      const store = await open(db);
      const snap = await store.snapshot();
      for (let i = 0; i < out.acknowledged; i++) expect((await snap.read(2 + i))[0]).toBe(i & 0xff);
      snap.release();
      await store.close();
    });
  }
});

describe('auto-checkpoint', () => {
  it('keeps the WAL bounded during a long concurrent commit run', async () => {
    const db = path.join(dir, 'auto.db');
    const store = await open(db, { autoCheckpoint: 200 });
    const page = Buffer.alloc(4096, 1);
    let maxFrames = 0;
    let maxWal = 0;
    for (let round = 0; round < 40; round++) {
      await Promise.all(Array.from({ length: 32 }, (_, i) => store.commit([{ pgno: 2 + ((round * 32 + i) % 300), data: page }])));
      maxFrames = Math.max(maxFrames, store.metrics().walFrames);
      maxWal = Math.max(maxWal, fs.statSync(`${db}-wal`).size);
    }
    const m = store.metrics();
    expect(m.commits).toBe(1280);
    expect(m.checkpoints).toBeGreaterThan(0);
    expect(m.lastCheckpointError).toBeNull();
    // 1,280 frames were committed; without checkpoints the WAL would end up holding all of them.
    // With them it restarts and its space is reused: the file stays near the threshold (plus
    // the 1 MiB preallocation chunk).
    expect(maxFrames).toBeLessThan(640);
    expect(maxWal).toBeLessThan(32 + 640 * 4120 + (1 << 20));
    await store.close();
  });
});

describe('walSizeLimit', () => {
  it('cuts a WAL that grew large back to the limit after the next restart', async () => {
    const db = path.join(dir, 'limit.db');
    const store = await open(db, { autoCheckpoint: false, walSizeLimit: 64 * 1024 });
    const page = Buffer.alloc(4096, 2);
    for (let i = 0; i < 10; i++) await Promise.all(Array.from({ length: 50 }, (_, k) => store.commit([{ pgno: 2 + k, data: page }])));
    const big = fs.statSync(`${db}-wal`).size;
    expect(big).toBeGreaterThan(2 << 20);
    expect((await store.checkpoint('restart')).busy).toBe(false);
    await store.commit([{ pgno: 2, data: page }]); // restarts the WAL, then applies the limit
    expect(fs.statSync(`${db}-wal`).size).toBe(64 * 1024);
    expect(store.metrics().walFrames).toBe(1);
    await store.close();
  });
});
