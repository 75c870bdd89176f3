// WAL files bit-exact with SQLite, both ways: SQLite writes and walnut recovers exactly what
// an independent scan finds; walnut writes and SQLite (better-sqlite3 and the sqlite3 command)
// reads, passes integrity_check and returns the same rows; damaged WALs keep exactly the
// frames SQLite keeps.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { WalnutError } from '../../lib/errors';
import { WalFile, type WalTransaction } from '../../lib/wal/wal-file';
import { DAMAGE_KINDS, damage, seededRandom } from '../helpers/wal-damage';
import { Database, oracleScan, sqliteWritesWal, typicalWork, type OracleScan } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
const hasSqliteCli = (() => {
  try {
    execFileSync('sqlite3', ['-version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

function rowsOf(dbPath: string): unknown[] {
  const db = new Database(dbPath, { readonly: true });
  try {
    return db.prepare('SELECT id, k, hex(v) AS v FROM t ORDER BY id').all();
  } finally {
    db.close();
  }
}

/** What SQLite's own recovery keeps: mxFrame and nPage from the -shm it builds on open. */
function sqliteView(dbPath: string): { mxFrame: number; nPage: number; error?: string } {
  const db = new Database(dbPath);
  try {
    let error: string | undefined;
    try {
      db.prepare('SELECT count(*) FROM sqlite_master').get();
    } catch (e) {
      error = (e as { code?: string }).code ?? String(e);
    }
    let shm: Buffer;
    try {
      shm = fs.readFileSync(`${dbPath}-shm`);
    } catch {
      return { mxFrame: 0, nPage: 0, error: error ?? 'no-shm' };
    }
    if (shm.length < 48) return { mxFrame: 0, nPage: 0, error: error ?? 'short-shm' };
    return { mxFrame: shm.readUInt32LE(16), nPage: shm.readUInt32LE(20), ...(error ? { error } : {}) };
  } finally {
    db.close();
  }
}

function transactionsOf(wal: Buffer, scan: OracleScan): WalTransaction[] {
  const txns: WalTransaction[] = [];
  let pages: { pgno: number; data: Uint8Array }[] = [];
  for (const f of scan.frames) {
    pages.push({ pgno: f.pgno, data: wal.subarray(f.offset + 24, f.offset + 24 + scan.pageSize) });
    if (f.commitSize !== 0) {
      txns.push({ pages, dbSize: f.commitSize });
      pages = [];
    }
  }
  return txns;
}

const PAGE_SIZES = [1024, 4096, 8192, 65536];
const copies = new Map(PAGE_SIZES.map((ps) => [ps, sqliteWritesWal(dir, `w${ps}`, ps, typicalWork(ps === 65536 ? 12 : 40, ps))]));

describe('SQLite writes, walnut recovers', () => {
  for (const pageSize of PAGE_SIZES) {
    it(`finds the same frames, commits, db size and page images (page size ${pageSize})`, async () => {
      const copy = copies.get(pageSize)!;
      const bytes = fs.readFileSync(copy.wal);
      const oracle = oracleScan(bytes)!;
      expect(oracle.commits).toBeGreaterThan(5);
      const wal = await WalFile.open(copy.wal, { readOnly: true });
      const r = await wal.recover();
      expect(r.headerStatus).toBe('ok');
      expect(r.pageSize).toBe(pageSize);
      expect(r.mxFrame).toBe(oracle.frames.length);
      expect(r.commits).toBe(oracle.commits);
      expect(r.dbSize).toBe(oracle.dbSize);
      expect(r.salts).toEqual(oracle.salts);
      expect(r.checkpointSeq).toBe(oracle.checkpointSeq);
      expect(r.running).toEqual(oracle.running);
      expect(r.invalidTailBytes).toBe(bytes.length - (32 + oracle.frames.length * (pageSize + 24)));
      expect([...r.pgnos.subarray(0, r.mxFrame)]).toEqual(oracle.frames.map((f) => f.pgno));
      const page = new Uint8Array(pageSize);
      for (const f of oracle.frames) {
        await wal.readFramePage(f.index, page);
        expect(Buffer.from(page).equals(bytes.subarray(f.offset + 24, f.offset + 24 + pageSize))).toBe(true);
      }
      // the sync variant agrees
      const again = WalFile.openSync(copy.wal, { readOnly: true });
      expect({ ...again.recoverSync(), pgnos: null }).toEqual({ ...r, pgnos: null });
      again.closeSync();
      await wal.close();
    });
  }
});

describe('walnut writes, SQLite reads', () => {
  for (const pageSize of PAGE_SIZES) {
    it(`replays SQLite's transactions through walnut's append; integrity_check ok, same rows (page size ${pageSize})`, async () => {
      const copy = copies.get(pageSize)!;
      const walBytes = fs.readFileSync(copy.wal);
      const oracle = oracleScan(walBytes)!;
      const txns = transactionsOf(walBytes, oracle);

      // the expected rows: SQLite's own reading of its WAL (on a separate copy)
      const ref = path.join(dir, `ref${pageSize}.db`);
      fs.copyFileSync(copy.db, ref);
      fs.copyFileSync(copy.wal, `${ref}-wal`);
      const expected = rowsOf(ref);
      expect(expected.length).toBeGreaterThan(10);

      // walnut: base database + a WAL written by walnut (its own salts and checksum chain)
      const target = path.join(dir, `walnut${pageSize}.db`);
      fs.copyFileSync(copy.db, target);
      const wal = await WalFile.open(`${target}-wal`, { create: true });
      await wal.writeHeader({ pageSize, checkpointSeq: 0 });
      const half = Math.floor(txns.length / 2);
      await wal.append(txns.slice(0, half), 'data'); // one batch of many transactions
      for (const t of txns.slice(half)) await wal.append([t], 'data'); // then one at a time
      expect(wal.mxFrame).toBe(oracle.frames.length);
      await wal.close();
      expect(oracleScan(fs.readFileSync(`${target}-wal`))!.frames.length).toBe(oracle.frames.length);

      const db = new Database(target);
      expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
      db.close();
      fs.copyFileSync(copy.db, target); // close checkpointed it; write again for the CLI
      const wal2 = await WalFile.open(`${target}-wal`, { create: true });
      await wal2.writeHeader({ pageSize, checkpointSeq: 7 });
      await wal2.append(txns, 'data');
      await wal2.close();
      fs.rmSync(`${target}-shm`, { force: true });
      if (hasSqliteCli) {
        expect(execFileSync('sqlite3', [target, 'PRAGMA integrity_check'], { encoding: 'utf8' }).trim()).toBe('ok');
      }
      expect(rowsOf(target)).toEqual(expected);
    });
  }

  it('restart: new generation with seq + 1 and salt-1 + 1, frames overwrite from 1, space reused; SQLite agrees', async () => {
    const copy = copies.get(4096)!;
    const walBytes = fs.readFileSync(copy.wal);
    const txns = transactionsOf(walBytes, oracleScan(walBytes)!);
    const target = path.join(dir, 'restart.db');
    fs.copyFileSync(copy.db, target);
    const wal = await WalFile.open(`${target}-wal`, { create: true });
    await wal.writeHeader({ pageSize: 4096, checkpointSeq: 3 });
    await wal.append(txns.slice(0, 5), 'data');
    const before = { salts: wal.salts, size: fs.statSync(`${target}-wal`).size };
    await wal.restart();
    expect(wal.checkpointSeq).toBe(4);
    expect(wal.salts[0]).toBe((before.salts[0] + 1) >>> 0);
    expect(wal.mxFrame).toBe(0);
    const fresh = await WalFile.open(`${target}-wal`, { readOnly: true });
    const r = await fresh.recover();
    expect(r.mxFrame).toBe(0); // old frames fail the salt test
    expect(r.checkpointSeq).toBe(4);
    // the database file never saw transactions 0..4; write all of them in the new generation
    await wal.append(txns, 'data');
    expect(fs.statSync(`${target}-wal`).size).toBeGreaterThanOrEqual(before.size);
    const r2 = await fresh.recover();
    expect(r2.mxFrame).toBe(wal.mxFrame);
    await fresh.close();
    await wal.close();
    const ref = path.join(dir, 'restart-ref.db');
    fs.copyFileSync(copy.db, ref);
    fs.copyFileSync(copy.wal, `${ref}-wal`);
    expect(rowsOf(target)).toEqual(rowsOf(ref));
  });
});

describe('damaged WALs: walnut keeps exactly the frames SQLite keeps', () => {
  const CASES_PER_SIZE = 56; // 4 page sizes x 56 = 224 damaged copies
  for (const pageSize of PAGE_SIZES) {
    it(`${CASES_PER_SIZE} damaged copies at page size ${pageSize}`, async () => {
      const copy = copies.get(pageSize)!;
      const wal = fs.readFileSync(copy.wal);
      const rand = seededRandom(pageSize * 7919);
      const disagreements: string[] = [];
      const outcomes = { empty: 0, partial: 0, full: 0 };
      const full = oracleScan(wal)!.frames.length;
      for (let i = 0; i < CASES_PER_SIZE; i++) {
        const kind = DAMAGE_KINDS[i % DAMAGE_KINDS.length]!;
        const { bytes, what } = damage(wal, pageSize, kind, rand);
        const target = path.join(dir, `dmg${pageSize}-${i}.db`);
        fs.copyFileSync(copy.db, target);
        fs.writeFileSync(`${target}-wal`, bytes);
        const w = await WalFile.open(`${target}-wal`, { readOnly: true });
        const ours = await w.recover();
        await w.close();
        const theirs = sqliteView(target);
        if (ours.mxFrame !== theirs.mxFrame || (ours.mxFrame > 0 && ours.dbSize !== theirs.nPage)) {
          disagreements.push(`${what}: walnut ${ours.mxFrame}/${ours.dbSize}, sqlite ${theirs.mxFrame}/${theirs.nPage} ${theirs.error ?? ''}`);
        }
        outcomes[theirs.mxFrame === 0 ? 'empty' : theirs.mxFrame < full ? 'partial' : 'full']++;
        for (const suffix of ['', '-wal', '-shm']) fs.rmSync(target + suffix, { force: true });
      }
      expect(disagreements).toEqual([]);
      // the damage must exercise every outcome, or the comparison proves little
      expect(outcomes.empty).toBeGreaterThan(0);
      expect(outcomes.partial).toBeGreaterThan(5);
      expect(outcomes.full).toBeGreaterThan(0);
    });
  }

  it('a valid header with an unknown version is WALNUT_CANTOPEN, as SQLite refuses it', async () => {
    const copy = copies.get(4096)!;
    const wal = Buffer.from(fs.readFileSync(copy.wal));
    wal.writeUInt32BE(3007001, 4);
    const { walChecksumBytes } = await import('../../lib/format/checksum');
    const [s0, s1] = walChecksumBytes(wal.subarray(0, 24), false);
    wal.writeUInt32BE(s0, 24);
    wal.writeUInt32BE(s1, 28);
    const target = path.join(dir, 'version.db');
    fs.copyFileSync(copy.db, target);
    fs.writeFileSync(`${target}-wal`, wal);
    const w = await WalFile.open(`${target}-wal`, { readOnly: true });
    const err = await w.recover().catch((e) => e);
    expect(err).toBeInstanceOf(WalnutError);
    expect(err.code).toBe('WALNUT_CANTOPEN');
    await w.close();
    const db = new Database(target);
    expect(() => db.prepare('SELECT count(*) FROM t').get()).toThrow(/unable to open|SQLITE_CANTOPEN/i);
    db.close();
  });
});
