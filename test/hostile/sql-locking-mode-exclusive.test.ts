// PRAGMA locking_mode=EXCLUSIVE through exec() made the writer's SQLite keep its lock after each
// transaction, so the VFS kept the view of that moment for good: pages SQLite's cache let go of
// were read again from that old snapshot (and the database size from before its own later
// commits), and with a small cache the writer read "database disk image is malformed" after a
// few hundred one-row commits (PRAGMA integrity_check on the writer: "btreeInitPage() returns
// error code 11" for every page past the old size), writing pages built on stale ones. It is
// refused (WALNUT_INVALID_ARGUMENT, reason locking_mode); asking for the mode, or NORMAL, is
// SQLite's as before.
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';

import { expect, test } from 'vitest';

import { openDatabase } from '../../lib/sql';
import { tmpDir } from '../helpers/tmp';

test('PRAGMA locking_mode=EXCLUSIVE is refused; the writer goes on reading its own commits, integrity ok', async () => {
  const file = path.join(tmpDir(), 'exclusive.db');
  const db = await openDatabase(file, { readConnections: 0 });
  try {
    await db.exec('CREATE TABLE t(i, b)');
    for (const sql of ['PRAGMA locking_mode=EXCLUSIVE', 'PRAGMA LOCKING_MODE=EXCLUSIVE', 'PRAGMA main.locking_mode = exclusive', "PRAGMA locking_mode='Exclusive'"]) {
      await expect(db.exec(sql), sql).rejects.toMatchObject({ code: 'WALNUT_INVALID_ARGUMENT', reason: 'locking_mode' });
    }
    expect(await db.get('PRAGMA locking_mode')).toEqual({ locking_mode: 'normal' });
    await db.exec('PRAGMA locking_mode=NORMAL; PRAGMA cache_size=5');
    for (let i = 0; i < 300; i++) await db.run('INSERT INTO t VALUES (?, randomblob(3000))', [i]);
    expect(await db.get('SELECT count(*) AS n, sum(i) AS s FROM t')).toEqual({ n: 300, s: (299 * 300) / 2 });
    expect(await db.get('PRAGMA integrity_check')).toEqual({ integrity_check: 'ok' });
    await db.close();
  } finally {
    if (db.open) await db.close().catch(() => undefined);
  }
  expect(execFileSync('sqlite3', [file, 'SELECT count(*) FROM t; PRAGMA integrity_check'], { encoding: 'utf8' }).trim()).toBe('300\nok');
}, 60_000);
