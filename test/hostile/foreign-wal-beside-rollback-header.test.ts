// A rollback-journal database (intact header, 4096-byte pages, 2,000 rows) with another
// database's -wal copied beside it: a WAL of 1024-byte pages whose committed frames hold that
// database's page 1. The page-1-through-the-WAL rule (wal/page1-through-wal.ts) is for a torn
// header; it adopted this WAL's page 1 too, since the file's header was not in WAL mode: open()
// took the page size 1024, its closing checkpoint wrote the foreign pages over page 1..3 and cut
// the file to 3 KiB (the 2,000 rows gone), and inspect and verify described the foreign database.
// An intact header of another page size than the WAL's is no torn write: the -wal is refused
// (WALNUT_CORRUPT, before anything is converted: the file is left byte for byte as it was) as it
// is beside an intact WAL-mode header, and inspect/verify describe the file's own database.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { inspect, open, verify } from '../../lib';
import { openDatabase } from '../../lib/sql';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();

let made: string | null = null;

/** app.db in rollback mode (4096) and, as app.db-wal, a copy of other.db's live -wal (1024, page 1 committed in it); a fresh copy per call. */
function rollbackWithForeignWal(name: string): string {
  made ??= makeOnce();
  const d = path.join(dir, name);
  fs.mkdirSync(d);
  for (const f of ['app.db', 'app.db-wal']) fs.copyFileSync(path.join(made, f), path.join(d, f));
  return path.join(d, 'app.db');
}

/** Built once per file: the 2,000 rows in one transaction (one per row was 2,000 journal syncs, 18 s on a loaded machine). */
function makeOnce(): string {
  const d = path.join(dir, 'made');
  fs.mkdirSync(d);
  execFileSync('python3', ['-c', `
import sqlite3, shutil, sys
d = sys.argv[1]
a = sqlite3.connect(d + '/app.db', isolation_level=None); a.execute('pragma page_size=4096'); a.execute('create table app(x)')
a.execute('begin'); a.executemany('insert into app values(?)', [(i,) for i in range(2000)]); a.execute('commit'); a.close()
o = sqlite3.connect(d + '/other.db', isolation_level=None); o.execute('pragma page_size=1024'); o.execute('pragma journal_mode=WAL')
o.execute('pragma wal_autocheckpoint=0'); o.execute('create table seed(x)'); o.execute('pragma wal_checkpoint(TRUNCATE)')
o.execute('create table other(y)'); o.execute("insert into other values('foreign')")
shutil.copyfile(d + '/other.db-wal', d + '/app.db-wal'); o.close()
`, d]);
  return d;
}

describe('a foreign -wal of another page size beside an intact rollback-journal header', () => {
  it('open() and openDatabase() refuse it (WALNUT_CORRUPT) and leave the database and its -wal as they were', async () => {
    const db = rollbackWithForeignWal('open');
    const before = fs.readFileSync(db);
    const wal = fs.readFileSync(`${db}-wal`);
    await expect(open(db)).rejects.toMatchObject({ name: 'WalnutError', code: 'WALNUT_CORRUPT' });
    await expect(openDatabase(db)).rejects.toMatchObject({ name: 'WalnutError', code: 'WALNUT_CORRUPT' });
    expect(fs.readFileSync(db).equals(before)).toBe(true); // not converted, not checkpointed over
    expect(fs.readFileSync(`${db}-wal`).equals(wal)).toBe(true);
    expect(fs.existsSync(`${db}-shm`)).toBe(false);
    fs.rmSync(`${db}-wal`); // without it the database is whole
    expect(execFileSync('sqlite3', [db, 'SELECT count(*) FROM app; PRAGMA integrity_check'], { encoding: 'utf8' }).trim()).toBe('2000\nok');
  });

  it("inspect and verify describe the file's database (4096, rollback) and verify names the foreign -wal", async () => {
    const db = rollbackWithForeignWal('check');
    const i = await inspect(db);
    expect({ pageSize: i.pageSize, journalMode: i.journalMode }).toEqual({ pageSize: 4096, journalMode: 'rollback' });
    const v = await verify(db, 5);
    expect(v.ok).toBe(false);
    expect(v.issues.map((x) => x.kind)).toEqual(['wal-page-size']);
  });
});
