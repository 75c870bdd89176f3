// Conditional commits across processes (issue #20, store API item 4): store.commit(pages,
// { base }) fails with WALNUT_CONFLICT, reason OtherWriter, writing nothing, when any other
// connection — the sqlite3 CLI, python3's sqlite3, another walnut store — committed after the
// base snapshot began; this store's own commits after it (pipelining) and restarts or
// checkpoints by others that committed nothing do not count. Holds on a WAL of 16,000+ frames
// (5 -shm segments).
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

import { open, type Snapshot, type Store } from '../../lib/index';
import { expectRejectsWalnut } from '../helpers/expect-error';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
let n = 0;

// Asynchronous: a synchronous child would block this event loop while walnut still holds
// WRITE for the moment between a commit resolving and its batch run ending.
const run = promisify(execFile);
async function sqlite3(file: string, sql: string): Promise<string> {
  return (await run('sqlite3', ['-cmd', '.timeout 5000', file, sql], { encoding: 'utf8' })).stdout.trim();
}
async function python(file: string, script: string): Promise<string> {
  const prelude = 'import sqlite3, sys\nc = sqlite3.connect(sys.argv[1], timeout=5, isolation_level=None)\n';
  return (await run('python3', ['-c', prelude + script, file], { encoding: 'utf8' })).stdout.trim();
}

/** A WAL-mode SQLite database with table t, opened by walnut (the WAL kept between steps). */
async function database(pageSize = 4096): Promise<{ file: string; store: Store }> {
  const file = path.join(dir, `b${n++}.db`);
  await sqlite3(file, `PRAGMA page_size=${pageSize}; PRAGMA journal_mode=WAL; CREATE TABLE t(x)`);
  return { file, store: await open(file, { autoCheckpoint: false, keepWal: true }) };
}

/** Page 1 as `snap` sees it (a real page to commit back unchanged: a stale copy once someone changed the schema). */
function page1(snap: Snapshot): Buffer {
  return snap.readSync(1);
}

/** Page 1 as it is now. */
async function currentPage1(store: Store): Promise<Buffer> {
  const s = await store.snapshot();
  try {
    return page1(s);
  } finally {
    s.release();
  }
}

describe('a commit on a base fails when another process committed after it', () => {
  it('sqlite3 CLI: its schema change survives; the stale page 1 is refused, nothing written', async () => {
    const { file, store } = await database();
    try {
      const base = await store.snapshot();
      const stale = page1(base);
      base.release(); // a released snapshot still names its point
      await sqlite3(file, 'CREATE TABLE u(y)'); // rewrites page 1
      const frames = store.metrics().walFrames;
      await expectRejectsWalnut(store.commit([{ pgno: 1, data: stale }], { base }), 'WALNUT_CONFLICT', { reason: 'OtherWriter' });
      expect(store.metrics().walFrames).toBe(frames);
      expect(store.resumeCommits()).toBe(true); // the conflict broke the commit chain
      // on a fresh base the same commit goes (and drops u: what base protects against)
      const now = await store.snapshot();
      await store.commit([{ pgno: 1, data: page1(now) }], { base: now });
      now.release();
    } finally {
      await store.close();
    }
    expect(await sqlite3(file, "SELECT group_concat(name) FROM sqlite_master WHERE type='table'")).toBe('t,u');
    expect(await sqlite3(file, 'PRAGMA integrity_check')).toBe('ok');
  });

  it("python3's sqlite3 row insert between base and commit; another walnut store's commit too", async () => {
    const { file, store } = await database();
    const other = await open(file, { autoCheckpoint: false, keepWal: true });
    try {
      let base = await store.snapshot();
      const stale = page1(base);
      await python(file, "c.execute('INSERT INTO t VALUES (1)')");
      await expectRejectsWalnut(store.commit([{ pgno: 1, data: stale }], { base }), 'WALNUT_CONFLICT', { reason: 'OtherWriter' });
      store.resumeCommits();
      base.release();
      base = await store.snapshot();
      await other.commit([{ pgno: 1, data: page1(base) }]); // same bytes, but a commit: it counts
      await expectRejectsWalnut(store.commit([{ pgno: 1, data: page1(base) }], { base }), 'WALNUT_CONFLICT', { reason: 'OtherWriter' });
      base.release();
    } finally {
      await other.close();
      await store.close();
    }
    expect(await sqlite3(file, 'SELECT count(*) FROM t')).toBe('1');
  });

  it("this store's own commits after the base do not conflict (pipelining), however many and however batched", async () => {
    const { file, store } = await database();
    try {
      const base = await store.snapshot();
      const p1 = page1(base);
      await store.commit([{ pgno: 1, data: p1 }]);
      await Promise.all([store.commit([{ pgno: 1, data: p1 }]), store.commit([{ pgno: 1, data: p1 }], { base })]);
      await store.commit([{ pgno: 1, data: p1 }], { base });
      base.release();
      expect(store.chainBrokenBy).toBeNull();
    } finally {
      await store.close();
    }
    expect(await sqlite3(file, 'PRAGMA integrity_check')).toBe('ok');
  });

  it('a base from another store, or not a snapshot, is refused at once (WALNUT_INVALID_ARGUMENT, reason base)', async () => {
    const { file, store } = await database();
    const other = await open(file);
    try {
      const theirs = await other.snapshot();
      const p1 = page1(theirs);
      await expectRejectsWalnut(store.commit([{ pgno: 1, data: p1 }], { base: theirs }), 'WALNUT_INVALID_ARGUMENT', { reason: 'base' });
      await expectRejectsWalnut(store.commit([{ pgno: 1, data: p1 }], { base: { mxFrame: 0 } as unknown as Snapshot }), 'WALNUT_INVALID_ARGUMENT', { reason: 'base' });
      await expectRejectsWalnut(store.commit([{ pgno: 1, data: p1 }], { base: null as unknown as Snapshot }), 'WALNUT_INVALID_ARGUMENT', { reason: 'base' });
      theirs.release();
      expect(store.chainBrokenBy).toBeNull(); // refused before it was sequenced
    } finally {
      await other.close();
      await store.close();
    }
  });
});

