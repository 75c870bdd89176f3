// inspect of a -shm shorter than SQLite's 136-byte index header (a -shm cut short, one a
// crashed process had only begun) reported backfilled 0 and backfillAttempted 0 — checkpoint
// info no file held — and nothing said the -shm was short. Now the report has the -shm's size
// (`bytes`) and null for what it cannot hold; a whole header is read as before. The database
// here is one sqlite3 wrote.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

import { inspect } from '../../lib/index';
import { tmpDir } from '../helpers/tmp';

const dir = tmpDir();

describe('inspect of a short -shm', () => {
  it('reports its size and no checkpoint info it does not have', () => {
    const db = path.join(dir, 'a.db');
    // sqlite3 leaves its -wal and -shm when persistent WAL is on
    execFileSync('python3', ['-c', `
import sqlite3
c = sqlite3.connect(${JSON.stringify(db)})
c.execute('pragma journal_mode=wal')
c.execute('create table t(x)')
c.execute('insert into t values (1)')
c.commit()
c.execute('insert into t values (2)')
c.commit()
import shutil
shutil.copy(${JSON.stringify(db)} + '-wal', ${JSON.stringify(db)} + '.wal')
shutil.copy(${JSON.stringify(db)} + '-shm', ${JSON.stringify(db)} + '.shm')
c.close()
`]);
    fs.copyFileSync(`${db}.wal`, `${db}-wal`);
    const shm = fs.readFileSync(`${db}.shm`);
    fs.writeFileSync(`${db}-shm`, shm.subarray(0, 136));
    const whole = inspect(db);
    expect(whole.shm).toMatchObject({ bytes: 136, headerValid: true });
    expect(whole.shm!.backfilled).toBe(0); // the WAL restarted after the checkpoint: none of its frames copied yet
    expect(whole.shm!.backfillAttempted).toBe(0);
    expect(whole.shm!.readMarks).toHaveLength(5);
    for (const n of [0, 1, 100, 135]) {
      fs.writeFileSync(`${db}-shm`, shm.subarray(0, n));
      const r = inspect(db);
      expect(r.shm).toEqual({ bytes: n, headerValid: false, mxFrame: null, nPage: null, backfilled: null, backfillAttempted: null, readMarks: [] });
    }
  });
});
