// open() refusing an option only after it had opened (and converted) the database: with
// `pageChecksums: true` on a database that does not reserve the trailer's 16 bytes, and with
// `fec` beside a -wal-fec that is a directory, open() converted a rollback-journal database to
// WAL mode (bytes 18/19 set to 2) and then refused, and on a WAL-mode database left the -wal and
// -shm it had created (its index closed without the last connection's cleanup). Now a refused
// open() changes nothing: checked before converting, and closed as the last connection.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { open } from '../../lib/open';
import { expectRejectsWalnut } from '../helpers/expect-error';
import { Database } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();
let n = 0;

/** A database SQLite wrote and closed, in rollback-journal mode (SQLite's default) or WAL mode. */
function sqliteDb(mode: 'delete' | 'wal'): string {
  const db = path.join(dir, `db${n++}.db`);
  const s = new Database(db);
  s.pragma(`journal_mode = ${mode}`);
  s.exec('CREATE TABLE t(a); INSERT INTO t VALUES (1)');
  s.close();
  return db;
}
const formatBytes = (db: string) => [...fs.readFileSync(db).subarray(18, 20)];
const files = (db: string) => fs.readdirSync(path.dirname(db)).filter((f) => f.startsWith(path.basename(db))).sort();

describe('an open() refused for its options changes nothing', () => {
  it('pageChecksums on a database without trailer room: a rollback-journal one stays unconverted, a WAL one gets no -wal/-shm', async () => {
    for (const mode of ['delete', 'wal'] as const) {
      const db = sqliteDb(mode);
      const before = fs.readFileSync(db);
      await expectRejectsWalnut(open(db, { pageChecksums: true }), 'WALNUT_INVALID_ARGUMENT', { reason: 'pageChecksums' });
      expect(formatBytes(db), mode).toEqual(mode === 'wal' ? [2, 2] : [1, 1]);
      expect(fs.readFileSync(db).equals(before), mode).toBe(true);
      expect(files(db), mode).toEqual([path.basename(db)]);
    }
  });

  it('fec beside a -wal-fec that is a directory: the rollback-journal database stays unconverted', async () => {
    const db = sqliteDb('delete');
    const before = fs.readFileSync(db);
    fs.mkdirSync(`${db}-wal-fec`);
    await expectRejectsWalnut(open(db, { fec: { repairSymbols: 2 } }), 'WALNUT_CANTOPEN', { reason: 'NotRegularFile' });
    expect(fs.readFileSync(db).equals(before)).toBe(true);
    expect(files(db)).toEqual([path.basename(db), `${path.basename(db)}-wal-fec`]);
  });
});
