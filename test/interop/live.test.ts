// Live interop: walnut and real SQLite processes on the same database at the same time.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { WalIndex } from '../../lib/wal-index/wal-index';
import type { WalTransaction } from '../../lib/wal/wal-file';
import { SqlitePeer } from '../helpers/children';
import { commitVia } from '../helpers/commit';
import { oracleScan, sqliteWritesWal, typicalWork } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();

/** SQLite-produced transactions (page images) and the base database they apply to. */
function sqliteTransactions(name: string) {
  const src = sqliteWritesWal(dir, name, 4096, typicalWork(30, 3));
  const wal = fs.readFileSync(src.wal);
  const scan = oracleScan(wal)!;
  const txns: WalTransaction[] = [];
  let pages: { pgno: number; data: Uint8Array }[] = [];
  for (const f of scan.frames) {
    pages.push({ pgno: f.pgno, data: Buffer.from(wal.subarray(f.offset + 24, f.offset + 24 + 4096)) });
    if (f.commitSize) {
      txns.push({ pages, dbSize: f.commitSize });
      pages = [];
    }
  }
  // SQLite's own answer for the final state, from a separate copy
  const ref = path.join(dir, `${name}-ref.db`);
  fs.copyFileSync(src.db, ref);
  fs.copyFileSync(src.wal, `${ref}-wal`);
  return { base: src.db, txns, ref };
}

describe('walnut commits while SQLite reads', () => {
  it('a SQLite reader keeps its snapshot; a new reader sees every walnut commit; integrity ok', async () => {
    const { base, txns, ref } = sqliteTransactions('live1');
    const target = path.join(dir, 'live1-target.db');
    fs.copyFileSync(base, target);
    const refPeer = new SqlitePeer(ref);
    const expectedRows = await refPeer.all('SELECT * FROM t ORDER BY id');
    await refPeer.close();

    const reader = new SqlitePeer(target);
    await reader.exec('BEGIN');
    expect(await reader.get('SELECT count(*) AS n FROM sqlite_master')).toEqual({ n: 1 });

    const index = await WalIndex.open(target);
    for (const t of txns) await commitVia(index, [t]);

    // the open read transaction still sees the database as it was
    expect(await reader.get('SELECT count(*) AS n FROM sqlite_master')).toEqual({ n: 1 });
    await reader.exec('COMMIT');
    // a new read transaction sees all of walnut's commits
    expect(await reader.all('SELECT * FROM t ORDER BY id')).toEqual(expectedRows);
    expect(await reader.pragma('integrity_check')).toBe('ok');
    await reader.close();
    await index.close();
  });
});

describe('SQLite commits while walnut reads', () => {
  it("walnut's snapshot is unchanged by SQLite's commit; a new snapshot sees it", async () => {
    const { base } = sqliteTransactions('live2');
    const target = path.join(dir, 'live2-target.db');
    fs.copyFileSync(base, target);
    const writer = new SqlitePeer(target);
    await writer.exec('CREATE TABLE k(v)');
    const root = (await writer.get<{ rootpage: number }>("SELECT rootpage FROM sqlite_master WHERE name = 'k'")).rootpage;
    const index = await WalIndex.open(target);
    const before = await index.beginRead();
    const leafBefore = await before.read(root);
    expect(leafBefore.includes(Buffer.from('from sqlite'))).toBe(false);

    await writer.exec("INSERT INTO k VALUES ('from sqlite')");

    // the old snapshot: same frame window, same bytes
    expect((await before.read(root)).equals(leafBefore)).toBe(true);
    // a new snapshot sees SQLite's commit, and exactly SQLite's page image
    const after = await index.beginRead();
    expect(after.mxFrame).toBeGreaterThan(before.mxFrame);
    const leafAfter = await after.read(root);
    expect(leafAfter.includes(Buffer.from('from sqlite'))).toBe(true);
    const page1After = await after.read(1);
    before.release();
    after.release();

    // SQLite, walnut, SQLite again: the WAL chain stays intact across writers
    await commitVia(index, [{ pages: [{ pgno: 1, data: page1After }], dbSize: after.dbSize }]);
    await writer.exec("INSERT INTO k VALUES ('after walnut')");
    expect(await writer.all('SELECT v FROM k')).toEqual([{ v: 'from sqlite' }, { v: 'after walnut' }]);
    expect(await writer.pragma('integrity_check')).toBe('ok');
    await index.close();
    await writer.close();
  });
});
