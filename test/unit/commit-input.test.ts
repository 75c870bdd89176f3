// Input SQLite could not open is refused (issue #17 item 3): a page 1 that is not this store's
// database header, a dbSize below a page of the same commit (or below page 1's own in-header
// size), page numbers past the store's limits or on the lock-byte page. Each is
// WALNUT_INVALID_ARGUMENT naming the field, for that commit only, with nothing written: the WAL
// does not grow and the real SQLite still opens the database and finds it intact.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { open, type Store } from '../../lib/commit/store';
import { expectRejectsWalnut, expectWalnutError } from '../helpers/expect-error';
import { Database } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
let n = 0;
const fresh = () => path.join(dir, `i${n++}.db`);
const page = (v: number, size = 4096) => Buffer.alloc(size, v);
/** The page holding byte offset 2^30 (SQLite's PENDING_BYTE_PAGE). */
const lockBytePage = (pageSize: number) => 0x40000000 / pageSize + 1;

/** A WAL database SQLite built: a table with 200 rows, checkpointed. */
function sqliteDatabase(): { file: string; pages: number } {
  const file = fresh();
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)');
  const ins = db.prepare('INSERT INTO t(v) VALUES (?)');
  db.transaction(() => {
    for (let i = 0; i < 200; i++) ins.run(`row ${i} `.repeat(10));
  })();
  db.pragma('wal_checkpoint(TRUNCATE)');
  const pages = db.pragma('page_count', { simple: true }) as number;
  db.close();
  return { file, pages };
}

/** SQLite opens the database, integrity_check says ok and every row is there. */
function expectSqliteIntact(file: string): void {
  const db = new Database(file, { readonly: true });
  try {
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    expect(db.prepare('SELECT count(*) AS n FROM t').get()).toEqual({ n: 200 });
  } finally {
    db.close();
  }
}

async function currentPage1(store: Store): Promise<Buffer> {
  const snap = await store.snapshot();
  try {
    return await snap.readRaw(1);
  } finally {
    snap.release();
  }
}

/** The commit is refused with `reason` and the WAL gains nothing. */
async function refused(store: Store, commit: () => Promise<unknown>, reason: string): Promise<void> {
  const before = store.metrics().walFrames;
  const e = await expectRejectsWalnut(commit(), 'WALNUT_INVALID_ARGUMENT', { reason });
  expect(store.metrics().walFrames).toBe(before);
  store.resumeCommits(e); // a refusal known only once the batch is built broke the commit chain
}

describe('page 1 must stay a header for this database', () => {
  const BAD_HEADERS: Array<[string, string, (p: Buffer) => void]> = [
    ['no SQLite magic', 'page1.magic', (p) => void p.fill(0, 0, 16)],
    ['another page size', 'page1.pageSize', (p) => void p.writeUInt16BE(8192, 16)],
    ['an invalid page size', 'page1.pageSize', (p) => void p.writeUInt16BE(1000, 16)],
    ['rollback journal mode (18/19 = 1/1)', 'page1.fileFormat', (p) => void p.fill(1, 18, 20)],
    ['read version 1 only', 'page1.fileFormat', (p) => void (p[19] = 1)],
    ['write version 3', 'page1.fileFormat', (p) => void (p[18] = 3)],
    ['16 reserved bytes the database does not have', 'page1.reservedBytes', (p) => void (p[20] = 16)],
    ['max payload fraction 65', 'page1.payloadFractions', (p) => void (p[21] = 65)],
    ['leaf payload fraction 0', 'page1.payloadFractions', (p) => void (p[23] = 0)],
    ['schema format 5', 'page1.schemaFormat', (p) => void p.writeUInt32BE(5, 44)],
  ];

  it('each bad header is refused for that commit only (a good commit in the same tick goes on); SQLite still opens the database', async () => {
    const { file } = sqliteDatabase();
    const store = await open(file);
    const good = await currentPage1(store);
    for (const [what, reason, spoil] of BAD_HEADERS) {
      const bad = Buffer.from(good);
      spoil(bad);
      const before = store.metrics().walFrames;
      const refusedCommit = store.commit([{ pgno: 1, data: bad }]);
      const other = store.commit([{ pgno: 1, data: good }]); // same batch
      const err = await expectRejectsWalnut(refusedCommit, 'WALNUT_INVALID_ARGUMENT', { reason });
      expect(err.message, what).toMatch(/page 1/);
      await other;
      expect(store.metrics().walFrames).toBe(before + 1);
    }
    await store.close();
    expectSqliteIntact(file);
    // and walnut reopens it
    const again = await open(file);
    expect((await currentPage1(again)).equals(good)).toBe(true);
    await again.close();
  });

  it("an in-header size above the commit's dbSize is refused, explicit or defaulted, in the same batch as good commits", async () => {
    const { file, pages } = sqliteDatabase();
    const store = await open(file);
    const good = await currentPage1(store);
    const tooBig = Buffer.from(good);
    tooBig.writeUInt32BE(pages + 10, 28); // offsets 24 and 92 are equal: SQLite trusts it
    await refused(store, () => store.commit([{ pgno: 1, data: tooBig }], { dbSize: pages }), 'dbSize');
    // defaulted dbSize (max(previous, highest page)): known only when the batch is built
    const before = store.metrics().walFrames;
    const results = await Promise.allSettled([
      store.commit([{ pgno: 1, data: good }]),
      store.commit([{ pgno: 1, data: tooBig }]),
      store.commit([{ pgno: 1, data: good }]),
    ]);
    // the refused commit breaks the commit chain: the one sequenced after it is refused too
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'rejected']);
    expect((results[1] as PromiseRejectedResult).reason).toMatchObject({ code: 'WALNUT_INVALID_ARGUMENT', reason: 'dbSize' });
    expect((results[2] as PromiseRejectedResult).reason).toMatchObject({ code: 'WALNUT_FAILED', reason: 'ChainBroken' });
    expect(store.metrics().walFrames).toBe(before + 1);
    expect(store.resumeCommits((results[1] as PromiseRejectedResult).reason)).toBe(true);
    await store.commit([{ pgno: 1, data: good }]);
    await store.close();
    expectSqliteIntact(file);
  });

  it('with page checksums, page 1 must keep reserving 16 bytes', async () => {
    const file = fresh();
    const store = await open(file, { pageChecksums: true });
    const good = await currentPage1(store);
    const bad = Buffer.from(good);
    bad[20] = 0;
    await refused(store, () => store.commit([{ pgno: 1, data: bad }]), 'page1.reservedBytes');
    await store.commit([{ pgno: 1, data: Buffer.from(good) }]);
    await store.close();
    const db = new Database(file, { readonly: true });
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    db.close();
  });
});

