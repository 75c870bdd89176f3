// open(path, { readOnly: true }) refused once the WAL index is open writes nothing either. A
// store open refused after WalIndex.open (pageChecksums: true on a database that reserves no
// trailer bytes is found only then: page 1 may be in the WAL) closed "as SQLite's last
// connection": a passive checkpoint copied the -wal's commits into the database file and the
// -wal and -shm were removed, also with readOnly: true, whose store writes nothing
// (commit/read-only.ts). Now a refused read-only open checkpoints nothing: WALNUT_INVALID_ARGUMENT,
// reason pageChecksums, and the database file and its -wal keep every byte (sha256); on a
// database that had no -wal it leaves none (nor a -shm), as before; a read-write open refused the
// same way still closes as the last connection.
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { describe, expect, it } from 'vitest';

import { open } from '../../lib/open';
import { openDatabase } from '../../lib/sql';
import { expectRejectsWalnut } from '../helpers/expect-error';
import { expectNoUnhandledRejections } from '../helpers/outcomes';
import { tmpDir } from '../helpers/tmp';

expectNoUnhandledRejections();

const dir = tmpDir('walnut-ro-refused-');
let n = 0;
const sqlite = (file: string, sql: string): string => execFileSync('sqlite3', ['-cmd', '.timeout 10000', file, sql], { encoding: 'utf8' }).trim();

/** A WAL-mode database without page trailers: its table in the file, 5 rows only in its -wal. */
async function walDatabase(): Promise<string> {
  const file = path.join(dir, `ro${n++}.db`);
  const db = await openDatabase(file, { keepWal: true });
  await db.exec('CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)');
  await db.store.checkpoint('passive');
  for (let i = 0; i < 5; i++) await db.run('INSERT INTO t(v) VALUES (?)', [`row ${i}`]);
  await db.close();
  return file;
}

function bytes(file: string): { db: string; wal: string } {
  const hash = (f: string): string => (fs.existsSync(f) ? createHash('sha256').update(fs.readFileSync(f)).digest('hex') : 'absent');
  return { db: hash(file), wal: hash(`${file}-wal`) };
}

describe('a read-only open refused after the WAL index opened', () => {
  it('pageChecksums: true on a database without trailers: WALNUT_INVALID_ARGUMENT, the file and its -wal keep every byte', async () => {
    const file = await walDatabase();
    const before = bytes(file);
    expect(before.wal).not.toBe('absent');
    await expectRejectsWalnut(open(file, { readOnly: true, pageChecksums: true }), 'WALNUT_INVALID_ARGUMENT', { reason: 'pageChecksums' });
    expect(bytes(file), 'the refused read-only open checkpointed the WAL into the file').toEqual(before);
    // and it let go of everything: a read-only store opens after it, a read-write one checkpoints at close
    const store = await open(file, { readOnly: true });
    await store.close();
    expect(bytes(file)).toEqual(before);
    expect(sqlite(file, 'SELECT count(*) FROM t; PRAGMA integrity_check')).toBe('5\nok');
  });

  it('a database without a -wal: the refused read-only open leaves none, nor a -shm (it made them; nothing else is written)', async () => {
    const file = path.join(dir, `nowal${n++}.db`);
    sqlite(file, "PRAGMA journal_mode=WAL; CREATE TABLE t(v); INSERT INTO t VALUES ('a')");
    expect(fs.readdirSync(dir).filter((f) => f.startsWith(path.basename(file)))).toEqual([path.basename(file)]);
    const before = bytes(file);
    await expectRejectsWalnut(open(file, { readOnly: true, pageChecksums: true }), 'WALNUT_INVALID_ARGUMENT', { reason: 'pageChecksums' });
    expect(fs.readdirSync(dir).filter((f) => f.startsWith(path.basename(file)))).toEqual([path.basename(file)]);
    expect(bytes(file)).toEqual(before);
  });

  it("walnut/sql's readOnly (its store opened read-only) refused the same way: the file and its -wal keep every byte", async () => {
    const file = await walDatabase();
    const before = bytes(file);
    await expectRejectsWalnut(openDatabase(file, { readOnly: true, pageChecksums: true }), 'WALNUT_INVALID_ARGUMENT', { reason: 'pageChecksums' });
    expect(bytes(file)).toEqual(before);
  });

  it('a read-write open refused the same way still closes as the last connection (the WAL checkpointed, the -wal removed)', async () => {
    const file = await walDatabase();
    const before = bytes(file);
    await expectRejectsWalnut(open(file, { pageChecksums: true }), 'WALNUT_INVALID_ARGUMENT', { reason: 'pageChecksums' });
    expect(bytes(file).wal).toBe('absent');
    expect(bytes(file).db).not.toBe(before.db);
    expect(sqlite(file, 'SELECT count(*) FROM t; PRAGMA integrity_check')).toBe('5\nok');
  });
});
