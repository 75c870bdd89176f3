// The checkpoint's native copy (native/checkpoint_copy.h) against SQLite's own checkpoint: the
// same database file, byte for byte, after each mode on identical copies of a database and its
// WAL (page sizes 512 and 65536, a database that grows and shrinks, a WAL of 4 -shm segments),
// with sqlite3 readers holding read marks; what it does (large reads, one pwritev per run, no
// second WAL sync in 'full'); a WAL cut short under the index; and a checkpoint racing close().
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { runCheckpoint } from '../../lib/checkpoint/execute';
import type { CheckpointMode } from '../../lib/checkpoint/plan';
import { open } from '../../lib/commit/store';
import { WalnutError } from '../../lib/errors';
import { WalIndex } from '../../lib/wal-index/wal-index';
import { SqlitePeer } from '../helpers/children';
import { Database, oracleScan, sqliteWritesWal, type SqliteWalCopy } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
const MODES: CheckpointMode[] = ['passive', 'full', 'restart', 'truncate'];
let n = 0;

function copyOf(src: SqliteWalCopy): string {
  const target = path.join(dir, `cc${n++}.db`);
  fs.copyFileSync(src.db, target);
  fs.copyFileSync(src.wal, `${target}-wal`);
  return target;
}

/** Rows grow the database, a checkpoint puts them in the file, deletes and VACUUM shrink it in the WAL, then it grows a little again. */
function growsAndShrinks(rows: number, blob: number) {
  return (db: Database.Database) => {
    db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)');
    const ins = db.prepare('INSERT INTO t(v) VALUES (?)');
    for (let c = 0; c < 10; c++) db.transaction(() => { for (let i = 0; i < rows / 10; i++) ins.run(Buffer.alloc(blob, (c * 31 + i) & 0xff)); })();
    db.pragma('wal_checkpoint(TRUNCATE)'); // the database file is large now
    for (let c = 0; c < 10; c++) db.transaction(() => { for (let i = 0; i < rows / 10; i++) ins.run(Buffer.alloc(blob, (c * 17 + i) & 0xff)); })();
    db.exec('DELETE FROM t WHERE id % 4 != 0');
    db.exec('VACUUM'); // in the WAL: a commit with a smaller database size
    db.transaction(() => { for (let i = 0; i < rows / 20; i++) ins.run(Buffer.alloc(blob, i & 0xff)); })();
  };
}

/** Many small commits: a WAL past frame 16,000 (4 -shm segments) of 512-byte pages. */
function fourSegments(db: Database.Database) {
  db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)');
  const ins = db.prepare('INSERT INTO t(v) VALUES (?)');
  const upd = db.prepare('UPDATE t SET v = ? WHERE id = ?');
  for (let c = 0; c < 5200; c++) {
    db.transaction(() => {
      ins.run(Buffer.alloc(200, c & 0xff));
      upd.run(Buffer.alloc(200, (c * 7) & 0xff), 1 + ((c * 13) % (c + 1)));
    })();
  }
}

function sqliteCheckpoint(file: string, mode: CheckpointMode): { result: unknown; bytes: Buffer } {
  const db = new Database(file);
  try {
    const r = (db.pragma(`wal_checkpoint(${mode.toUpperCase()})`) as unknown[])[0] as { busy: number; log: number; checkpointed: number };
    return { result: r, bytes: fs.readFileSync(file) }; // before close(): the last connection would checkpoint again
  } finally {
    db.close();
  }
}

async function walnutCheckpoint(file: string, mode: CheckpointMode): Promise<{ result: unknown; bytes: Buffer }> {
  const store = await open(file, { keepWal: true, autoCheckpoint: false });
  try {
    const r = await store.checkpoint(mode);
    return { result: { busy: r.busy ? 1 : 0, log: r.walFrames, checkpointed: r.checkpointedFrames }, bytes: fs.readFileSync(file) };
  } finally {
    await store.close();
  }
}

const sources: [string, () => SqliteWalCopy][] = [
  ['page size 512, the database grows and shrinks', () => sqliteWritesWal(dir, 'gs512', 512, growsAndShrinks(2000, 120))],
  ['page size 65536, the database grows and shrinks', () => sqliteWritesWal(dir, 'gs64k', 65536, growsAndShrinks(400, 3000))],
  ['page size 512, a WAL of 4 -shm segments', () => sqliteWritesWal(dir, 'seg4', 512, fourSegments)],
];

