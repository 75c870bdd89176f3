// Several walnut processes and worker threads writing one database at once, serialised on the
// WRITE lock; processes killed with SIGKILL while holding locks; damaged -shm files.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';

import type { WalnutError } from '../../lib/errors';
import { WalIndex } from '../../lib/wal-index/wal-index';
import { HELPERS, runNode } from '../helpers/children';
import { commitVia } from '../helpers/commit';
import { Database } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
let n = 0;

/** An empty WAL-mode database made by SQLite (page size 4096). */
function newDb(): string {
  const p = path.join(dir, `c${n++}.db`);
  const db = new Database(p);
  db.pragma('page_size = 4096');
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE seed(x)');
  db.close();
  return p;
}

interface WriterResult {
  id: number;
  commits: number;
  tornReads: number;
  busyRetries: number;
  error?: string;
}

function workerWriter(db: string, id: number, commits: number): Promise<WriterResult> {
  const w = new Worker(path.join(HELPERS, 'index-writer.js'), { workerData: { db, id, commits } });
  return new Promise((resolve, reject) => {
    w.once('message', (m) => {
      resolve(m);
      void w.terminate();
    });
    w.once('error', reject);
  });
}

async function processWriter(db: string, id: number, commits: number): Promise<WriterResult> {
  const r = await runNode(path.join(HELPERS, 'index-writer.js'), [db, String(id), String(commits)]);
  if (r.code !== 0) throw new Error(`writer ${id} failed: ${r.stdout} ${r.stderr}`);
  return JSON.parse(r.stdout);
}

describe('concurrent writers', () => {
  it('three processes and three worker threads commit 40 times each: nothing lost, nothing torn', async () => {
    const db = newDb();
    const results = await Promise.all([
      processWriter(db, 0, 40),
      processWriter(db, 1, 40),
      processWriter(db, 2, 40),
      workerWriter(db, 3, 40),
      workerWriter(db, 4, 40),
      workerWriter(db, 5, 40),
    ]);
    for (const r of results) {
      expect(r.error).toBeUndefined();
      expect(r.tornReads).toBe(0);
    }
    const index = await WalIndex.open(db);
    const snap = await index.beginRead();
    expect((await snap.read(10)).readUInt32BE(0)).toBe(240); // every commit counted once
    expect((await snap.read(11)).readUInt32BE(0)).toBe(240);
    for (let id = 0; id < 6; id++) expect((await snap.read(20 + id)).readUInt32BE(0)).toBe(40);
    expect(snap.mxFrame).toBe(240 * 3);
    snap.release();
    await index.close();
  });
});

describe('a process killed with SIGKILL does not block the others', () => {
  async function holder(db: string, what: 'write' | 'read') {
    const child = spawn(process.execPath, [path.join(HELPERS, 'index-holder.js'), db, what], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d) => String(d).includes('holding') && resolve());
      child.once('exit', (c) => reject(new Error(`holder exited ${c}`)));
    });
    return child;
  }

  it('while holding the write lock', async () => {
    const db = newDb();
    const child = await holder(db, 'write');
    const index = await WalIndex.open(db, { busyTimeout: 200 });
    const page = Buffer.alloc(4096, 1);
    // held elsewhere: the busy timeout expires
    const snap = await index.beginRead();
    const busy = await index.beginWrite(snap).then(() => null, (e: unknown) => e as WalnutError);
    expect(busy).toMatchObject({ code: 'WALNUT_BUSY', reason: 'BusyWrite' }); // a stable reason, SQLite's lock named
    expect(busy!.message).toMatch(/WAL write \(WRITE\) lock .* held by another connection past the busy timeout \(200 ms\)/);
    snap.release();
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const result = await commitVia(index, [{ pages: [{ pgno: 2, data: page }], dbSize: 2 }]);
    expect(result.lastFrame).toBe(1);
    await index.close();
  });

  it('while holding a read mark, and the next opener recovers a damaged header', async () => {
    const db = newDb();
    const index = await WalIndex.open(db);
    await commitVia(index, [{ pages: [{ pgno: 2, data: Buffer.alloc(4096, 7) }], dbSize: 2 }]);
    const child = await holder(db, 'read');
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    // damage header copy 0 while this connection stays attached: readers must recover
    const shm = fs.openSync(`${db}-shm`, 'r+');
    fs.writeSync(shm, Buffer.alloc(8, 0xee), 0, 8, 16);
    fs.closeSync(shm);
    const snap = await index.beginRead();
    expect(snap.mxFrame).toBe(1);
    expect((await snap.read(2))[100]).toBe(7);
    snap.release();
    await commitVia(index, [{ pages: [{ pgno: 2, data: Buffer.alloc(4096, 8) }], dbSize: 2 }]);
    await index.close();
  });
});