describe('dbSize', () => {
  it('below a page of the same commit is refused; below the previous size truncates the database', async () => {
    const file = fresh();
    const store = await open(file, { autoCheckpoint: false });
    await refused(store, () => store.commit([{ pgno: 5, data: page(5) }], { dbSize: 3 }), 'dbSize');
    await refused(store, () => store.commit([{ pgno: 2, data: page(2) }, { pgno: 4, data: page(4) }], { dbSize: 3 }), 'dbSize');
    await store.commit([2, 3, 4, 5, 6].map((p) => ({ pgno: p, data: page(p) })));
    let snap = await store.snapshot();
    expect(snap.dbSize).toBe(6);
    snap.release();
    // a shrinking commit (VACUUM, auto_vacuum) is allowed as long as its pages fit
    await store.commit([{ pgno: 3, data: page(33) }], { dbSize: 3 });
    snap = await store.snapshot();
    expect(snap.dbSize).toBe(3);
    expect((await snap.read(3))[0]).toBe(33);
    expect((await snap.read(5)).equals(page(0))).toBe(true); // past the end: zeros
    snap.release();
    const r = await store.checkpoint('truncate');
    expect(r.busy).toBe(false);
    expect(fs.statSync(file).size).toBe(3 * 4096); // a complete checkpoint cuts the file to dbSize
    await store.close();
  });
});

describe("dbSize against the database's page 1", () => {
  it("a shrinking commit without page 1 is refused below the current page 1's in-header size (SQLite would report the database corrupt)", async () => {
    const { file, pages } = sqliteDatabase();
    const store = await open(file);
    const page2 = await (async () => {
      const snap = await store.snapshot();
      try {
        return await snap.read(2);
      } finally {
        snap.release();
      }
    })();
    await refused(store, () => store.commit([{ pgno: 2, data: page2 }], { dbSize: 2 }), 'dbSize');
    // the same with page 1 committed earlier in the same batch: its header is the one that counts
    const good = await currentPage1(store);
    const [first, second] = await Promise.allSettled([store.commit([{ pgno: 1, data: good }]), store.commit([{ pgno: 2, data: page2 }], { dbSize: pages - 1 })]);
    expect(first.status).toBe('fulfilled');
    expect(second.status === 'rejected' && (second.reason as { reason?: string }).reason).toBe('dbSize');
    store.resumeCommits();
    await store.commit([{ pgno: 2, data: page2 }], { dbSize: pages }); // not shrinking: fine
    await store.close();
    expectSqliteIntact(file);
  });
});