describe('the database file after a checkpoint is byte for byte the one SQLite writes', () => {
  for (const [name, make] of sources) {
    describe(name, () => {
      let src: SqliteWalCopy | null = null;
      const source = () => (src ??= make());
      for (const mode of MODES) {
        it(mode, async () => {
          const s = source();
          const frames = oracleScan(fs.readFileSync(s.wal))!.frames.length;
          if (name.includes('4 -shm')) expect(frames).toBeGreaterThan(16000);
          const theirs = sqliteCheckpoint(copyOf(s), mode);
          const ours = await walnutCheckpoint(copyOf(s), mode);
          expect(ours.result).toEqual(theirs.result);
          expect(ours.bytes.length).toBe(theirs.bytes.length); // cut or grown to the last commit's size
          expect(Buffer.compare(ours.bytes, theirs.bytes)).toBe(0);
        });
      }
    });
  }
});

describe('with sqlite3 readers holding read marks', () => {
  it('each checkpoint stops at the oldest mark, where SQLite stops, and writes the same bytes', async () => {
    const src = sqliteWritesWal(dir, 'marks', 4096, growsAndShrinks(400, 300));
    // the same history on two copies: readers begin at two points, the writer goes on
    const sides = await Promise.all(['sqlite', 'walnut'].map(async (side) => {
      const file = copyOf(src);
      const writer = new SqlitePeer(file);
      const readers = [new SqlitePeer(file), new SqlitePeer(file)];
      for (const [i, reader] of readers.entries()) {
        await reader.exec('BEGIN');
        await reader.get('SELECT count(*) AS n FROM t');
        for (let k = 0; k < 3; k++) await writer.exec(`INSERT INTO t(v) VALUES (zeroblob(${300 + 100 * i + k}))`);
      }
      const store = side === 'walnut' ? await open(file, { keepWal: true, autoCheckpoint: false, busyTimeout: 50 }) : null;
      const checkpoint = async (mode: CheckpointMode) => {
        if (store === null) return (await writer.all(`PRAGMA wal_checkpoint(${mode.toUpperCase()})`))[0];
        const r = await store.checkpoint(mode);
        return { busy: r.busy ? 1 : 0, log: r.walFrames, checkpointed: r.checkpointedFrames };
      };
      return { file, writer, readers, store, checkpoint };
    }));
    const step = async () => {
      const [a, b] = [await sides[0]!.checkpoint('passive'), await sides[1]!.checkpoint('passive')];
      expect(b).toEqual(a);
      expect(Buffer.compare(fs.readFileSync(sides[1]!.file), fs.readFileSync(sides[0]!.file))).toBe(0);
      return b as { log: number; checkpointed: number };
    };
    const first = await step(); // stops at reader 0's mark
    expect(first.checkpointed).toBeLessThan(first.log);
    for (const s of sides) await s.readers[0]!.exec('COMMIT');
    const second = await step(); // now at reader 1's mark
    expect(second.checkpointed).toBeGreaterThan(first.checkpointed);
    expect(second.checkpointed).toBeLessThan(second.log);
    for (const s of sides) await s.readers[1]!.exec('COMMIT');
    const third = await step();
    expect(third.checkpointed).toBe(third.log);
    for (const s of sides) {
      await s.store?.close();
      for (const r of s.readers) await r.close();
      expect(await s.writer.pragma('integrity_check')).toBe('ok');
      await s.writer.close();
    }
  });
});

