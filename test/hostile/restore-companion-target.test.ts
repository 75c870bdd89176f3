// restore() (and export -o, openExportOutput) to a path named as another database's file: `walnut restore app.ark app.db-wal
// --force` replaced a live app.db's -wal (SQLite takes no lock on the -wal itself, so the InUse
// check saw nothing): the commits still in it were lost once that connection ended without a
// checkpoint, and SQLite then treated the restored "database" as app.db's WAL (overwritten or
// removed by the next connection). Without a -wal there, the restore succeeded and its result
// was removed by the next sqlite3 that opened app.db. Now refused, even with force
// (WALNUT_INVALID_ARGUMENT, reason TargetIsCompanion), for -wal, -shm, -journal and -wal-fec;
// a name that merely ends so, beside a file that is no database, is restored as before. The same
// for an export's output file: `walnut export b.db -o app.db-wal` wrote the backup where the
// next sqlite3 to open app.db removed it.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { restore } from '../../lib/export/restore';
import { openExportOutput } from '../../lib/export/stream';
import { open } from '../../lib/open';
import { openDatabase } from '../../lib/sql';
import { expectRejectsWalnut, expectWalnutError } from '../helpers/expect-error';
import { streamOf } from '../helpers/export-stream';
import { Database } from '../helpers/sqlite';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();

describe('restore and export to a name SQLite gives another database\'s files', () => {
  it('is refused (TargetIsCompanion), with force too, and the live database keeps its WAL and commits', async () => {
    const source = path.join(dir, 'source.db');
    const s = new Database(source);
    s.pragma('journal_mode = WAL');
    s.exec('CREATE TABLE t(a); INSERT INTO t VALUES (1)');
    s.close();
    const stream = await streamOf(source);

    const db = path.join(dir, 'app.db');
    const live = new Database(db);
    live.pragma('journal_mode = WAL');
    live.pragma('wal_autocheckpoint = 0');
    live.exec('CREATE TABLE t(a); INSERT INTO t VALUES (10), (11)'); // committed, in the -wal only
    try {
      const wal = fs.readFileSync(`${db}-wal`);
      for (const suffix of ['-wal', '-shm', '-journal', '-wal-fec']) {
        for (const force of [false, true]) {
          const refused = { reason: 'TargetIsCompanion', path: `${fs.realpathSync(dir)}/app.db${suffix}` };
          await expectRejectsWalnut(restore(Buffer.from(stream), `${db}${suffix}`, { force }), 'WALNUT_INVALID_ARGUMENT', refused);
          expectWalnutError(() => openExportOutput(source, `${db}${suffix}`, { force }), 'WALNUT_INVALID_ARGUMENT', refused);
        }
      }
      expect(fs.readFileSync(`${db}-wal`).equals(wal)).toBe(true);
      expect(live.prepare('SELECT count(*) AS n FROM t').get()).toEqual({ n: 2 });
    } finally {
      live.close();
    }
    // no -wal there now (the last connection removed it): still refused, nothing created
    await expectRejectsWalnut(restore(Buffer.from(stream), `${db}-wal`), 'WALNUT_INVALID_ARGUMENT', { reason: 'TargetIsCompanion' });
    expectWalnutError(() => openExportOutput(source, `${db}-wal`), 'WALNUT_INVALID_ARGUMENT', { reason: 'TargetIsCompanion' });
    expect(fs.existsSync(`${db}-wal`)).toBe(false);
    // beside a file that is no database, such a name is an ordinary target
    const notes = path.join(dir, 'notes');
    fs.writeFileSync(notes, 'not a database');
    const r = await restore(Buffer.from(stream), `${notes}-wal`);
    expect(r.dbPages).toBeGreaterThan(0);
    const back = new Database(`${notes}-wal`, { readonly: true });
    expect(back.prepare('SELECT count(*) AS n FROM t').get()).toEqual({ n: 1 });
    back.close();
  });

  it('open() (and walnut/sql) will not create a new database named as another one\'s -wal, -shm, -journal or -wal-fec; an existing file of that name is opened as before', async () => {
    const db = path.join(dir, 'owner.db');
    const s = new Database(db);
    s.pragma('journal_mode = WAL');
    s.exec('CREATE TABLE t(a); INSERT INTO t VALUES (1)');
    s.close(); // no -wal left: a store created at owner.db-wal would be removed by the next sqlite3 on owner.db
    for (const suffix of ['-wal', '-shm', '-journal', '-wal-fec']) {
      await expectRejectsWalnut(open(`${db}${suffix}`), 'WALNUT_INVALID_ARGUMENT', { reason: 'TargetIsCompanion' });
      await expectRejectsWalnut(openDatabase(`${db}${suffix}`), 'WALNUT_INVALID_ARGUMENT', { reason: 'TargetIsCompanion' });
    }
    expect(fs.readdirSync(dir).filter((f) => f.startsWith('owner.db'))).toEqual(['owner.db']);
    const plain = path.join(dir, 'plain-wal'); // no database "plain" beside it: an ordinary name
    const store = await open(plain);
    await store.close();
    expect(fs.existsSync(plain)).toBe(true);
  });
});