describe('WAL restarts and checkpoints by others', () => {
  it('a TRUNCATE checkpoint by sqlite3 after the base (no commit) does not conflict; one with a commit before it does', async () => {
    const { file, store } = await database();
    try {
      await sqlite3(file, 'INSERT INTO t VALUES (1)');
      let base = await store.snapshot();
      base.release(); // a held read mark would keep the checkpoint from restarting the WAL
      expect(await sqlite3(file, 'PRAGMA wal_checkpoint(TRUNCATE)')).toBe('0|0|0');
      expect(await sqlite3(file, 'PRAGMA wal_checkpoint(TRUNCATE)')).toBe('0|0|0'); // twice: two restarts
      let p1 = await currentPage1(store);
      await store.commit([{ pgno: 1, data: p1 }], { base });

      base = await store.snapshot();
      base.release();
      await sqlite3(file, 'INSERT INTO t VALUES (2)');
      expect(await sqlite3(file, 'PRAGMA wal_checkpoint(TRUNCATE)')).toBe('0|0|0');
      p1 = await currentPage1(store);
      await expectRejectsWalnut(store.commit([{ pgno: 1, data: p1 }], { base }), 'WALNUT_CONFLICT', { reason: 'OtherWriter' });
      store.resumeCommits();
      // a restart by sqlite3's next writer, then its commit: a conflict too
      base = await store.snapshot();
      base.release();
      expect(await sqlite3(file, 'PRAGMA wal_checkpoint(RESTART)')).toMatch(/^0\|/);
      await sqlite3(file, 'INSERT INTO t VALUES (3)');
      await expectRejectsWalnut(store.commit([{ pgno: 1, data: p1 }], { base }), 'WALNUT_CONFLICT', { reason: 'OtherWriter' });
      store.resumeCommits();
    } finally {
      await store.close();
    }
    expect(await sqlite3(file, 'SELECT group_concat(x) FROM t')).toBe('1,2,3');
  });

  it('a passive checkpoint by sqlite3 (frames copied, no commit) does not conflict', async () => {
    const { file, store } = await database();
    try {
      await sqlite3(file, 'INSERT INTO t VALUES (1)');
      const base = await store.snapshot();
      const p1 = page1(base);
      base.release();
      expect(await sqlite3(file, 'PRAGMA wal_checkpoint(PASSIVE)')).toMatch(/^0\|/);
      await store.commit([{ pgno: 1, data: p1 }], { base });
    } finally {
      await store.close();
    }
    expect(await sqlite3(file, 'PRAGMA integrity_check')).toBe('ok');
  });
});

describe('at scale: a WAL of 16,000+ frames (5 -shm segments)', () => {
  it('own commits past frame 16,000 go; a python3 commit after the base is caught', async () => {
    const { file, store } = await database(512);
    try {
      // one python3 transaction of ~17,000 pages (small pages, no checkpoint)
      await python(file, "c.execute('PRAGMA wal_autocheckpoint=0')\nc.execute('BEGIN')\nc.executemany('INSERT INTO t VALUES (?)', ((b'x' * 440,) for _ in range(17000)))\nc.execute('COMMIT')");
      const base = await store.snapshot();
      expect(base.mxFrame).toBeGreaterThan(16_000);
      const p1 = page1(base);
      for (let i = 0; i < 3; i++) await store.commit([{ pgno: 1, data: p1 }], { base });
      await python(file, "c.execute('INSERT INTO t VALUES (1)')");
      await expectRejectsWalnut(store.commit([{ pgno: 1, data: p1 }], { base }), 'WALNUT_CONFLICT', { reason: 'OtherWriter' });
      base.release();
      expect(store.metrics().walFrames).toBeGreaterThan(16_000);
    } finally {
      await store.close();
    }
    expect(await sqlite3(file, 'SELECT count(*) FROM t')).toBe('17001');
    expect(await sqlite3(file, 'PRAGMA integrity_check')).toBe('ok');
  });
});