describe('what the copy does', () => {
  it("reads the frames in large reads, writes runs of adjacent pages in one call each, and in 'full' does not sync the WAL again", async () => {
    const file = path.join(dir, 'calls.db');
    const store = await open(file, { autoCheckpoint: false, keepWal: true });
    const pages = Array.from({ length: 300 }, (_, i) => ({ pgno: 2 + i, data: Buffer.alloc(4096, i & 0xff) }));
    for (let i = 0; i < pages.length; i += 30) await store.commit(pages.slice(i, i + 30)); // 10 commits, pages 2..301 in order
    await store.commit([{ pgno: 2, data: Buffer.alloc(4096, 0xee) }]); // a newer version of page 2
    await store.checkpoint('passive');
    const event = store.recentEvents().filter((e) => e.name === 'checkpoint').pop()!;
    // frames 2..301 (page 2's newest is the last) in one read, each with its header; pages 2..301 in one pwritev
    expect((event.data as { copy: unknown }).copy).toEqual({ pages: 300, writes: 1, reads: 1, bytesRead: 300 * (4096 + 24), walSynced: false });
    const snap = await store.snapshot();
    expect((await snap.read(2))[0]).toBe(0xee);
    expect((await snap.read(301))[0]).toBe(299 & 0xff);
    snap.release();
    await store.close();
    expect(fs.readFileSync(file).subarray(4096, 8192)).toEqual(Buffer.alloc(4096, 0xee));
  });

  it('reads over superseded frames inside the range: one read, not one per gap', async () => {
    const file = path.join(dir, 'gaps.db');
    const store = await open(file, { autoCheckpoint: false, keepWal: true });
    const pages = Array.from({ length: 300 }, (_, i) => ({ pgno: 2 + i, data: Buffer.alloc(4096, i & 0xff) }));
    for (let i = 0; i < pages.length; i += 30) await store.commit(pages.slice(i, i + 30)); // frames 1..300: pages 2..301
    for (let i = 0; i < 300; i += 10) await store.commit([{ pgno: 2 + i, data: Buffer.alloc(4096, 0xee) }]); // frames 301..330 supersede 30 of them
    await store.checkpoint('passive');
    const event = store.recentEvents().filter((e) => e.name === 'checkpoint').pop()!;
    // frames 2..330 (the 29 superseded ones after frame 1 read over, one frame each) in one read
    expect((event.data as { copy: unknown }).copy).toEqual({ pages: 300, writes: 1, reads: 1, bytesRead: 329 * (4096 + 24), walSynced: false });
    const snap = await store.snapshot();
    expect((await snap.read(12))[0]).toBe(0xee);
    expect((await snap.read(13))[0]).toBe(11);
    snap.release();
    await store.close();
  });

  it("in 'normal' it syncs the WAL first, as SQLite", async () => {
    const file = path.join(dir, 'normal.db');
    const store = await open(file, { autoCheckpoint: false, keepWal: true, synchronous: 'normal' });
    await store.commit([{ pgno: 2, data: Buffer.alloc(4096, 1) }]);
    await store.checkpoint('passive');
    const event = store.recentEvents().filter((e) => e.name === 'checkpoint').pop()!;
    expect((event.data as { copy: { walSynced: boolean } }).copy.walSynced).toBe(true);
    await store.close();
  });
});

describe('a WAL another process cut below the frames the index names', () => {
  // 300 pages: one buffer-full, refused before anything is written; 5000 pages: the buffer-fulls
  // before the cut may be written (harmless: committed pages, nBackfill unchanged; checkpoint_copy.h)
  for (const count of [300, 5000]) {
    it(`${count} pages: WALNUT_CORRUPT; each database page is as it was or as committed, nothing else`, async () => {
      const file = path.join(dir, `cut-${count}.db`);
      const store = await open(file, { autoCheckpoint: false, keepWal: true });
      for (let i = 0; i < count; i += 500) await store.commit(Array.from({ length: Math.min(500, count - i) }, (_, k) => ({ pgno: 2 + i + k, data: Buffer.alloc(4096, 1 + ((i + k) % 200)) })));
      const before = fs.readFileSync(file);
      fs.truncateSync(`${file}-wal`, 32 + Math.floor(count / 2) * (4096 + 24)); // half the frames are gone
      const e = await store.checkpoint('passive').then(() => null, (x: unknown) => x);
      expect(e).toBeInstanceOf(WalnutError);
      expect((e as WalnutError).code).toBe('WALNUT_CORRUPT');
      const after = fs.readFileSync(file);
      const block = (b: Buffer, pgno: number) => b.subarray((pgno - 1) * 4096, pgno * 4096);
      let written = 0;
      for (let j = 0; j < count; j++) {
        const now = block(after, 2 + j);
        if (now.length === 0 || Buffer.compare(now, block(before, 2 + j)) === 0) continue;
        expect(now.equals(Buffer.alloc(4096, 1 + (j % 200))), `page ${2 + j}`).toBe(true);
        written++;
      }
      if (count === 300) expect(written).toBe(0);
      await store.close().catch(() => undefined);
    });
  }

  it('frames the index names overwritten with zeros (a hole where the WAL was cut and extended again): WALNUT_CORRUPT, no page of zeros reaches the database (the copy checks each frame header names its page)', async () => {
    const file = path.join(dir, 'hole.db');
    const store = await open(file, { autoCheckpoint: false, keepWal: true });
    await store.commit(Array.from({ length: 300 }, (_, k) => ({ pgno: 2 + k, data: Buffer.alloc(4096, 1 + (k % 200)) })));
    const before = fs.readFileSync(file);
    const wal = fs.openSync(`${file}-wal`, 'r+');
    fs.writeSync(wal, Buffer.alloc(20 * (4096 + 24)), 0, 20 * (4096 + 24), 32 + 100 * (4096 + 24)); // frames 101..120
    fs.closeSync(wal);
    const e = await store.checkpoint('passive').then(() => null, (x: unknown) => x);
    expect(e).toBeInstanceOf(WalnutError);
    expect((e as WalnutError).code).toBe('WALNUT_CORRUPT');
    expect((e as WalnutError).message).toMatch(/frame 101 does not hold the page/);
    expect(fs.readFileSync(file).equals(before)).toBe(true); // one buffer-full: refused before anything is written
    await store.close().catch(() => undefined);
  });
});

