// A -wal whose valid header names another page size but which holds no committed frame (another
// database's WAL whose first frame is torn, or whose frames never committed). SQLite reads such a
// WAL as empty and its next writer starts a new one with the database's page size; verify found
// nothing wrong, but open(), checkpoint, recover and export refused the database with
// WALNUT_CORRUPT ("WAL page size 1024 differs from the database's 4096") for good.
import * as fs from 'node:fs';
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { open } from '../../lib/commit/store';
import { verify } from '../../lib/integrity/verify';
import { Database, oracleScan, sqliteWritesWal, typicalWork } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
const cli = path.join(__dirname, '../../bin/walnut.js');

/** A 4096-byte-page database (SQLite's, 20 rows) beside a 1024-byte-page WAL made to hold no commit. */
function mismatched(name: string, damage: 'torn-first-frame' | 'no-commit-frame'): string {
  const db = path.join(dir, `${name}.db`);
  const s = new Database(db);
  s.pragma('page_size = 4096');
  s.pragma('journal_mode = WAL');
  s.exec('CREATE TABLE t(v)');
  for (let i = 0; i < 20; i++) s.prepare('INSERT INTO t VALUES (?)').run(i);
  s.close(); // checkpointed, -wal removed
  const other = sqliteWritesWal(dir, `${name}-other`, 1024, typicalWork(3));
  const wal = fs.readFileSync(other.wal);
  const scan = oracleScan(wal)!;
  if (damage === 'torn-first-frame') wal[32 + 24 + 100]! ^= 0xff; // frame 1's page: the chain breaks at once
  fs.writeFileSync(`${db}-wal`, damage === 'torn-first-frame' ? wal : noCommits(wal, scan));
  return db;
}

/** The WAL cut after its first frame that is not a commit frame: valid frames, none committed. */
function noCommits(wal: Buffer, scan: NonNullable<ReturnType<typeof oracleScan>>): Buffer {
  const f = scan.frames.find((x) => x.commitSize === 0);
  if (f === undefined) throw new Error('the WAL has no frame before its first commit frame');
  return wal.subarray(0, f.offset + 24 + scan.pageSize);
}

describe('a -wal of another page size that holds no commit', () => {
  for (const damage of ['torn-first-frame', 'no-commit-frame'] as const) {
    it(`${damage}: walnut opens, reads, commits and checkpoints as SQLite does; verify, recover and export agree`, async () => {
      const db = mismatched(damage, damage);
      const copy = `${db}.sqlite.db`;
      fs.copyFileSync(db, copy);
      fs.copyFileSync(`${db}-wal`, `${copy}-wal`);
      const s = new Database(copy);
      expect(s.prepare('SELECT count(*) AS n FROM t').get()).toEqual({ n: 20 });
      s.close();

      expect((await verify(db, 5)).issues).toEqual([]);
      execFileSync(process.execPath, [cli, 'recover', db], { stdio: 'pipe' });
      execFileSync(process.execPath, [cli, 'export', '-o', `${db}.ark`, db], { stdio: 'pipe' });
      const store = await open(db, { autoCheckpoint: false });
      const snap = await store.snapshot();
      const page2 = await snap.read(2);
      snap.release();
      await store.commit([{ pgno: 2, data: page2 }]);
      const header = fs.readFileSync(`${db}-wal`).subarray(0, 32);
      expect(header.readUInt32BE(8)).toBe(4096); // the new WAL is this database's
      expect((await store.checkpoint('truncate')).busy).toBe(false);
      await store.close();
      const after = new Database(db);
      expect(after.prepare('SELECT count(*) AS n FROM t').get()).toEqual({ n: 20 });
      expect(after.pragma('integrity_check', { simple: true })).toBe('ok');
      after.close();
    });
  }
});