describe('page numbers', () => {
  it("past SQLite's limit, past maxPageCount, past 16 TiB, or the lock-byte page are refused", async () => {
    const file = fresh();
    const store = await open(file, { autoCheckpoint: false, keepWal: true });
    const lockPage = lockBytePage(4096);
    expect(lockPage).toBe(262145); // 0x40000000 / 4096 + 1
    for (const pgno of [0, -1, 1.5, 0xffffffff, 0xfffffffe, 2 ** 31, 2 ** 30, lockPage]) {
      await refused(store, () => store.commit([{ pgno, data: page(1) }]), 'pgno');
    }
    await refused(store, () => store.commit([{ pgno: 2, data: page(1) }], { dbSize: 2 ** 31 }), 'dbSize');
    // the pages around the lock-byte page are ordinary pages
    await store.commit([{ pgno: lockPage - 1, data: page(1) }, { pgno: lockPage + 1, data: page(2) }]);
    // the default limit is SQLite's default max_page_count before 3.45: 2^30 - 1 pages
    await refused(store, () => store.commit([{ pgno: 2, data: page(1) }], { dbSize: 2 ** 30 }), 'dbSize');
    await store.close();
  });

  it('maxPageCount (like PRAGMA max_page_count) bounds pages and dbSize; the byte bound holds for large pages', async () => {
    const file = fresh();
    const store = await open(file, { maxPageCount: 100, autoCheckpoint: false });
    await refused(store, () => store.commit([{ pgno: 101, data: page(1) }]), 'pgno');
    await refused(store, () => store.commit([{ pgno: 2, data: page(1) }], { dbSize: 101 }), 'dbSize');
    await store.commit([{ pgno: 100, data: page(1) }]);
    await store.close();
    const big = fresh();
    const wide = await open(big, { pageSize: 65536, maxPageCount: 0xfffffffe, keepWal: true });
    // 2^28 pages of 64 KiB are 16 TiB: the next page is past the byte bound
    await refused(wide, () => wide.commit([{ pgno: 2 ** 28 + 1, data: page(1, 65536) }]), 'pgno');
    await refused(wide, () => wide.commit([{ pgno: lockBytePage(65536), data: page(1, 65536) }]), 'pgno');
    await wide.close();
    for (const bad of [0, 0xffffffff, 1.5, '10']) {
      await expectRejectsWalnut(open(fresh(), { maxPageCount: bad as number }), 'WALNUT_INVALID_ARGUMENT', { reason: 'maxPageCount' });
    }
  });
});

describe('transactions check the same way, at the earliest call', () => {
  it('write() refuses a bad page at once; commit() refuses a bad dbSize and stays open', async () => {
    const { file } = sqliteDatabase();
    const store = await open(file);
    const good = await currentPage1(store);
    const noMagic = Buffer.from(good).fill(0, 0, 16);
    const tx = store.begin();
    expectWalnutError(() => tx.write(1, noMagic), 'WALNUT_INVALID_ARGUMENT', { reason: 'page1.magic' });
    expectWalnutError(() => tx.write(0xffffffff, page(1)), 'WALNUT_INVALID_ARGUMENT', { reason: 'pgno' });
    expectWalnutError(() => tx.write(lockBytePage(4096), page(1)), 'WALNUT_INVALID_ARGUMENT', { reason: 'pgno' });
    tx.write(1, good);
    await expectRejectsWalnut(tx.commit({ dbSize: 2 ** 31 }), 'WALNUT_INVALID_ARGUMENT', { reason: 'dbSize' });
    const tooBig = Buffer.from(good);
    tooBig.writeUInt32BE(1000, 28);
    tx.write(1, tooBig);
    await expectRejectsWalnut(tx.commit({ dbSize: 5 }), 'WALNUT_INVALID_ARGUMENT', { reason: 'dbSize' });
    tx.write(1, good); // still open: fix it and commit
    const r = await tx.commit();
    expect(r).not.toBeNull();
    await store.close();
    expectSqliteIntact(file);
  });

  it('commit options that are not an object, or name anything but dbSize, are refused (a typo never drops a truncation)', async () => {
    const store = await open(fresh());
    // null too (only undefined is no options: lib/option-names.ts)
    for (const options of ['x', 5, true, [3], null, { dbsize: 1 }, { dbSize: 2, extra: 1 }]) {
      await refused(store, () => store.commit([{ pgno: 2, data: page(1) }], options as never), 'options');
      const tx = store.begin();
      tx.write(2, page(1));
      await expectRejectsWalnut(tx.commit(options as never), 'WALNUT_INVALID_ARGUMENT', { reason: 'options' });
      await tx.rollback();
    }
    // undefined means no options, as in open()
    await store.commit([{ pgno: 2, data: page(2) }], undefined);
    const tx = store.begin();
    tx.write(3, page(3));
    expect(await tx.commit(undefined)).not.toBeNull();
    await store.close();
  });
});
