// open(path, { readOnly: true }) refused once the WAL index is open writes nothing either. A
// store open refused after WalIndex.open (pageChecksums: true on a database that reserves no
// trailer bytes is found only then: page 1 may be in the WAL) closed "as SQLite's last
// connection": a passive checkpoint copied the -wal's commits into the database file and the
// -wal and -shm were removed, also with readOnly: true, whose store writes nothing
// (commit/read-only.ts). Now a refused read-only open checkpoints nothing: WALNUT_INVALID_ARGUMENT,
// reason pageChecksums, and the database file and its -wal keep every byte (sha256); on a
// database that had no -wal it leaves none (nor a -shm), as before; a read-write open refused the
// same way still closes as the last connection.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { describe, expect, it } from 'vitest';

import { open } from '../../lib/open';
import { openDatabase } from '../../lib/sql';
import { expectRejectsWalnut } from '../helpers/expect-error';
import { expectNoUnhandledRejections } from '../helpers/outcomes';
import { fileAndWalSha256, walDatabaseIn } from '../helpers/read-only-files';
import { tmpDir } from '../helpers/tmp';

expectNoUnhandledRejections();

const dir = tmpDir('walnut-ro-refused-');
let n = 0;
const sqlite = (file: string, sql: string): string => execFileSync('sqlite3', ['-cmd', '.timeout 10000', file, sql], { encoding: 'utf8' }).trim();



describe('a read-only open refused after the WAL index opened', () => {
  it('pageChecksums: true on a database without trailers: WALNUT_INVALID_ARGUMENT, the file and its -wal keep every byte', async () => {
    const file = await walDatabaseIn(dir);
    const before = fileAndWalSha256(file);
    expect(before.wal).not.toBe('absent');
    await expectRejectsWalnut(open(file, { readOnly: true, pageChecksums: true }), 'WALNUT_INVALID_ARGUMENT', { reason: 'pageChecksums' });
    expect(fileAndWalSha256(file), 'the refused read-only open checkpointed the WAL into the file').toEqual(before);
    // and it let go of everything: a read-only store opens after it, a read-write one checkpoints at close
    const store = await open(file, { readOnly: true });
    await store.close();
    expect(fileAndWalSha256(file)).toEqual(before);
    expect(sqlite(file, 'SELECT count(*) FROM t; PRAGMA integrity_check')).toBe('5\nok');
  });

  it('a database without a -wal: the refused read-only open leaves none, nor a -shm (it made them; nothing else is written)', async () => {
    const file = path.join(dir, `nowal${n++}.db`);
    sqlite(file, "PRAGMA journal_mode=WAL; CREATE TABLE t(v); INSERT INTO t VALUES ('a')");
    expect(fs.readdirSync(dir).filter((f) => f.startsWith(path.basename(file)))).toEqual([path.basename(file)]);
    const before = fileAndWalSha256(file);
    await expectRejectsWalnut(open(file, { readOnly: true, pageChecksums: true }), 'WALNUT_INVALID_ARGUMENT', { reason: 'pageChecksums' });
    expect(fs.readdirSync(dir).filter((f) => f.startsWith(path.basename(file)))).toEqual([path.basename(file)]);
    expect(fileAndWalSha256(file)).toEqual(before);
  });

  it("walnut/sql's readOnly (its store opened read-only) refused the same way: the file and its -wal keep every byte", async () => {
    const file = await walDatabaseIn(dir);
    const before = fileAndWalSha256(file);
    await expectRejectsWalnut(openDatabase(file, { readOnly: true, pageChecksums: true }), 'WALNUT_INVALID_ARGUMENT', { reason: 'pageChecksums' });
    expect(fileAndWalSha256(file)).toEqual(before);
  });

  it('a read-write open refused the same way still closes as the last connection (the WAL checkpointed, the -wal removed)', async () => {
    const file = await walDatabaseIn(dir);
    const before = fileAndWalSha256(file);
    await expectRejectsWalnut(open(file, { pageChecksums: true }), 'WALNUT_INVALID_ARGUMENT', { reason: 'pageChecksums' });
    expect(fileAndWalSha256(file).wal).toBe('absent');
    expect(fileAndWalSha256(file).db).not.toBe(before.db);
    expect(sqlite(file, 'SELECT count(*) FROM t; PRAGMA integrity_check')).toBe('5\nok');
  });
});