describe('a checkpoint racing close()', () => {
  it('store.close() waits for it: it completes, and the database file holds everything', async () => {
    const src = sqliteWritesWal(dir, 'race1', 512, fourSegments);
    const file = copyOf(src);
    const store = await open(file, { keepWal: true, autoCheckpoint: false });
    const checkpoint = store.checkpoint('truncate');
    await store.close();
    expect(await checkpoint).toEqual({ mode: 'truncate', busy: false, walFrames: 0, checkpointedFrames: 0 });
    expect(fs.statSync(`${file}-wal`).size).toBe(0);
    const db = new Database(file);
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    db.close();
  });

  it("the connection closed under it: a WalnutError or done, never a crash; the files stay whole", async () => {
    const src = sqliteWritesWal(dir, 'race2', 512, fourSegments);
    const expected = (() => {
      const db = new Database(copyOf(src), { readonly: true });
      try {
        return db.prepare('SELECT count(*) AS n, sum(length(v)) AS b FROM t').get();
      } finally {
        db.close();
      }
    })();
    for (const closeAfter of [0, 1, 2, 3]) {
      const file = copyOf(src);
      const index = await WalIndex.open(file);
      const target = await index.checkpointTarget();
      const running = runCheckpoint(target, 'passive', { sync: true }).then(() => null, (e: unknown) => e);
      for (let k = 0; k < closeAfter; k++) await new Promise((resolve) => setImmediate(resolve));
      await index.close();
      const settled = await running;
      if (settled !== null) {
        expect(settled).toBeInstanceOf(WalnutError);
        expect((settled as WalnutError).code).toBe('WALNUT_CLOSED');
      }
      const db = new Database(file);
      expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
      expect(db.prepare('SELECT count(*) AS n, sum(length(v)) AS b FROM t').get()).toEqual(expected);
      db.close();
    }
  });
});

describe('the auto-checkpoint and the commits', () => {
  it('batches append while it copies; the batch that restarts the WAL waits only for the frames appended meanwhile', async () => {
    // hold the background checkpoint's copy until released: nothing else is changed
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let copying!: () => void;
    const started = new Promise<void>((resolve) => (copying = resolve));
    const original = WalIndex.prototype.checkpointTarget;
    let gated = false;
    WalIndex.prototype.checkpointTarget = async function (this: WalIndex) {
      const target = await original.call(this);
      if (!gated) {
        gated = true;
        const copy = target.copyFrames;
        target.copyFrames = async (pgnos, request) => {
          copying();
          await gate;
          return copy(pgnos, request);
        };
      }
      return target;
    };
    try {
      const store = await open(path.join(dir, 'auto.db'), { autoCheckpoint: 50 });
      const page = (i: number) => [{ pgno: 2 + (i % 40), data: Buffer.alloc(4096, i & 0xff) }];
      for (let i = 0; i < 50; i++) await store.commit(page(i)); // the 50th starts the checkpoint
      await started;
      const m0 = store.metrics();
      // these would wait for the held checkpoint (and never resolve) if batches waited for it
      for (let i = 50; i < 80; i++) await store.commit(page(i));
      const m1 = store.metrics();
      expect(m1.walFrames).toBe(80);
      expect(m1.checkpointWaits).toBe(m0.checkpointWaits);
      release();
      while (store.recentEvents().filter((e) => e.name === 'checkpoint').length === 0) await new Promise((resolve) => setImmediate(resolve));
      await store.commit(page(80)); // copies frames 51..80, then restarts the WAL
      const m2 = store.metrics();
      expect(m2.walFrames).toBe(1);
      expect(m2.checkpointWaits).toBe(m1.checkpointWaits + 1);
      const checkpoints = store.recentEvents().filter((e) => e.name === 'checkpoint').map((e) => e.data as { auto: boolean; walFrames: number; copy: { pages: number } });
      expect(checkpoints.map((c) => [c.walFrames, c.copy.pages])).toEqual([[50, 40], [80, 30]]);
      await store.close();
    } finally {
      WalIndex.prototype.checkpointTarget = original;
      release();
    }
  });
});
