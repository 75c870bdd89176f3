// inspect() takes no lock, so another connection's last close may delete the -wal and -shm
// between any two of its steps (SQLite deletes both when its last connection closes, as walnut
// does). inspect looked for each file by name (existsSync) and then opened or stat()ed it by
// name again: a file gone in between failed the whole look with WALNUT_IO or WALNUT_CANTOPEN
// ENOENT. `walnut export`, `checkpoint` and `replicate` inspect the database first, so 2 of 40
// exports that three processes ran at once on one database failed that way, each beside the
// others' last close. A file that is gone is now reported as absent.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { inspect } from '../../lib/index';
import { pythonSqlite, runPython } from '../helpers/children';
import { tmpDir } from '../helpers/tmp';

describe('inspect beside connections that come and go', () => {
  it('a sqlite3 process whose every close deletes the -wal and -shm: every look succeeds', async () => {
    const dir = tmpDir();
    const db = path.join(dir, 'app.db');
    await pythonSqlite(db, "c.execute('PRAGMA journal_mode=WAL'); c.execute('CREATE TABLE t(x)')");
    const script = path.join(dir, 'churn.py');
    // one connection at a time, each the last: its close checkpoints and deletes both files
    fs.writeFileSync(script, [
      'import sqlite3, sys, time',
      'end = time.time() + float(sys.argv[2])',
      'n = 0',
      'while time.time() < end:',
      '    c = sqlite3.connect(sys.argv[1], timeout=5)',
      "    c.execute('INSERT INTO t VALUES (1)')",
      '    c.commit()',
      '    c.close()',
      '    n += 1',
      'print(n)',
      '',
    ].join('\n'));
    const churn = runPython(script, [db, '3']);
    let done = false;
    void churn.then(() => (done = true), () => (done = true));
    let looks = 0;
    let sawWal = 0;
    let sawShm = 0;
    const failures: string[] = [];
    while (!done) {
      try {
        const r = inspect(db);
        looks++;
        if (r.walHeaderStatus !== 'missing') sawWal++;
        if (r.shm !== null) sawShm++;
      } catch (e) {
        failures.push(`${(e as { code?: string }).code}: ${(e as Error).message}`);
      }
      await new Promise((resolve) => setImmediate(resolve));
    }
    const closes = Number((await churn).trim());
    expect(failures.slice(0, 5)).toEqual([]);
    expect(closes).toBeGreaterThan(50);
    // the looks met the files there and gone (else the race was never run)
    expect(sawWal).toBeGreaterThan(0);
    expect(sawShm).toBeGreaterThan(0);
    expect(looks - sawShm).toBeGreaterThan(0);
    // and the database is whole: every row the closes committed
    expect(await pythonSqlite(db, "print(c.execute('SELECT count(*) FROM t').fetchone()[0])")).toBe(String(closes));
  });
});