describe('damaged -shm files are rebuilt from the WAL', () => {
  const damages: [string, (shm: Buffer) => Buffer][] = [
    ['truncated', (b) => b.subarray(0, 100)],
    ['a bad version', (b) => {
      const c = Buffer.from(b);
      c.writeUInt32LE(3007001, 0);
      c.writeUInt32LE(3007001, 48);
      return c;
    }],
    ['mismatched header copies', (b) => {
      const c = Buffer.from(b);
      c[48 + 16] ^= 0xff;
      return c;
    }],
    ['garbage', (b) => Buffer.from(b.map((_, i) => (i * 131) & 0xff))],
    ['zero length', () => Buffer.alloc(0)],
  ];
  for (const [name, mutate] of damages) {
    it(`rebuilds a -shm with ${name}`, async () => {
      const db = newDb();
      const index = await WalIndex.open(db);
      for (let i = 1; i <= 5; i++) await commitVia(index, [{ pages: [{ pgno: 10, data: Buffer.alloc(4096, i) }, { pgno: 11, data: Buffer.alloc(4096, 10 + i) }], dbSize: 11 }]);
      const good = fs.readFileSync(`${db}-shm`);
      const schemaPage = fs.readFileSync(db).subarray(4096, 8192);
      await index.close();
      fs.writeFileSync(`${db}-shm`, mutate(good));
      const again = await WalIndex.open(db);
      const snap = await again.beginRead();
      expect(snap.mxFrame).toBe(10);
      expect((await snap.read(10))[0]).toBe(5);
      expect(snap.readSync(10).equals(await snap.read(10))).toBe(true);
      expect(snap.readSync(2).equals(await snap.read(2))).toBe(true);
      expect(snap.readSync(999).equals(Buffer.alloc(4096))).toBe(true); // beyond the database
      expect((await snap.read(11))[0]).toBe(15);
      expect((await snap.read(2)).equals(schemaPage)).toBe(true); // from the database file
      expect(again.checkpointInfo().readMarks[0]).toBe(0);
      snap.release();
      await again.close();
    });
  }
});

describe("lockingMode 'exclusive'", () => {
  it('keeps the index in memory (no -shm), holds EXCLUSIVE, and recovers from the WAL on open', async () => {
    const db = newDb();
    const index = await WalIndex.open(db, { lockingMode: 'exclusive', busyTimeout: 100 });
    expect(fs.existsSync(`${db}-shm`)).toBe(false);
    await commitVia(index, [{ pages: [{ pgno: 2, data: Buffer.alloc(4096, 3) }], dbSize: 2 }]);
    await expect(WalIndex.open(db, { busyTimeout: 100 })).rejects.toMatchObject({ code: 'WALNUT_BUSY' });
    const sq = new Database(db, { timeout: 50 });
    expect(() => sq.prepare('SELECT count(*) FROM sqlite_master').get()).toThrow(/locked|busy/i);
    sq.close();
    await index.close();
    const shared = await WalIndex.open(db);
    const snap = await shared.beginRead();
    expect((await snap.read(2))[0]).toBe(3);
    snap.release();
    await shared.close();
  });
});

describe('files and names', () => {
  it('derives -wal/-shm from the real path and gives them the database file\'s permissions', async () => {
    const db = newDb();
    fs.chmodSync(db, 0o660);
    const link = path.join(dir, 'link-to.db');
    fs.symlinkSync(db, link);
    const index = await WalIndex.open(link);
    expect(index.dbPath).toBe(fs.realpathSync(db));
    expect(fs.existsSync(`${link}-shm`)).toBe(false);
    expect(fs.statSync(`${db}-shm`).mode & 0o777).toBe(0o660);
    expect(fs.statSync(`${db}-wal`).mode & 0o777).toBe(0o660);
    await index.close();
  });

  it('refuses a database that is not in WAL mode, an empty file and a non-database', async () => {
    const rollback = path.join(dir, 'rollback.db');
    const r = new Database(rollback);
    r.exec('CREATE TABLE x(y)');
    r.close();
    await expect(WalIndex.open(rollback)).rejects.toMatchObject({ code: 'WALNUT_CANTOPEN', reason: 'NotWalMode' });
    const empty = path.join(dir, 'empty.db');
    fs.writeFileSync(empty, '');
    await expect(WalIndex.open(empty)).rejects.toMatchObject({ code: 'WALNUT_CANTOPEN' });
    const text = path.join(dir, 'text.db');
    fs.writeFileSync(text, 'hello'.repeat(100));
    await expect(WalIndex.open(text)).rejects.toMatchObject({ code: 'WALNUT_CANTOPEN' });
    await expect(WalIndex.open(path.join(dir, 'missing.db'))).rejects.toMatchObject({ code: 'WALNUT_CANTOPEN' });
  });
});
